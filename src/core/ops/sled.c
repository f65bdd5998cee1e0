/* SLED, Self Logits Evolution Decoding (Zhang et al., NeurIPS 2024): the logits evolution of
 * sled_greedy_decode in the official code (github JayZhang42/SLED, transformers fork,
 * generation/utils.py), one step for one row, with op_T = 1 as hard-coded there. Sums and
 * softmaxes are in double: on small models the premature softmaxes are nearly one-hot and
 * p_l - onehot(j) is rounding noise in float32, where the official code's cosines are arbitrary;
 * the float64 run of the official loop gives the tokens this one does. */
#include <math.h>
#include <stdlib.h>

#include "slua/sl_ops.h"
#include "util/error.h"

static void softmax_double(const float *x, int32_t n, double *p)
{
    double max = -INFINITY, sum = 0.0;
    for (int32_t i = 0; i < n; i++)
        if (x[i] > max)
            max = x[i];
    for (int32_t i = 0; i < n; i++)
        sum += p[i] = exp((double)x[i] - max);
    for (int32_t i = 0; i < n; i++)
        p[i] /= sum;
}

sl_status sl_ops_sled_evolve(const float *final_logits, const float *const *premature, int32_t n_layers, int32_t n,
                             float evolution_rate, int32_t evolution_scale, float evolution_lower_bound, float *out,
                             sl_error *err)
{
    if (!final_logits || !out || n <= 0 || n_layers < 0 || (n_layers > 0 && !premature) || evolution_scale <= 0)
        return sl_error_set(err, SL_STATUS_E_ARG, "sled: invalid arguments");
    int32_t k = evolution_scale < n ? evolution_scale : n;
    double *p_final = malloc((size_t)n * sizeof *p_final), *q = malloc((size_t)n * sizeof *q);
    double *delta = calloc((size_t)n, sizeof *delta), *d = malloc((size_t)n * sizeof *d);
    double *weight = malloc((size_t)(n_layers ? n_layers : 1) * (size_t)(k + 1) * sizeof *weight);
    sl_token *top = malloc((size_t)k * sizeof *top);
    if (!p_final || !q || !delta || !d || !weight || !top) {
        free(p_final), free(q), free(delta), free(d), free(weight), free(top);
        return sl_error_set(err, SL_STATUS_E_NOMEM, "sled: out of memory (%d layers x %d)", n_layers, n);
    }
    softmax_double(final_logits, n, p_final);
    sl_ops_top_k(final_logits, n, k, top, NULL); /* topk(softmax(final), evolution_scale) */

    /* Per layer l and top token j: cos(p_l - onehot(j), logits_l - logits_final), kept where
     * positive, squared and normalised over j; the layer's weight is its share of the sums. */
    double total = 0.0;
    for (int32_t l = 0; l < n_layers; l++) {
        double *v = weight + (size_t)l * (size_t)(k + 1);
        softmax_double(premature[l], n, q);
        double dd = 0.0, qd = 0.0;
        for (int32_t i = 0; i < n; i++) {
            d[i] = (double)premature[l][i] - (double)final_logits[i];
            dd += d[i] * d[i];
            qd += q[i] * d[i];
        }
        double sum = 0.0;
        for (int32_t t = 0; t < k; t++) {
            int32_t j = top[t];
            /* |q - e_j|^2 = sum_{i != j} q_i^2 + (1 - q_j)^2, with 1 - q_j as the sum of the others
             * (no cancellation when q is nearly one-hot at j) */
            double others = 0.0, others_sq = 0.0;
            for (int32_t i = 0; i < n; i++)
                if (i != j) {
                    others += q[i];
                    others_sq += q[i] * q[i];
                }
            double gg = others_sq + others * others, gd = qd - d[j];
            double prod = gg * dd;
            double cos = gd / sqrt(prod > 1e-16 ? prod : 1e-16); /* F.cosine_similarity, eps 1e-8 */
            v[t] = cos > 0 ? cos * cos : 0.0;
            sum += v[t];
        }
        if (sum != 0)
            for (int32_t t = 0; t < k; t++)
                v[t] /= sum;
        v[k] = sum;
        total += sum;
    }
    for (int32_t l = 0; l < n_layers; l++) {
        const double *v = weight + (size_t)l * (size_t)(k + 1);
        double w = total != 0 ? v[k] / total : v[k];
        for (int32_t t = 0; t < k; t++)
            delta[top[t]] -= v[t] * w;
    }
    /* one evolution step of the final logits, kept on the top tokens only */
    for (int32_t i = 0; i < n; i++)
        out[i] = evolution_lower_bound;
    for (int32_t t = 0; t < k; t++) {
        int32_t j = top[t];
        out[j] = (float)((double)final_logits[j] - (double)evolution_rate * (p_final[j] + delta[j]));
    }
    free(p_final), free(q), free(delta), free(d), free(weight), free(top);
    return SL_STATUS_OK;
}
