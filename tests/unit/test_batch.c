/* Batched evaluation across sessions: every output equals evaluating each session alone, and
 * HF's greedy tokens come out of a batch with mixed lengths, rows leaving early and joining late. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "test_util.h"

static void batch_ok(const sl_batch_entry *e, int32_t n)
{
    sl_error err;
    cr_assert_eq(sl_session_eval_batch(e, n, &err), SL_STATUS_OK, "%s", err.msg);
}

/* Results of the batch equal those of a session alone bit for bit: every product sums each
 * output in one order whatever the number of rows in the pass. */
static void same(const float *batched, const float *alone, size_t n, const char *what)
{
    cr_assert_not_null(batched, "%s: missing batched output", what);
    cr_assert_not_null(alone, "%s: missing output", what);
    cr_assert(memcmp(batched, alone, n * sizeof *batched) == 0, "%s: max|d| %g", what,
              tu_max_abs_diff(batched, alone, n));
}

/* All prompts of greedy.json decoded together: prefill as one batch, then one batch per step of
 * the rows still running. Row r stops after max_new - 3r tokens, so rows leave one by one; the
 * last prompt joins only at step 5, prefilled in the same pass as the others' steps. Tokens must
 * be HF's, logits those of a session alone at every step. */
static void check_greedy_batch(const char *name)
{
    sl_model *m = tu_load_tiny(name);
    char path[512];
    snprintf(path, sizeof path, "%s", tu_tiny_file(name, "golden/greedy.json"));
    json_object *g = tu_load_json(path);
    json_object *results = tu_get(g, "results");
    int32_t R = (int32_t)json_object_array_length(results), V = sl_model_n_vocab(m);
    int32_t max_new = json_object_get_int(tu_get(g, "generate_kwargs.max_new_tokens"));
    cr_assert_leq(R, 8);
    sl_session *bs[8], *solo[8];
    int32_t *prompt[8], *expected[8], limit[8], made[8] = {0}, join[8];
    sl_token next[8];
    for (int32_t r = 0; r < R; r++) {
        json_object *res = json_object_array_get_idx(results, (size_t)r);
        size_t np, ne;
        prompt[r] = tu_ints(tu_get(res, "prompt"), &np);
        expected[r] = tu_ints(tu_get(res, "new_token_ids"), &ne);
        limit[r] = max_new - 3 * r;
        join[r] = r == R - 1 ? 5 : 0;
        cr_assert_geq((int32_t)ne, limit[r]);
        bs[r] = tu_session(m);
        solo[r] = tu_session(m);
        tu_eval(solo[r], prompt[r], (int32_t)np, 0);
        next[r] = (sl_token)np; /* prompt length until the prompt is in */
    }
    for (int32_t step = 0;; step++) {
        sl_batch_entry e[8];
        int32_t n = 0, idx[8];
        for (int32_t r = 0; r < R; r++) {
            if (step < join[r] || made[r] >= limit[r])
                continue;
            bool prefill = sl_session_pos(bs[r]) == 0;
            e[n] = (sl_batch_entry){bs[r], prefill ? prompt[r] : &next[r], prefill ? next[r] : 1, 0};
            idx[n++] = r;
        }
        if (n == 0)
            break;
        batch_ok(e, n);
        for (int32_t k = 0; k < n; k++) {
            int32_t r = idx[k];
            if (sl_session_pos(bs[r]) > sl_session_pos(solo[r]))
                tu_eval(solo[r], &next[r], 1, 0);
            cr_assert_eq(sl_session_pos(bs[r]), sl_session_pos(solo[r]));
            same(sl_session_logits(bs[r]), sl_session_logits(solo[r]), (size_t)V, "final logits");
            next[r] = tu_argmax(sl_session_logits(bs[r]), V);
            cr_assert_eq(next[r], expected[r][made[r]], "%s row %d step %d: %d, HF %d", name, r, made[r], next[r],
                         expected[r][made[r]]);
            made[r]++;
        }
    }
    for (int32_t r = 0; r < R; r++) {
        cr_assert_eq(made[r], limit[r]);
        sl_session_free(bs[r]);
        sl_session_free(solo[r]);
        free(prompt[r]);
        free(expected[r]);
    }
    json_object_put(g);
    sl_model_free(m);
}

Test(batch, greedy_tiny_llama) { check_greedy_batch(tu_tiny_models[0]); }
Test(batch, greedy_tiny_llama_tied) { check_greedy_batch(tu_tiny_models[1]); }
Test(batch, greedy_tiny_qwen2) { check_greedy_batch(tu_tiny_models[2]); }

static const sl_token prompt_a[] = {1, 17, 99, 300, 42, 7, 256, 3, 77, 410};
static const sl_token prompt_b[] = {1, 5, 6};
static const sl_token prompt_c[] = {1, 200, 201, 202, 203, 204, 205};

/* Sessions with different skip masks and per-layer requests in one batch: each row bypasses
 * exactly its own blocks, and hidden states, raw and logit-lens logits match a session alone. */
Test(batch, skip_masks_and_layer_requests_differ_per_row)
{
    sl_model *m = tu_load_tiny("tiny-llama");
    int32_t V = sl_model_n_vocab(m), D = sl_model_get_config(m)->n_embd;
    const int32_t masks[3][3] = {{0}, {2, 3}, {0, 5, 7}};
    const int32_t n_masks[3] = {0, 2, 3};
    const int32_t layers[3][3] = {{4, 8}, {0, 2, 6}, {1}};
    const int32_t n_layers[3] = {2, 3, 1};
    const sl_token *prompts[3] = {prompt_a, prompt_b, prompt_c};
    const int32_t lens[3] = {10, 3, 7};
    sl_session *bs[3], *solo[3];
    sl_error err;
    for (int32_t r = 0; r < 3; r++) {
        for (int32_t k = 0; k < 2; k++) {
            sl_session *s = tu_session(m);
            cr_assert_eq(sl_session_set_skip(s, masks[r], n_masks[r], &err), SL_STATUS_OK, "%s", err.msg);
            cr_assert_eq(sl_session_set_layers(s, layers[r], n_layers[r], SL_LAYER_RAW | SL_LAYER_NORM | SL_LAYER_HIDDEN,
                                               &err),
                         SL_STATUS_OK, "%s", err.msg);
            if (k == 0)
                bs[r] = s;
            else
                solo[r] = s;
        }
    }
    sl_token step_ids[3] = {11, 12, 13};
    for (int32_t step = 0; step < 4; step++) {
        sl_batch_entry e[3];
        for (int32_t r = 0; r < 3; r++) {
            const sl_token *t = step == 0 ? prompts[r] : &step_ids[r];
            int32_t n = step == 0 ? lens[r] : 1;
            e[r] = (sl_batch_entry){bs[r], t, n, 0};
            tu_eval(solo[r], t, n, 0);
        }
        batch_ok(e, 3);
        for (int32_t r = 0; r < 3; r++) {
            same(sl_session_logits(bs[r]), sl_session_logits(solo[r]), (size_t)V, "final");
            for (int32_t i = 0; i < n_layers[r]; i++) {
                int32_t l = layers[r][i];
                same(sl_session_layer_hidden(bs[r], l), sl_session_layer_hidden(solo[r], l), (size_t)D, "hidden");
                same(sl_session_layer_logits(bs[r], l, false), sl_session_layer_logits(solo[r], l, false), (size_t)V,
                     "raw");
                same(sl_session_layer_logits(bs[r], l, true), sl_session_layer_logits(solo[r], l, true), (size_t)V,
                     "norm");
            }
            step_ids[r] = (sl_token)(step_ids[r] * 7 + r) % V;
        }
    }
    /* the masks really differ: rows 0 and 1 of the same tokens would not agree */
    cr_assert_gt(tu_max_abs_diff(sl_session_logits(bs[1]), sl_session_logits(solo[0]), (size_t)V), 1e-3);
    for (int32_t r = 0; r < 3; r++) {
        sl_session_free(bs[r]);
        sl_session_free(solo[r]);
    }
    sl_model_free(m);
}

/* A SkipLayerCD amateur (a fork bypassing a span) in the same batch as its expert: it joins at
 * its branch from the expert's rows. Its outputs, requested layers below the branch included,
 * equal those of the fork evaluated after its parent. */
Test(batch, fork_joins_its_parent_at_the_branch)
{
    sl_model *m = tu_load_tiny("tiny-llama");
    int32_t V = sl_model_n_vocab(m), D = sl_model_get_config(m)->n_embd;
    const int32_t span[] = {3, 4, 5};
    const int32_t layers[] = {1, 4, 8};
    sl_error err;
    sl_session *p1 = tu_session(m), *p2 = tu_session(m);
    sl_session *f1 = sl_session_fork(p1, span, 3, &err), *f2 = sl_session_fork(p2, span, 3, &err);
    cr_assert(f1 && f2);
    cr_assert_eq(sl_session_set_layers(f1, layers, 3, SL_LAYER_RAW | SL_LAYER_HIDDEN, &err), SL_STATUS_OK);
    cr_assert_eq(sl_session_set_layers(f2, layers, 3, SL_LAYER_RAW | SL_LAYER_HIDDEN, &err), SL_STATUS_OK);
    sl_token t = 9;
    for (int32_t step = 0; step < 5; step++) {
        const sl_token *ids = step == 0 ? prompt_a : &t;
        int32_t n = step == 0 ? 10 : 1;
        /* the fork first in the list: order does not matter */
        sl_batch_entry e[2] = {{f1, ids, n, 0}, {p1, ids, n, 0}};
        batch_ok(e, 2);
        tu_eval(p2, ids, n, 0);
        tu_eval(f2, ids, n, 0);
        same(sl_session_logits(p1), sl_session_logits(p2), (size_t)V, "expert");
        same(sl_session_logits(f1), sl_session_logits(f2), (size_t)V, "amateur");
        for (int32_t i = 0; i < 3; i++) {
            same(sl_session_layer_hidden(f1, layers[i]), sl_session_layer_hidden(f2, layers[i]), (size_t)D,
                 "amateur hidden");
            same(sl_session_layer_logits(f1, layers[i], false), sl_session_layer_logits(f2, layers[i], false),
                 (size_t)V, "amateur raw");
        }
        t = tu_argmax(sl_session_logits(p1), V);
    }
    cr_assert_gt(tu_max_abs_diff(sl_session_logits(f1), sl_session_logits(p1), (size_t)V), 1e-3);
    sl_session_free(f1);
    sl_session_free(f2);
    sl_session_free(p1);
    sl_session_free(p2);
    sl_model_free(m);
}

/* Prompts longer than a pass (n_batch 64, three prompts of 200 tokens) with all-position
 * logits: chunks keep each session's own order and every row's logits match. */
Test(batch, long_prompts_span_several_passes)
{
    sl_model *m = tu_load_tiny("tiny-qwen2");
    int32_t V = sl_model_n_vocab(m);
    sl_session_params sp = sl_session_default_params();
    sp.n_batch = 64;
    sl_token prompts[3][200];
    sl_session *bs[3], *solo[3];
    sl_batch_entry e[3];
    sl_error err;
    for (int32_t r = 0; r < 3; r++) {
        for (int32_t i = 0; i < 200; i++)
            prompts[r][i] = (sl_token)((i * 31 + r * 17 + 1) % V);
        bs[r] = sl_session_init(m, &sp, &err);
        solo[r] = sl_session_init(m, &sp, &err);
        e[r] = (sl_batch_entry){bs[r], prompts[r], 200 - 50 * r, SL_EVAL_ALL_LOGITS};
        tu_eval(solo[r], prompts[r], 200 - 50 * r, SL_EVAL_ALL_LOGITS);
    }
    batch_ok(e, 3);
    for (int32_t r = 0; r < 3; r++) {
        int32_t nb, ns;
        const float *ab = sl_session_logits_all(bs[r], &nb), *as = sl_session_logits_all(solo[r], &ns);
        cr_assert_eq(nb, 200 - 50 * r);
        cr_assert_eq(nb, ns);
        same(ab, as, (size_t)nb * (size_t)V, "all logits");
        same(sl_session_logits(bs[r]), sl_session_logits(solo[r]), (size_t)V, "final");
        int32_t n_tok;
        const sl_token *held = sl_session_tokens(bs[r], &n_tok);
        cr_assert_eq(n_tok, nb);
        cr_assert_eq(memcmp(held, prompts[r], (size_t)n_tok * sizeof *held), 0);
        sl_session_free(bs[r]);
        sl_session_free(solo[r]);
    }
    sl_model_free(m);
}

/* Up to four decode rows share a pass through the one-stream kernels, which accumulate each row
 * as a step alone does: a small batch (an expert with its amateur, a few beams) is bit-identical
 * to stepping each session alone. */
Test(batch, few_decode_rows_are_bit_identical_to_steps_alone)
{
    sl_model *m = tu_load_tiny("tiny-llama");
    int32_t V = sl_model_n_vocab(m);
    const sl_token *prompts[4] = {prompt_a, prompt_b, prompt_c, prompt_a + 2};
    const int32_t lens[4] = {10, 3, 7, 8};
    for (int32_t B = 2; B <= 4; B++) {
        sl_session *bs[4], *solo[4];
        sl_token next[4];
        for (int32_t r = 0; r < B; r++) {
            bs[r] = tu_session(m);
            solo[r] = tu_session(m);
            tu_eval(bs[r], prompts[r], lens[r], 0);
            tu_eval(solo[r], prompts[r], lens[r], 0);
            next[r] = tu_argmax(sl_session_logits(solo[r]), V);
        }
        for (int32_t step = 0; step < 6; step++) {
            sl_batch_entry e[4];
            for (int32_t r = 0; r < B; r++) {
                e[r] = (sl_batch_entry){bs[r], &next[r], 1, 0};
                tu_eval(solo[r], &next[r], 1, 0);
            }
            batch_ok(e, B);
            for (int32_t r = 0; r < B; r++) {
                cr_assert_eq(memcmp(sl_session_logits(bs[r]), sl_session_logits(solo[r]), (size_t)V * sizeof(float)), 0,
                             "B %d row %d step %d: max|d| %g", B, r, step,
                             tu_max_abs_diff(sl_session_logits(bs[r]), sl_session_logits(solo[r]), (size_t)V));
                next[r] = tu_argmax(sl_session_logits(solo[r]), V);
            }
        }
        for (int32_t r = 0; r < B; r++) {
            sl_session_free(bs[r]);
            sl_session_free(solo[r]);
        }
    }
    sl_model_free(m);
}

/* A bad entry anywhere fails the whole call before any session moves. */
Test(batch, errors_leave_every_session_unchanged)
{
    sl_model *m = tu_load_tiny("tiny-llama"), *other = tu_load_tiny("tiny-qwen2");
    sl_session *a = tu_session(m), *b = tu_session(m), *o = tu_session(other);
    tu_eval(a, prompt_b, 3, 0);
    const int32_t span[] = {2};
    sl_error err;
    sl_session *f = sl_session_fork(a, span, 1, &err);
    cr_assert_not_null(f);
    tu_eval(f, prompt_b, 3, 0);
    const sl_token bad[] = {1, 99999};
    const sl_token one = 4, two = 5;
    struct {
        sl_batch_entry e[3];
        int32_t n;
        sl_status rc;
        const char *needle;
    } cases[] = {
        {{{a, &one, 1, 0}, {b, bad, 2, 0}}, 2, SL_STATUS_E_RANGE, "entry 2: token id 99999"},
        {{{a, &one, 1, 0}, {a, &one, 1, 0}}, 2, SL_STATUS_E_ARG, "entry 2 repeats the session of entry 1"},
        {{{a, &one, 1, 0}, {o, &one, 1, 0}}, 2, SL_STATUS_E_ARG, "entry 2 is a session of"},
        {{{a, &one, 1, 0}, {f, &two, 1, 0}}, 2, SL_STATUS_E_STATE, "entry 2 is a fork of entry 1"},
        {{{b, &one, 1, 0}, {f, &two, 1, 0}}, 2, SL_STATUS_E_STATE, "entry 2: a fork must follow its parent"},
        {{{a, &one, 1, 0}, {b, NULL, 0, 0}}, 2, SL_STATUS_E_ARG, "entry 2 has no tokens"},
        {{{a, &one, 1, 0}, {NULL, &one, 1, 0}}, 2, SL_STATUS_E_ARG, "entry 2 has no session"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(sl_session_eval_batch(cases[i].e, cases[i].n, &err), cases[i].rc, "case %zu: %s", i, err.msg);
        cr_assert_not_null(strstr(err.msg, cases[i].needle), "case %zu: '%s' lacks '%s'", i, err.msg,
                           cases[i].needle);
        cr_assert_eq(sl_session_pos(a), 3);
        cr_assert_eq(sl_session_pos(b), 0);
        cr_assert_eq(sl_session_pos(f), 3);
    }
    cr_assert_eq(sl_session_eval_batch(NULL, 0, &err), SL_STATUS_E_ARG);
    sl_session_free(f);
    sl_session_free(a);
    sl_session_free(b);
    sl_session_free(o);
    sl_model_free(m);
    sl_model_free(other);
}
