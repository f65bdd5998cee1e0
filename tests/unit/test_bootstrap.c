/* sl_bootstrap_mean: the standard error against its closed form, the percentile interval of a
 * sample whose bootstrap distribution is known exactly, seeding, and argument errors. */
#include <math.h>
#include <string.h>

#include <criterion/criterion.h>

#include "slua/sl_eval.h"

Test(bootstrap, standard_error_is_the_closed_form)
{
    /* values 1..4: mean 2.5, s^2 = 5/3, se = sqrt(5/3/4) */
    const double v[] = {1, 2, 3, 4};
    sl_mean_uncertainty u;
    sl_error err;
    cr_assert_eq(sl_bootstrap_mean(v, 4, 0, 1, 0.95, &u, &err), SL_STATUS_OK);
    cr_assert_float_eq(u.mean, 2.5, 1e-15);
    cr_assert_float_eq(u.se, sqrt(5.0 / 3.0 / 4.0), 1e-15);
    cr_assert(isnan(u.lo) && isnan(u.hi), "no resamples: no interval");
}

Test(bootstrap, two_point_sample_interval_and_spread)
{
    /* values {0, 1}, n = 2: a resample's mean is 0, 0.5 or 1 with probability 1/4, 1/2, 1/4, so
     * the 2.5 % and 97.5 % quantiles of many resamples are 0 and 1 and their SD is sqrt(1/8). */
    const double v[] = {0, 1};
    sl_mean_uncertainty u;
    sl_error err;
    cr_assert_eq(sl_bootstrap_mean(v, 2, 20000, 3, 0.95, &u, &err), SL_STATUS_OK);
    cr_assert_float_eq(u.lo, 0.0, 1e-15);
    cr_assert_float_eq(u.hi, 1.0, 1e-15);
    cr_assert(fabs(u.boot_se - sqrt(0.125)) < 0.01, "boot_se %g", u.boot_se);
}

Test(bootstrap, seeded_and_reproducible)
{
    double v[100];
    for (int i = 0; i < 100; i++)
        v[i] = (double)((i * 37) % 11);
    sl_mean_uncertainty a, b, c;
    sl_error err;
    cr_assert_eq(sl_bootstrap_mean(v, 100, 300, 9, 0.9, &a, &err), SL_STATUS_OK);
    cr_assert_eq(sl_bootstrap_mean(v, 100, 300, 9, 0.9, &b, &err), SL_STATUS_OK);
    cr_assert_eq(sl_bootstrap_mean(v, 100, 300, 10, 0.9, &c, &err), SL_STATUS_OK);
    cr_assert(a.lo == b.lo && a.hi == b.hi && a.boot_se == b.boot_se, "same seed, same draws");
    cr_assert(a.lo != c.lo || a.hi != c.hi || a.boot_se != c.boot_se, "another seed, other draws");
    cr_assert(a.lo < a.mean && a.mean < a.hi, "the interval covers the mean");
}

Test(bootstrap, bad_arguments_are_status_codes_with_messages)
{
    const double v[] = {1, NAN};
    sl_mean_uncertainty u;
    sl_error err;
    cr_assert_eq(sl_bootstrap_mean(v, 2, 10, 1, 0.95, &u, &err), SL_STATUS_E_ARG);
    cr_assert(strstr(err.msg, "values[1] is not finite"), "%s", err.msg);
    cr_assert_eq(sl_bootstrap_mean(v, 1, -1, 1, 0.95, &u, &err), SL_STATUS_E_RANGE);
    cr_assert(strstr(err.msg, "resamples must be >= 0 (got -1)"), "%s", err.msg);
    cr_assert_eq(sl_bootstrap_mean(v, 1, 10, 1, 1.0, &u, &err), SL_STATUS_E_RANGE);
    cr_assert_eq(sl_bootstrap_mean(NULL, 3, 10, 1, 0.95, &u, &err), SL_STATUS_E_ARG);
    cr_assert_eq(sl_bootstrap_mean(v, 0, 10, 1, 0.95, &u, &err), SL_STATUS_OK);
    cr_assert(isnan(u.mean) && u.n == 0, "no items: nothing defined");
}
