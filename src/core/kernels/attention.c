/* Attention kernels: the portable versions and the run-time choice of the SIMD ones. The
 * softmax keeps expf and a sequential float32 sum (as the scalar code and HF's float32 softmax
 * round), so only the dot products and the weighted sum change summation order across levels. */
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

void sl_attn_scores(float *sc, const float *q, const void *K, int64_t stride, sl_dtype kt, int32_t hd, int32_t n,
                    float denom)
{
    sl_isa level = simd_level();
    if (level > SL_ISA_GENERIC) {
        sl_attn_scores_simd(level, sc, q, K, stride, kt, hd, n, denom);
        return;
    }
    int64_t es = kt == SL_DTYPE_F16 ? 2 : 4;
    for (int32_t j = 0; j < n; j++) {
        const void *kj = (const char *)K + (int64_t)j * stride * es;
        float d = 0.0f;
        for (int32_t c = 0; c < hd; c++)
            d += q[c] * kv_value(kj, c, kt);
        sc[j] = d / denom;
    }
}

void sl_attn_values(float *out, const float *p, const void *V, int64_t stride, sl_dtype kt, int32_t hd, int32_t n,
                    bool add)
{
    sl_isa level = simd_level();
    if (level > SL_ISA_GENERIC) {
        sl_attn_values_simd(level, out, p, V, stride, kt, hd, n, add);
        return;
    }
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

void sl_attn_softmax(float *x, int32_t n)
{
    sl_isa level = simd_level();
    float m = -INFINITY;
    if (level > SL_ISA_GENERIC) {
        m = sl_attn_max_simd(level, x, n);
    } else {
        for (int32_t j = 0; j < n; j++)
            m = x[j] > m ? x[j] : m;
    }
    float sum = 0.0f;
    for (int32_t j = 0; j < n; j++) {
        x[j] = expf(x[j] - m);
        sum += x[j];
    }
    float inv = 1.0f / sum;
    if (level > SL_ISA_GENERIC) {
        sl_attn_scale_simd(level, x, n, inv);
        return;
    }
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

static void attend_one(float *out, const float *q, const void *K, const void *V, int64_t stride, sl_dtype kt,
                       int32_t hd, int32_t n, sl_attn_scaling scaling, float *sc, const sl_attn_hook *hook)
{
    sl_attn_scores(sc, q, K, stride, kt, hd, n, scaling.denom);
    normalise(sc, n, 0, scaling, hook);
    sl_attn_values(out, sc, V, stride, kt, hd, n, false);
}

void sl_attend(float *out, const float *q, const void *K, const void *V, int64_t stride, sl_dtype kt, int32_t hd,
               int32_t n, float *sc)
{
    attend_one(out, q, K, V, stride, kt, hd, n, (sl_attn_scaling){sqrtf((float)hd), 0.0f}, sc, NULL);
}

/* Rows per block: 64 rows of a 64-dim F32 head are 16 KiB of keys, which stay in L1 while
 * every head of the group scores them. */
#define ATTN_BLOCK_ROWS 64

void sl_attend_heads(float *out, const float *q, int64_t q_stride, int32_t n_q, const void *K, const void *V,
                     int64_t stride, sl_dtype kt, int32_t hd, int32_t n, sl_attn_scaling scaling, float *sc,
                     int64_t sc_stride, const sl_attn_hook *hook)
{
    if (n_q == 1) {
        attend_one(out, q, K, V, stride, kt, hd, n, scaling, sc, hook);
        return;
    }
    int64_t es = kt == SL_DTYPE_F16 ? 2 : 4;
    float denom = scaling.denom;
    for (int32_t j = 0; j < n; j += ATTN_BLOCK_ROWS) {
        int32_t m = n - j < ATTN_BLOCK_ROWS ? n - j : ATTN_BLOCK_ROWS;
        const char *Kj = (const char *)K + (int64_t)j * stride * es;
        for (int32_t h = 0; h < n_q; h++)
            sl_attn_scores(sc + h * sc_stride + j, q + h * q_stride, Kj, stride, kt, hd, m, denom);
    }
    for (int32_t h = 0; h < n_q; h++)
        normalise(sc + h * sc_stride, n, h, scaling, hook);
    for (int32_t j = 0; j < n; j += ATTN_BLOCK_ROWS) {
        int32_t m = n - j < ATTN_BLOCK_ROWS ? n - j : ATTN_BLOCK_ROWS;
        const char *Vj = (const char *)V + (int64_t)j * stride * es;
        for (int32_t h = 0; h < n_q; h++)
            sl_attn_values(out + h * q_stride, sc + h * sc_stride + j, Vj, stride, kt, hd, m, j > 0);
    }
}

#ifndef SL_X86
void sl_attn_scores_simd(sl_isa level, float *sc, const float *q, const void *K, int64_t stride, sl_dtype kt, int32_t hd,
                         int32_t n, float denom)
{
    (void)level, (void)sc, (void)q, (void)K, (void)stride, (void)kt, (void)hd, (void)n, (void)denom;
}
void sl_attn_values_simd(sl_isa level, float *out, const float *p, const void *V, int64_t stride, sl_dtype kt,
                         int32_t hd, int32_t n, bool add)
{
    (void)level, (void)out, (void)p, (void)V, (void)stride, (void)kt, (void)hd, (void)n, (void)add;
}
float sl_attn_max_simd(sl_isa level, const float *x, int32_t n)
{
    (void)level, (void)x, (void)n;
    return 0.0f;
}
void sl_attn_scale_simd(sl_isa level, float *x, int32_t n, float s) { (void)level, (void)x, (void)n, (void)s; }
#endif
