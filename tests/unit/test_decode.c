/* Primitives of the decoder catalogue: HF's typical / epsilon / eta warpers and the cosine of
 * contrastive search on hand-computed cases, and session copies, clones and the hidden-state
 * history on the hf-tiny model. */
#include <math.h>
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

static void eval_ok(sl_session *s, const sl_token *t, int32_t n)
{
    sl_error err;
    cr_assert_eq(sl_session_eval(s, t, n, 0, &err), SL_STATUS_OK, "%s", err.msg);
}

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
    eval_ok(a, prompt, 6);
    sl_session *b = sl_session_clone(a, &err);
    cr_assert_not_null(b, "%s", err.msg);
    cr_assert_eq(sl_session_pos(b), 6);
    same_logits(a, b, V, "clone's logits");
    sl_token t = 33;
    eval_ok(a, &t, 1);
    eval_ok(b, &t, 1);
    same_logits(a, b, V, "after one more token");
    sl_session_free(a); /* the clone does not depend on its source */
    eval_ok(b, &t, 1);
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
    eval_ok(a, prompt, 6);
    sl_session_copy(b, a, NULL, &err);
    const sl_token ta[] = {10, 11, 12}, tb[] = {20, 21};
    eval_ok(a, ta, 3);
    eval_ok(b, tb, 2);
    int32_t copied = -1;
    cr_assert_eq(sl_session_copy(b, a, &copied, &err), SL_STATUS_OK, "%s", err.msg);
    cr_assert_eq(copied, 3, "rows copied: %d", copied);
    cr_assert_eq(sl_session_pos(b), 9);
    eval_ok(ref, prompt, 6);
    eval_ok(ref, ta, 3);
    sl_token t = 5;
    eval_ok(b, &t, 1);
    eval_ok(ref, &t, 1);
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
    eval_ok(all, prompt, 6);
    int32_t n;
    const float *rows = sl_session_hidden_rows(all, &n);
    cr_assert_eq(n, 6);
    for (int32_t i = 0; i < 6; i++) {
        eval_ok(one, &prompt[i], 1);
        double d = tu_max_abs_diff(rows + (size_t)i * D, sl_session_layer_hidden(one, N), (size_t)D);
        cr_assert(d <= 1e-5, "position %d differs by %g", i, d);
    }
    cr_assert_float_eq(sl_session_degeneration_penalty(all), sl_ops_max_cosine(rows, 5, D, rows + 5 * (size_t)D),
                       1e-12);
    cr_assert_eq(sl_session_keep_hidden(one, true, &err), SL_STATUS_E_STATE);
    sl_session_rewind(all, 1, &err);
    cr_assert(isnan(sl_session_degeneration_penalty(all)));
    sl_session_free(all);
    sl_session_free(one);
    sl_model_free(m);
}
