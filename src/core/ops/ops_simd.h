/* SIMD pieces of the logits ops (ops_x86.c), called by ops.c when the CPU has AVX2 and the
 * logits' maxima are finite. */
#ifndef SLUA_CORE_OPS_SIMD_H
#define SLUA_CORE_OPS_SIMD_H

#include <stdint.h>

/* The largest entry of x[0..n), NaN entries ignored (-inf when n <= 0). */
float sl_max_avx2(const float *x, int32_t n);

/* sum of exp(z[i] - max) over i < n (max = the largest entry, finite), NaN entries weighing 0;
 * the terms go to e when it is not NULL. */
double sl_exp_sum_avx2(const float *z, int32_t n, float max, float *e);

/* p = softmax(z) and logp = log_softmax(z) of the final logits z (max = their largest entry,
 * finite); NaN entries weigh 0 and have log-probability -inf. */
void sl_dola_final_avx2(const float *z, int32_t n, float max, float *p, float *logp);

/* HF's divergence of premature logits z (max = their largest entry, finite) against the final
 * distribution p, logp; e is scratch for n floats. */
double sl_dola_divergence_avx2(const float *p, const float *logp, const float *z, int32_t n, float max, float *e);

#endif
