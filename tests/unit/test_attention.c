/* The attention kernels (scores, softmax, weighted sum over a KV cache) against a float64
 * reference of the same stored keys and values: with the best kernels of this CPU, with AVX2
 * only (SL_NO_AVX512) and with the portable ones (SL_NO_AVX2); float32 and float16 caches, odd
 * head dims (tails of the 8- and 16-wide vectors), GQA layouts (several KV heads per row, head
 * g at offset g * head_dim), lengths 1..300 (tails of the 8- and 16-row blocks); the heads of a
 * GQA group taken through the cache together equal each head alone, and rows taken in two
 * parts (a branch's own rows after the cached ones) equal all rows at once. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "kernels/attention.h"
#include "kernels/kernels.h"
#include "test_util.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static float uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

/* n rows of `stride` values in type kt; ref receives the stored values as float. */
static void *make_cache(float *ref, int64_t count, sl_dtype kt, float scale)
{
    void *data = malloc((size_t)count * (kt == SL_DTYPE_F16 ? 2 : 4));
    cr_assert_not_null(data);
    for (int64_t i = 0; i < count; i++) {
        float v = uniform() * scale;
        if (kt == SL_DTYPE_F16) {
            ((uint16_t *)data)[i] = sl_f32_to_f16(v);
            ref[i] = sl_f16_to_f32(((uint16_t *)data)[i]);
        } else {
            ((float *)data)[i] = v;
            ref[i] = v;
        }
    }
    return data;
}

/* One head's key blocks for n rows of hd values (attention.h), each value from ref (row-major). */
static void *make_keys(const float *ref, int64_t ref_stride, int32_t n, int32_t hd, sl_dtype kt)
{
    int64_t rows = (n + SL_ATTN_KEY_BLOCK - 1) / SL_ATTN_KEY_BLOCK * SL_ATTN_KEY_BLOCK;
    void *data = calloc((size_t)(rows * hd), kt == SL_DTYPE_F16 ? 2 : 4);
    cr_assert_not_null(data);
    for (int32_t j = 0; j < n; j++)
        for (int32_t c = 0; c < hd; c++) {
            int64_t i = sl_attn_key_index(j, c, hd);
            float v = ref[j * ref_stride + c];
            if (kt == SL_DTYPE_F16)
                ((uint16_t *)data)[i] = sl_f32_to_f16(v); /* exact: ref holds the stored values */
            else
                ((float *)data)[i] = v;
        }
    return data;
}

/* A float32 result of `terms` summands against its float64 value, with abs_sum = sum |term|. */
static void expect_close(double got, double want, double abs_sum, int terms, const char *what, int32_t hd, int32_t n,
                         int g, sl_dtype kt)
{
    double tol = 2.0 * (terms + 2) * FLT_EPSILON * abs_sum + 1e-30;
    cr_assert(fabs(got - want) <= tol, "%s: |%g - %g| > %g (hd %d, n %d, kv head %d, dtype %d, level %s)", what, got,
              want, tol, hd, n, g, (int)kt,
              getenv("SL_NO_AVX2") ? "portable" : getenv("SL_NO_AVX512") ? "avx2" : "best");
}

static void check_shape(int32_t hd, int32_t n, int n_kv, sl_dtype kt)
{
    int64_t stride = (int64_t)n_kv * hd, es = kt == SL_DTYPE_F16 ? 2 : 4;
    float *kref = malloc((size_t)(n * stride) * sizeof(float)), *vref = malloc((size_t)(n * stride) * sizeof(float));
    float *q = malloc((size_t)hd * sizeof(float)), *sc = malloc((size_t)n * sizeof(float));
    float *out = malloc((size_t)hd * sizeof(float));
    double *p = malloc((size_t)n * sizeof(double));
    cr_assert(kref && vref && q && sc && out && p);
    void *K = make_cache(kref, n * stride, kt, 2.0f), *V = make_cache(vref, n * stride, kt, 1.0f);
    for (int32_t c = 0; c < hd; c++)
        q[c] = uniform();
    float denom = sqrtf((float)hd);
    for (int g = 0; g < n_kv; g++) {
        void *Kg = make_keys(kref + g * hd, stride, n, hd, kt);
        const char *Vg = (const char *)V + g * hd * es;
        /* Scores alone. */
        sl_attn_scores(sc, q, Kg, 0, kt, hd, n, denom);
        double m = -INFINITY;
        for (int32_t j = 0; j < n; j++) {
            double d = 0, a = 0;
            for (int32_t c = 0; c < hd; c++) {
                double t = (double)q[c] * kref[j * stride + g * hd + c];
                d += t;
                a += fabs(t);
            }
            expect_close(sc[j], d / denom, a / denom, hd, "score", hd, n, g, kt);
            p[j] = d / denom;
            m = fmax(m, p[j]);
        }
        double sum = 0;
        for (int32_t j = 0; j < n; j++)
            sum += (p[j] = exp(p[j] - m));
        for (int32_t j = 0; j < n; j++)
            p[j] /= sum;
        /* Softmax of the kernel's own scores against float64. */
        sl_attn_softmax(sc, n);
        for (int32_t j = 0; j < n; j++)
            expect_close(sc[j], p[j], p[j] + 1e-6 * hd, n + hd, "softmax", hd, n, g, kt);
        /* The weighted sum of the kernel's probabilities. */
        sl_attn_values(out, sc, Vg, stride, kt, hd, n, false);
        for (int32_t c = 0; c < hd; c++) {
            double w = 0, a = 0;
            for (int32_t j = 0; j < n; j++) {
                double t = (double)sc[j] * vref[j * stride + g * hd + c];
                w += t;
                a += fabs(t);
            }
            expect_close(out[c], w, a, n, "value", hd, n, g, kt);
        }
        /* All three together. */
        sl_attend(out, q, Kg, Vg, 0, stride, kt, hd, n, sc);
        for (int32_t c = 0; c < hd; c++) {
            double w = 0;
            for (int32_t j = 0; j < n; j++)
                w += p[j] * vref[j * stride + g * hd + c];
            cr_assert(fabs(out[c] - w) <= 1e-5 * (1 + hd / 16.0), "attend: |%g - %g| (hd %d, n %d, dtype %d)", out[c],
                      w, hd, n, (int)kt);
        }
        free(Kg);
    }
    free(K);
    free(V);
    free(kref);
    free(vref);
    free(q);
    free(sc);
    free(out);
    free(p);
}

static void check_all(void)
{
    static const int32_t hds[] = {1, 3, 8, 15, 16, 17, 31, 33, 64, 80, 127, 128, 129, 200};
    static const int32_t ns[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 255, 256, 257, 300};
    static const int n_kvs[] = {1, 3};
    static const sl_dtype kts[] = {SL_DTYPE_F32, SL_DTYPE_F16};
    for (size_t t = 0; t < 2; t++)
        for (size_t a = 0; a < sizeof hds / sizeof hds[0]; a++)
            for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++)
                check_shape(hds[a], ns[b], n_kvs[(a + b) % 2], kts[t]);
}

/* A GQA group through sl_attend_heads (blocks of cached rows shared by the heads) gives each
 * head exactly sl_attend's result. */
static void check_heads(int32_t hd, int32_t n, int32_t n_q, sl_dtype kt)
{
    int n_kv = 2;
    int64_t stride = (int64_t)n_kv * hd, es = kt == SL_DTYPE_F16 ? 2 : 4;
    float *kref = malloc((size_t)(n * stride) * sizeof(float)), *vref = malloc((size_t)(n * stride) * sizeof(float));
    float *q = malloc((size_t)(n_q * hd) * sizeof(float)), *out = malloc((size_t)(n_q * hd) * sizeof(float));
    float *one = malloc((size_t)hd * sizeof(float)), *sc = malloc((size_t)(n_q * n) * sizeof(float));
    cr_assert(kref && vref && q && out && one && sc);
    void *K = make_cache(kref, n * stride, kt, 2.0f), *V = make_cache(vref, n * stride, kt, 1.0f);
    for (int32_t c = 0; c < n_q * hd; c++)
        q[c] = uniform();
    void *K1 = make_keys(kref + hd, stride, n, hd, kt); /* KV head 1 */
    const char *V1 = (const char *)V + hd * es;
    sl_attend_heads(out, q, hd, n_q, K1, V1, 0, stride, kt, hd, n, (sl_attn_scaling){sqrtf((float)hd), 0.0f}, sc, n,
                    NULL);
    for (int32_t h = 0; h < n_q; h++) {
        float *sc1 = malloc((size_t)n * sizeof(float));
        sl_attend(one, q + h * hd, K1, V1, 0, stride, kt, hd, n, sc1);
        for (int32_t c = 0; c < hd; c++)
            cr_assert_eq(out[h * hd + c], one[c], "head %d of %d, column %d: %g vs %g (hd %d, n %d, dtype %d)", h, n_q,
                         c, out[h * hd + c], one[c], hd, n, (int)kt);
        free(sc1);
    }
    free(K1);
    free(K);
    free(V);
    free(kref);
    free(vref);
    free(q);
    free(out);
    free(one);
    free(sc);
}

static void check_all_heads(void)
{
    static const int32_t ns[] = {1, 5, 63, 64, 65, 129, 300};
    static const int32_t hds[] = {7, 64, 80};
    for (int t = 0; t < 2; t++)
        for (size_t a = 0; a < sizeof hds / sizeof hds[0]; a++)
            for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++)
                for (int32_t n_q = 1; n_q <= 4; n_q++)
                    check_heads(hds[a], ns[b], n_q, t ? SL_DTYPE_F16 : SL_DTYPE_F32);
}

/* Scores of rows [0, m) and [m, n) computed apart (the second run may start inside a key
 * block), and the weighted sum of [m, n) continuing that of [0, m), equal those of all n rows
 * at once, bit for bit. */
static void check_split(int32_t hd, int32_t n, int32_t m, sl_dtype kt)
{
    int64_t es = kt == SL_DTYPE_F16 ? 2 : 4;
    float *kref = malloc((size_t)(n * hd) * sizeof(float)), *vref = malloc((size_t)(n * hd) * sizeof(float));
    float *q = malloc((size_t)hd * sizeof(float)), *all = malloc((size_t)n * sizeof(float));
    float *parts = malloc((size_t)n * sizeof(float)), *out = malloc((size_t)hd * sizeof(float));
    float *out2 = malloc((size_t)hd * sizeof(float));
    cr_assert(kref && vref && q && all && parts && out && out2);
    void *rows = make_cache(kref, n * hd, kt, 2.0f), *V = make_cache(vref, n * hd, kt, 1.0f);
    void *K = make_keys(kref, hd, n, hd, kt);
    for (int32_t c = 0; c < hd; c++)
        q[c] = uniform();
    sl_attn_scores(all, q, K, 0, kt, hd, n, 8.0f);
    sl_attn_scores(parts, q, K, 0, kt, hd, m, 8.0f);
    sl_attn_scores(parts + m, q, K, m, kt, hd, n - m, 8.0f);
    for (int32_t j = 0; j < n; j++)
        cr_assert_eq(all[j], parts[j], "score %d: %g vs %g (hd %d, n %d, split %d, dtype %d)", j, all[j], parts[j], hd,
                     n, m, (int)kt);
    sl_attn_softmax(all, n);
    sl_attn_values(out, all, V, hd, kt, hd, n, false);
    sl_attn_values(out2, all, V, hd, kt, hd, m, false);
    sl_attn_values(out2, all + m, (const char *)V + m * hd * es, hd, kt, hd, n - m, true);
    for (int32_t c = 0; c < hd; c++)
        cr_assert_eq(out[c], out2[c], "column %d: %g vs %g (hd %d, n %d, split %d, dtype %d)", c, out[c], out2[c], hd,
                     n, m, (int)kt);
    free(rows);
    free(K);
    free(V);
    free(kref);
    free(vref);
    free(q);
    free(all);
    free(parts);
    free(out);
    free(out2);
}

static void check_all_splits(void)
{
    static const int32_t hds[] = {7, 64, 80, 128};
    static const int32_t ns[] = {1, 17, 100, 300};
    static const int32_t splits[] = {0, 1, 15, 16, 33, 64, 299};
    for (int t = 0; t < 2; t++)
        for (size_t a = 0; a < sizeof hds / sizeof hds[0]; a++)
            for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++)
                for (size_t c = 0; c < sizeof splits / sizeof splits[0]; c++)
                    if (splits[c] <= ns[b])
                        check_split(hds[a], ns[b], splits[c], t ? SL_DTYPE_F16 : SL_DTYPE_F32);
}

/* Masked positions (-inf, as the causal prefill writes them) take no weight. */
static void check_masked_softmax(void)
{
    for (int32_t n = 1; n <= 40; n++) {
        float x[40];
        for (int32_t j = 0; j < n; j++)
            x[j] = j % 3 == 1 ? -INFINITY : uniform() * 4.0f;
        x[0] = 1.0f;
        sl_attn_softmax(x, n);
        double sum = 0;
        for (int32_t j = 0; j < n; j++) {
            if (j % 3 == 1)
                cr_assert_eq(x[j], 0.0f);
            sum += x[j];
        }
        cr_assert(fabs(sum - 1.0) < 1e-5, "softmax sums to %g (n %d)", sum, n);
    }
}

Test(attention, best_matches_double_reference)
{
    tu_cap_kernels("SL_NO_AVX2", false);
    tu_cap_kernels("SL_NO_AVX512", false);
    check_all();
    check_all_heads();
    check_all_splits();
    check_masked_softmax();
}

Test(attention, avx2_matches_double_reference)
{
    tu_cap_kernels("SL_NO_AVX512", true);
    check_all();
    check_all_heads();
    check_all_splits();
    check_masked_softmax();
    tu_cap_kernels("SL_NO_AVX512", false);
}

Test(attention, portable_matches_double_reference)
{
    tu_cap_kernels("SL_NO_AVX2", true);
    check_all();
    check_all_heads();
    check_all_splits();
    check_masked_softmax();
    tu_cap_kernels("SL_NO_AVX2", false);
}
