/* Uncertainty of a mean over evaluation items: the standard error and a seeded percentile
 * bootstrap interval (resampling items with replacement). A paired comparison of two runs is the
 * same computation on the per-item differences. */
#include <math.h>
#include <stdlib.h>

#include "slua/sl_eval.h"
#include "slua/sl_ops.h"
#include "util/error.h"

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of sorted v (n > 0), linearly interpolated between order statistics (numpy's
 * default, "linear"). */
static double quantile(const double *v, int32_t n, double q)
{
    double at = q * (double)(n - 1);
    int32_t i = (int32_t)floor(at);
    if (i >= n - 1)
        return v[n - 1];
    double frac = at - (double)i;
    return v[i] + frac * (v[i + 1] - v[i]);
}

sl_status sl_bootstrap_mean(const double *values, int32_t n, int32_t n_resamples, uint64_t seed, double level,
                            sl_mean_uncertainty *out, sl_error *err)
{
    if (!out)
        return sl_error_set(err, SL_STATUS_E_ARG, "bootstrap: no result to fill");
    if (n < 0 || (n > 0 && !values))
        return sl_error_set(err, SL_STATUS_E_ARG, "bootstrap: values: %d items and no array", (int)n);
    if (n_resamples < 0)
        return sl_error_set(err, SL_STATUS_E_RANGE, "bootstrap: resamples must be >= 0 (got %d)", (int)n_resamples);
    if (!(level > 0.0 && level < 1.0))
        return sl_error_set(err, SL_STATUS_E_RANGE, "bootstrap: level must be in (0, 1) (got %g)", level);
    *out = (sl_mean_uncertainty){.mean = NAN, .se = NAN, .lo = NAN, .hi = NAN, .boot_se = NAN, .n = n};
    if (n == 0)
        return SL_STATUS_OK;
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        if (!isfinite(values[i]))
            return sl_error_set(err, SL_STATUS_E_ARG, "bootstrap: values[%d] is not finite", (int)i);
        sum += values[i];
    }
    double mean = sum / (double)n;
    out->mean = mean;
    if (n > 1) {
        double ss = 0.0;
        for (int32_t i = 0; i < n; i++)
            ss += (values[i] - mean) * (values[i] - mean);
        out->se = sqrt(ss / (double)(n - 1) / (double)n);
    }
    if (n_resamples == 0)
        return SL_STATUS_OK;
    double *means = malloc((size_t)n_resamples * sizeof *means);
    if (!means)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "bootstrap: %d resamples", (int)n_resamples);
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    double msum = 0.0;
    for (int32_t b = 0; b < n_resamples; b++) {
        double s = 0.0;
        for (int32_t k = 0; k < n; k++) {
            int32_t i = (int32_t)(sl_rng_uniform(&rng) * (double)n); /* uniform < 1, so i < n */
            s += values[i];
        }
        means[b] = s / (double)n;
        msum += means[b];
    }
    double mmean = msum / (double)n_resamples, mss = 0.0;
    for (int32_t b = 0; b < n_resamples; b++)
        mss += (means[b] - mmean) * (means[b] - mmean);
    out->boot_se = n_resamples > 1 ? sqrt(mss / (double)(n_resamples - 1)) : 0.0;
    qsort(means, (size_t)n_resamples, sizeof *means, compare_double);
    out->lo = quantile(means, n_resamples, (1.0 - level) / 2.0);
    out->hi = quantile(means, n_resamples, 1.0 - (1.0 - level) / 2.0);
    free(means);
    return SL_STATUS_OK;
}
