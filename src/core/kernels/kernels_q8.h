/* Q8_0 weights (llama.cpp's definition): each row in blocks of 32 values, one scale per block,
 * d = max|x| / 127 rounded to float16, q = round(x / d) in [-127, 127]. The products quantise
 * their activation rows the same way (with a float32 scale) and sum int8 x int8 products per
 * block in int32, as llama.cpp's Q8_0 x Q8_0 dot product does. Lossy: not HF-exact. */
#ifndef SLUA_CORE_KERNELS_Q8_H
#define SLUA_CORE_KERNELS_Q8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "kernels_simd.h"

#define SL_Q8_BLOCK 32

/* Blocks per row of cols values (the last one zero-padded). */
static inline int64_t sl_q8_blocks(int64_t cols) { return (cols + SL_Q8_BLOCK - 1) / SL_Q8_BLOCK; }

/* One row of cols values into blocks: q gets sl_q8_blocks(cols) * 32 int8 (padding zero),
 * d one scale per block. half_scale rounds each scale to float16 (weights) before use. */
void sl_q8_quantize_row(int8_t *q, float *d, const float *x, int64_t cols, bool half_scale);

/* Activation rows quantised once for all products of a group. */
typedef struct sl_q8_act {
    const int8_t *q; /* [n][blocks * 32] */
    const float *d;  /* [n][blocks] */
    int64_t blocks;
    /* For the AVX-512 VNNI kernel, which multiplies unsigned w + 128 by signed x: per group of
     * 4 bytes, -128 * (their sum of x) ([n][blocks * 8]), and each block's scale repeated 8
     * times ([n][blocks * 8]). */
    const int32_t *offset;
    const float *d8;
} sl_q8_act;

/* Bytes of n quantised activation rows of cols values. */
size_t sl_q8_act_bytes(int32_t n, int64_t cols);
/* Quantises n rows of cols values into a, inside scratch (grown when too small). False when
 * it could not grow (a is then empty). */
bool sl_q8_act_init(sl_q8_act *a, const float *x, int32_t n, int64_t cols, sl_matmul_scratch *scratch);

/* out[j * ldo + r] = sum over blocks of w.d[r][b] * a.d[j][b] * (int) sum_k w.q[r][b][k] * a.q[j][b][k],
 * for j < nx, r0 <= r < r1; a points at the first of the nx rows. */
typedef void (*sl_q8_rows_fn)(float *out, int64_t ldo, const sl_q8_act *a, int32_t nx, const sl_weight *w,
                              int64_t r0, int64_t r1);

void sl_q8_rows_generic(float *out, int64_t ldo, const sl_q8_act *a, int32_t nx, const sl_weight *w, int64_t r0,
                        int64_t r1);
/* The kernel at a level (SL_ISA_*; AVX-512 uses VNNI where the CPU has it, else AVX2). */
sl_q8_rows_fn sl_q8_rows_at(sl_isa isa);

/* Converts w (F32/F16/BF16, rows x cols) to Q8_0 in buffers the caller owns:
 * q [rows][blocks * 32], d [rows][blocks]. False when out of memory. */
bool sl_q8_convert(int8_t *q, float *d, const sl_weight *w);

#endif
