/* DoLa.lm_score of the official DoLa repository (voidism/DoLa dola.py), in its three modes.
 * The arithmetic follows the reference's float32 tensors: log_softmax rows, the log-ratio
 * a - b, its optional log_softmax, and the relative-top mask decided on the mature row after a
 * second log_softmax (the reference applies it again; it changes nothing beyond rounding). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "model/internal.h"
#include "slua/sl_eval.h"
#include "slua/sl_ops.h"
#include "score_internal.h"

sl_score_params sl_score_default_params(void)
{
    sl_score_params p = {.mode = SL_SCORE_BASELINE,
                         .mature_layer = -1,
                         .relative_top = 0.1f,
                         .relative_top_value = -1000.0f,
                         .post_softmax = true,
                         .reuse_prefix = true};
    return p;
}

/* Index of the largest divergence; the first wins ties (torch argmax), NaN never wins. */
static int32_t first_argmax(const double *v, int32_t n)
{
    int32_t best = 0;
    for (int32_t j = 1; j < n; j++)
        if (v[j] > v[best] || (isnan(v[best]) && !isnan(v[j])))
            best = j;
    return best;
}

/* The top_k of n values into ids / vals, best first, ties to the lower index. */
static void top_of(const float *x, int32_t n, int32_t k, sl_token *ids, float *vals)
{
    int32_t have = 0;
    for (int32_t v = 0; v < n; v++) {
        float s = x[v];
        if (have == k && !(s > vals[k - 1]))
            continue;
        int32_t at = have < k ? have++ : k - 1;
        while (at > 0 && s > vals[at - 1]) {
            vals[at] = vals[at - 1], ids[at] = ids[at - 1];
            at--;
        }
        vals[at] = s, ids[at] = v;
    }
    for (int32_t i = have; i < k; i++)
        vals[i] = -INFINITY, ids[i] = -1;
}

float sl_score_row(sl_score_ctx *c, const float *row, int32_t k)
{
    const sl_score_params *p = c->p;
    int32_t V = c->V;
    sl_token tok = c->targets[k];
    const float *mature = row; /* output 0 is the mature layer (the final logits in baseline) */
    sl_ops_log_softmax(c->a, mature, V);
    int32_t K = p->top_k;
    if (p->mode == SL_SCORE_BASELINE) {
        if (c->premature)
            c->premature[k] = -1;
        if (K > 0)
            top_of(c->a, V, K, c->top_ids + (size_t)k * K, c->top_scores + (size_t)k * K);
        return c->a[tok];
    }
    int32_t pick = 0;
    if (p->mode == SL_SCORE_DOLA) {
        for (int32_t j = 0; j < p->n_premature; j++)
            c->cand[j] = row + (size_t)(1 + j) * (size_t)V;
        sl_ops_dola_divergences(mature, c->cand, p->n_premature, V, c->js);
        pick = first_argmax(c->js, p->n_premature);
    }
    if (c->premature)
        c->premature[k] = p->premature[pick];
    sl_ops_log_softmax(c->b, row + (size_t)(1 + pick) * (size_t)V, V);
    for (int32_t v = 0; v < V; v++)
        c->d[v] = c->a[v] - c->b[v];
    if (p->post_softmax)
        sl_ops_log_softmax(c->d, c->d, V);
    if (p->relative_top > 0.0f) {
        sl_ops_log_softmax(c->a2, c->a, V);
        sl_ops_relative_top_mask(c->a2, V, p->relative_top, 1, c->keep);
        if (K > 0) { /* the cut tokens' value, as their term would read */
            for (int32_t v = 0; v < V; v++)
                if (!c->keep[v])
                    c->d[v] = p->relative_top_value;
        } else if (!c->keep[tok]) {
            return p->relative_top_value;
        }
    }
    if (K > 0)
        top_of(c->d, V, K, c->top_ids + (size_t)k * K, c->top_scores + (size_t)k * K);
    return c->d[tok];
}

static sl_status on_rows(void *user, int32_t row, int32_t n_rows, int32_t n_out, const float *logits, sl_error *err)
{
    (void)err;
    sl_score_ctx *c = user;
    for (int32_t r = 0; r < n_rows; r++) {
        int32_t k = row + r - c->row0; /* 0 = the first scored position */
        float term = sl_score_row(c, logits + (size_t)r * (size_t)n_out * (size_t)c->V, k);
        if (c->per_token)
            c->per_token[k] = term;
        c->sum += term;
    }
    return SL_STATUS_OK;
}

sl_status sl_score_check(const sl_session *s, const sl_token *full, int32_t n_full, int32_t n_prefix,
                              const sl_score_params *p, sl_error *err)
{
    const sl_model_config *c = &s->model->cfg;
    int32_t N = c->n_layer;
    if (!p)
        return sl_error_set(err, SL_STATUS_E_ARG, "lm_score: no parameters");
    if (n_full < 1 || !full)
        return sl_error_set(err, SL_STATUS_E_ARG, "lm_score: no tokens");
    if (n_prefix < 1 || n_prefix > n_full)
        return sl_error_set(err, SL_STATUS_E_RANGE, "lm_score: n_prefix %d out of range [1, %d]", n_prefix, n_full);
    for (int32_t i = 0; i < n_full; i++)
        if (full[i] < 0 || full[i] >= c->n_vocab)
            return sl_error_set(err, SL_STATUS_E_RANGE, "lm_score: token id %d out of range [0, %d]", full[i],
                                c->n_vocab - 1);
    if (p->mode < SL_SCORE_BASELINE || p->mode > SL_SCORE_DOLA)
        return sl_error_set(err, SL_STATUS_E_ARG, "lm_score: unknown mode %d", (int)p->mode);
    if (p->top_k < 0 || p->top_k > c->n_vocab || (p->top_k > 0 && (!p->top_ids || !p->top_scores)))
        return sl_error_set(err, SL_STATUS_E_ARG, "lm_score: top_k %d needs [0, %d] and its outputs", p->top_k,
                            c->n_vocab);
    if (p->mode != SL_SCORE_BASELINE) {
        int32_t mature = p->mature_layer < 0 ? N : p->mature_layer;
        if (mature > N)
            return sl_error_set(err, SL_STATUS_E_RANGE, "lm_score: mature layer %d out of range [0, %d]", mature, N);
        if (p->n_premature < 1 || !p->premature)
            return sl_error_set(err, SL_STATUS_E_ARG, "lm_score: no premature layer");
        if (p->mode == SL_SCORE_DOLA_STATIC && p->n_premature != 1)
            return sl_error_set(err, SL_STATUS_E_ARG, "lm_score: dola-static takes one premature layer (got %d)",
                                p->n_premature);
        for (int32_t j = 0; j < p->n_premature; j++)
            if (p->premature[j] < 0 || p->premature[j] > N)
                return sl_error_set(err, SL_STATUS_E_RANGE, "lm_score: premature layer %d out of range [0, %d]",
                                    p->premature[j], N);
    }
    if (!(p->relative_top >= 0.0f))
        return sl_error_set(err, SL_STATUS_E_RANGE, "lm_score: relative_top %g < 0", (double)p->relative_top);
    if (n_full - 1 > s->n_ctx)
        return sl_error_set(err, SL_STATUS_E_RANGE, "lm_score: %d tokens exceed the session's n_ctx %d", n_full - 1,
                            s->n_ctx);
    return SL_STATUS_OK;
}

sl_status sl_score_ctx_init(sl_score_ctx *c, const sl_score_params *p, int32_t V, sl_error *err)
{
    int32_t n_pre = p->mode == SL_SCORE_BASELINE ? 0 : p->n_premature;
    *c = (sl_score_ctx){.p = p, .V = V};
    c->a = malloc((size_t)V * sizeof(float));
    c->b = malloc((size_t)V * sizeof(float));
    c->d = malloc((size_t)V * sizeof(float));
    c->a2 = malloc((size_t)V * sizeof(float));
    c->keep = malloc((size_t)V);
    c->cand = malloc((size_t)(n_pre + 1) * sizeof *c->cand);
    c->js = malloc((size_t)(n_pre + 1) * sizeof *c->js);
    if (!c->a || !c->b || !c->d || !c->a2 || !c->keep || !c->cand || !c->js) {
        sl_score_ctx_free(c);
        return sl_error_set(err, SL_STATUS_E_NOMEM, "lm_score: out of memory for a vocabulary of %d", V);
    }
    return SL_STATUS_OK;
}

void sl_score_ctx_free(sl_score_ctx *c)
{
    free(c->a);
    free(c->b);
    free(c->d);
    free(c->a2);
    free(c->keep);
    free(c->cand);
    free(c->js);
    c->a = c->b = c->d = c->a2 = NULL;
    c->keep = NULL;
    c->cand = NULL;
    c->js = NULL;
}

int32_t sl_score_layers(const sl_score_params *p, int32_t N, int32_t *layers)
{
    int32_t n_pre = p->mode == SL_SCORE_BASELINE ? 0 : p->n_premature;
    layers[0] = p->mode == SL_SCORE_BASELINE || p->mature_layer < 0 ? N : p->mature_layer;
    for (int32_t j = 0; j < n_pre; j++)
        layers[1 + j] = p->premature[j];
    return 1 + n_pre;
}

sl_status sl_lm_score(sl_session *s, const sl_token *full, int32_t n_full, int32_t n_prefix,
                      const sl_score_params *p, float *per_token, int32_t *premature, sl_score_result *result,
                      sl_error *err)
{
    sl_error_clear(err);
    if (!s)
        return sl_error_set(err, SL_STATUS_E_ARG, "lm_score: session is NULL");
    sl_status rc = sl_score_check(s, full, n_full, n_prefix, p, err);
    if (rc != SL_STATUS_OK)
        return rc;
    sl_score_result res = {0.0, 0};
    if (n_prefix == n_full) {
        if (result)
            *result = res;
        return SL_STATUS_OK;
    }
    const sl_model_config *c = &s->model->cfg;
    int32_t N = c->n_layer;
    int32_t n_pre = p->mode == SL_SCORE_BASELINE ? 0 : p->n_premature;
    int32_t *layers = malloc((size_t)(1 + n_pre) * sizeof *layers);
    sl_score_ctx ctx;
    rc = sl_score_ctx_init(&ctx, p, c->n_vocab, err);
    if (rc == SL_STATUS_OK && !layers)
        rc = sl_error_set(err, SL_STATUS_E_NOMEM, "lm_score: out of memory for %d layers", n_pre);
    if (rc != SL_STATUS_OK)
        goto done;
    ctx.targets = full + n_prefix;
    ctx.per_token = per_token;
    ctx.premature = premature;
    ctx.top_ids = p->top_ids;
    ctx.top_scores = p->top_scores;
    int32_t n_layers = sl_score_layers(p, N, layers);

    /* Keep the longest prefix the session already holds, but recompute the first scored
     * position (its hidden states are needed). */
    int32_t keep = 0;
    if (p->reuse_prefix) {
        int32_t held;
        const sl_token *have = sl_session_tokens(s, &held);
        int32_t limit = n_prefix - 1 < held ? n_prefix - 1 : held;
        while (keep < limit && have[keep] == full[keep])
            keep++;
    }
    rc = sl_session_rewind(s, keep, err);
    if (rc != SL_STATUS_OK)
        goto done;
    sl_rows_request req = {.row0 = n_prefix - 1 - keep, .layers = layers, .n_layers = n_layers, .what = SL_LAYER_RAW};
    ctx.row0 = req.row0;
    rc = sl_session_eval_rows(s, full + keep, n_full - 1 - keep, &req, on_rows, &ctx, err);
    if (rc == SL_STATUS_OK) {
        res.log_prob = ctx.sum;
        res.n_forwarded = n_full - 1 - keep;
        if (result)
            *result = res;
    }
done:
    free(layers);
    sl_score_ctx_free(&ctx);
    return rc;
}
