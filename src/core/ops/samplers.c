/* Samplers beyond HF's warpers: the residual draw of speculative sampling, and llama.cpp's
 * samplers from their published definitions. One uniform per draw, inverse CDF in token-id
 * order, as sl_sample. */
#include <math.h>
#include <stdlib.h>

#include "util/error.h"
#include "ops_internal.h"
#include "slua/sl_ops.h"

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

/* ------------------------------------------------------------------ top-n-sigma */

void sl_proc_top_n_sigma(float *scores, int32_t n, float n_sigma)
{
    if (n_sigma <= 0.0f || n <= 0)
        return;
    double max = -INFINITY, sum = 0.0;
    int32_t count = 0;
    for (int32_t i = 0; i < n; i++)
        if (scores[i] != -INFINITY && !isnan(scores[i])) {
            max = scores[i] > max ? scores[i] : max;
            sum += scores[i];
            count++;
        }
    if (count == 0)
        return;
    double mean = sum / count, acc = 0.0;
    for (int32_t i = 0; i < n; i++)
        if (scores[i] != -INFINITY && !isnan(scores[i]))
            acc += ((double)scores[i] - mean) * ((double)scores[i] - mean);
    double cutoff = max - n_sigma * sqrt(acc / count);
    for (int32_t i = 0; i < n; i++)
        if ((double)scores[i] < cutoff)
            scores[i] = -INFINITY;
}

/* ------------------------------------------------------------------ XTC */

typedef struct prob_entry {
    double p;
    sl_token id;
} prob_entry;

static int cmp_prob_desc(const void *a, const void *b)
{
    const prob_entry *x = a, *y = b;
    if (x->p != y->p)
        return x->p > y->p ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int32_t sl_proc_xtc(float *scores, int32_t n, float threshold, float probability, double u, int32_t min_keep)
{
    if (probability <= 0.0f || threshold > 0.5f || n < 2 || u > probability)
        return 0;
    double max, total;
    if (!normaliser(scores, n, &max, &total))
        return 0;
    /* Only the tokens at or above the threshold need ordering: at most 1 / threshold of them. */
    int32_t above = 0;
    for (int32_t i = 0; i < n; i++)
        above += sl_softmax_weight(scores[i], max) / total >= threshold;
    if (above < 2)
        return 0;
    int32_t finite = 0;
    for (int32_t i = 0; i < n; i++)
        finite += sl_softmax_weight(scores[i], max) > 0.0;
    if (finite - (above - 1) < (min_keep < 1 ? 1 : min_keep))
        return 0;
    prob_entry *top = malloc((size_t)above * sizeof *top);
    if (!top)
        return -1;
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        double p = sl_softmax_weight(scores[i], max) / total;
        if (p >= threshold)
            top[k++] = (prob_entry){p, i};
    }
    qsort(top, (size_t)above, sizeof *top, cmp_prob_desc);
    for (int32_t i = 0; i < above - 1; i++) /* every top choice but the least likely one */
        scores[top[i].id] = -INFINITY;
    free(top);
    return above - 1;
}

/* ------------------------------------------------------------------ mirostat v2 */

int32_t sl_proc_mirostat_v2(float *scores, int32_t n, float mu)
{
    double max, total;
    if (!normaliser(scores, n, &max, &total))
        return 0;
    sl_token best = sl_ops_argmax(scores, n);
    int32_t kept = 0;
    for (int32_t i = 0; i < n; i++) {
        double p = sl_softmax_weight(scores[i], max) / total;
        if (i != best && (p <= 0.0 || -log2(p) > (double)mu))
            scores[i] = -INFINITY;
        else
            kept++;
    }
    return kept;
}

double sl_surprise(const float *scores, int32_t n, sl_token id)
{
    double max, total;
    if (id < 0 || id >= n || !normaliser(scores, n, &max, &total))
        return NAN;
    return -log2(sl_softmax_weight(scores[id], max) / total);
}

/* ------------------------------------------------------------------ DRY */

sl_status sl_proc_dry(float *scores, int32_t n, const sl_token *ids, int32_t n_ids, float multiplier, float base,
                      int32_t allowed_length, const sl_token *breakers, int32_t n_breakers, sl_error *err)
{
    if (multiplier == 0.0f || n_ids < 2 || n <= 0)
        return SL_STATUS_OK;
    uint8_t *is_breaker = calloc((size_t)n, 1);
    int32_t *longest = calloc((size_t)n, sizeof *longest);
    if (!is_breaker || !longest) {
        free(is_breaker);
        free(longest);
        return sl_error_set(err, SL_STATUS_E_NOMEM, "dry: out of memory for %d scores", n);
    }
    for (int32_t i = 0; i < n_breakers; i++)
        if (breakers[i] >= 0 && breakers[i] < n)
            is_breaker[breakers[i]] = 1;
#define BREAKS(t) ((t) < 0 || (t) >= n || is_breaker[(t)])
    sl_token last = ids[n_ids - 1];
    if (!BREAKS(last)) {
        /* Every earlier occurrence of the last token: the match grows backwards while the tokens
         * before it equal those before the end, up to a breaker; the token that followed the
         * occurrence would repeat a sequence of that length. */
        for (int32_t i = 0; i < n_ids - 1; i++) {
            if (ids[i] != last || BREAKS(ids[i + 1]))
                continue;
            int32_t len = 1;
            for (;;) {
                int32_t j = i - len;
                if (j < 0)
                    break;
                sl_token prev = ids[n_ids - 1 - len];
                if (ids[j] != prev || BREAKS(prev))
                    break;
                len++;
            }
            sl_token next = ids[i + 1];
            if (len > longest[next])
                longest[next] = len;
        }
        for (int32_t t = 0; t < n; t++)
            if (longest[t] >= allowed_length && longest[t] > 0)
                scores[t] -= multiplier * powf(base, (float)(longest[t] - allowed_length));
    }
#undef BREAKS
    free(is_breaker);
    free(longest);
    return SL_STATUS_OK;
}
