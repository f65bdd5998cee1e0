/* Attention kernels: the portable versions and the run-time choice of the SIMD ones. Each SIMD
 * level sums dot products, the softmax's denominator and the weighted sum in its own fixed
 * order and computes e^x its own way (within 2 ulp of expf); the portable level keeps expf and
 * sequential float32 sums, as the scalar code and HF's float32 ops round. Within a level a
 * result depends only on its own query, keys and values. */
#include "attention.h"

#include <math.h>
#include <string.h>

#include "kernels_simd.h"

static inline float kv_value(const void *base, int64_t i, sl_dtype kt)
{
    return kt == SL_DTYPE_F16 ? sl_f16_to_f32(((const uint16_t *)base)[i]) : ((const float *)base)[i];
}

static sl_isa simd_level(void)
{
#ifdef SL_X86
    return sl_kernel_isa();
#else
    return SL_ISA_GENERIC;
#endif
}

static void scores_generic(float *sc, const float *q, const void *K, int64_t j0, sl_dtype kt, int32_t hd, int32_t n,
                           float denom)
{
    for (int32_t j = 0; j < n; j++) {
        float d = 0.0f;
        for (int32_t c = 0; c < hd; c++)
            d += q[c] * kv_value(K, sl_attn_key_index(j0 + j, c, hd), kt);
        sc[j] = d / denom;
    }
}

static void values_generic(float *out, const float *p, const void *V, int64_t stride, sl_dtype kt, int32_t hd,
                           int32_t n, bool add)
{
    int64_t es = kt == SL_DTYPE_F16 ? 2 : 4;
    if (!add)
        memset(out, 0, (size_t)hd * sizeof *out);
    for (int32_t j = 0; j < n; j++) {
        const void *vj = (const char *)V + (int64_t)j * stride * es;
        float pj = p[j];
        for (int32_t c = 0; c < hd; c++)
            out[c] += pj * kv_value(vj, c, kt);
    }
}

void sl_attn_scores_heads(float *sc, int64_t sc_stride, const float *q, int64_t q_stride, int32_t n_q, const void *K,
                          int64_t j0, sl_dtype kt, int32_t hd, int32_t n, float denom)
{
    sl_isa level = simd_level();
    if (level > SL_ISA_GENERIC) {
        sl_attn_scores_simd(level, sc, sc_stride, q, q_stride, n_q, K, j0, kt, hd, n, denom);
        return;
    }
    for (int32_t h = 0; h < n_q; h++)
        scores_generic(sc + h * sc_stride, q + h * q_stride, K, j0, kt, hd, n, denom);
}

void sl_attn_values_heads(float *out, int64_t out_stride, const float *p, int64_t p_stride, int32_t n_q, const void *V,
                          int64_t stride, sl_dtype kt, int32_t hd, int32_t n, bool add)
{
    sl_isa level = simd_level();
    if (n == 0) { /* no rows: zero, or the sum so far */
        for (int32_t h = 0; h < n_q && !add; h++)
            memset(out + h * out_stride, 0, (size_t)hd * sizeof *out);
        return;
    }
    if (level > SL_ISA_GENERIC) {
        sl_attn_values_simd(level, out, out_stride, p, p_stride, n_q, V, stride, kt, hd, n, add);
        return;
    }
    for (int32_t h = 0; h < n_q; h++)
        values_generic(out + h * out_stride, p + h * p_stride, V, stride, kt, hd, n, add);
}

void sl_attn_scores(float *sc, const float *q, const void *K, int64_t j0, sl_dtype kt, int32_t hd, int32_t n,
                    float denom)
{
    sl_attn_scores_heads(sc, 0, q, 0, 1, K, j0, kt, hd, n, denom);
}

void sl_attn_values(float *out, const float *p, const void *V, int64_t stride, sl_dtype kt, int32_t hd, int32_t n,
                    bool add)
{
    sl_attn_values_heads(out, 0, p, 0, 1, V, stride, kt, hd, n, add);
}

void sl_attn_softmax(float *x, int32_t n)
{
    sl_isa level = simd_level();
    if (level > SL_ISA_GENERIC) {
        float m = sl_attn_max_simd(level, x, n);
        sl_attn_scale_simd(level, x, n, 1.0f / sl_attn_exp_sum_simd(level, x, n, m));
        return;
    }
    float m = -INFINITY;
    for (int32_t j = 0; j < n; j++)
        m = x[j] > m ? x[j] : m;
    float sum = 0.0f;
    for (int32_t j = 0; j < n; j++) {
        x[j] = expf(x[j] - m);
        sum += x[j];
    }
    float inv = 1.0f / sum;
    for (int32_t j = 0; j < n; j++)
        x[j] *= inv;
}

void sl_attn_softcap(float *sc, int32_t n, float softcap)
{
    for (int32_t j = 0; j < n; j++)
        sc[j] = tanhf(sc[j] / softcap) * softcap;
}

/* The steps between scores and values of one head: softcap, the hook's edit, softmax. */
static void normalise(float *sc, int32_t n, int32_t head, sl_attn_scaling scaling, const sl_attn_hook *hook)
{
    if (scaling.softcap > 0)
        sl_attn_softcap(sc, n, scaling.softcap);
    if (hook && hook->scores)
        hook->scores(hook->user, head, sc, n);
    sl_attn_softmax(sc, n);
    if (hook && hook->pattern)
        hook->pattern(hook->user, head, sc, n);
}

void sl_attend_heads(float *out, const float *q, int64_t q_stride, int32_t n_q, const void *K, const void *V,
                     int64_t j0, int64_t stride, sl_dtype kt, int32_t hd, int32_t n, sl_attn_scaling scaling,
                     float *sc, int64_t sc_stride, const sl_attn_hook *hook)
{
    sl_attn_scores_heads(sc, sc_stride, q, q_stride, n_q, K, j0, kt, hd, n, scaling.denom);
    for (int32_t h = 0; h < n_q; h++)
        normalise(sc + h * sc_stride, n, h, scaling, hook);
    const char *Vj = (const char *)V + j0 * stride * (kt == SL_DTYPE_F16 ? 2 : 4);
    sl_attn_values_heads(out, q_stride, sc, sc_stride, n_q, Vj, stride, kt, hd, n, false);
}

void sl_attend(float *out, const float *q, const void *K, const void *V, int64_t j0, int64_t stride, sl_dtype kt,
               int32_t hd, int32_t n, float *sc)
{
    sl_attend_heads(out, q, hd, 1, K, V, j0, stride, kt, hd, n, (sl_attn_scaling){sqrtf((float)hd), 0.0f}, sc, n,
                    NULL);
}

#ifndef SL_X86
void sl_attn_scores_simd(sl_isa level, float *sc, int64_t sc_stride, const float *q, int64_t q_stride, int32_t n_q,
                         const void *K, int64_t j0, sl_dtype kt, int32_t hd, int32_t n, float denom)
{
    (void)level, (void)sc, (void)sc_stride, (void)q, (void)q_stride, (void)n_q, (void)K, (void)j0, (void)kt;
    (void)hd, (void)n, (void)denom;
}
void sl_attn_values_simd(sl_isa level, float *out, int64_t out_stride, const float *p, int64_t p_stride, int32_t n_q,
                         const void *V, int64_t stride, sl_dtype kt, int32_t hd, int32_t n, bool add)
{
    (void)level, (void)out, (void)out_stride, (void)p, (void)p_stride, (void)n_q, (void)V, (void)stride, (void)kt;
    (void)hd, (void)n, (void)add;
}
float sl_attn_max_simd(sl_isa level, const float *x, int32_t n)
{
    (void)level, (void)x, (void)n;
    return 0.0f;
}
float sl_attn_exp_sum_simd(sl_isa level, float *x, int32_t n, float m)
{
    (void)level, (void)x, (void)n, (void)m;
    return 0.0f;
}
void sl_attn_scale_simd(sl_isa level, float *x, int32_t n, float s) { (void)level, (void)x, (void)n, (void)s; }
#endif
