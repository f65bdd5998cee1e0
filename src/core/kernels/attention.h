/* Attention over a KV cache: the scores of one query against a run of cached keys, the
 * softmax, and the weighted sum of the cached values. Keys and values are stored as float32 or
 * float16 (SL_DTYPE_F32 / SL_DTYPE_F16) rows with a stride; all arithmetic is float32. A
 * portable version and AVX2 / AVX-512 versions are picked at run time like the matrix kernels. */
#ifndef SLUA_CORE_ATTENTION_H
#define SLUA_CORE_ATTENTION_H

#include <stdbool.h>
#include <stdint.h>

#include "slua/sl_model.h"

#include "kernels_simd.h"

/* sc[j] = (q · K[j]) / denom for j < n; row j of K starts stride values after row j - 1. */
void sl_attn_scores(float *sc, const float *q, const void *K, int64_t stride, sl_dtype kt, int32_t hd, int32_t n,
                    float denom);

/* out[c] = sum_j p[j] * V[j][c] for c < hd; with add, the sum continues from out's values (so
 * rows taken in blocks give the same float32 result as all rows at once). */
void sl_attn_values(float *out, const float *p, const void *V, int64_t stride, sl_dtype kt, int32_t hd, int32_t n,
                    bool add);

/* x = softmax(x) in place (x[j] = -INFINITY takes no weight). */
void sl_attn_softmax(float *x, int32_t n);

/* One query row over n cached rows: out = softmax(q·K / sqrt(hd)) · V, with sc as scratch [n]. */
void sl_attend(float *out, const float *q, const void *K, const void *V, int64_t stride, sl_dtype kt, int32_t hd,
               int32_t n, float *sc);

/* How scores are formed: s = (q·k) / denom, then s = softcap * tanh(s / softcap) when
 * softcap > 0 (Gemma-2), before the softmax. */
typedef struct sl_attn_scaling {
    float denom, softcap;
} sl_attn_scaling;

/* scores[j] = softcap * tanh(scores[j] / softcap) for j < n. */
void sl_attn_softcap(float *sc, int32_t n, float softcap);

/* Work between the steps of attention, per query head (the index within the call's heads):
 * scores(user, head, sc, n) may edit the n scores after scaling and softcap, before the
 * softmax; pattern(user, head, p, n) reads the softmax. Either may be NULL. */
typedef struct sl_attn_hook {
    void (*scores)(void *user, int32_t head, float *sc, int32_t n);
    void (*pattern)(void *user, int32_t head, const float *p, int32_t n);
    void *user;
} sl_attn_hook;

/* The n_q query heads that share one KV head (GQA): head h's query at q + h * q_stride, its
 * output at out + h * q_stride, its scores at sc + h * sc_stride ([n] each). The cached rows are
 * taken in blocks that serve every head while they are in cache, so K and V are read from
 * memory once per group instead of once per head; the float32 result is sl_attend's per head
 * (with denom sqrt(hd) and no softcap). hook may be NULL. */
void sl_attend_heads(float *out, const float *q, int64_t q_stride, int32_t n_q, const void *K, const void *V,
                     int64_t stride, sl_dtype kt, int32_t hd, int32_t n, sl_attn_scaling scaling, float *sc,
                     int64_t sc_stride, const sl_attn_hook *hook);

/* The scores of n_q query heads over the same n cached rows: head h's query at q + h * q_stride,
 * its scores at sc + h * sc_stride; each head's scores equal sl_attn_scores' for it. */
void sl_attn_scores_heads(float *sc, int64_t sc_stride, const float *q, int64_t q_stride, int32_t n_q, const void *K,
                          int64_t stride, sl_dtype kt, int32_t hd, int32_t n, float denom);

/* The weighted sums of n_q heads over the same n cached rows: head h's probabilities at
 * p + h * p_stride, its output at out + h * out_stride; each equals sl_attn_values' for it. */
void sl_attn_values_heads(float *out, int64_t out_stride, const float *p, int64_t p_stride, int32_t n_q, const void *V,
                          int64_t stride, sl_dtype kt, int32_t hd, int32_t n, bool add);

/* The SIMD versions (attention_x86.c) at a level above SL_ISA_GENERIC. */
void sl_attn_scores_simd(sl_isa level, float *sc, int64_t sc_stride, const float *q, int64_t q_stride, int32_t n_q,
                         const void *K, int64_t stride, sl_dtype kt, int32_t hd, int32_t n, float denom);
void sl_attn_values_simd(sl_isa level, float *out, int64_t out_stride, const float *p, int64_t p_stride, int32_t n_q,
                         const void *V, int64_t stride, sl_dtype kt, int32_t hd, int32_t n, bool add);
float sl_attn_max_simd(sl_isa level, const float *x, int32_t n);
/* x[j] = e^(x[j] - m) for j < n; returns their sum. */
float sl_attn_exp_sum_simd(sl_isa level, float *x, int32_t n, float m);
void sl_attn_scale_simd(sl_isa level, float *x, int32_t n, float s);

#endif
