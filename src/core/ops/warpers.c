/* HF transformers' entropy-based warpers (generation/logits_process.py: TypicalLogitsWarper,
 * EpsilonLogitsWarper, EtaLogitsWarper) and the cosine primitive of contrastive search.
 * Probabilities are float32 softmaxes as in PyTorch; sums are accumulated in double (PyTorch's
 * CPU cumsum accumulates float32 in double too) and rounded to float32 where HF compares. */
#include <math.h>
#include <stdlib.h>

#include "util/error.h"
#include "ops_internal.h"
#include "slua/sl_ops.h"

double sl_ops_max_cosine(const float *rows, int32_t n_rows, int32_t dim, const float *v)
{
    double vv = 0.0;
    for (int32_t c = 0; c < dim; c++)
        vv += (double)v[c] * v[c];
    double best = -INFINITY, vn = sqrt(vv);
    for (int32_t r = 0; r < n_rows; r++) {
        const float *x = rows + (int64_t)r * dim;
        double xx = 0.0, xv = 0.0;
        for (int32_t c = 0; c < dim; c++) {
            xx += (double)x[c] * x[c];
            xv += (double)x[c] * v[c];
        }
        double cosine = xx > 0 && vn > 0 ? xv / (sqrt(xx) * vn) : 0.0;
        if (cosine > best)
            best = cosine;
    }
    return best;
}

/* -sum p log p over unmasked entries (PyTorch's nansum / Categorical.entropy skip 0 * -inf). */
static double entropy_of(const float *logp, const float *p, int32_t n)
{
    double h = 0.0;
    for (int32_t i = 0; i < n; i++)
        if (p[i] > 0.0f && isfinite(logp[i]))
            h -= (double)logp[i] * p[i];
    return h;
}

typedef struct typical_entry {
    float shifted;
    sl_token id;
} typical_entry;

static int cmp_typical(const void *a, const void *b)
{
    const typical_entry *x = a, *y = b;
    if (x->shifted != y->shifted)
        return x->shifted < y->shifted ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

sl_status sl_proc_typical(float *scores, int32_t n, float mass, int32_t min_keep, sl_error *err)
{
    if (n <= 0)
        return SL_STATUS_OK;
    float *logp = malloc((size_t)n * sizeof *logp), *p = malloc((size_t)n * sizeof *p);
    typical_entry *order = malloc((size_t)n * sizeof *order);
    if (!logp || !p || !order) {
        free(logp);
        free(p);
        free(order);
        return sl_error_set(err, SL_STATUS_E_NOMEM, "typical: out of memory for %d scores", n);
    }
    sl_ops_log_softmax(logp, scores, n);
    for (int32_t i = 0; i < n; i++)
        p[i] = expf(logp[i]);
    float ent = (float)entropy_of(logp, p, n);
    for (int32_t i = 0; i < n; i++) {
        order[i].shifted = fabsf(-logp[i] - ent);
        order[i].id = i;
    }
    qsort(order, (size_t)n, sizeof *order, cmp_typical);
    /* cumsum(softmax(scores in that order)) < mass counts the entries before the cut. */
    sl_ops_softmax(p, scores, n);
    double cumulative = 0.0;
    int32_t last = 0;
    for (int32_t i = 0; i < n; i++) {
        cumulative += p[order[i].id];
        if ((float)cumulative < mass)
            last++;
    }
    if (last > n - 1)
        last = n - 1;
    float threshold = order[last].shifted;
    for (int32_t i = 0; i < n; i++)
        if (i >= min_keep && order[i].shifted > threshold)
            scores[order[i].id] = -INFINITY;
    free(logp);
    free(p);
    free(order);
    return SL_STATUS_OK;
}

/* Mask entries with probability below cutoff unless among the min_keep highest scores. */
static void mask_below(float *scores, const float *p, int32_t n, float cutoff, int32_t min_keep)
{
    if (min_keep < 1)
        min_keep = 1;
    if (min_keep > n)
        min_keep = n;
    float kth = sl_kth_largest(scores, n, min_keep);
    for (int32_t i = 0; i < n; i++)
        if (p[i] < cutoff && scores[i] < kth)
            scores[i] = -INFINITY;
}

/* Epsilon and eta: p = softmax(scores) in float32 on the heap (without memory for it, each
 * probability from the normaliser in turn). */
static void warp_by_probability(float *scores, int32_t n, bool eta, float epsilon, int32_t min_keep)
{
    if (n <= 0)
        return;
    float *p = malloc((size_t)n * sizeof *p), *logp = eta ? malloc((size_t)n * sizeof *logp) : NULL;
    if (!p || (eta && !logp)) {
        /* Without scratch memory: probabilities one at a time from the normaliser. */
        free(p);
        free(logp);
        double lse = sl_ops_logsumexp(scores, n), h = 0.0;
        if (eta)
            for (int32_t i = 0; i < n; i++) {
                double pi = exp((double)scores[i] - lse);
                if (pi > 0)
                    h -= pi * ((double)scores[i] - lse);
            }
        float cutoff = eta ? fminf(epsilon, sqrtf(epsilon) * expf(-(float)h)) : epsilon;
        float kth = sl_kth_largest(scores, n, min_keep < 1 ? 1 : (min_keep > n ? n : min_keep));
        for (int32_t i = 0; i < n; i++)
            if ((float)exp((double)scores[i] - lse) < cutoff && scores[i] < kth)
                scores[i] = -INFINITY;
        return;
    }
    sl_ops_softmax(p, scores, n);
    float cutoff = epsilon;
    if (eta) {
        sl_ops_log_softmax(logp, scores, n);
        float h = (float)entropy_of(logp, p, n);
        cutoff = fminf(epsilon, sqrtf(epsilon) * expf(-h));
    }
    mask_below(scores, p, n, cutoff, min_keep);
    free(p);
    free(logp);
}

void sl_proc_epsilon(float *scores, int32_t n, float epsilon, int32_t min_keep)
{
    warp_by_probability(scores, n, false, epsilon, min_keep);
}

void sl_proc_eta(float *scores, int32_t n, float epsilon, int32_t min_keep)
{
    warp_by_probability(scores, n, true, epsilon, min_keep);
}
