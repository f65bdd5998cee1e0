#include "kernels.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>
#include <pthread.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SL_X86 1
#endif

/* ------------------------------------------------------------------ threads
 *
 * One thread pool only: OpenBLAS runs single-threaded inside the project's OpenMP regions.
 * Two pools (OpenMP converting weights, OpenBLAS multiplying) take the cores from each other
 * with their idle spinning threads. */

static int g_threads = 1;
static pthread_once_t g_blas_once = PTHREAD_ONCE_INIT;

static void blas_single_thread(void) { openblas_set_num_threads(1); }

void sl_set_num_threads(int n)
{
    if (n <= 0)
        n = omp_get_num_procs();
    g_threads = n;
    pthread_once(&g_blas_once, blas_single_thread);
}

int sl_get_num_threads(void) { return g_threads; }
int sl_threads(void) { return g_threads; }

/* ------------------------------------------------------------------ scalar conversions */

static inline float bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

float sl_bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

float sl_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f)
        return bits_to_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0)
            return bits_to_f32(sign);
        float v = ldexpf((float)man, -24); /* subnormal: man * 2^-24 */
        return sign ? -v : v;
    }
    return bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t sl_f32_to_bf16(float f)
{
    uint32_t u = f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1);         /* round to nearest even */
    return (uint16_t)(u >> 16);
}

uint16_t sl_f32_to_f16(float f)
{
    uint32_t u = f32_to_bits(f), sign = (u >> 16) & 0x8000;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00);
    if (a >= 0x477ff000u) /* rounds to >= 65520: infinity */
        return (uint16_t)(sign | 0x7c00);
    if (a < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        float v = bits_to_f32(a) * 16777216.0f; /* scale by 2^24; rint rounds half to even */
        return (uint16_t)(sign | (uint32_t)rintf(v));
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1) - (112u << 23);
    return (uint16_t)(sign | (r >> 13));
}

static void convert_generic(float *out, const void *src, int64_t n, sl_dtype dt)
{
    switch (dt) {
    case SL_DTYPE_F32:
        memcpy(out, src, (size_t)n * sizeof *out);
        break;
    case SL_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            out[i] = sl_bf16_to_f32(((const uint16_t *)src)[i]);
        break;
    case SL_DTYPE_F16:
        for (int64_t i = 0; i < n; i++)
            out[i] = sl_f16_to_f32(((const uint16_t *)src)[i]);
        break;
    }
}

static void convert_values(float *out, const void *src, int64_t n, sl_dtype dt);

void sl_weight_row(float *out, const sl_weight *w, int64_t row)
{
    size_t esize = w->dtype == SL_DTYPE_F32 ? 4 : 2;
    convert_values(out, (const char *)w->data + (size_t)row * (size_t)w->cols * esize, w->cols, w->dtype);
}

void sl_weight_to_f32(float *out, const sl_weight *w)
{
    for (int64_t r = 0; r < w->rows; r++)
        sl_weight_row(out + r * w->cols, w, r);
}

/* ------------------------------------------------------------------ RMSNorm */

void sl_rmsnorm(float *out, const float *x, const float *weight, int32_t n, int32_t dim, float eps)
{
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

/* ------------------------------------------------------------------ matrix-vector kernels
 *
 * Decode is bound by reading the weights once. Each kernel walks a range of weight rows and
 * dots every row with up to four activation rows while the weight row is in L1. The AVX2
 * versions are compiled for that target and picked at run time, so a portable build still
 * gets them. The dtype parameter is a compile-time constant at each call site, so the
 * switch inside the loops folds away. */

static inline float scalar_w(const void *w, int64_t i, sl_dtype dt)
{
    switch (dt) {
    case SL_DTYPE_F32: return ((const float *)w)[i];
    case SL_DTYPE_BF16: return sl_bf16_to_f32(((const uint16_t *)w)[i]);
    case SL_DTYPE_F16: return sl_f16_to_f32(((const uint16_t *)w)[i]);
    }
    return 0.0f;
}

static inline const void *row_ptr(const sl_weight *w, int64_t r)
{
    size_t esize = w->dtype == SL_DTYPE_F32 ? 4 : 2;
    return (const char *)w->data + (size_t)r * (size_t)w->cols * esize;
}

static inline __attribute__((always_inline)) void rows_generic(float *out, int64_t ldo, const float *x, int32_t nx,
                                                               const sl_weight *w, int64_t r0, int64_t r1,
                                                               sl_dtype dt)
{
    int64_t cols = w->cols;
    for (int64_t r = r0; r < r1; r++) {
        const void *wr = row_ptr(w, r);
        for (int32_t j = 0; j < nx; j++) {
            const float *xj = x + (int64_t)j * cols;
            float acc[8] = {0};
            int64_t c = 0;
            for (; c + 8 <= cols; c += 8)
                for (int k = 0; k < 8; k++)
                    acc[k] += scalar_w(wr, c + k, dt) * xj[c + k];
            float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
            for (; c < cols; c++)
                s += scalar_w(wr, c, dt) * xj[c];
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

#ifdef SL_X86
#define SL_AVX2 __attribute__((target("avx2,fma,f16c")))

static inline SL_AVX2 __attribute__((always_inline)) __m256 load8_w(const void *w, int64_t c, sl_dtype dt)
{
    switch (dt) {
    case SL_DTYPE_F32: return _mm256_loadu_ps((const float *)w + c);
    case SL_DTYPE_BF16: {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + c));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    case SL_DTYPE_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + c)));
    }
    return _mm256_setzero_ps();
}

static inline SL_AVX2 float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}


#ifndef SL_PREFETCH_BYTES
#define SL_PREFETCH_BYTES 2048 /* how far ahead of the loads each weight row is prefetched */
#endif

/* One activation row, four weight rows per pass: each load of x serves four rows and four
 * streams of weight misses are in flight at once, with software prefetch ahead of them. */
static inline SL_AVX2 __attribute__((always_inline)) void vec4_avx2(float *out, const float *x, const sl_weight *w,
                                                                    int64_t r0, int64_t r1, sl_dtype dt)
{
    int64_t cols = w->cols, c16 = cols & ~(int64_t)15, c8 = cols & ~(int64_t)7;
    int64_t esize = dt == SL_DTYPE_F32 ? 4 : 2, row_bytes = cols * esize;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const char *w0 = row_ptr(w, r), *w1 = row_ptr(w, r + 1), *w2 = row_ptr(w, r + 2), *w3 = row_ptr(w, r + 3);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int64_t c = 0;
        for (; c < c16; c += 16) {
            /* 16 columns are 32 bytes of a 16-bit row: one prefetch per row covers two passes. */
            if (dt == SL_DTYPE_F32 || (c & 31) == 0) {
                /* Past the end of its row, stream k continues in row k of the next group;
                 * the hardware prefetchers stop at page boundaries, which rows often are. */
                int64_t off = c * esize + SL_PREFETCH_BYTES;
                if (off >= row_bytes)
                    off += 3 * row_bytes;
                _mm_prefetch(w0 + off, _MM_HINT_T0);
                _mm_prefetch(w1 + off, _MM_HINT_T0);
                _mm_prefetch(w2 + off, _MM_HINT_T0);
                _mm_prefetch(w3 + off, _MM_HINT_T0);
            }
            __m256 xa = _mm256_loadu_ps(x + c), xb = _mm256_loadu_ps(x + c + 8);
            a0 = _mm256_fmadd_ps(load8_w(w0, c, dt), xa, a0);
            a1 = _mm256_fmadd_ps(load8_w(w1, c, dt), xa, a1);
            a2 = _mm256_fmadd_ps(load8_w(w2, c, dt), xa, a2);
            a3 = _mm256_fmadd_ps(load8_w(w3, c, dt), xa, a3);
            b0 = _mm256_fmadd_ps(load8_w(w0, c + 8, dt), xb, b0);
            b1 = _mm256_fmadd_ps(load8_w(w1, c + 8, dt), xb, b1);
            b2 = _mm256_fmadd_ps(load8_w(w2, c + 8, dt), xb, b2);
            b3 = _mm256_fmadd_ps(load8_w(w3, c + 8, dt), xb, b3);
        }
        for (; c < c8; c += 8) {
            __m256 xa = _mm256_loadu_ps(x + c);
            a0 = _mm256_fmadd_ps(load8_w(w0, c, dt), xa, a0);
            a1 = _mm256_fmadd_ps(load8_w(w1, c, dt), xa, a1);
            a2 = _mm256_fmadd_ps(load8_w(w2, c, dt), xa, a2);
            a3 = _mm256_fmadd_ps(load8_w(w3, c, dt), xa, a3);
        }
        float s0 = hsum8(_mm256_add_ps(a0, b0)), s1 = hsum8(_mm256_add_ps(a1, b1));
        float s2 = hsum8(_mm256_add_ps(a2, b2)), s3 = hsum8(_mm256_add_ps(a3, b3));
        for (; c < cols; c++) {
            float xc = x[c];
            s0 += scalar_w(w0, c, dt) * xc;
            s1 += scalar_w(w1, c, dt) * xc;
            s2 += scalar_w(w2, c, dt) * xc;
            s3 += scalar_w(w3, c, dt) * xc;
        }
        out[r] = s0;
        out[r + 1] = s1;
        out[r + 2] = s2;
        out[r + 3] = s3;
    }
    for (; r < r1; r++) {
        const void *wr = row_ptr(w, r);
        __m256 a0 = _mm256_setzero_ps(), b0 = a0;
        int64_t c = 0;
        for (; c < c16; c += 16) {
            a0 = _mm256_fmadd_ps(load8_w(wr, c, dt), _mm256_loadu_ps(x + c), a0);
            b0 = _mm256_fmadd_ps(load8_w(wr, c + 8, dt), _mm256_loadu_ps(x + c + 8), b0);
        }
        for (; c < c8; c += 8)
            a0 = _mm256_fmadd_ps(load8_w(wr, c, dt), _mm256_loadu_ps(x + c), a0);
        float s = hsum8(_mm256_add_ps(a0, b0));
        for (; c < cols; c++)
            s += scalar_w(wr, c, dt) * x[c];
        out[r] = s;
    }
}

static inline SL_AVX2 __attribute__((always_inline)) void rows_avx2(float *out, int64_t ldo, const float *x,
                                                                    int32_t nx, const sl_weight *w, int64_t r0,
                                                                    int64_t r1, sl_dtype dt)
{
    if (nx == 1) {
        vec4_avx2(out, x, w, r0, r1, dt);
        return;
    }
    int64_t cols = w->cols, c8 = cols & ~(int64_t)7;
    for (int64_t r = r0; r < r1; r++) {
        const void *wr = row_ptr(w, r);
        for (int32_t j0 = 0; j0 < nx; j0 += 4) {
            int32_t nj = nx - j0 < 4 ? nx - j0 : 4;
            const float *x0 = x + (int64_t)j0 * cols;
            const float *x1 = nj > 1 ? x0 + cols : x0;
            const float *x2 = nj > 2 ? x0 + 2 * cols : x0;
            const float *x3 = nj > 3 ? x0 + 3 * cols : x0;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            int64_t c = 0;
            for (; c < c8; c += 8) {
                __m256 wv = load8_w(wr, c, dt);
                a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + c), a0);
                a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x1 + c), a1);
                a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x2 + c), a2);
                a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x3 + c), a3);
            }
            float s[4] = {hsum8(a0), hsum8(a1), hsum8(a2), hsum8(a3)};
            const float *xs[4] = {x0, x1, x2, x3};
            for (; c < cols; c++) {
                float wc = scalar_w(wr, c, dt);
                for (int k = 0; k < 4; k++)
                    s[k] += wc * xs[k][c];
            }
            for (int k = 0; k < nj; k++)
                out[(int64_t)(j0 + k) * ldo + r] = s[k];
        }
    }
}

static SL_AVX2 void rows_avx2_f32(float *o, int64_t ldo, const float *x, int32_t nx, const sl_weight *w, int64_t r0,
                                  int64_t r1)
{
    rows_avx2(o, ldo, x, nx, w, r0, r1, SL_DTYPE_F32);
}
static SL_AVX2 void rows_avx2_bf16(float *o, int64_t ldo, const float *x, int32_t nx, const sl_weight *w,
                                   int64_t r0, int64_t r1)
{
    rows_avx2(o, ldo, x, nx, w, r0, r1, SL_DTYPE_BF16);
}
static SL_AVX2 void rows_avx2_f16(float *o, int64_t ldo, const float *x, int32_t nx, const sl_weight *w, int64_t r0,
                                  int64_t r1)
{
    rows_avx2(o, ldo, x, nx, w, r0, r1, SL_DTYPE_F16);
}

/* Stored 16-bit values to float32, 16 at a time (exact, like the scalar conversions). */
static SL_AVX2 void convert_avx2(float *out, const void *src, int64_t n, sl_dtype dt)
{
    if (dt == SL_DTYPE_F32) {
        memcpy(out, src, (size_t)n * sizeof *out);
        return;
    }
    const uint16_t *p = src;
    int64_t i = 0;
    if (dt == SL_DTYPE_BF16) {
        for (; i + 16 <= n; i += 16) {
            _mm256_storeu_ps(out + i, load8_w(p, i, SL_DTYPE_BF16));
            _mm256_storeu_ps(out + i + 8, load8_w(p, i + 8, SL_DTYPE_BF16));
        }
        for (; i < n; i++)
            out[i] = sl_bf16_to_f32(p[i]);
    } else {
        for (; i + 16 <= n; i += 16) {
            _mm256_storeu_ps(out + i, load8_w(p, i, SL_DTYPE_F16));
            _mm256_storeu_ps(out + i + 8, load8_w(p, i + 8, SL_DTYPE_F16));
        }
        for (; i < n; i++)
            out[i] = sl_f16_to_f32(p[i]);
    }
}
#endif

static int use_avx2(void)
{
#ifdef SL_X86
    static int has_avx2 = -1;
    if (has_avx2 < 0) {
        __builtin_cpu_init();
        has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                   __builtin_cpu_supports("f16c");
    }
    return has_avx2 && getenv("SL_NO_AVX2") == NULL;
#else
    return 0;
#endif
}

static void convert_values(float *out, const void *src, int64_t n, sl_dtype dt)
{
#ifdef SL_X86
    if (use_avx2()) {
        convert_avx2(out, src, n, dt);
        return;
    }
#endif
    convert_generic(out, src, n, dt);
}

typedef void (*rows_fn)(float *, int64_t, const float *, int32_t, const sl_weight *, int64_t, int64_t);

static rows_fn pick_rows_fn(sl_dtype dt)
{
#ifdef SL_X86
    if (use_avx2()) {
        switch (dt) {
        case SL_DTYPE_F32: return rows_avx2_f32;
        case SL_DTYPE_BF16: return rows_avx2_bf16;
        case SL_DTYPE_F16: return rows_avx2_f16;
        }
    }
#endif
    switch (dt) {
    case SL_DTYPE_F32: return rows_generic_f32;
    case SL_DTYPE_BF16: return rows_generic_bf16;
    case SL_DTYPE_F16: return rows_generic_f16;
    }
    return rows_generic_f32;
}

/* ------------------------------------------------------------------ matmul */

/* Up to this many activation rows the weight is streamed once by our kernels; above it
 * OpenBLAS's blocked sgemm wins. */
#define SMALL_N 16
/* Rows of a converted F16/BF16 weight block handed to sgemm at once, per thread (about 2 MiB
 * of f32, at least 64 rows). */
#define CONVERT_BYTES (2u << 20)
#define CONVERT_MIN_ROWS 64

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

/* Rows [r0, r1) of a product with many activation rows, through single-threaded sgemm.
 * F16/BF16 weights are converted block by block into `tmp` (block rows) first. */
static void gemm_rows(float *out, int64_t ldo, const float *x, int32_t n, const sl_weight *w, int64_t r0,
                      int64_t r1, float *tmp, int64_t block)
{
    int64_t cols = w->cols;
    if (r1 <= r0)
        return;
    if (w->dtype == SL_DTYPE_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, (int)(r1 - r0), (int)cols, 1.0f, x, (int)cols,
                    (const float *)w->data + r0 * cols, (int)cols, 0.0f, out + r0, (int)ldo);
        return;
    }
    if (!tmp) { /* no scratch: fall back to the streaming kernels, slower but correct */
        rows_fn fn = pick_rows_fn(w->dtype);
        for (int32_t i = 0; i < n; i += SMALL_N)
            fn(out + (int64_t)i * ldo, ldo, x + (int64_t)i * cols, n - i < SMALL_N ? n - i : SMALL_N, w, r0, r1);
        return;
    }
    for (int64_t b0 = r0; b0 < r1; b0 += block) {
        int64_t nb = r1 - b0 < block ? r1 - b0 : block;
        convert_values(tmp, row_ptr(w, b0), nb * cols, w->dtype);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, (int)nb, (int)cols, 1.0f, x, (int)cols, tmp,
                    (int)cols, 0.0f, out + b0, (int)ldo);
    }
}

/* The share of thread t (of nt) of every product in the group, bias included. With swiglu,
 * jobs[0] (gate) and jobs[1] (up) have the same shape, so each thread owns the same rows of
 * both and applies gate = silu(gate) * up to them without waiting for the others. */
static void group_share(const sl_matmul_job *jobs, int count, const float *x, int32_t n, bool swiglu, int t,
                        int nt)
{
    for (int j = 0; j < count; j++) {
        const sl_weight *w = jobs[j].w;
        int64_t r0 = split_row(w->rows, t, nt), r1 = split_row(w->rows, t + 1, nt);
        if (r1 <= r0)
            continue;
        if (n <= SMALL_N) {
            pick_rows_fn(w->dtype)(jobs[j].out, jobs[j].ldo, x, n, w, r0, r1);
        } else {
            float *tmp = NULL;
            int64_t block = 0;
            if (w->dtype != SL_DTYPE_F32) {
                block = (int64_t)(CONVERT_BYTES / (sizeof(float) * (size_t)w->cols));
                block = block < CONVERT_MIN_ROWS ? CONVERT_MIN_ROWS : block;
                block = block > r1 - r0 ? r1 - r0 : block;
                tmp = malloc((size_t)block * (size_t)w->cols * sizeof *tmp);
            }
            gemm_rows(jobs[j].out, jobs[j].ldo, x, n, w, r0, r1, tmp, block);
            free(tmp);
        }
        add_bias(jobs[j].out, jobs[j].ldo, n, jobs[j].bias, r0, r1);
    }
    if (swiglu) {
        int64_t r0 = split_row(jobs[0].w->rows, t, nt), r1 = split_row(jobs[0].w->rows, t + 1, nt);
        for (int32_t i = 0; i < n; i++) {
            float *g = jobs[0].out + (int64_t)i * jobs[0].ldo;
            const float *u = jobs[1].out + (int64_t)i * jobs[1].ldo;
            for (int64_t r = r0; r < r1; r++)
                g[r] = (g[r] / (1.0f + expf(-g[r]))) * u[r];
        }
    }
}

static void group_run(const sl_matmul_job *jobs, int count, const float *x, int32_t n, bool swiglu)
{
    if (n <= 0 || count <= 0)
        return;
    pthread_once(&g_blas_once, blas_single_thread);
    int64_t work = 0;
    for (int j = 0; j < count; j++)
        work += jobs[j].w->rows * jobs[j].w->cols;
    int nt = sl_threads();
    if (nt > 1 && work * n >= 65536) {
#pragma omp parallel num_threads(nt)
        group_share(jobs, count, x, n, swiglu, omp_get_thread_num(), omp_get_num_threads());
    } else {
        group_share(jobs, count, x, n, swiglu, 0, 1);
    }
}

void sl_matmul_group(const sl_matmul_job *jobs, int count, const float *x, int32_t n)
{
    group_run(jobs, count, x, n, false);
}

void sl_matmul_swiglu(float *gate, float *up, int64_t ldo, const float *x, int32_t n, const sl_weight *w_gate,
                      const float *b_gate, const sl_weight *w_up, const float *b_up)
{
    sl_matmul_job jobs[2] = {{.out = gate, .ldo = ldo, .w = w_gate, .bias = b_gate},
                             {.out = up, .ldo = ldo, .w = w_up, .bias = b_up}};
    group_run(jobs, 2, x, n, true);
}

void sl_matmul(float *out, int64_t ldo, const float *x, int32_t n, const sl_weight *w, const float *bias)
{
    if (w->rows <= 0)
        return;
    sl_matmul_job job = {.out = out, .ldo = ldo, .w = w, .bias = bias};
    sl_matmul_group(&job, 1, x, n);
}
