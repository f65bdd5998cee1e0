/* AVX2 versions of the softmax normaliser and DoLa's divergence, eight entries at a time. exp
 * and log are float32 polynomials after Cephes (expf, logf: within 2 ulp of the correctly
 * rounded values), so results stay within float32 rounding of the scalar paths in ops.c; sums
 * are in double as there. */
#include "kernels/simd_x86.h"
#include "ops_simd.h"

#ifdef SL_X86

#include <math.h>

/* exp(x) for x <= 0; 0 below the smallest normal result (and for NaN or -inf). */
static SL_ALWAYS_INLINE SL_AVX2 __m256 exp_nonpositive(__m256 x)
{
    const __m256 lowest = _mm256_set1_ps(SL_EXP_LOWEST);
    __m256 valid = _mm256_cmp_ps(x, lowest, _CMP_GE_OQ);
    x = _mm256_max_ps(x, lowest);
    __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f))), r;
    __m256 p = expf_poly(x, n, &r);
    __m256 y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    return _mm256_and_ps(_mm256_mul_ps(y, pow2_int(n)), valid); /* n in [-126, 0] */
}

/* log(x) for normal positive x. */
static SL_ALWAYS_INLINE SL_AVX2 __m256 log_normal(__m256 x)
{
    __m256i bits = _mm256_castps_si256(x);
    /* x = m 2^e with m in [0.5, 1) */
    __m256 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126)));
    __m256 m = _mm256_castsi256_ps(
        _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f000000)));
    /* m in [sqrt(1/2), sqrt(2)) after moving one factor 2 into e: f = m - 1 is small */
    __m256 small = _mm256_cmp_ps(m, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
    e = _mm256_sub_ps(e, _mm256_and_ps(small, _mm256_set1_ps(1.0f)));
    __m256 f = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(small, m)), _mm256_set1_ps(1.0f));
    __m256 z = _mm256_mul_ps(f, f);
    __m256 y = _mm256_set1_ps(7.0376836292e-2f);
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(-1.1514610310e-1f));
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(1.1676998740e-1f));
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(-1.2420140846e-1f));
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(1.4249322787e-1f));
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(-1.6668057665e-1f));
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(2.0000714765e-1f));
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(-2.4999993993e-1f));
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(3.3333331174e-1f));
    y = _mm256_mul_ps(_mm256_mul_ps(y, f), z);
    y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
    y = _mm256_fnmadd_ps(z, _mm256_set1_ps(0.5f), y);
    return _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), _mm256_add_ps(f, y));
}

static SL_ALWAYS_INLINE SL_AVX2 __m256d add_widened(__m256d acc, __m256 v)
{
    acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

static SL_ALWAYS_INLINE SL_AVX2 double hsum4d(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

SL_AVX2 float sl_max_avx2(const float *x, int32_t n)
{
    /* max_ps(v, acc) keeps acc where v is NaN, as the scalar loop does; four chains for ILP */
    __m256 a0 = _mm256_set1_ps(-INFINITY), a1 = a0, a2 = a0, a3 = a0;
    int32_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_max_ps(_mm256_loadu_ps(x + i), a0);
        a1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_max_ps(_mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_max_ps(_mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_max_ps(_mm256_loadu_ps(x + i), a0);
    __m256 a = _mm256_max_ps(_mm256_max_ps(a0, a1), _mm256_max_ps(a2, a3));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    float max = _mm_cvtss_f32(m);
    for (; i < n; i++)
        max = x[i] > max ? x[i] : max;
    return max;
}

SL_AVX2 double sl_exp_sum_avx2(const float *z, int32_t n, float max, float *e)
{
    __m256 vmax = _mm256_set1_ps(max);
    __m256d sum = _mm256_setzero_pd();
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(z + i), vmax));
        if (e)
            _mm256_storeu_ps(e + i, v);
        sum = add_widened(sum, v);
    }
    double total = hsum4d(sum);
    for (; i < n; i++) {
        float v = isnan(z[i]) ? 0.0f : expf(z[i] - max);
        if (e)
            e[i] = v;
        total += v;
    }
    return total;
}

SL_AVX2 void sl_dola_final_avx2(const float *z, int32_t n, float max, float *p, float *logp)
{
    double sum = sl_exp_sum_avx2(z, n, max, p);
    float log_sum = (float)log(sum), inv_sum = (float)(1.0 / sum);
    __m256 vmax = _mm256_set1_ps(max), vls = _mm256_set1_ps(log_sum), vinv = _mm256_set1_ps(inv_sum);
    __m256 ninf = _mm256_set1_ps(-INFINITY);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 zi = _mm256_loadu_ps(z + i);
        __m256 lp = _mm256_sub_ps(_mm256_sub_ps(zi, vmax), vls);
        _mm256_storeu_ps(logp + i, _mm256_blendv_ps(lp, ninf, _mm256_cmp_ps(zi, zi, _CMP_UNORD_Q)));
        _mm256_storeu_ps(p + i, _mm256_mul_ps(_mm256_loadu_ps(p + i), vinv));
    }
    for (; i < n; i++) {
        logp[i] = isnan(z[i]) ? -INFINITY : (z[i] - max) - log_sum;
        p[i] *= inv_sum;
    }
}

SL_AVX2 double sl_dola_divergence_avx2(const float *p, const float *logp, const float *z, int32_t n, float max,
                                       float *e)
{
    double sum = sl_exp_sum_avx2(z, n, max, e);
    float log_sum = (float)log(sum), inv_sum = (float)(1.0 / sum);
    __m256 vmax = _mm256_set1_ps(max), vls = _mm256_set1_ps(log_sum), vinv = _mm256_set1_ps(inv_sum);
    __m256 half = _mm256_set1_ps(0.5f), tiny = _mm256_set1_ps(0x1p-126f);
    __m256d kl_final = _mm256_setzero_pd(), kl_premature = kl_final;
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 m = _mm256_mul_ps(half, _mm256_fmadd_ps(_mm256_loadu_ps(e + i), vinv, _mm256_loadu_ps(p + i)));
        /* m = 0 adds nothing (xlogy); a subnormal m adds less than 1e-36 */
        __m256 counted = _mm256_cmp_ps(m, tiny, _CMP_GE_OQ);
        __m256 lm = log_normal(_mm256_max_ps(m, tiny));
        __m256 lq = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(z + i), vmax), vls);
        __m256 tf = _mm256_mul_ps(m, _mm256_sub_ps(lm, _mm256_loadu_ps(logp + i)));
        __m256 tp = _mm256_mul_ps(m, _mm256_sub_ps(lm, lq));
        kl_final = add_widened(kl_final, _mm256_and_ps(tf, counted));
        kl_premature = add_widened(kl_premature, _mm256_and_ps(tp, counted));
    }
    double kf = hsum4d(kl_final), kp = hsum4d(kl_premature);
    for (; i < n; i++) {
        float m = 0.5f * (p[i] + e[i] * inv_sum);
        if (m == 0.0f)
            continue;
        float lm = logf(m), lq = (z[i] - max) - log_sum;
        kf += (double)m * (double)(lm - logp[i]);
        kp += (double)m * (double)(lm - lq);
    }
    return 0.5 * (kf / n + kp / n);
}

#endif
