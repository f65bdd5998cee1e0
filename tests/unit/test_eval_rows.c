/* Per-position layer logits (sl_session_eval_rows) and teacher-forced scores (sl_lm_score):
 * rows agree with the last-position outputs and with all-logits evals, chunking does not change
 * them, prefix reuse matches a full recompute, and bad arguments fail cleanly. The scores
 * themselves are checked against the official code's outputs in tests/lua/test_eval_score.lua. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "test_util.h"

static const sl_token seq[] = {1, 17, 99, 300, 42, 7, 256, 3, 77, 410, 5, 6, 8, 200};
#define N_SEQ ((int32_t)(sizeof seq / sizeof seq[0]))

static sl_model *tiny(void) { return tu_load_model(tu_src("tests/data/hf-tiny/tiny-llama")); }

typedef struct collected {
    int32_t n_out, V, calls, max_chunk;
    float *rows; /* [n_rows][n_out][V] */
} collected;

static sl_status collect(void *user, int32_t row, int32_t n_rows, int32_t n_out, const float *logits, sl_error *err)
{
    (void)err;
    collected *c = user;
    c->calls++;
    c->max_chunk = n_rows > c->max_chunk ? n_rows : c->max_chunk;
    cr_assert_eq(n_out, c->n_out);
    memcpy(c->rows + (size_t)row * (size_t)n_out * (size_t)c->V, logits,
           (size_t)n_rows * (size_t)n_out * (size_t)c->V * sizeof(float));
    return SL_STATUS_OK;
}

static collected run_rows(sl_model *m, int32_t max_rows, const int32_t *layers, int32_t n_layers, unsigned what)
{
    int32_t V = sl_model_n_vocab(m);
    int32_t kinds = ((what & SL_LAYER_RAW) != 0) + ((what & SL_LAYER_NORM) != 0);
    collected c = {.n_out = kinds * n_layers, .V = V};
    c.rows = calloc((size_t)N_SEQ * (size_t)c.n_out * (size_t)V, sizeof(float));
    sl_error err;
    sl_session *s = sl_session_init(m, NULL, &err);
    sl_rows_request req = {.row0 = 0, .layers = layers, .n_layers = n_layers, .what = what, .max_rows = max_rows};
    cr_assert_eq(sl_session_eval_rows(s, seq, N_SEQ, &req, collect, &c, &err), SL_STATUS_OK, "%s", err.msg);
    cr_assert_eq(sl_session_pos(s), N_SEQ);
    sl_session_free(s);
    return c;
}

Test(eval_rows, rows_match_all_logits_and_last_position_layers)
{
    sl_model *m = tiny();
    int32_t N = sl_model_n_layer(m), V = sl_model_n_vocab(m);
    int32_t layers[] = {N, 2, 0};
    collected c = run_rows(m, 0, layers, 3, SL_LAYER_RAW | SL_LAYER_NORM);
    cr_assert_eq(c.calls, 1, "a small request is one chunk");

    sl_error err;
    sl_session *s = sl_session_init(m, NULL, &err);
    cr_assert_eq(sl_session_set_layers(s, layers, 3, SL_LAYER_RAW | SL_LAYER_NORM, &err), SL_STATUS_OK);
    cr_assert_eq(sl_session_eval(s, seq, N_SEQ, SL_EVAL_ALL_LOGITS, &err), SL_STATUS_OK);
    int32_t n_all;
    const float *all = sl_session_logits_all(s, &n_all);
    cr_assert_eq(n_all, N_SEQ);
    for (int32_t r = 0; r < N_SEQ; r++) {
        const float *final = c.rows + ((size_t)r * 6) * (size_t)V;
        double d = tu_max_abs_diff(final, all + (size_t)r * (size_t)V, (size_t)V);
        cr_assert_leq(d, 1e-4, "row %d: layer N raw = final logits (max|d| %g)", r, d);
    }
    const float *last = c.rows + (size_t)(N_SEQ - 1) * 6 * (size_t)V;
    int32_t order[] = {N, 2, 0};
    for (int32_t i = 0; i < 3; i++) {
        double dr = tu_max_abs_diff(last + (size_t)i * V, sl_session_layer_logits(s, order[i], false), (size_t)V);
        double dn = tu_max_abs_diff(last + (size_t)(3 + i) * V, sl_session_layer_logits(s, order[i], true), (size_t)V);
        cr_assert_leq(dr, 1e-4, "layer %d raw at the last row (max|d| %g)", order[i], dr);
        cr_assert_leq(dn, 1e-4, "layer %d logit lens at the last row (max|d| %g)", order[i], dn);
    }
    /* Raw and logit-lens logits of a premature layer differ (the final norm is not applied). */
    cr_assert_gt(tu_max_abs_diff(last + (size_t)1 * V, last + (size_t)4 * V, (size_t)V), 1e-3);
    sl_session_free(s);
    free(c.rows);
    sl_model_free(m);
}

Test(eval_rows, chunking_does_not_change_rows)
{
    sl_model *m = tiny();
    int32_t V = sl_model_n_vocab(m);
    int32_t layers[] = {4, 1};
    collected one = run_rows(m, 0, layers, 2, SL_LAYER_RAW);
    collected small = run_rows(m, 3, layers, 2, SL_LAYER_RAW);
    cr_assert_eq(small.calls, (N_SEQ + 2) / 3);
    cr_assert_eq(small.max_chunk, 3);
    /* The same rows through products of another height: the same bits (batch invariance). */
    size_t count = (size_t)N_SEQ * 2 * (size_t)V;
    cr_assert(memcmp(one.rows, small.rows, count * sizeof *one.rows) == 0, "chunked rows differ (max|d| %g)",
              tu_max_abs_diff(one.rows, small.rows, count));
    free(one.rows);
    free(small.rows);
    sl_model_free(m);
}

Test(eval_rows, bad_requests_fail_cleanly)
{
    sl_model *m = tiny();
    int32_t N = sl_model_n_layer(m);
    sl_error err;
    sl_session *s = sl_session_init(m, NULL, &err);
    collected c = {.n_out = 1, .V = sl_model_n_vocab(m)};
    int32_t bad[] = {N + 1};
    sl_rows_request req = {.row0 = 0, .layers = bad, .n_layers = 1, .what = SL_LAYER_RAW};
    cr_assert_eq(sl_session_eval_rows(s, seq, N_SEQ, &req, collect, &c, &err), SL_STATUS_E_RANGE);
    cr_assert(strstr(err.msg, "layer 9 out of range"), "%s", err.msg);
    int32_t ok[] = {N};
    req.layers = ok;
    req.row0 = N_SEQ;
    cr_assert_eq(sl_session_eval_rows(s, seq, N_SEQ, &req, collect, &c, &err), SL_STATUS_E_RANGE);
    req.row0 = 0;
    req.what = SL_LAYER_HIDDEN;
    cr_assert_eq(sl_session_eval_rows(s, seq, N_SEQ, &req, collect, &c, &err), SL_STATUS_E_ARG);
    cr_assert_eq(sl_session_pos(s), 0, "a refused request leaves the session as it was");
    int32_t blocks[] = {1};
    sl_session *f = sl_session_fork(s, blocks, 1, &err);
    req.what = SL_LAYER_RAW;
    cr_assert_eq(sl_session_eval_rows(f, seq, N_SEQ, &req, collect, &c, &err), SL_STATUS_E_STATE);
    sl_session_free(f);
    sl_session_free(s);
    sl_model_free(m);
}

static double score(sl_session *s, const sl_token *full, int32_t n, int32_t n_prefix, const sl_score_params *p,
                    float *terms, int32_t *layers, int32_t *forwarded)
{
    sl_score_result r;
    sl_error err;
    cr_assert_eq(sl_lm_score(s, full, n, n_prefix, p, terms, layers, &r, &err), SL_STATUS_OK, "%s", err.msg);
    if (forwarded)
        *forwarded = r.n_forwarded;
    return r.log_prob;
}

Test(lm_score, prefix_reuse_matches_full_recompute)
{
    sl_model *m = tiny();
    sl_error err;
    sl_session *cached = sl_session_init(m, NULL, &err), *fresh = sl_session_init(m, NULL, &err);
    int32_t cand[] = {0, 2, 4};
    sl_score_params p = sl_score_default_params();
    p.mode = SL_SCORE_DOLA;
    p.premature = cand;
    p.n_premature = 3;
    sl_score_params q = p;
    q.reuse_prefix = false;
    sl_token other[N_SEQ];
    memcpy(other, seq, sizeof other);
    other[11] = 123; /* a second answer after the same 9-token prompt */
    float t1[8], t2[8];
    int32_t l1[8], l2[8], fw;
    score(cached, seq, N_SEQ, 9, &p, t1, l1, &fw);
    cr_assert_eq(fw, N_SEQ - 1, "the first call runs everything but the last token");
    double a = score(cached, other, N_SEQ, 9, &p, t1, l1, &fw);
    cr_assert_eq(fw, N_SEQ - 1 - 8, "the second answer reuses the prompt up to its last token");
    double b = score(fresh, other, N_SEQ, 9, &q, t2, l2, &fw);
    cr_assert_eq(fw, N_SEQ - 1);
    cr_assert_leq(fabs(a - b), 1e-4 * fmax(1.0, fabs(b)), "cached %g vs recomputed %g", a, b);
    for (int32_t i = 0; i < N_SEQ - 9; i++)
        cr_assert_eq(l1[i], l2[i], "premature layer at answer token %d", i);
    /* An empty answer scores 0 and runs nothing. */
    cr_assert_eq(score(fresh, seq, N_SEQ, N_SEQ, &p, NULL, NULL, &fw), 0.0);
    cr_assert_eq(fw, 0);
    sl_session_free(cached);
    sl_session_free(fresh);
    sl_model_free(m);
}

Test(lm_score, bad_arguments_fail_cleanly)
{
    sl_model *m = tiny();
    sl_error err;
    sl_session *s = sl_session_init(m, NULL, &err);
    sl_score_params p = sl_score_default_params();
    sl_score_result r;
    cr_assert_eq(sl_lm_score(s, seq, N_SEQ, 0, &p, NULL, NULL, &r, &err), SL_STATUS_E_RANGE);
    cr_assert(strstr(err.msg, "n_prefix 0"), "%s", err.msg);
    sl_token bad[] = {1, 2, 9999};
    cr_assert_eq(sl_lm_score(s, bad, 3, 1, &p, NULL, NULL, &r, &err), SL_STATUS_E_RANGE);
    cr_assert(strstr(err.msg, "token id 9999"), "%s", err.msg);
    p.mode = SL_SCORE_DOLA_STATIC;
    cr_assert_eq(sl_lm_score(s, seq, N_SEQ, 3, &p, NULL, NULL, &r, &err), SL_STATUS_E_ARG);
    int32_t far[] = {42};
    p.premature = far;
    p.n_premature = 1;
    cr_assert_eq(sl_lm_score(s, seq, N_SEQ, 3, &p, NULL, NULL, &r, &err), SL_STATUS_E_RANGE);
    cr_assert(strstr(err.msg, "premature layer 42"), "%s", err.msg);
    cr_assert_eq(sl_session_pos(s), 0);
    sl_session_free(s);
    sl_model_free(m);
}
