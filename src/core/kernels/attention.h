/* Attention over a KV cache: the scores of one query against a run of cached keys, the
 * softmax, and the weighted sum of the cached values. Keys and values are stored as float32 or
 * float16 (SL_DTYPE_F32 / SL_DTYPE_F16); all arithmetic is float32. A portable version and
 * AVX2 / AVX-512 versions are picked at run time like the matrix kernels.
 *
 * One KV head's keys are stored in blocks of SL_ATTN_KEY_BLOCK rows, each block column by
 * column (the block's 16 values of column 0, then of column 1, ...): a vector of a block's
 * column serves 16 rows at once, so a score is a chain of multiply-adds in its own lane,
 * the same whichever rows share its block or call. Values are rows with a stride. */
#ifndef SLUA_CORE_ATTENTION_H
#define SLUA_CORE_ATTENTION_H

#include <stdbool.h>
#include <stdint.h>

#include "slua/sl_model.h"

#include "kernels_simd.h"

#define SL_ATTN_KEY_BLOCK 16

/* The index of key row j, column c in a head's key blocks of hd columns. */
static inline int64_t sl_attn_key_index(int64_t j, int32_t c, int32_t hd)
{
    return (j / SL_ATTN_KEY_BLOCK * hd + c) * SL_ATTN_KEY_BLOCK + j % SL_ATTN_KEY_BLOCK;
}

/* sc[j - j0] = (q · K[j]) / denom for key rows j0 <= j < j0 + n of one head's key blocks K. */
void sl_attn_scores(float *sc, const float *q, const void *K, int64_t j0, sl_dtype kt, int32_t hd, int32_t n,
                    float denom);

/* The scores of n_q query heads over the same key rows: head h's query at q + h * q_stride, its
 * scores at sc + h * sc_stride; each head's scores equal sl_attn_scores' for it. */
void sl_attn_scores_heads(float *sc, int64_t sc_stride, const float *q, int64_t q_stride, int32_t n_q, const void *K,
                          int64_t j0, sl_dtype kt, int32_t hd, int32_t n, float denom);

/* out[c] = sum_j p[j] * V[j][c] for c < hd; with add, the sum continues from out's values (so
 * rows taken in blocks give the same float32 result as all rows at once). */
void sl_attn_values(float *out, const float *p, const void *V, int64_t stride, sl_dtype kt, int32_t hd, int32_t n,
                    bool add);

/* The weighted sums of n_q heads over the same n cached rows: head h's probabilities at
 * p + h * p_stride, its output at out + h * out_stride; each equals sl_attn_values' for it. */
void sl_attn_values_heads(float *out, int64_t out_stride, const float *p, int64_t p_stride, int32_t n_q, const void *V,
                          int64_t stride, sl_dtype kt, int32_t hd, int32_t n, bool add);

/* x = softmax(x) in place (x[j] = -INFINITY takes no weight). */
void sl_attn_softmax(float *x, int32_t n);

/* One query row over the cached rows [j0, j0 + n): out = softmax(q·K / sqrt(hd)) · V, with K a
 * head's key blocks, V its row 0 (rows stride values apart) and sc as scratch [n]. */
void sl_attend(float *out, const float *q, const void *K, const void *V, int64_t j0, int64_t stride, sl_dtype kt,
               int32_t hd, int32_t n, float *sc);

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

/* The n_q query heads that share one KV head (GQA) over its cached rows [j0, j0 + n): head h's
 * query at q + h * q_stride, its output at out + h * q_stride, its scores at sc + h * sc_stride
 * ([n] each); K and V as for sl_attend. Each key and value is read once for all the heads; the
 * float32 result is sl_attend's per head (with denom sqrt(hd) and no softcap). hook may be
 * NULL. */
void sl_attend_heads(float *out, const float *q, int64_t q_stride, int32_t n_q, const void *K, const void *V,
                     int64_t j0, int64_t stride, sl_dtype kt, int32_t hd, int32_t n, sl_attn_scaling scaling,
                     float *sc, int64_t sc_stride, const sl_attn_hook *hook);

/* The SIMD versions (attention_x86.c) at a level above SL_ISA_GENERIC. */
void sl_attn_scores_simd(sl_isa level, float *sc, int64_t sc_stride, const float *q, int64_t q_stride, int32_t n_q,
                         const void *K, int64_t j0, sl_dtype kt, int32_t hd, int32_t n, float denom);
void sl_attn_values_simd(sl_isa level, float *out, int64_t out_stride, const float *p, int64_t p_stride, int32_t n_q,
                         const void *V, int64_t stride, sl_dtype kt, int32_t hd, int32_t n, bool add);
float sl_attn_max_simd(sl_isa level, const float *x, int32_t n);
/* x[j] = e^(x[j] - m) for j < n; returns their sum. */
float sl_attn_exp_sum_simd(sl_isa level, float *x, int32_t n, float m);
void sl_attn_scale_simd(sl_isa level, float *x, int32_t n, float s);

#endif
