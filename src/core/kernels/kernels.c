#include "kernels.h"
#include "kernels_q8.h"
#include "kernels_simd.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

/* ------------------------------------------------------------------ threads */

static int g_threads = 1;

void sl_set_num_threads(int n)
{
    if (n <= 0)
        n = omp_get_num_procs();
    g_threads = n < SL_MAX_THREADS ? n : SL_MAX_THREADS;
}

int sl_get_num_threads(void) { return g_threads; }
int sl_threads(void) { return g_threads; }

void sl_weight_row(float *out, const sl_weight *w, int64_t row)
{
    if (w->q8_packed) {
        int64_t blocks = sl_q8_blocks(w->cols);
        int8_t q[SL_Q8_BLOCK];
        float d;
        for (int64_t b = 0; b < blocks; b++) {
            sl_q8_packed_block(q, &d, w, row, b);
            for (int64_t k = 0; k < SL_Q8_BLOCK && b * SL_Q8_BLOCK + k < w->cols; k++)
                out[b * SL_Q8_BLOCK + k] = d * (float)q[k];
        }
        return;
    }
    if (w->q8_scales) {
        int64_t blocks = sl_q8_blocks(w->cols);
        const int8_t *q = (const int8_t *)w->data + row * blocks * SL_Q8_BLOCK;
        for (int64_t c = 0; c < w->cols; c++)
            out[c] = ((const float *)w->q8_scales)[row * blocks + c / SL_Q8_BLOCK] * (float)q[c];
        return;
    }
    sl_convert_values(out, sl_row_ptr(w, row), w->cols, w->dtype);
}

void sl_weight_to_f32(float *out, const sl_weight *w)
{
    for (int64_t r = 0; r < w->rows; r++)
        sl_weight_row(out + r * w->cols, w, r);
}

/* ------------------------------------------------------------------ RMSNorm */

void sl_rmsnorm(float *out, const float *x, const float *weight, int32_t n, int32_t dim, float eps)
{
    /* rows are independent: a prefill's rows are shared out, each computed as alone */
    int nt = sl_threads() < n ? sl_threads() : n > 1 ? n : 1;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && (int64_t)n * dim >= 65536)
    for (int32_t i = 0; i < n; i++) {
        const float *xi = x + (int64_t)i * dim;
        float *oi = out + (int64_t)i * dim;
        double ss = 0.0;
        for (int32_t c = 0; c < dim; c++)
            ss += (double)xi[c] * xi[c];
        float inv = 1.0f / sqrtf((float)(ss / dim) + eps);
        for (int32_t c = 0; c < dim; c++)
            oi[c] = weight[c] * (xi[c] * inv);
    }
}

/* ------------------------------------------------------------------ row kernels
 *
 * Each kernel walks a range of weight rows and dots them with the activation rows; the SIMD
 * versions live in kernels_x86.c. The dtype parameter is a compile-time constant at each call
 * site, so the switch inside the loops folds away. */

static inline __attribute__((always_inline)) void rows_generic(float *out, int64_t ldo, const float *x, int32_t nx,
                                                               const sl_weight *w, int64_t r0, int64_t r1,
                                                               sl_dtype dt)
{
    int64_t cols = w->cols;
    for (int64_t r = r0; r < r1; r++) {
        const void *wr = sl_row_ptr(w, r);
        for (int32_t j = 0; j < nx; j++) {
            const float *xj = x + (int64_t)j * cols;
            float acc[8] = {0};
            int64_t c = 0;
            for (; c + 8 <= cols; c += 8)
                for (int k = 0; k < 8; k++)
                    acc[k] += sl_scalar_w(wr, c + k, dt) * xj[c + k];
            float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
            for (; c < cols; c++)
                s += sl_scalar_w(wr, c, dt) * xj[c];
            out[(int64_t)j * ldo + r] = s;
        }
    }
}

static void rows_generic_f32(float *o, int64_t ldo, const float *x, int32_t nx, const sl_weight *w, int64_t r0,
                             int64_t r1)
{
    rows_generic(o, ldo, x, nx, w, r0, r1, SL_DTYPE_F32);
}
static void rows_generic_bf16(float *o, int64_t ldo, const float *x, int32_t nx, const sl_weight *w, int64_t r0,
                              int64_t r1)
{
    rows_generic(o, ldo, x, nx, w, r0, r1, SL_DTYPE_BF16);
}
static void rows_generic_f16(float *o, int64_t ldo, const float *x, int32_t nx, const sl_weight *w, int64_t r0,
                             int64_t r1)
{
    rows_generic(o, ldo, x, nx, w, r0, r1, SL_DTYPE_F16);
}

static sl_rows_fn pick_rows_fn(sl_dtype dt)
{
#ifdef SL_X86
    sl_isa isa = sl_kernel_isa();
    if (isa > SL_ISA_GENERIC)
        return sl_rows_simd(dt, isa);
#endif
    switch (dt) {
    case SL_DTYPE_F32: return rows_generic_f32;
    case SL_DTYPE_BF16: return rows_generic_bf16;
    case SL_DTYPE_F16: return rows_generic_f16;
    }
    return rows_generic_f32;
}

/* ------------------------------------------------------------------ matmul */

/* Products with more activation rows than this are blocked for the caches (tiled_rows). Every
 * kernel of a level sums each output in that level's one order, so the blocking, the tile
 * shapes and the thread split change the speed only, never a result: a row's product does not
 * depend on how many rows share the pass. */
#define SMALL_N 16
/* Weight rows per block (about 256 KiB of stored weight, in L2 while every chunk of activation
 * rows passes over it) and activation rows per chunk. */
#define TILE_WEIGHT_BYTES (256u << 10)
#define TILE_ROWS 32

static void add_bias(float *out, int64_t ldo, int32_t n, const float *bias, int64_t r0, int64_t r1)
{
    if (!bias)
        return;
    for (int32_t i = 0; i < n; i++)
        for (int64_t r = r0; r < r1; r++)
            out[(int64_t)i * ldo + r] += bias[r];
}

/* First row of thread t's share of `rows` when split over nt threads in units of 16 rows
 * (whole cache lines of the output). */
static inline int64_t split_row(int64_t rows, int t, int nt)
{
    int64_t units = (rows + 15) / 16, r = units * t / nt * 16;
    return r < rows ? r : rows;
}

/* Rows [r0, r1) of a product with many activation rows through the small-batch kernel, blocked
 * so that each block of weight rows stays in L2 while all the activation rows pass over it. */
static void tiled_rows(float *out, int64_t ldo, const float *x, int32_t n, const sl_weight *w, int64_t r0,
                       int64_t r1)
{
    sl_rows_fn fn = pick_rows_fn(w->dtype);
    int64_t row_bytes = w->cols * sl_dtype_size(w->dtype);
    int64_t block = (int64_t)TILE_WEIGHT_BYTES / row_bytes;
    block = block < 16 ? 16 : block & ~(int64_t)3;
    for (int64_t b0 = r0; b0 < r1; b0 += block) {
        int64_t b1 = r1 - b0 < block ? r1 : b0 + block;
        for (int32_t i = 0; i < n; i += TILE_ROWS)
            fn(out + (int64_t)i * ldo, ldo, x + (int64_t)i * w->cols, n - i < TILE_ROWS ? n - i : TILE_ROWS, w, b0,
               b1);
    }
}

bool sl_bf16_dot_native(void)
{
#ifdef SL_X86
    return sl_bf16_rows_simd() != NULL;
#else
    return false;
#endif
}

/* Rows [r0, r1) of a BF16-compute product on the BF16 dot-product kernel, in chunks of TILE_ROWS
 * activation rows (the kernel blocks the weight rows for the caches itself). */
static void bf16_rows(float *out, int64_t ldo, const uint16_t *xb, int32_t n, const sl_weight *w, int64_t r0,
                      int64_t r1)
{
    sl_bf16_rows_fn fn = sl_bf16_rows_simd();
    for (int32_t i = 0; i < n; i += TILE_ROWS)
        fn(out + (int64_t)i * ldo, ldo, xb + (int64_t)i * w->cols, n - i < TILE_ROWS ? n - i : TILE_ROWS, w, r0, r1);
}

/* Rows [r0, r1) of a product with Q8_0 weights, blocked like tiled_rows. */
static void q8_rows(float *out, int64_t ldo, const sl_q8_act *a, int32_t n, const sl_weight *w, int64_t r0,
                    int64_t r1)
{
    void (*fn)(float *, int64_t, const sl_q8_act *, int32_t, const sl_weight *, int64_t, int64_t) =
        w->q8_packed ? sl_q8_packed_rows : sl_q8_rows_generic;
    int64_t stride = a->blocks * SL_Q8_BLOCK;
    int64_t block = (int64_t)TILE_WEIGHT_BYTES / (a->blocks * (SL_Q8_BLOCK + (int64_t)sizeof(float)));
    block = block < 16 ? 16 : block & ~(int64_t)15; /* whole groups of the packed layout */
    for (int64_t b0 = r0; b0 < r1; b0 += block) {
        int64_t b1 = r1 - b0 < block ? r1 : b0 + block;
        for (int32_t i = 0; i < n; i += TILE_ROWS) {
            sl_q8_act part = {.q = a->q + i * stride,
                              .d = a->d + i * a->blocks,
                              .bsum = a->bsum + i * a->blocks,
                              .blocks = a->blocks};
            fn(out + (int64_t)i * ldo, ldo, &part, n - i < TILE_ROWS ? n - i : TILE_ROWS, w, b0, b1);
        }
    }
}

/* PyTorch's float32 tanh GELU (the "gelu_pytorch_tanh" of HF configs). */
static inline float gelu_tanh(float x)
{
    const float beta = 0.7978845608028654f /* sqrt(2 / pi) */, kappa = 0.044715f;
    float inner = beta * (x + kappa * (x * x * x));
    return 0.5f * x * (1.0f + tanhf(inner));
}

/* The input rows of a group in the forms its products take: as given, quantised to Q8_0, and
 * rounded to BF16 (as BF16 bits for the dot-product kernel, or as float32 where it is emulated). */
typedef struct group_input {
    const float *x;
    sl_q8_act q8;
    const uint16_t *bf16;
    const float *bf16_f32;
    /* > 0: bf16 or bf16_f32 (round_cols), or q8 (q8_cols), is still to be filled from x, rows of
     * this length (by the threads that run the products) */
    int64_t round_cols, q8_cols;
} group_input;

/* Rows [i0, i1) of a group's input quantised to Q8_0 or rounded to BF16, in the form its
 * products take (row by row, so how the rows are shared out changes nothing). */
static void prepare_rows(const group_input *in, int32_t i0, int32_t i1)
{
    if (in->q8_cols > 0) {
        sl_q8_act_fill(&in->q8, in->x, in->q8_cols, i0, i1);
        return;
    }
    int64_t cols = in->round_cols, at = (int64_t)i0 * cols, count = (int64_t)(i1 - i0) * cols;
    if (in->bf16)
        sl_round_bf16((uint16_t *)in->bf16 + at, in->x + at, count);
    else if (in->bf16_f32)
        sl_round_bf16_f32((float *)in->bf16_f32 + at, in->x + at, count);
}

/* The share of thread t (of nt) of every product in the group, bias included. With gated,
 * jobs[0] (gate) and jobs[1] (up) have the same shape, so each thread owns the same rows of
 * both and applies gate = act(gate) * up to them without waiting for the others. */
static void group_share(const sl_matmul_job *jobs, int count, const group_input *in, int32_t n, bool gated,
                        sl_gate_act act, int t, int nt)
{
    for (int j = 0; j < count; j++) {
        const sl_weight *w = jobs[j].w;
        int64_t r0 = split_row(w->rows, t, nt), r1 = split_row(w->rows, t + 1, nt);
        if (r1 <= r0)
            continue;
        const float *x = w->bf16_compute && in->bf16_f32 ? in->bf16_f32 : in->x;
        if (w->q8_scales)
            q8_rows(jobs[j].out, jobs[j].ldo, &in->q8, n, w, r0, r1);
        else if (w->bf16_compute && in->bf16)
            bf16_rows(jobs[j].out, jobs[j].ldo, in->bf16, n, w, r0, r1);
        else if (n <= SMALL_N)
            pick_rows_fn(w->dtype)(jobs[j].out, jobs[j].ldo, x, n, w, r0, r1);
        else
            tiled_rows(jobs[j].out, jobs[j].ldo, x, n, w, r0, r1);
        add_bias(jobs[j].out, jobs[j].ldo, n, jobs[j].bias, r0, r1);
    }
    if (gated) {
        int64_t r0 = split_row(jobs[0].w->rows, t, nt), r1 = split_row(jobs[0].w->rows, t + 1, nt);
        for (int32_t i = 0; i < n; i++) {
            float *g = jobs[0].out + (int64_t)i * jobs[0].ldo;
            const float *u = jobs[1].out + (int64_t)i * jobs[1].ldo;
            if (act == SL_GATE_GELU_TANH)
                for (int64_t r = r0; r < r1; r++)
                    g[r] = gelu_tanh(g[r]) * u[r];
            else
                for (int64_t r = r0; r < r1; r++)
                    g[r] = (g[r] / (1.0f + expf(-g[r]))) * u[r];
        }
    }
}

bool sl_matmul_scratch_grow(sl_matmul_scratch *s, size_t bytes)
{
    if (bytes <= s->cap)
        return true;
    void *mem = NULL;
    if (posix_memalign(&mem, 64, bytes) != 0)
        return false;
    free(s->mem);
    s->mem = mem;
    s->cap = bytes;
    return true;
}

/* Bytes of the BF16-rounded input rows of a product (BF16 bits, or float32 where emulated). */
static size_t bf16_input_bytes(int32_t n, int64_t cols)
{
    return (size_t)n * (size_t)cols * (sl_bf16_dot_native() ? sizeof(uint16_t) : sizeof(float));
}

bool sl_matmul_scratch_reserve(sl_matmul_scratch *s, const sl_weight *w, int32_t n)
{
    if (w->bf16_compute)
        return sl_matmul_scratch_grow(s, bf16_input_bytes(n, w->cols));
    return !w->q8_scales || sl_matmul_scratch_grow(s, sl_q8_act_bytes(n, w->cols));
}

void sl_matmul_scratch_free(sl_matmul_scratch *s)
{
    free(s->mem);
    *s = (sl_matmul_scratch){0};
}

static bool group_run(const sl_matmul_job *jobs, int count, const float *x, int32_t n, bool gated,
                      sl_gate_act act, sl_matmul_scratch *scratch)
{
    if (n <= 0 || count <= 0)
        return true;
    int64_t work = 0;
    for (int j = 0; j < count; j++)
        work += jobs[j].w->rows * jobs[j].w->cols;
    /* Q8_0 weights take the activation rows quantised once for the whole group, BF16 compute
     * rounded once (all its products read the same rows, so the same number of columns; a
     * model's matrices are all of one kind, the routers aside, which take the rows as given). */
    group_input in = {.x = x};
    sl_matmul_scratch own = {0};
    for (int j = 0; j < count; j++) {
        const sl_weight *w = jobs[j].w;
        if (w->q8_scales) {
            if (!sl_q8_act_init(&in.q8, n, w->cols, scratch ? scratch : &own))
                return false;
            in.q8_cols = w->cols;
            break;
        }
        if (w->bf16_compute) {
            sl_matmul_scratch *s = scratch ? scratch : &own;
            if (!sl_matmul_scratch_grow(s, bf16_input_bytes(n, w->cols)))
                return false;
            if (sl_bf16_dot_native())
                in.bf16 = s->mem;
            else
                in.bf16_f32 = s->mem;
            in.round_cols = w->cols; /* rounded by the threads that run the products */
            break;
        }
    }
    int nt = sl_threads();
    if (nt > 1 && work * n >= 65536) {
#pragma omp parallel num_threads(nt)
        {
            int t = omp_get_thread_num(), nth = omp_get_num_threads();
            if (in.round_cols > 0 || in.q8_cols > 0) {
                prepare_rows(&in, (int32_t)((int64_t)n * t / nth), (int32_t)((int64_t)n * (t + 1) / nth));
#pragma omp barrier
            }
            group_share(jobs, count, &in, n, gated, act, t, nth);
        }
    } else {
        if (in.round_cols > 0 || in.q8_cols > 0)
            prepare_rows(&in, 0, n);
        group_share(jobs, count, &in, n, gated, act, 0, 1);
    }
    sl_matmul_scratch_free(&own);
    return true;
}

bool sl_matmul_group(const sl_matmul_job *jobs, int count, const float *x, int32_t n, sl_matmul_scratch *scratch)
{
    return group_run(jobs, count, x, n, false, SL_GATE_SILU, scratch);
}

bool sl_matmul_gated(float *gate, float *up, int64_t ldo, const float *x, int32_t n, const sl_weight *w_gate,
                     const float *b_gate, const sl_weight *w_up, const float *b_up, sl_gate_act act,
                     sl_matmul_scratch *scratch)
{
    sl_matmul_job jobs[2] = {{.out = gate, .ldo = ldo, .w = w_gate, .bias = b_gate},
                             {.out = up, .ldo = ldo, .w = w_up, .bias = b_up}};
    return group_run(jobs, 2, x, n, true, act, scratch);
}

bool sl_matmul(float *out, int64_t ldo, const float *x, int32_t n, const sl_weight *w, const float *bias,
               sl_matmul_scratch *scratch)
{
    if (w->rows <= 0)
        return true;
    sl_matmul_job job = {.out = out, .ldo = ldo, .w = w, .bias = bias};
    return sl_matmul_group(&job, 1, x, n, scratch);
}
