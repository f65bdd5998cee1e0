/* Primitives of the decoder catalogue: HF's typical / epsilon / eta warpers and the cosine of
 * contrastive search on hand-computed cases, and session copies, clones and the hidden-state
 * history on the hf-tiny model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "test_util.h"

#define NEG_INF (-INFINITY)

/* scores = ln p for p = (0.5, 0.3, 0.15, 0.05): H = 1.142125 nats; the distances |-ln p - H|
 * are 0.449, 0.062, 0.755, 1.854, so the typical order is ids 1, 0, 2, 3 with cumulative
 * probabilities 0.3, 0.8, 0.95, 1. */
static void four(float *s)
{
    static const double p[4] = {0.5, 0.3, 0.15, 0.05};
    for (int i = 0; i < 4; i++)
        s[i] = (float)log(p[i]);
}

static const char *kept(const float *s, int32_t n)
{
    static char buf[64];
    for (int32_t i = 0; i < n; i++)
        buf[i] = s[i] == NEG_INF ? '0' : '1';
    buf[n] = 0;
    return buf;
}

static const char *typical(float mass, int32_t min_keep)
{
    float s[4];
    four(s);
    sl_error err;
    cr_assert_eq(sl_proc_typical(s, 4, mass, min_keep, &err), SL_STATUS_OK);
    return kept(s, 4);
}

Test(typical, keeps_the_prefix_whose_mass_reaches_the_target)
{
    cr_assert_str_eq(typical(0.2f, 1), "0100"); /* 0.3 >= 0.2 at the first entry */
    cr_assert_str_eq(typical(0.5f, 1), "1100"); /* 0.3 < 0.5, 0.8 >= 0.5 */
    cr_assert_str_eq(typical(0.9f, 1), "1110"); /* 0.8 < 0.9, 0.95 >= 0.9 */
    cr_assert_str_eq(typical(0.99f, 1), "1111");
}

Test(typical, min_keep_counts_in_the_typical_order)
{
    cr_assert_str_eq(typical(0.2f, 3), "1110");
}

Test(typical, kept_values_are_unchanged)
{
    float s[4], ref[4];
    four(s);
    four(ref);
    sl_proc_typical(s, 4, 0.5f, 1, NULL);
    cr_assert(s[0] == ref[0] && s[1] == ref[1]);
}

static const char *cutoff(bool eta, float eps, int32_t min_keep)
{
    float s[4];
    four(s);
    if (eta)
        sl_proc_eta(s, 4, eps, min_keep);
    else
        sl_proc_epsilon(s, 4, eps, min_keep);
    return kept(s, 4);
}

Test(epsilon, masks_probabilities_below_the_cutoff)
{
    cr_assert_str_eq(cutoff(false, 0.1f, 1), "1110");
    cr_assert_str_eq(cutoff(false, 0.2f, 1), "1100");
    cr_assert_str_eq(cutoff(false, 0.6f, 1), "1000"); /* every p below: the best is kept */
    cr_assert_str_eq(cutoff(false, 0.6f, 2), "1100");
}

Test(eta, cutoff_is_the_smaller_of_eps_and_sqrt_eps_exp_minus_entropy)
{
    /* eps 0.1: sqrt(0.1) e^-H = 0.1009 > 0.1, so the cutoff is 0.1 (masks 0.05). */
    cr_assert_str_eq(cutoff(true, 0.1f, 1), "1110");
    /* eps 0.2: sqrt(0.2) e^-H = 0.1427 (masks 0.05, keeps 0.15). */
    cr_assert_str_eq(cutoff(true, 0.2f, 1), "1110");
    /* eps 0.25: sqrt(0.25) e^-H = 0.1596 (masks 0.15 and 0.05). */
    cr_assert_str_eq(cutoff(true, 0.25f, 1), "1100");
    cr_assert_str_eq(cutoff(true, 0.9f, 3), "1110");
}

Test(max_cosine, by_hand)
{
    const float rows[] = {1, 0, 0, 1, 1, 1};
    const float a[] = {1, 0}, b[] = {-1, 0}, c[] = {1, 1};
    cr_assert_float_eq(sl_ops_max_cosine(rows, 3, 2, a), 1.0, 1e-12);
    cr_assert_float_eq(sl_ops_max_cosine(rows, 3, 2, b), 0.0, 1e-12);
    cr_assert_float_eq(sl_ops_max_cosine(rows, 2, 2, c), sqrt(0.5), 1e-12);
}

/* ------------------------------------------------------------------ sessions */

static sl_model *tiny(void) { return tu_load_model(tu_src("tests/data/hf-tiny/tiny-llama")); }

static const sl_token prompt[] = {1, 17, 99, 300, 42, 7};

static void same_logits(const sl_session *a, const sl_session *b, int32_t V, const char *what)
{
    cr_assert(memcmp(sl_session_logits(a), sl_session_logits(b), (size_t)V * sizeof(float)) == 0, "%s", what);
}

Test(session_copy, clone_continues_bit_for_bit)
{
    sl_model *m = tiny();
    int32_t V = sl_model_n_vocab(m);
    sl_error err;
    sl_session *a = sl_session_init(m, NULL, &err);
    tu_eval(a, prompt, 6, 0);
    sl_session *b = sl_session_clone(a, &err);
    cr_assert_not_null(b, "%s", err.msg);
    cr_assert_eq(sl_session_pos(b), 6);
    same_logits(a, b, V, "clone's logits");
    sl_token t = 33;
    tu_eval(a, &t, 1, 0);
    tu_eval(b, &t, 1, 0);
    same_logits(a, b, V, "after one more token");
    sl_session_free(a); /* the clone does not depend on its source */
    tu_eval(b, &t, 1, 0);
    sl_session_free(b);
    sl_model_free(m);
}

Test(session_copy, copies_only_rows_after_the_common_prefix)
{
    sl_model *m = tiny();
    int32_t V = sl_model_n_vocab(m);
    sl_error err;
    sl_session *a = sl_session_init(m, NULL, &err), *b = sl_session_init(m, NULL, &err);
    sl_session *ref = sl_session_init(m, NULL, &err);
    tu_eval(a, prompt, 6, 0);
    sl_session_copy(b, a, NULL, &err);
    const sl_token ta[] = {10, 11, 12}, tb[] = {20, 21};
    tu_eval(a, ta, 3, 0);
    tu_eval(b, tb, 2, 0);
    int32_t copied = -1;
    cr_assert_eq(sl_session_copy(b, a, &copied, &err), SL_STATUS_OK, "%s", err.msg);
    cr_assert_eq(copied, 3, "rows copied: %d", copied);
    cr_assert_eq(sl_session_pos(b), 9);
    tu_eval(ref, prompt, 6, 0);
    tu_eval(ref, ta, 3, 0);
    sl_token t = 5;
    tu_eval(b, &t, 1, 0);
    tu_eval(ref, &t, 1, 0);
    same_logits(b, ref, V, "copied session against one that evaluated the same tokens");
    cr_assert_eq(sl_session_copy(b, b, &copied, &err), SL_STATUS_OK);
    cr_assert_eq(copied, 0);
    sl_session_free(a);
    sl_session_free(b);
    sl_session_free(ref);
    sl_model_free(m);
}

Test(session_copy, refuses_forks_and_different_masks)
{
    sl_model *m = tiny();
    sl_error err;
    sl_session *a = sl_session_init(m, NULL, &err), *b = sl_session_init(m, NULL, &err);
    int32_t skip[] = {2};
    cr_assert_eq(sl_session_set_skip(b, skip, 1, &err), SL_STATUS_OK);
    cr_assert_eq(sl_session_copy(b, a, NULL, &err), SL_STATUS_E_STATE);
    cr_assert(strstr(err.msg, "skip masks differ"), "%s", err.msg);
    sl_session *f = sl_session_fork(a, skip, 1, &err);
    cr_assert_null(sl_session_clone(a, &err));
    cr_assert(strstr(err.msg, "forks"), "%s", err.msg);
    sl_session_free(f);
    sl_session_free(a);
    sl_session_free(b);
    sl_model_free(m);
}

Test(keep_hidden, rows_are_the_final_normed_states_of_every_position)
{
    sl_model *m = tiny();
    int32_t D = sl_model_n_embd(m), N = sl_model_n_layer(m);
    sl_error err;
    sl_session *all = sl_session_init(m, NULL, &err), *one = sl_session_init(m, NULL, &err);
    cr_assert_eq(sl_session_keep_hidden(all, true, &err), SL_STATUS_OK);
    cr_assert_eq(sl_session_set_layers(one, &N, 1, SL_LAYER_HIDDEN, &err), SL_STATUS_OK);
    tu_eval(all, prompt, 6, 0);
    int32_t n;
    const float *rows = sl_session_hidden_rows(all, &n);
    cr_assert_eq(n, 6);
    for (int32_t i = 0; i < 6; i++) {
        tu_eval(one, &prompt[i], 1, 0);
        double d = tu_max_abs_diff(rows + (size_t)i * D, sl_session_layer_hidden(one, N), (size_t)D);
        cr_assert(d <= 1e-5, "position %d differs by %g", i, d);
    }
    cr_assert_float_eq(sl_session_degeneration_penalty(all), sl_ops_max_cosine(rows, 5, D, rows + 5 * (size_t)D),
                       1e-12);
    cr_assert_eq(sl_session_keep_hidden(one, true, &err), SL_STATUS_E_STATE);
    sl_session *copy = sl_session_clone(all, &err); /* the history travels with a clone */
    int32_t n_copy;
    const float *copied = sl_session_hidden_rows(copy, &n_copy);
    cr_assert_eq(n_copy, 6);
    cr_assert(memcmp(copied, rows, (size_t)6 * (size_t)D * sizeof(float)) == 0);
    sl_session_free(copy);
    sl_session_rewind(all, 1, &err);
    cr_assert(isnan(sl_session_degeneration_penalty(all)));
    sl_session_free(all);
    sl_session_free(one);
    sl_model_free(m);
}

/* ------------------------------------------------------------------ llama.cpp samplers */

static void logs(float *s, const double *p, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        s[i] = p[i] > 0 ? (float)log(p[i]) : NEG_INF;
}

Test(top_n_sigma, keeps_scores_within_n_standard_deviations_of_the_max)
{
    /* mean 2.5, population std sqrt(1.25) = 1.118 */
    float a[] = {1, 2, 3, 4}, b[] = {1, 2, 3, 4}, c[] = {NEG_INF, 2, 3, 4}, d[] = {1, 2, 3, 4};
    sl_proc_top_n_sigma(a, 4, 1.0f); /* cutoff 2.882 */
    cr_assert_str_eq(kept(a, 4), "0011");
    sl_proc_top_n_sigma(b, 4, 2.0f); /* cutoff 1.764 */
    cr_assert_str_eq(kept(b, 4), "0111");
    sl_proc_top_n_sigma(c, 4, 1.0f); /* masked entries do not count: mean 3, std 0.816 */
    cr_assert_str_eq(kept(c, 4), "0001");
    sl_proc_top_n_sigma(d, 4, 0.0f);
    cr_assert_str_eq(kept(d, 4), "1111");
}

static const char *xtc(const double *p, int32_t n, float threshold, double u, int32_t min_keep, int32_t *masked)
{
    static float s[8];
    logs(s, p, n);
    *masked = sl_proc_xtc(s, n, threshold, 0.5f, u, min_keep);
    return kept(s, n);
}

Test(xtc, masks_the_top_choices_but_the_least_likely)
{
    const double p[] = {0.4, 0.3, 0.2, 0.1};
    int32_t m;
    cr_assert_str_eq(xtc(p, 4, 0.25f, 0.1, 1, &m), "0111");
    cr_assert_eq(m, 1);
    cr_assert_str_eq(xtc(p, 4, 0.25f, 0.9, 1, &m), "1111"); /* the draw is above the probability */
    cr_assert_str_eq(xtc(p, 4, 0.35f, 0.1, 1, &m), "1111"); /* a single top choice stays */
    cr_assert_str_eq(xtc(p, 4, 0.05f, 0.1, 1, &m), "0001");
    cr_assert_str_eq(xtc(p, 4, 0.05f, 0.1, 2, &m), "1111"); /* would leave fewer than min_keep */
    cr_assert_str_eq(xtc(p, 4, 0.6f, 0.1, 1, &m), "1111");  /* threshold above 0.5: off */
    const double tie[] = {0.3, 0.3, 0.4};
    cr_assert_str_eq(xtc(tie, 3, 0.25f, 0.1, 1, &m), "010"); /* equal least likely: the higher id stays */
}

Test(mirostat_v2, keeps_tokens_whose_surprise_is_at_most_mu)
{
    const double p[] = {0.5, 0.25, 0.125, 0.125}; /* surprises 1, 2, 3, 3 bits */
    float s[4];
    logs(s, p, 4);
    cr_assert_float_eq(sl_surprise(s, 4, 1), 2.0, 1e-6);
    cr_assert_eq(sl_proc_mirostat_v2(s, 4, 2.5f), 2);
    cr_assert_str_eq(kept(s, 4), "1100");
    cr_assert_float_eq(sl_surprise(s, 4, 1), log2(3.0), 1e-6); /* renormalised: 0.25 / 0.75 */
    logs(s, p, 4);
    sl_proc_mirostat_v2(s, 4, 0.5f);
    cr_assert_str_eq(kept(s, 4), "1000"); /* the most likely always stays */
    logs(s, p, 4);
    sl_proc_mirostat_v2(s, 4, 3.5f);
    cr_assert_str_eq(kept(s, 4), "1111");
}

static float dry_delta(const sl_token *ids, int32_t n_ids, sl_token tok, float base, int32_t allowed,
                       const sl_token *breakers, int32_t n_breakers)
{
    float s[16] = {0};
    sl_error err;
    cr_assert_eq(sl_proc_dry(s, 16, ids, n_ids, 1.0f, base, allowed, breakers, n_breakers, &err), SL_STATUS_OK);
    for (int32_t i = 0; i < 16; i++)
        cr_assert(i == tok || s[i] == 0.0f, "only token %d is penalised (token %d: %g)", tok, i, s[i]);
    return s[tok];
}

Test(dry, penalises_the_token_that_extends_a_repeat)
{
    /* ... 1 2 | 3 ... 1 2: appending 3 would repeat "1 2 3": match length 2. */
    const sl_token a[] = {1, 2, 3, 9, 1, 2};
    cr_assert_float_eq(dry_delta(a, 6, 3, 2.0f, 2, NULL, 0), -1.0f, 1e-6); /* 1 * 2^(2-2) */
    cr_assert_float_eq(dry_delta(a, 6, 3, 2.0f, 3, NULL, 0), 0.0f, 1e-6);  /* shorter than allowed */
    /* 5 1 2 | 3 ... 5 1 2: match length 3 */
    const sl_token b[] = {5, 1, 2, 3, 7, 5, 1, 2};
    cr_assert_float_eq(dry_delta(b, 8, 3, 2.0f, 2, NULL, 0), -2.0f, 1e-6); /* 2^(3-2) */
    cr_assert_float_eq(dry_delta(b, 8, 3, 2.0f, 1, NULL, 0), -4.0f, 1e-6); /* 2^(3-1) */
    const sl_token brk1[] = {1}, brk2[] = {2}, brk3[] = {3};
    cr_assert_float_eq(dry_delta(b, 8, 3, 2.0f, 2, brk1, 1), 0.0f, 1e-6); /* the match stops at 1: length 1 */
    cr_assert_float_eq(dry_delta(b, 8, 3, 2.0f, 2, brk2, 1), 0.0f, 1e-6); /* the last token breaks */
    cr_assert_float_eq(dry_delta(b, 8, 3, 2.0f, 2, brk3, 1), 0.0f, 1e-6); /* a breaker is never penalised */
}

Test(residual, draws_only_where_p_exceeds_q)
{
    const double p[] = {0.5, 0.3, 0.2}, q[] = {0.2, 0.5, 0.3};
    float ps[3], qs[3];
    logs(ps, p, 3);
    logs(qs, q, 3);
    sl_rng rng;
    sl_rng_seed(&rng, 5);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(sl_sample_residual(ps, qs, 3, &rng), 0);
}

Test(eval_branches, each_row_equals_stepping_that_token)
{
    sl_model *m = tiny();
    int32_t V = sl_model_n_vocab(m), D = sl_model_n_embd(m);
    sl_error err;
    sl_session *s = sl_session_init(m, NULL, &err), *ref = sl_session_init(m, NULL, &err);
    cr_assert_eq(sl_session_keep_hidden(s, true, &err), SL_STATUS_OK);
    cr_assert_eq(sl_session_keep_hidden(ref, true, &err), SL_STATUS_OK);
    tu_eval(s, prompt, 6, 0);
    tu_eval(ref, prompt, 6, 0);
    const sl_token alt[] = {40, 3, 511, 40};
    cr_assert_eq(sl_session_eval_branches(s, alt, 4, &err), SL_STATUS_OK, "%s", err.msg);
    cr_assert_eq(sl_session_pos(s), 6);
    int32_t rows;
    const float *all = sl_session_logits_all(s, &rows);
    cr_assert_eq(rows, 4);
    float *keep = malloc((size_t)4 * V * sizeof *keep), *hid = malloc((size_t)4 * D * sizeof *hid);
    memcpy(keep, all, (size_t)4 * V * sizeof *keep);
    for (int32_t i = 0; i < 4; i++)
        memcpy(hid + (size_t)i * D, sl_session_branch_hidden(s, i), (size_t)D * sizeof *hid);
    for (int32_t i = 0; i < 4; i++) {
        tu_eval(ref, &alt[i], 1, 0);
        double d = tu_max_abs_diff(keep + (size_t)i * V, sl_session_logits(ref), (size_t)V);
        cr_assert(d == 0.0, "branch %d logits differ by %g", i, d);
        int32_t n;
        const float *h = sl_session_hidden_rows(ref, &n);
        d = tu_max_abs_diff(hid + (size_t)i * D, h + (size_t)(n - 1) * D, (size_t)D);
        cr_assert(d == 0.0, "branch %d hidden differs by %g", i, d);
        sl_session_rewind(ref, 6, &err);
    }
    /* The session continues as if the branches had not been evaluated. */
    sl_token t = 7;
    tu_eval(s, &t, 1, 0);
    tu_eval(ref, &t, 1, 0);
    cr_assert(tu_max_abs_diff(sl_session_logits(s), sl_session_logits(ref), (size_t)V) == 0.0);
    cr_assert_null(sl_session_branch_hidden(s, 0));
    free(keep);
    free(hid);
    sl_session_free(s);
    sl_session_free(ref);
    sl_model_free(m);
}

Test(eval_branches, rejects_bad_calls)
{
    sl_model *m = tiny();
    sl_error err;
    sl_session_params p = sl_session_default_params();
    p.n_batch = 2;
    sl_session *s = sl_session_init(m, &p, &err);
    tu_eval(s, prompt, 6, 0);
    const sl_token three[] = {1, 2, 3}, bad[] = {1, 9999};
    cr_assert_eq(sl_session_eval_branches(s, three, 3, &err), SL_STATUS_E_RANGE);
    cr_assert_eq(sl_session_eval_branches(s, bad, 2, &err), SL_STATUS_E_RANGE);
    cr_assert(strstr(err.msg, "9999"), "%s", err.msg);
    int32_t skip[] = {1};
    sl_session *f = sl_session_fork(s, skip, 1, &err);
    cr_assert_eq(sl_session_eval_branches(s, three, 2, &err), SL_STATUS_E_STATE);
    cr_assert_eq(sl_session_pos(s), 6);
    sl_session_free(f);
    sl_session_free(s);
    sl_model_free(m);
}
