#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SL_X86 1
#endif

/* ------------------------------------------------------------------ threads */

static int g_threads = 1;

void sl_set_num_threads(int n)
{
    if (n <= 0)
        n = omp_get_num_procs();
    g_threads = n;
    openblas_set_num_threads(n);
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

void sl_weight_row(float *out, const sl_weight *w, int64_t row)
{
    int64_t n = w->cols;
    switch (w->dtype) {
    case SL_DTYPE_F32:
        memcpy(out, (const float *)w->data + row * n, (size_t)n * sizeof *out);
        break;
    case SL_DTYPE_BF16: {
        const uint16_t *p = (const uint16_t *)w->data + row * n;
        for (int64_t i = 0; i < n; i++)
            out[i] = sl_bf16_to_f32(p[i]);
        break;
    }
    case SL_DTYPE_F16: {
        const uint16_t *p = (const uint16_t *)w->data + row * n;
        for (int64_t i = 0; i < n; i++)
            out[i] = sl_f16_to_f32(p[i]);
        break;
    }
    }
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

static inline SL_AVX2 __attribute__((always_inline)) void rows_avx2(float *out, int64_t ldo, const float *x,
                                                                    int32_t nx, const sl_weight *w, int64_t r0,
                                                                    int64_t r1, sl_dtype dt)
{
    int64_t cols = w->cols, c32 = cols & ~(int64_t)31, c8 = cols & ~(int64_t)7;
    for (int64_t r = r0; r < r1; r++) {
        const void *wr = row_ptr(w, r);
        if (nx == 1) {
            /* One activation row: four independent accumulators hide the FMA latency. */
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            int64_t c = 0;
            for (; c < c32; c += 32) {
                a0 = _mm256_fmadd_ps(load8_w(wr, c, dt), _mm256_loadu_ps(x + c), a0);
                a1 = _mm256_fmadd_ps(load8_w(wr, c + 8, dt), _mm256_loadu_ps(x + c + 8), a1);
                a2 = _mm256_fmadd_ps(load8_w(wr, c + 16, dt), _mm256_loadu_ps(x + c + 16), a2);
                a3 = _mm256_fmadd_ps(load8_w(wr, c + 24, dt), _mm256_loadu_ps(x + c + 24), a3);
            }
            for (; c < c8; c += 8)
                a0 = _mm256_fmadd_ps(load8_w(wr, c, dt), _mm256_loadu_ps(x + c), a0);
            float s = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
            for (; c < cols; c++)
                s += scalar_w(wr, c, dt) * x[c];
            out[r] = s;
            continue;
        }
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
#endif

typedef void (*rows_fn)(float *, int64_t, const float *, int32_t, const sl_weight *, int64_t, int64_t);

static rows_fn pick_rows_fn(sl_dtype dt)
{
#ifdef SL_X86
    static int has_avx2 = -1;
    if (has_avx2 < 0) {
        __builtin_cpu_init();
        has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                   __builtin_cpu_supports("f16c");
    }
    if (has_avx2 && getenv("SL_NO_AVX2") == NULL) {
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
/* Rows of a converted F16/BF16 weight block handed to sgemm at once (about 4 MiB of f32). */
#define CONVERT_BYTES (4u << 20)

static void add_bias(float *out, int64_t ldo, int32_t n, const float *bias, int64_t rows)
{
    if (!bias)
        return;
    for (int32_t i = 0; i < n; i++)
        for (int64_t r = 0; r < rows; r++)
            out[(int64_t)i * ldo + r] += bias[r];
}

void sl_matmul(float *out, int64_t ldo, const float *x, int32_t n, const sl_weight *w, const float *bias)
{
    int64_t rows = w->rows, cols = w->cols;
    if (n <= 0 || rows <= 0)
        return;
    if (n <= SMALL_N) {
        rows_fn fn = pick_rows_fn(w->dtype);
        int nt = sl_threads();
        /* Chunks of 16 rows keep each thread on whole cache lines of the output. */
        int64_t chunks = (rows + 15) / 16;
        if (nt > 1 && rows * cols >= 65536) {
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int64_t ch = 0; ch < chunks; ch++) {
                int64_t r0 = ch * 16, r1 = r0 + 16 < rows ? r0 + 16 : rows;
                fn(out, ldo, x, n, w, r0, r1);
            }
        } else {
            fn(out, ldo, x, n, w, 0, rows);
        }
        add_bias(out, ldo, n, bias, rows);
        return;
    }
    if (w->dtype == SL_DTYPE_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, (int)rows, (int)cols, 1.0f, x, (int)cols,
                    (const float *)w->data, (int)cols, 0.0f, out, (int)ldo);
        add_bias(out, ldo, n, bias, rows);
        return;
    }
    int64_t block = (int64_t)(CONVERT_BYTES / (sizeof(float) * (size_t)cols));
    if (block < 16)
        block = 16;
    if (block > rows)
        block = rows;
    float *tmp = malloc((size_t)block * (size_t)cols * sizeof *tmp);
    if (!tmp) { /* no scratch: fall back to streaming kernels, slower but correct */
        rows_fn fn = pick_rows_fn(w->dtype);
        for (int32_t i = 0; i < n; i += SMALL_N)
            fn(out + (int64_t)i * ldo, ldo, x + (int64_t)i * cols, n - i < SMALL_N ? n - i : SMALL_N, w, 0, rows);
        add_bias(out, ldo, n, bias, rows);
        return;
    }
    int nt = sl_threads();
    for (int64_t r0 = 0; r0 < rows; r0 += block) {
        int64_t nb = rows - r0 < block ? rows - r0 : block;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t r = 0; r < nb; r++)
            sl_weight_row(tmp + r * cols, w, r0 + r);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, (int)nb, (int)cols, 1.0f, x, (int)cols, tmp,
                    (int)cols, 0.0f, out + r0, (int)ldo);
    }
    free(tmp);
    add_bias(out, ldo, n, bias, rows);
}
