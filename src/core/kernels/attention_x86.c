/* x86 attention kernels (AVX2 + FMA + F16C, and AVX-512), compiled for their targets with
 * function attributes; attention.c calls them only when the CPU has the instructions. Scores
 * take four cached rows per pass (four independent dot products in flight); the weighted sum
 * keeps up to eight vectors of the output in registers while it walks the rows once. */
#include "attention.h"
#include "simd_x86.h"

#ifdef SL_X86

#include <math.h>
#include <stdbool.h>

static SL_ALWAYS_INLINE float kv_scalar(const void *row, int64_t c, sl_dtype kt)
{
    return kt == SL_DTYPE_F16 ? sl_f16_to_f32(((const uint16_t *)row)[c]) : ((const float *)row)[c];
}

static SL_ALWAYS_INLINE const void *kv_row(const void *base, int64_t j, int64_t stride, sl_dtype kt)
{
    return (const char *)base + j * stride * (kt == SL_DTYPE_F16 ? 2 : 4);
}

/* ------------------------------------------------------------------ AVX2 */

static SL_ALWAYS_INLINE SL_AVX2 void scores_avx2(float *sc, const float *q, const void *K, int64_t stride, int32_t hd,
                                          int32_t n, float denom, sl_dtype kt)
{
    int32_t c8 = hd & ~7;
    int32_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const void *k0 = kv_row(K, j, stride, kt), *k1 = kv_row(K, j + 1, stride, kt);
        const void *k2 = kv_row(K, j + 2, stride, kt), *k3 = kv_row(K, j + 3, stride, kt);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int32_t c = 0; c < c8; c += 8) {
            __m256 qc = _mm256_loadu_ps(q + c);
            a0 = _mm256_fmadd_ps(load8_w(k0, c, kt), qc, a0);
            a1 = _mm256_fmadd_ps(load8_w(k1, c, kt), qc, a1);
            a2 = _mm256_fmadd_ps(load8_w(k2, c, kt), qc, a2);
            a3 = _mm256_fmadd_ps(load8_w(k3, c, kt), qc, a3);
        }
        float d0 = hsum8(a0), d1 = hsum8(a1), d2 = hsum8(a2), d3 = hsum8(a3);
        for (int32_t c = c8; c < hd; c++) {
            d0 += q[c] * kv_scalar(k0, c, kt);
            d1 += q[c] * kv_scalar(k1, c, kt);
            d2 += q[c] * kv_scalar(k2, c, kt);
            d3 += q[c] * kv_scalar(k3, c, kt);
        }
        sc[j] = d0 / denom;
        sc[j + 1] = d1 / denom;
        sc[j + 2] = d2 / denom;
        sc[j + 3] = d3 / denom;
    }
    for (; j < n; j++) {
        const void *k0 = kv_row(K, j, stride, kt);
        __m256 a0 = _mm256_setzero_ps();
        for (int32_t c = 0; c < c8; c += 8)
            a0 = _mm256_fmadd_ps(load8_w(k0, c, kt), _mm256_loadu_ps(q + c), a0);
        float d0 = hsum8(a0);
        for (int32_t c = c8; c < hd; c++)
            d0 += q[c] * kv_scalar(k0, c, kt);
        sc[j] = d0 / denom;
    }
}

/* nv vectors of 8 output columns from column c0, accumulated over all n rows in registers. */
static SL_ALWAYS_INLINE SL_AVX2 void values_block_avx2(float *out, const float *p, const void *V, int64_t stride, int32_t n,
                                                int32_t c0, int nv, bool add, sl_dtype kt)
{
    __m256 acc[8];
    for (int v = 0; v < nv; v++)
        acc[v] = add ? _mm256_loadu_ps(out + c0 + 8 * v) : _mm256_setzero_ps();
    for (int32_t j = 0; j < n; j++) {
        const void *vj = kv_row(V, j, stride, kt);
        __m256 pj = _mm256_set1_ps(p[j]);
        for (int v = 0; v < nv; v++)
            acc[v] = _mm256_fmadd_ps(pj, load8_w(vj, c0 + 8 * v, kt), acc[v]);
    }
    for (int v = 0; v < nv; v++)
        _mm256_storeu_ps(out + c0 + 8 * v, acc[v]);
}

static SL_ALWAYS_INLINE SL_AVX2 void values_avx2(float *out, const float *p, const void *V, int64_t stride, int32_t hd,
                                          int32_t n, bool add, sl_dtype kt)
{
    int32_t c = 0;
    for (; c + 64 <= hd; c += 64)
        values_block_avx2(out, p, V, stride, n, c, 8, add, kt);
    switch ((hd - c) / 8) {
    case 7: values_block_avx2(out, p, V, stride, n, c, 7, add, kt); break;
    case 6: values_block_avx2(out, p, V, stride, n, c, 6, add, kt); break;
    case 5: values_block_avx2(out, p, V, stride, n, c, 5, add, kt); break;
    case 4: values_block_avx2(out, p, V, stride, n, c, 4, add, kt); break;
    case 3: values_block_avx2(out, p, V, stride, n, c, 3, add, kt); break;
    case 2: values_block_avx2(out, p, V, stride, n, c, 2, add, kt); break;
    case 1: values_block_avx2(out, p, V, stride, n, c, 1, add, kt); break;
    default: break;
    }
    for (c += (hd - c) / 8 * 8; c < hd; c++) {
        float s = add ? out[c] : 0.0f;
        for (int32_t j = 0; j < n; j++)
            s += p[j] * kv_scalar(kv_row(V, j, stride, kt), c, kt);
        out[c] = s;
    }
}

static SL_AVX2 float max_avx2(const float *x, int32_t n)
{
    __m256 m = _mm256_set1_ps(-INFINITY);
    int32_t j = 0;
    for (; j + 8 <= n; j += 8)
        m = _mm256_max_ps(m, _mm256_loadu_ps(x + j));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; j < n; j++)
        r = x[j] > r ? x[j] : r;
    return r;
}

static SL_AVX2 void scale_avx2(float *x, int32_t n, float s)
{
    __m256 sv = _mm256_set1_ps(s);
    int32_t j = 0;
    for (; j + 8 <= n; j += 8)
        _mm256_storeu_ps(x + j, _mm256_mul_ps(_mm256_loadu_ps(x + j), sv));
    for (; j < n; j++)
        x[j] *= s;
}

/* ------------------------------------------------------------------ AVX-512 */

static SL_ALWAYS_INLINE SL_AVX512 void scores_avx512(float *sc, const float *q, const void *K, int64_t stride, int32_t hd,
                                              int32_t n, float denom, sl_dtype kt)
{
    int32_t c16 = hd & ~15;
    __mmask16 tail = (__mmask16)((1u << (hd - c16)) - 1u);
    __m512 qt = _mm512_maskz_loadu_ps(tail, q + c16);
    int32_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const void *k0 = kv_row(K, j, stride, kt), *k1 = kv_row(K, j + 1, stride, kt);
        const void *k2 = kv_row(K, j + 2, stride, kt), *k3 = kv_row(K, j + 3, stride, kt);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int32_t c = 0; c < c16; c += 16) {
            __m512 qc = _mm512_loadu_ps(q + c);
            a0 = _mm512_fmadd_ps(load16_w(k0, c, kt), qc, a0);
            a1 = _mm512_fmadd_ps(load16_w(k1, c, kt), qc, a1);
            a2 = _mm512_fmadd_ps(load16_w(k2, c, kt), qc, a2);
            a3 = _mm512_fmadd_ps(load16_w(k3, c, kt), qc, a3);
        }
        if (tail) {
            a0 = _mm512_fmadd_ps(load16_w_part(k0, c16, tail, kt), qt, a0);
            a1 = _mm512_fmadd_ps(load16_w_part(k1, c16, tail, kt), qt, a1);
            a2 = _mm512_fmadd_ps(load16_w_part(k2, c16, tail, kt), qt, a2);
            a3 = _mm512_fmadd_ps(load16_w_part(k3, c16, tail, kt), qt, a3);
        }
        sc[j] = _mm512_reduce_add_ps(a0) / denom;
        sc[j + 1] = _mm512_reduce_add_ps(a1) / denom;
        sc[j + 2] = _mm512_reduce_add_ps(a2) / denom;
        sc[j + 3] = _mm512_reduce_add_ps(a3) / denom;
    }
    for (; j < n; j++) {
        const void *k0 = kv_row(K, j, stride, kt);
        __m512 a0 = _mm512_setzero_ps();
        for (int32_t c = 0; c < c16; c += 16)
            a0 = _mm512_fmadd_ps(load16_w(k0, c, kt), _mm512_loadu_ps(q + c), a0);
        if (tail)
            a0 = _mm512_fmadd_ps(load16_w_part(k0, c16, tail, kt), qt, a0);
        sc[j] = _mm512_reduce_add_ps(a0) / denom;
    }
}

/* nv vectors of 16 output columns from column c0 (the last one masked by `last`), accumulated
 * over all n rows in registers. */
static SL_ALWAYS_INLINE SL_AVX512 void values_block_avx512(float *out, const float *p, const void *V, int64_t stride,
                                                    int32_t n, int32_t c0, int nv, __mmask16 last, bool add,
                                                    sl_dtype kt)
{
    __m512 acc[8];
    for (int v = 0; v < nv - 1; v++)
        acc[v] = add ? _mm512_loadu_ps(out + c0 + 16 * v) : _mm512_setzero_ps();
    acc[nv - 1] = add ? _mm512_maskz_loadu_ps(last, out + c0 + 16 * (nv - 1)) : _mm512_setzero_ps();
    for (int32_t j = 0; j < n; j++) {
        const void *vj = kv_row(V, j, stride, kt);
        __m512 pj = _mm512_set1_ps(p[j]);
        for (int v = 0; v < nv - 1; v++)
            acc[v] = _mm512_fmadd_ps(pj, load16_w(vj, c0 + 16 * v, kt), acc[v]);
        acc[nv - 1] = _mm512_fmadd_ps(pj, load16_w_part(vj, c0 + 16 * (nv - 1), last, kt), acc[nv - 1]);
    }
    for (int v = 0; v < nv - 1; v++)
        _mm512_storeu_ps(out + c0 + 16 * v, acc[v]);
    _mm512_mask_storeu_ps(out + c0 + 16 * (nv - 1), last, acc[nv - 1]);
}

static SL_ALWAYS_INLINE SL_AVX512 void values_avx512(float *out, const float *p, const void *V, int64_t stride, int32_t hd,
                                              int32_t n, bool add, sl_dtype kt)
{
    int32_t c = 0;
    for (; c + 128 <= hd; c += 128)
        values_block_avx512(out, p, V, stride, n, c, 8, 0xffff, add, kt);
    int32_t rest = hd - c;
    if (rest == 0)
        return;
    int nv = (rest + 15) / 16;
    __mmask16 last = rest % 16 ? (__mmask16)((1u << (rest % 16)) - 1u) : (__mmask16)0xffff;
    switch (nv) {
    case 8: values_block_avx512(out, p, V, stride, n, c, 8, last, add, kt); break;
    case 7: values_block_avx512(out, p, V, stride, n, c, 7, last, add, kt); break;
    case 6: values_block_avx512(out, p, V, stride, n, c, 6, last, add, kt); break;
    case 5: values_block_avx512(out, p, V, stride, n, c, 5, last, add, kt); break;
    case 4: values_block_avx512(out, p, V, stride, n, c, 4, last, add, kt); break;
    case 3: values_block_avx512(out, p, V, stride, n, c, 3, last, add, kt); break;
    case 2: values_block_avx512(out, p, V, stride, n, c, 2, last, add, kt); break;
    default: values_block_avx512(out, p, V, stride, n, c, 1, last, add, kt); break;
    }
}

static SL_AVX512 float max_avx512(const float *x, int32_t n)
{
    __m512 m = _mm512_set1_ps(-INFINITY);
    int32_t j = 0;
    for (; j + 16 <= n; j += 16)
        m = _mm512_max_ps(m, _mm512_loadu_ps(x + j));
    if (j < n) {
        __mmask16 tail = (__mmask16)((1u << (n - j)) - 1u);
        m = _mm512_mask_max_ps(m, tail, m, _mm512_maskz_loadu_ps(tail, x + j));
    }
    return _mm512_reduce_max_ps(m);
}

static SL_AVX512 void scale_avx512(float *x, int32_t n, float s)
{
    __m512 sv = _mm512_set1_ps(s);
    int32_t j = 0;
    for (; j + 16 <= n; j += 16)
        _mm512_storeu_ps(x + j, _mm512_mul_ps(_mm512_loadu_ps(x + j), sv));
    for (; j < n; j++)
        x[j] *= s;
}

/* ------------------------------------------------------------------ entry points
 * The cache type is a constant at each call, so the loads fold to one form per variant. */

static SL_AVX2 void scores_avx2_f32(float *sc, const float *q, const void *K, int64_t st, int32_t hd, int32_t n,
                                    float d)
{
    scores_avx2(sc, q, K, st, hd, n, d, SL_DTYPE_F32);
}
static SL_AVX2 void scores_avx2_f16(float *sc, const float *q, const void *K, int64_t st, int32_t hd, int32_t n,
                                    float d)
{
    scores_avx2(sc, q, K, st, hd, n, d, SL_DTYPE_F16);
}
static SL_AVX512 void scores_avx512_f32(float *sc, const float *q, const void *K, int64_t st, int32_t hd, int32_t n,
                                        float d)
{
    scores_avx512(sc, q, K, st, hd, n, d, SL_DTYPE_F32);
}
static SL_AVX512 void scores_avx512_f16(float *sc, const float *q, const void *K, int64_t st, int32_t hd, int32_t n,
                                        float d)
{
    scores_avx512(sc, q, K, st, hd, n, d, SL_DTYPE_F16);
}
static SL_AVX2 void values_avx2_f32(float *o, const float *p, const void *V, int64_t st, int32_t hd, int32_t n,
                                    bool add)
{
    values_avx2(o, p, V, st, hd, n, add, SL_DTYPE_F32);
}
static SL_AVX2 void values_avx2_f16(float *o, const float *p, const void *V, int64_t st, int32_t hd, int32_t n,
                                    bool add)
{
    values_avx2(o, p, V, st, hd, n, add, SL_DTYPE_F16);
}
static SL_AVX512 void values_avx512_f32(float *o, const float *p, const void *V, int64_t st, int32_t hd, int32_t n,
                                        bool add)
{
    values_avx512(o, p, V, st, hd, n, add, SL_DTYPE_F32);
}
static SL_AVX512 void values_avx512_f16(float *o, const float *p, const void *V, int64_t st, int32_t hd, int32_t n,
                                        bool add)
{
    values_avx512(o, p, V, st, hd, n, add, SL_DTYPE_F16);
}

void sl_attn_scores_simd(sl_isa level, float *sc, const float *q, const void *K, int64_t stride, sl_dtype kt, int32_t hd,
                         int32_t n, float denom)
{
    bool f16 = kt == SL_DTYPE_F16;
    if (level >= SL_ISA_AVX512)
        (f16 ? scores_avx512_f16 : scores_avx512_f32)(sc, q, K, stride, hd, n, denom);
    else
        (f16 ? scores_avx2_f16 : scores_avx2_f32)(sc, q, K, stride, hd, n, denom);
}

void sl_attn_values_simd(sl_isa level, float *out, const float *p, const void *V, int64_t stride, sl_dtype kt,
                         int32_t hd, int32_t n, bool add)
{
    bool f16 = kt == SL_DTYPE_F16;
    if (level >= SL_ISA_AVX512)
        (f16 ? values_avx512_f16 : values_avx512_f32)(out, p, V, stride, hd, n, add);
    else
        (f16 ? values_avx2_f16 : values_avx2_f32)(out, p, V, stride, hd, n, add);
}

float sl_attn_max_simd(sl_isa level, const float *x, int32_t n)
{
    return level >= SL_ISA_AVX512 ? max_avx512(x, n) : max_avx2(x, n);
}

void sl_attn_scale_simd(sl_isa level, float *x, int32_t n, float s)
{
    if (level >= SL_ISA_AVX512)
        scale_avx512(x, n, s);
    else
        scale_avx2(x, n, s);
}

#endif
