/* Session invariants: skip masks, forks, KV cache, rewind, stored dtypes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "kernels/kernels.h"
#include "st_writer.h"
#include "test_util.h"

static const sl_token prompt[] = {1, 17, 99, 300, 42, 7, 256, 3, 77, 410};
#define N_PROMPT ((int32_t)(sizeof prompt / sizeof prompt[0]))

static sl_model *tiny(void) { return tu_load_model(tu_src("tests/data/hf-tiny/tiny-llama")); }

static void assert_same(const float *a, const float *b, size_t n, double tol, const char *what)
{
    cr_assert_not_null(a, "%s: missing output", what);
    cr_assert_not_null(b, "%s: missing output", what);
    double d = tu_max_abs_diff(a, b, n);
    cr_assert_leq(d, tol, "%s: max|d| %g", what, d);
}

/* Equal up to float32 rounding of a different summation order (cached vs recomputed keys,
 * per-row kernels vs sgemm): tol relative to the largest |b|, at least tol absolute. A broken
 * cache is off by far more. */
static void assert_close(const float *a, const float *b, size_t n, double tol, const char *what)
{
    double scale = 1.0;
    for (size_t i = 0; b && i < n; i++)
        scale = fmax(scale, fabs(b[i]));
    assert_same(a, b, n, tol * scale, what);
}

Test(session, empty_skip_mask_equals_plain_forward)
{
    sl_model *m = tiny();
    sl_session *a = tu_session(m), *b = tu_session(m);
    sl_error err;
    cr_assert_eq(sl_session_set_skip(b, NULL, 0, &err), SL_STATUS_OK);
    tu_eval(a, prompt, N_PROMPT, 0);
    tu_eval(b, prompt, N_PROMPT, 0);
    assert_same(sl_session_logits(a), sl_session_logits(b), (size_t)sl_model_n_vocab(m), 0.0, "logits");
    cr_assert_eq(sl_session_get_skip(b, NULL), 0);
    sl_session_free(a);
    sl_session_free(b);
    sl_model_free(m);
}

/* With every block bypassed the model is lm_head(final_norm(embedding)), computed here
 * independently in double precision from the raw weights. */
Test(session, skipping_every_block_is_lm_head_on_normed_embedding)
{
    sl_model *m = tiny();
    const sl_model_config *c = sl_model_get_config(m);
    int32_t all[64];
    for (int32_t i = 0; i < c->n_layer; i++)
        all[i] = i;
    sl_session *s = tu_session(m);
    sl_error err;
    cr_assert_eq(sl_session_set_skip(s, all, c->n_layer, &err), SL_STATUS_OK, "%s", err.msg);
    tu_eval(s, prompt, N_PROMPT, 0);

    tu_st_copy w = tu_st_read(tu_src("tests/data/hf-tiny/tiny-llama/model.safetensors"));
    const float *emb = NULL, *norm = NULL, *head = NULL;
    for (int32_t i = 0; i < w.n; i++) {
        if (!strcmp(w.tensors[i].name, "model.embed_tokens.weight"))
            emb = w.tensors[i].data;
        if (!strcmp(w.tensors[i].name, "model.norm.weight"))
            norm = w.tensors[i].data;
        if (!strcmp(w.tensors[i].name, "lm_head.weight"))
            head = w.tensors[i].data;
    }
    cr_assert(emb && norm && head);
    int32_t D = c->n_embd, V = c->n_vocab;
    const float *x = emb + (size_t)prompt[N_PROMPT - 1] * D;
    double ss = 0;
    for (int32_t i = 0; i < D; i++)
        ss += (double)x[i] * x[i];
    double inv = 1.0 / sqrt(ss / D + c->rms_eps);
    float *expected = malloc((size_t)V * sizeof *expected);
    for (int32_t v = 0; v < V; v++) {
        double z = 0;
        for (int32_t i = 0; i < D; i++)
            z += (double)head[(size_t)v * D + i] * norm[i] * x[i] * inv;
        expected[v] = (float)z;
    }
    assert_same(sl_session_logits(s), expected, (size_t)V, 1e-5, "all-skipped logits");
    free(expected);
    tu_st_release(&w);
    sl_session_free(s);
    sl_model_free(m);
}

Test(session, kv_cached_decode_equals_full_recompute)
{
    sl_model *m = tiny();
    int32_t V = sl_model_n_vocab(m);
    sl_session *inc = tu_session(m), *full = tu_session(m);
    tu_eval(inc, prompt, 3, 0);
    for (int32_t i = 3; i < N_PROMPT; i++)
        tu_eval(inc, &prompt[i], 1, 0);
    tu_eval(full, prompt, N_PROMPT, SL_EVAL_ALL_LOGITS);
    int32_t rows;
    const float *all = sl_session_logits_all(full, &rows);
    cr_assert_eq(rows, N_PROMPT);
    assert_close(sl_session_logits(inc), all + (size_t)(rows - 1) * V, (size_t)V, 1e-5, "last position");
    cr_assert_eq(sl_session_pos(inc), N_PROMPT);
    /* Small prefill chunks give the same result as one chunk. */
    sl_session_params p = sl_session_default_params();
    p.n_batch = 3;
    sl_error err;
    sl_session *chunked = sl_session_init(m, &p, &err);
    tu_eval(chunked, prompt, N_PROMPT, SL_EVAL_ALL_LOGITS);
    const float *all2 = sl_session_logits_all(chunked, &rows);
    cr_assert_eq(rows, N_PROMPT);
    assert_close(all2, all, (size_t)rows * V, 1e-5, "chunked prefill");
    sl_session_free(chunked);
    sl_session_free(inc);
    sl_session_free(full);
    sl_model_free(m);
}

Test(session, rewind_and_reset_replay_identically)
{
    sl_model *m = tiny();
    int32_t V = sl_model_n_vocab(m);
    sl_session *s = tu_session(m);
    tu_eval(s, prompt, 6, 0);
    sl_token next = 5;
    tu_eval(s, &next, 1, 0);
    float *first = malloc((size_t)V * sizeof *first);
    memcpy(first, sl_session_logits(s), (size_t)V * sizeof *first);
    sl_error err;
    cr_assert_eq(sl_session_rewind(s, 6, &err), SL_STATUS_OK);
    cr_assert_null(sl_session_logits(s));
    sl_token other = 9;
    tu_eval(s, &other, 1, 0);
    cr_assert_eq(sl_session_rewind(s, 6, &err), SL_STATUS_OK);
    tu_eval(s, &next, 1, 0);
    assert_same(sl_session_logits(s), first, (size_t)V, 0.0, "after rewind");
    cr_assert_eq(sl_session_rewind(s, 99, &err), SL_STATUS_E_RANGE);
    sl_session_reset(s);
    cr_assert_eq(sl_session_pos(s), 0);
    tu_eval(s, prompt, 6, 0);
    tu_eval(s, &next, 1, 0);
    assert_same(sl_session_logits(s), first, (size_t)V, 0.0, "after reset");
    free(first);
    sl_session_free(s);
    sl_model_free(m);
}

/* Drive parent+fork and a plain session with the same mask through prefill and decode,
 * comparing final logits and requested layers at every step. fork_at: the parent's position
 * when the fork is made (0: before the prompt). */
static void check_fork(int32_t fork_at)
{
    sl_model *m = tiny();
    int32_t V = sl_model_n_vocab(m), D = sl_model_n_embd(m), N = sl_model_n_layer(m);
    const int32_t skip[] = {3, 4, 5};
    const int32_t layers[] = {1, 3, 5, 8};
    const unsigned what = SL_LAYER_HIDDEN | SL_LAYER_RAW | SL_LAYER_NORM;
    sl_error err;
    sl_session *parent = tu_session(m), *plain = tu_session(m);
    cr_assert_eq(sl_session_set_skip(plain, skip, 3, &err), SL_STATUS_OK);
    cr_assert_eq(sl_session_set_layers(plain, layers, 4, what, &err), SL_STATUS_OK);
    if (fork_at > 0)
        tu_eval(parent, prompt, fork_at, 0);
    sl_session *fork = sl_session_fork(parent, skip, 3, &err);
    cr_assert_not_null(fork, "%s", err.msg);
    cr_assert_eq(sl_session_set_layers(fork, layers, 4, what, &err), SL_STATUS_OK);
    tu_eval(parent, prompt + fork_at, N_PROMPT - fork_at, 0);
    /* Same chunking everywhere: BLAS results may depend on matrix shapes in the last bits.
     * The fork's first chunk predates its tap, so it runs the shared blocks itself. */
    if (fork_at > 0) {
        tu_eval(fork, prompt, fork_at, 0);
        tu_eval(plain, prompt, fork_at, 0);
    }
    tu_eval(fork, prompt + fork_at, N_PROMPT - fork_at, 0);
    tu_eval(plain, prompt + fork_at, N_PROMPT - fork_at, 0);
    for (int32_t step = 0; step <= 4; step++) {
        assert_same(sl_session_logits(fork), sl_session_logits(plain), (size_t)V, 1e-6, "fork logits");
        for (int32_t i = 0; i < 4; i++) {
            int32_t l = layers[i];
            assert_same(sl_session_layer_hidden(fork, l), sl_session_layer_hidden(plain, l), (size_t)D, 1e-6,
                        "fork hidden");
            assert_same(sl_session_layer_logits(fork, l, false), sl_session_layer_logits(plain, l, false), (size_t)V,
                        1e-6, "fork raw");
            assert_same(sl_session_layer_logits(fork, l, true), sl_session_layer_logits(plain, l, true), (size_t)V,
                        1e-6, "fork norm");
        }
        sl_token next = (sl_token)(11 * step + 40);
        tu_eval(parent, &next, 1, 0);
        tu_eval(fork, &next, 1, 0);
        tu_eval(plain, &next, 1, 0);
    }
    (void)N;
    sl_session_free(fork);
    sl_session_free(parent);
    sl_session_free(plain);
    sl_model_free(m);
}

Test(session, fork_equals_unforked_session_with_same_mask) { check_fork(0); }
Test(session, fork_made_mid_sequence_catches_up_through_shared_cache) { check_fork(4); }

Test(session, fork_must_follow_its_parent)
{
    sl_model *m = tiny();
    sl_error err;
    sl_session *parent = tu_session(m);
    const int32_t skip[] = {2};
    sl_session *fork = sl_session_fork(parent, skip, 1, &err);
    cr_assert_not_null(fork);
    cr_assert_eq(sl_session_eval(fork, prompt, 2, 0, &err), SL_STATUS_E_STATE);
    cr_assert(strstr(err.msg, "follow its parent"), "%s", err.msg);
    tu_eval(parent, prompt, 4, 0);
    sl_token other[] = {1, 17, 5};
    cr_assert_eq(sl_session_eval(fork, other, 3, 0, &err), SL_STATUS_E_STATE);
    cr_assert(strstr(err.msg, "differ"), "%s", err.msg);
    cr_assert_eq(sl_session_pos(fork), 0, "a failed eval leaves the session unchanged");
    cr_assert_null(sl_session_fork(fork, skip, 1, &err));
    cr_assert_eq(err.code, SL_STATUS_E_STATE);
    cr_assert_eq(sl_session_set_skip(parent, skip, 1, &err), SL_STATUS_E_STATE);
    const int32_t bad[] = {8};
    cr_assert_null(sl_session_fork(parent, bad, 1, &err));
    cr_assert(strstr(err.msg, "block 8 out of range [0, 7]"), "%s", err.msg);
    /* Freeing the parent first is safe: the fork keeps it alive. */
    sl_session_free(parent);
    tu_eval(fork, prompt, 4, 0);
    sl_session_free(fork);
    sl_model_free(m);
}

Test(session, bad_arguments_are_rejected_without_side_effects)
{
    sl_model *m = tiny();
    sl_error err;
    sl_session *s = tu_session(m);
    sl_token bad = 512;
    cr_assert_eq(sl_session_eval(s, &bad, 1, 0, &err), SL_STATUS_E_RANGE);
    cr_assert(strstr(err.msg, "token id 512 out of range [0, 511]"), "%s", err.msg);
    cr_assert_eq(sl_session_eval(s, prompt, 0, 0, &err), SL_STATUS_E_ARG);
    int32_t layer = 9;
    cr_assert_eq(sl_session_set_layers(s, &layer, 1, SL_LAYER_RAW, &err), SL_STATUS_E_RANGE);
    cr_assert(strstr(err.msg, "layer 9 out of range [0, 8]"), "%s", err.msg);
    cr_assert_null(sl_session_layer_logits(s, 3, false));
    sl_session_params p = sl_session_default_params();
    p.n_ctx = 8;
    sl_session *small = sl_session_init(m, &p, &err);
    cr_assert_eq(sl_session_eval(small, prompt, N_PROMPT, 0, &err), SL_STATUS_E_RANGE);
    cr_assert(strstr(err.msg, "context full"), "%s", err.msg);
    cr_assert_eq(sl_session_pos(small), 0);
    sl_session_free(small);
    cr_assert_eq(sl_session_pos(s), 0);
    sl_session_free(s);
    sl_model_free(m);
}

/* Write an F16/BF16 copy of tiny-llama, plus an F32 copy holding exactly the rounded values:
 * both must load to the same numbers and give the same outputs (decode and batched prefill
 * exercise both kernel paths). */
static void check_stored_dtype(const char *dtype)
{
    bool bf16 = strcmp(dtype, "BF16") == 0;
    const char *src = tu_src("tests/data/hf-tiny/tiny-llama");
    tu_st_copy w = tu_st_read(tu_src("tests/data/hf-tiny/tiny-llama/model.safetensors"));
    const char *dir16 = strdup(tu_tmpdir()), *dir32 = strdup(tu_tmpdir());
    tu_copy_config(src, dir16);
    tu_copy_config(src, dir32);
    tu_tensor *t16 = calloc((size_t)w.n, sizeof *t16), *t32 = calloc((size_t)w.n, sizeof *t32);
    for (int32_t i = 0; i < w.n; i++) {
        size_t count = w.tensors[i].nbytes / 4;
        const float *f = w.tensors[i].data;
        uint16_t *h = malloc(count * 2);
        float *r = malloc(count * 4);
        for (size_t k = 0; k < count; k++) {
            h[k] = bf16 ? sl_f32_to_bf16(f[k]) : sl_f32_to_f16(f[k]);
            r[k] = bf16 ? sl_bf16_to_f32(h[k]) : sl_f16_to_f32(h[k]);
        }
        t16[i] = w.tensors[i];
        t16[i].dtype = dtype;
        t16[i].data = h;
        t16[i].nbytes = count * 2;
        t32[i] = w.tensors[i];
        t32[i].data = r;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir16);
    tu_st_write(path, t16, w.n);
    snprintf(path, sizeof path, "%s/model.safetensors", dir32);
    tu_st_write(path, t32, w.n);
    sl_model *m16 = tu_load_model(dir16), *m32 = tu_load_model(dir32);
    cr_assert_eq(sl_model_get_config(m16)->dtype, bf16 ? SL_DTYPE_BF16 : SL_DTYPE_F16);
    int32_t V = sl_model_n_vocab(m16);
    sl_token long_prompt[40];
    for (int32_t i = 0; i < 40; i++)
        long_prompt[i] = (sl_token)((i * 37 + 11) % V);
    sl_session *a = tu_session(m16), *b = tu_session(m32);
    tu_eval(a, long_prompt, 40, SL_EVAL_ALL_LOGITS);
    tu_eval(b, long_prompt, 40, SL_EVAL_ALL_LOGITS);
    int32_t rows;
    const float *all_a = sl_session_logits_all(a, &rows);
    assert_same(all_a, sl_session_logits_all(b, &rows), (size_t)rows * V, 1e-4, "prefill logits");
    for (int32_t i = 0; i < 5; i++) {
        sl_token t = (sl_token)(i * 53 % V);
        tu_eval(a, &t, 1, 0);
        tu_eval(b, &t, 1, 0);
        assert_same(sl_session_logits(a), sl_session_logits(b), (size_t)V, 1e-4, "decode logits");
    }
    sl_session_free(a);
    sl_session_free(b);
    sl_model_free(m16);
    sl_model_free(m32);
    for (int32_t i = 0; i < w.n; i++) {
        free((void *)t16[i].data);
        free((void *)t32[i].data);
    }
    free(t16);
    free(t32);
    free((char *)dir16);
    free((char *)dir32);
    tu_st_release(&w);
}

Test(session, bf16_copy_loads_to_the_same_values) { check_stored_dtype("BF16"); }
Test(session, f16_copy_loads_to_the_same_values) { check_stored_dtype("F16"); }

Test(kernels, half_precision_conversions_round_to_nearest_even)
{
    cr_assert_eq(sl_f32_to_bf16(1.0f), 0x3f80);
    cr_assert_eq(sl_f32_to_bf16(1.00390625f), 0x3f80); /* halfway between 0x3f80 and 0x3f81: even */
    cr_assert_eq(sl_f32_to_bf16(1.01171875f), 0x3f82); /* halfway between 0x3f81 and 0x3f82: even */
    cr_assert_eq(sl_f32_to_f16(1.0f), 0x3c00);
    cr_assert_eq(sl_f32_to_f16(65504.0f), 0x7bff);
    cr_assert_eq(sl_f32_to_f16(1e6f), 0x7c00);
    cr_assert_eq(sl_f32_to_f16(-2.0f), 0xc000);
    cr_assert_eq(sl_f32_to_f16(5.9604645e-8f), 0x0001); /* smallest subnormal */
    cr_assert_float_eq(sl_f16_to_f32(0x0001), 5.9604645e-8f, 1e-12);
    cr_assert_float_eq(sl_f16_to_f32(0x3555), 0.33325195f, 1e-9);
    cr_assert_float_eq(sl_bf16_to_f32(0xc0a0), -5.0f, 0);
    for (uint32_t h = 0; h < 0x7c00; h += 7) /* every finite half survives a round trip */
        cr_assert_eq(sl_f32_to_f16(sl_f16_to_f32((uint16_t)h)), h);
}
