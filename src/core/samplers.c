/* Samplers beyond HF's warpers: the residual draw of speculative sampling, and llama.cpp's
 * samplers from their published definitions. One uniform per draw, inverse CDF in token-id
 * order, as sl_sample. */
#include <math.h>
#include <stdlib.h>

#include "error.h"
#include "ops_internal.h"
#include "slua/sl_decode.h"

/* Softmax normaliser of x: *max and the sum of exp(x - max); false when every entry is masked. */
static bool normaliser(const float *x, int32_t n, double *max, double *total)
{
    *max = sl_ops_max(x, n);
    if (*max == -INFINITY)
        return false;
    *total = 0.0;
    for (int32_t i = 0; i < n; i++)
        *total += sl_softmax_weight(x[i], *max);
    return true;
}

sl_token sl_sample_residual(const float *p_scores, const float *q_scores, int32_t n, sl_rng *rng)
{
    double u = sl_rng_uniform(rng);
    double pm, pt, qm = 0.0, qt = 1.0;
    if (!normaliser(p_scores, n, &pm, &pt))
        return -1;
    bool has_q = normaliser(q_scores, n, &qm, &qt);
    double total = 0.0;
    for (int32_t i = 0; i < n; i++) {
        double r = sl_softmax_weight(p_scores[i], pm) / pt - (has_q ? sl_softmax_weight(q_scores[i], qm) / qt : 0.0);
        total += r > 0 ? r : 0.0;
    }
    if (!(total > 0.0)) { /* p == q: the residual is empty, and p itself is the right law */
        has_q = false;
        total = 1.0;
    }
    double target = u * total, cumulative = 0.0;
    sl_token last = -1;
    for (int32_t i = 0; i < n; i++) {
        double r = sl_softmax_weight(p_scores[i], pm) / pt - (has_q ? sl_softmax_weight(q_scores[i], qm) / qt : 0.0);
        if (r <= 0.0)
            continue;
        cumulative += r;
        last = i;
        if (cumulative > target)
            return i;
    }
    return last;
}
