/* Helpers shared by the logits ops (ops.c) and the HF processors (processors.c). */
#ifndef SLUA_CORE_OPS_INTERNAL_H
#define SLUA_CORE_OPS_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* A uint32 whose unsigned order is the float order: -inf < ... < -0 = +0 < ... < +inf.
 * -0 is folded into +0 so that equal floats give equal keys (a stable order over keys is then a
 * stable order over values). NaNs land beyond the infinities; callers decide what NaN means. */
static inline uint32_t sl_order_key(float x)
{
    if (x == 0.0f)
        x = 0.0f;
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static inline float sl_order_key_value(uint32_t key)
{
    uint32_t u = (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* exp(x - max) in double, the unnormalised softmax weight of x given max = the largest entry.
 * NaN entries weigh 0. When max is +inf the +inf entries take all the mass (the limit of
 * softmax) instead of giving inf - inf = NaN. The caller handles max = -inf (all masked). */
static inline double sl_softmax_weight(float x, double max)
{
    if (isnan(x))
        return 0.0;
    if (max == INFINITY)
        return x == INFINITY ? 1.0 : 0.0;
    return exp((double)x - max);
}

/* Largest non-NaN entry; -inf when there is none. */
double sl_ops_max(const float *x, int32_t n);

/* Radix selection over order keys (four counting passes, no allocation): the key of the entry at
 * position `rank` (0-based, 0 <= rank < n) of the ascending order of x; *n_below gets the number
 * of entries with a smaller key. */
uint32_t sl_select_ascending(const float *x, int32_t n, int32_t rank, int32_t *n_below);

/* The k-th largest value of x (1 <= k <= n); NaN entries are ignored for k = 1 only. */
float sl_kth_largest(const float *x, int32_t n, int32_t k);

#endif
