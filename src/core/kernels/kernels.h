/* Numerical kernels of the forward pass. All compute is float32; weights may be stored as
 * F32, F16 or BF16 and are converted on the fly inside the kernels. */
#ifndef SLUA_CORE_KERNELS_H
#define SLUA_CORE_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slua/sl_model.h"

/* A row-major [rows][cols] matrix (or a vector with rows = 1) inside the mapped checkpoint. */
typedef struct sl_weight {
    const void *data;
    sl_dtype dtype;
    int64_t rows, cols;
    /* Q8_0 (kernels_q8.h): data is int8 [rows][blocks * 32], these the scales as float32
     * [rows][blocks]; NULL for stored F32/F16/BF16 weights. q8_packed: data and scales are in
     * the packed layout of the x86 kernels instead (sl_q8_pack; the scales float16 bits). */
    const void *q8_scales;
    bool q8_packed;
    /* BF16 compute (SL_COMPUTE_BF16): data is BF16 and the products round their input rows to
     * BF16 before multiplying. */
    bool bf16_compute;
} sl_weight;

/* Memory a product needs besides its output (the quantised activation rows of Q8_0 weights),
 * owned by the caller and reused: it grows to the largest product it served, so a forward pass
 * allocates nothing once the first has run. Zero-initialise; release with
 * sl_matmul_scratch_free. */
typedef struct sl_matmul_scratch {
    void *mem;
    size_t cap;
} sl_matmul_scratch;

/* Room for at least `bytes` (64-byte aligned); false when out of memory (s unchanged). */
bool sl_matmul_scratch_grow(sl_matmul_scratch *s, size_t bytes);
/* Room for any product of w with up to n activation rows. */
bool sl_matmul_scratch_reserve(sl_matmul_scratch *s, const sl_weight *w, int32_t n);
void sl_matmul_scratch_free(sl_matmul_scratch *s);

/* The products below return false only when the scratch could not grow (Q8_0 weights); with
 * scratch NULL they use a temporary one. Within a kernel level each output is summed in one
 * fixed order, whatever n, the row's place among them or the thread count. */

/* out[i][r] = sum_c x[i][c] * w[r][c] (+ bias[r]) for i < n; out has row stride ldo. */
bool sl_matmul(float *out, int64_t ldo, const float *x, int32_t n, const sl_weight *w, const float *bias,
               sl_matmul_scratch *scratch);

/* One product of a group: out[i][r] = sum_c x[i][c] * w[r][c] (+ bias[r]), row stride ldo. */
typedef struct sl_matmul_job {
    float *out;
    int64_t ldo;
    const sl_weight *w;
    const float *bias; /* or NULL */
} sl_matmul_job;

/* Several products of the same input rows in one parallel region (e.g. q, k and v), each
 * split evenly over the threads. */
bool sl_matmul_group(const sl_matmul_job *jobs, int count, const float *x, int32_t n, sl_matmul_scratch *scratch);

/* The activation of a gated MLP's gate rows: SiLU (x * sigmoid(x)) or PyTorch's tanh GELU
 * (0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))), as torch computes them in float32. */
typedef enum sl_gate_act { SL_GATE_SILU = 0, SL_GATE_GELU_TANH = 1 } sl_gate_act;

/* gate = act(x·w_gate + b_gate) * (x·w_up + b_up), up = x·w_up + b_up, in one parallel region.
 * w_gate and w_up have the same shape; both outputs have row stride ldo. */
bool sl_matmul_gated(float *gate, float *up, int64_t ldo, const float *x, int32_t n, const sl_weight *w_gate,
                     const float *b_gate, const sl_weight *w_up, const float *b_up, sl_gate_act act,
                     sl_matmul_scratch *scratch);

/* Row `row` of w as float32. */
void sl_weight_row(float *out, const sl_weight *w, int64_t row);
/* All of a vector-shaped weight as float32 (n = rows * cols values). */
void sl_weight_to_f32(float *out, const sl_weight *w);

/* HF LlamaRMSNorm over n rows of dim values: out = weight * x / sqrt(mean(x^2) + eps). */
void sl_rmsnorm(float *out, const float *x, const float *weight, int32_t n, int32_t dim, float eps);

/* n stored values of type dt as float32 (exact). */
void sl_convert_values(float *out, const void *src, int64_t n, sl_dtype dt);

float sl_bf16_to_f32(uint16_t h);
float sl_f16_to_f32(uint16_t h);
uint16_t sl_f32_to_bf16(float f);
/* n values rounded to BF16 (to nearest even, NaN kept): as BF16 bits, and as float32. */
void sl_round_bf16(uint16_t *out, const float *x, int64_t n);
void sl_round_bf16_f32(float *out, const float *x, int64_t n);
/* Whether BF16-compute products run on vdpbf16ps at the level in use. */
bool sl_bf16_dot_native(void);
uint16_t sl_f32_to_f16(float f);

/* Threads for the project's kernels (set through sl_set_num_threads). */
int sl_threads(void);

#endif
