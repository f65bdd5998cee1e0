/* One cell of a logit-lens view: what a layer's distribution says at one position. */
#include <math.h>

#include "slua/sl_ops.h"

/* Whether id a ranks above id b in z: sl_ops_top_k's order (larger value, then smaller id;
 * NaN below every number). */
static bool ranks_above(const float *z, sl_token a, sl_token b)
{
    float va = z[a], vb = z[b];
    bool nan_a = isnan(va), nan_b = isnan(vb);
    if (nan_a != nan_b)
        return nan_b;
    if (!nan_a && va != vb)
        return va > vb;
    return a < b;
}

int32_t sl_ops_lens_cell(const float *z, int32_t n, int32_t k, sl_token target, sl_token *ids, double *probs,
                         sl_lens_cell *cell)
{
    int32_t count = sl_ops_top_k(z, n, k, ids, NULL);
    double lse = sl_ops_logsumexp(z, n);
    for (int32_t i = 0; i < count; i++)
        probs[i] = lse == -INFINITY ? 0.0 : exp((double)z[ids[i]] - lse);
    cell->entropy = sl_ops_entropy(z, n);
    cell->target_rank = 0;
    cell->target_p = NAN;
    if (target >= 0 && target < n) {
        int32_t above = 0;
        for (int32_t i = 0; i < n; i++)
            above += i != target && ranks_above(z, i, target);
        cell->target_rank = above + 1;
        cell->target_p = lse == -INFINITY ? 0.0 : exp((double)z[target] - lse);
    }
    return count;
}
