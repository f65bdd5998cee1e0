/* SkipLayerCD primitives: the official and log-prob contrasts, CPython-compatible randomness
 * for SL-H spans, and the SL-D span rules (docs/spec/decoding.md §5, §6). */
#include <math.h>
#include <stdlib.h>

#include "util/error.h"
#include "slua/sl_ops.h"

int32_t sl_contrast_skiplayer(float *out, const float *e, const float *a, int32_t n, float alpha, float beta,
                              float amateur_temperature)
{
    float emax = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        emax = e[i] > emax ? e[i] : emax;
    float cutoff = (float)log((double)alpha) + emax;
    int32_t kept = 0;
    for (int32_t i = 0; i < n; i++) {
        float ev = e[i], av = a[i] / amateur_temperature;
        float t = ((ev - av) * beta) + ev;
        bool keep = !(ev < cutoff);
        out[i] = keep ? t : -INFINITY;
        kept += keep;
    }
    return kept;
}

int32_t sl_contrast_logprob(float *out, const float *e, const float *a, int32_t n, float alpha,
                            float amateur_temperature)
{
    float *lp_e = malloc((size_t)n * sizeof *lp_e), *lp_a = malloc((size_t)n * sizeof *lp_a);
    uint8_t *keep = malloc((size_t)n);
    int32_t kept = 0;
    if (!lp_e || !lp_a || !keep) {
        free(lp_e);
        free(lp_a);
        free(keep);
        return -1;
    }
    for (int32_t i = 0; i < n; i++)
        lp_a[i] = a[i] / amateur_temperature;
    sl_ops_log_softmax(lp_e, e, n);
    sl_ops_log_softmax(lp_a, lp_a, n);
    kept = sl_ops_relative_top_mask(lp_e, n, alpha, 1, keep);
    for (int32_t i = 0; i < n; i++)
        out[i] = keep[i] ? lp_e[i] - lp_a[i] : -INFINITY;
    free(lp_e);
    free(lp_a);
    free(keep);
    return kept;
}

int32_t sl_round_half_even(double x) { return (int32_t)nearbyint(x); }

/* ------------------------------------------------------------------ CPython random */

static void mt_init(sl_pyrandom *r, uint32_t s)
{
    r->mt[0] = s;
    for (int i = 1; i < 624; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->index = 624;
}

void sl_pyrandom_seed(sl_pyrandom *r, uint64_t seed)
{
    /* random.seed(int): init_by_array over the 32-bit little-endian words of the seed. */
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    int key_len = key[1] ? 2 : 1;
    mt_init(r, 19650218u);
    int i = 1, j = 0;
    for (int k = 624 > key_len ? 624 : key_len; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
        i++;
        j++;
        if (i >= 624) {
            r->mt[0] = r->mt[623];
            i = 1;
        }
        if (j >= key_len)
            j = 0;
    }
    for (int k = 623; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        i++;
        if (i >= 624) {
            r->mt[0] = r->mt[623];
            i = 1;
        }
    }
    r->mt[0] = 0x80000000u;
    r->index = 624;
}

static uint32_t mt_next(sl_pyrandom *r)
{
    if (r->index >= 624) {
        for (int k = 0; k < 624; k++) {
            uint32_t y = (r->mt[k] & 0x80000000u) | (r->mt[(k + 1) % 624] & 0x7fffffffu);
            r->mt[k] = r->mt[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        r->index = 0;
    }
    uint32_t y = r->mt[r->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint32_t sl_pyrandom_getrandbits(sl_pyrandom *r, int32_t k)
{
    if (k <= 0)
        return 0;
    return mt_next(r) >> (32 - (k > 32 ? 32 : k));
}

sl_status sl_pyrandom_randrange(sl_pyrandom *r, int64_t a, int64_t b, int64_t *out, sl_error *err)
{
    int64_t width = b - a;
    if (width <= 0)
        return sl_error_set(err, SL_STATUS_E_RANGE, "empty range for randrange() (%lld, %lld, %lld)", (long long)a,
                            (long long)b, (long long)width);
    if (width > (int64_t)UINT32_MAX)
        return sl_error_set(err, SL_STATUS_E_RANGE, "randrange() width %lld above 2^32", (long long)width);
    int32_t k = 0;
    for (int64_t w = width; w; w >>= 1)
        k++;
    uint32_t v;
    do
        v = sl_pyrandom_getrandbits(r, k);
    while ((int64_t)v >= width);
    *out = a + v;
    return SL_STATUS_OK;
}

/* ------------------------------------------------------------------ SL-D rules */

bool sl_sld_select_official(const float *Y, int32_t n, int32_t *start, int32_t *end)
{
    int32_t s = sl_round_half_even(n / 8.0);
    for (int32_t idx = 0; idx <= n - 3; idx++) {
        if (idx < s + 4)
            continue;
        float pooled = ((Y[idx] - Y[idx + 1]) + (Y[idx + 1] - Y[idx + 2])) / 2.0f;
        if (!(pooled > 0.1f))
            continue;
        int32_t e = idx + 2;
        bool stays_below = true;
        for (int32_t k = e + 1; k < n; k++)
            stays_below &= Y[e] > Y[k];
        if (stays_below) {
            *start = e - s;
            *end = e;
            return true;
        }
    }
    return false;
}

bool sl_sld_select_community(const float *Y, int32_t n, int32_t *start, int32_t *end)
{
    int32_t s = sl_round_half_even(n / 8.0);
    if (n < 2 || s < 1)
        return false;
    int32_t peak = 0;
    for (int32_t i = 1; i < n; i++)
        if (Y[i] > Y[peak])
            peak = i;
    int32_t l = peak > 1 ? peak : 1;
    if (l > n - s - 1)
        l = n - s - 1;
    int32_t best = -1;
    float best_drop = INFINITY;
    for (; l >= 1 && l + s <= n - 1; l++) {
        float mn = Y[l];
        for (int32_t k = l + 1; k < l + s; k++)
            mn = Y[k] < mn ? Y[k] : mn;
        float drop = Y[l - 1] - mn;
        if (drop < best_drop) {
            best_drop = drop;
            best = l;
        }
    }
    if (best < 0 || best - 1 <= 0)
        return false;
    *start = best - 1;
    *end = best - 1 + s;
    return true;
}
