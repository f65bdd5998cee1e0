/* The float16 KV cache. It is lossy, so its logits are held to the float32 cache's within a
 * bound (the measured drift is logged), the greedy goldens of HF and of the stories260K
 * reference must keep their tokens, and every session operation that moves or shares cache
 * rows (clone, copy, rewind, forks, branches, eval_rows) must agree with the plain F16 path. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "test_util.h"

/* Largest |logit(F16 cache) - logit(F32 cache)| allowed on the fixtures (measured 0.023-0.035,
 * logged by each test). */
#define F16_TOL 0.05

static sl_session *new_session(sl_model *m, sl_dtype kv, int32_t n_batch)
{
    sl_session_params p = sl_session_default_params();
    p.kv_type = kv;
    if (n_batch > 0)
        p.n_batch = n_batch;
    sl_error err;
    sl_session *s = sl_session_init(m, &p, &err);
    cr_assert_not_null(s, "%s", err.msg);
    return s;
}

/* The gap between the best and the second-best logit. */
static double top2_gap(const float *x, int32_t n)
{
    sl_token best = tu_argmax(x, n);
    double second = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (i != best)
            second = fmax(second, x[i]);
    return x[best] - second;
}

/* Greedy on the HF goldens with both caches in lockstep: the F32 cache keeps HF's tokens; the
 * F16 cache keeps them too, except where the float32 top two are closer than F16_TOL apart (a
 * near tie the rounding may flip; logged, and that prompt stops there). Logits within F16_TOL
 * of the F32 cache's while the tokens agree. */
static void check_hf_greedy(const char *name)
{
    sl_model *m = tu_load_tiny(name);
    json_object *g = tu_load_json(tu_tiny_file(name, "golden/greedy.json"));
    json_object *results = tu_get(g, "results");
    int32_t V = sl_model_n_vocab(m);
    double d_max = 0;
    int steps = 0, differ = 0;
    for (size_t r = 0; r < json_object_array_length(results); r++) {
        json_object *res = json_object_array_get_idx(results, r);
        size_t n_prompt, n_expected;
        int32_t *prompt = tu_ints(tu_get(res, "prompt"), &n_prompt);
        int32_t *expected = tu_ints(tu_get(res, "new_token_ids"), &n_expected);
        sl_session *a = new_session(m, SL_DTYPE_F32, 0), *b = new_session(m, SL_DTYPE_F16, 0);
        tu_eval(a, prompt, (int32_t)n_prompt, 0);
        tu_eval(b, prompt, (int32_t)n_prompt, 0);
        for (size_t i = 0; i < n_expected; i++, steps++) {
            d_max = fmax(d_max, tu_max_abs_diff(sl_session_logits(a), sl_session_logits(b), (size_t)V));
            sl_token ta = tu_argmax(sl_session_logits(a), V), tb = tu_argmax(sl_session_logits(b), V);
            cr_assert_eq(ta, expected[i], "%s prompt %zu step %zu: f32 cache %d, HF %d", name, r, i, ta, expected[i]);
            if (tb != expected[i]) {
                double gap = top2_gap(sl_session_logits(a), V);
                cr_log_info("%s prompt %zu step %zu: f16 cache %d, HF %d (f32 top-2 gap %.3g)", name, r, i, tb,
                            expected[i], gap);
                cr_assert_leq(gap, F16_TOL, "%s prompt %zu step %zu: f16 cache %d, HF %d, top-2 gap %g", name, r, i,
                              tb, expected[i], gap);
                differ++;
                break;
            }
            if (sl_model_is_eos(m, tb))
                break;
            tu_eval(a, &ta, 1, 0);
            tu_eval(b, &tb, 1, 0);
        }
        sl_session_free(a);
        sl_session_free(b);
        free(prompt);
        free(expected);
    }
    cr_log_info("%s: f16 cache, max|d logits| vs f32 cache %.3g over %d steps; %d prompts differ from HF", name, d_max,
                steps, differ);
    cr_expect_leq(d_max, F16_TOL, "%s: max|d| %g", name, d_max);
    json_object_put(g);
    sl_model_free(m);
}

Test(kv_f16, greedy_tiny_llama) { check_hf_greedy(tu_tiny_models[0]); }
Test(kv_f16, greedy_tiny_llama_tied) { check_hf_greedy(tu_tiny_models[1]); }
Test(kv_f16, greedy_tiny_qwen2) { check_hf_greedy(tu_tiny_models[2]); }

Test(kv_f16, stories260k_greedy_200_from_bos)
{
    sl_model *m = tu_load_model(tu_src("models/stories260K"));
    json_object *ref = tu_load_json(tu_src("tests/data/stories260K/reference_outputs.json"));
    size_t n_expected;
    int32_t *expected = tu_ints(tu_get(ref, "greedy_from_bos.generated_ids"), &n_expected);
    int32_t V = sl_model_n_vocab(m);
    sl_session *a = new_session(m, SL_DTYPE_F32, 0), *b = new_session(m, SL_DTYPE_F16, 0);
    sl_token tok = sl_model_get_config(m)->bos;
    double d_max = 0;
    for (size_t i = 0; i < n_expected; i++) {
        tu_eval(a, &tok, 1, 0);
        tu_eval(b, &tok, 1, 0);
        d_max = fmax(d_max, tu_max_abs_diff(sl_session_logits(a), sl_session_logits(b), (size_t)V));
        tok = tu_argmax(sl_session_logits(b), V);
        cr_assert_eq(tok, expected[i], "step %zu: f16 cache %d, reference %d", i, tok, expected[i]);
    }
    cr_log_info("stories260K: f16 cache, max|d logits| vs f32 cache over 200 steps %.3g", d_max);
    cr_expect_leq(d_max, F16_TOL, "max|d| %g", d_max);
    free(expected);
    json_object_put(ref);
    sl_session_free(a);
    sl_session_free(b);
    sl_model_free(m);
}

static const sl_token prompt[] = {1, 7, 42, 99, 5, 61, 300, 12, 8, 77, 150, 3, 21, 250, 9, 44, 31, 2, 18, 64};
#define N_PROMPT ((int32_t)(sizeof prompt / sizeof prompt[0]))

static void expect_same_logits(sl_session *a, sl_session *b, int32_t V, double tol, const char *what)
{
    double d = tu_max_abs_diff(sl_session_logits(a), sl_session_logits(b), (size_t)V);
    cr_expect_leq(d, tol, "%s: max|d| %g", what, d);
}

/* Prefill in chunks equals token-by-token decode on an F16 cache bit for bit: the products give
 * every K/V row the same bits whatever the chunk, so their float16 roundings agree too. */
Test(kv_f16, chunked_prefill_equals_decode)
{
    sl_model *m = tu_load_tiny("tiny-qwen2");
    int32_t V = sl_model_n_vocab(m);
    sl_session *a = new_session(m, SL_DTYPE_F16, 7), *b = new_session(m, SL_DTYPE_F16, 0);
    tu_eval(a, prompt, N_PROMPT, 0);
    for (int32_t i = 0; i < N_PROMPT; i++)
        tu_eval(b, &prompt[i], 1, 0);
    expect_same_logits(a, b, V, 0.0, "chunked vs decode");
    sl_session_free(a);
    sl_session_free(b);
    sl_model_free(m);
}

/* Clone, copy and rewind move F16 rows: the results continue exactly as the source does. */
Test(kv_f16, clone_copy_rewind_continue_identically)
{
    sl_model *m = tu_load_tiny("tiny-llama");
    int32_t V = sl_model_n_vocab(m);
    sl_error err;
    sl_session *src = new_session(m, SL_DTYPE_F16, 0);
    tu_eval(src, prompt, 12, 0);
    sl_session *c = sl_session_clone(src, &err);
    cr_assert_not_null(c, "%s", err.msg);
    sl_session *d = new_session(m, SL_DTYPE_F16, 0);
    /* the rows d keeps (the common prefix) come from a product of as many rows as src's
     * prefill takes the same kernel for (5 or more: the tiles), so they are the same bits */
    tu_eval(d, prompt, 6, 0);
    cr_assert_eq(sl_session_copy(d, src, NULL, &err), SL_STATUS_OK, "%s", err.msg);
    sl_session *r = new_session(m, SL_DTYPE_F16, 0);
    tu_eval(r, prompt, 12, 0); /* the same chunks as src, then an other continuation taken back */
    tu_eval(r, prompt + 5, 9, 0);
    cr_assert_eq(sl_session_rewind(r, 12, &err), SL_STATUS_OK, "%s", err.msg);
    tu_eval(src, prompt + 12, N_PROMPT - 12, 0);
    tu_eval(c, prompt + 12, N_PROMPT - 12, 0);
    tu_eval(d, prompt + 12, N_PROMPT - 12, 0);
    tu_eval(r, prompt + 12, N_PROMPT - 12, 0);
    cr_expect_eq(tu_max_abs_diff(sl_session_logits(src), sl_session_logits(c), (size_t)V), 0.0, "clone");
    cr_expect_eq(tu_max_abs_diff(sl_session_logits(src), sl_session_logits(d), (size_t)V), 0.0, "copy");
    cr_expect_eq(tu_max_abs_diff(sl_session_logits(src), sl_session_logits(r), (size_t)V), 0.0, "rewind");
    /* A copy between caches of different types is refused and leaves dst as it was. */
    sl_session *f32 = new_session(m, SL_DTYPE_F32, 0);
    cr_expect_eq(sl_session_copy(f32, src, NULL, &err), SL_STATUS_E_ARG);
    cr_expect(strstr(err.msg, "kv_type") != NULL, "%s", err.msg);
    cr_expect_eq(sl_session_pos(f32), 0);
    sl_session_free(f32);
    sl_session_free(src);
    sl_session_free(c);
    sl_session_free(d);
    sl_session_free(r);
    sl_model_free(m);
}

/* A fork reads the parent's F16 rows below its branch: it equals a fresh F16 session with the
 * same skip mask. */
Test(kv_f16, fork_equals_session_with_same_mask)
{
    sl_model *m = tu_load_tiny("tiny-llama");
    int32_t V = sl_model_n_vocab(m), skip[] = {2, 3};
    sl_error err;
    sl_session *parent = new_session(m, SL_DTYPE_F16, 0);
    sl_session *fork = sl_session_fork(parent, skip, 2, &err);
    cr_assert_not_null(fork, "%s", err.msg);
    sl_session *alone = new_session(m, SL_DTYPE_F16, 0);
    cr_assert_eq(sl_session_set_skip(alone, skip, 2, &err), SL_STATUS_OK, "%s", err.msg);
    for (int32_t i = 0; i < N_PROMPT; i += 5) {
        tu_eval(parent, prompt + i, 5, 0);
        tu_eval(fork, prompt + i, 5, 0);
        tu_eval(alone, prompt + i, 5, 0);
        expect_same_logits(fork, alone, V, 1e-5, "fork vs alone");
    }
    sl_session_free(fork);
    sl_session_free(parent);
    sl_session_free(alone);
    sl_model_free(m);
}

/* Branches (alternatives at one position) against evaluating each one alone, F16 cache. */
Test(kv_f16, branches_equal_separate_evals)
{
    sl_model *m = tu_load_tiny("tiny-qwen2");
    int32_t V = sl_model_n_vocab(m);
    sl_error err;
    sl_session *s = new_session(m, SL_DTYPE_F16, 0);
    tu_eval(s, prompt, N_PROMPT, 0);
    sl_token alts[] = {4, 100, 333};
    cr_assert_eq(sl_session_eval_branches(s, alts, 3, &err), SL_STATUS_OK, "%s", err.msg);
    int32_t rows;
    const float *all = sl_session_logits_all(s, &rows);
    cr_assert_eq(rows, 3);
    float *copy = malloc((size_t)3 * (size_t)V * sizeof *copy);
    memcpy(copy, all, (size_t)3 * (size_t)V * sizeof *copy);
    for (int32_t i = 0; i < 3; i++) {
        sl_session *one = new_session(m, SL_DTYPE_F16, 0);
        tu_eval(one, prompt, N_PROMPT, 0);
        tu_eval(one, &alts[i], 1, 0);
        double d = tu_max_abs_diff(copy + (size_t)i * V, sl_session_logits(one), (size_t)V);
        cr_expect_leq(d, 1e-4, "branch %d: max|d| %g", i, d);
        sl_session_free(one);
    }
    free(copy);
    sl_session_free(s);
    sl_model_free(m);
}

typedef struct rows_sink {
    int32_t V;
    float *last; /* final logits of the last row */
} rows_sink;

static sl_status keep_last(void *user, int32_t row, int32_t n_rows, int32_t n_out, const float *logits, sl_error *err)
{
    (void)err;
    rows_sink *k = user;
    (void)row;
    memcpy(k->last, logits + ((size_t)(n_rows - 1) * n_out + (n_out - 1)) * k->V, (size_t)k->V * sizeof(float));
    return SL_STATUS_OK;
}

/* eval_rows on an F16 cache gives the last row's final logits of a plain eval. */
Test(kv_f16, eval_rows_matches_eval)
{
    sl_model *m = tu_load_tiny("tiny-llama-tied");
    int32_t V = sl_model_n_vocab(m), N = sl_model_n_layer(m);
    sl_error err;
    sl_session *a = new_session(m, SL_DTYPE_F16, 0), *b = new_session(m, SL_DTYPE_F16, 0);
    tu_eval(a, prompt, N_PROMPT, 0);
    rows_sink k = {V, malloc((size_t)V * sizeof(float))};
    int32_t layers[] = {N};
    sl_rows_request req = {.row0 = 0, .layers = layers, .n_layers = 1, .what = SL_LAYER_RAW};
    cr_assert_eq(sl_session_eval_rows(b, prompt, N_PROMPT, &req, keep_last, &k, &err), SL_STATUS_OK, "%s", err.msg);
    double d = tu_max_abs_diff(sl_session_logits(a), k.last, (size_t)V);
    cr_expect_leq(d, 1e-4, "eval_rows: max|d| %g", d);
    free(k.last);
    sl_session_free(a);
    sl_session_free(b);
    sl_model_free(m);
}

Test(kv_f16, unknown_kv_type_is_rejected)
{
    sl_model *m = tu_load_tiny("tiny-llama");
    sl_session_params p = sl_session_default_params();
    p.kv_type = SL_DTYPE_BF16;
    sl_error err;
    cr_expect_null(sl_session_init(m, &p, &err));
    cr_expect(strstr(err.msg, "kv_type") != NULL, "%s", err.msg);
    sl_model_free(m);
}
