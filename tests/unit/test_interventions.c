/* Interventions and captures held to the engine itself, bit for bit: a no-op intervention
 * changes nothing (alone and batched, at every kernel level), rows of a batched pass keep their
 * own interventions, captures equal the hidden states the session already exposes and do not
 * depend on how the prompt is chunked, patching a clean capture back reproduces the clean run,
 * forks inherit or branch where their ops differ, and safetensors written here read back. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "model/safetensors.h"
#include "st_writer.h"
#include "test_util.h"

#define STEPS 4
#define MAX_ROWS 8
#define MAX_PROMPT 24
#define MAX_OPS 128

static sl_token prompts[MAX_ROWS][MAX_PROMPT];
static const int32_t prompt_len[MAX_ROWS] = {11, 3, 17, 1, 24, 8, 13, 5};

static void make_prompts(int32_t V)
{
    uint32_t state = 777u;
    for (int r = 0; r < MAX_ROWS; r++)
        for (int i = 0; i < MAX_PROMPT; i++) {
            state = state * 1664525u + 1013904223u;
            prompts[r][i] = (sl_token)(i == 0 ? 1 : 2 + (int32_t)((state >> 8) % (uint32_t)(V - 2)));
        }
}

static const char *level(void)
{
    return getenv("SL_NO_AVX2") ? "generic" : getenv("SL_NO_AVX512") ? "avx2" : "best";
}

static sl_session *new_session(sl_model *m, int32_t n_batch)
{
    sl_session_params p = sl_session_default_params();
    p.n_batch = n_batch;
    sl_error err;
    sl_session *s = sl_session_init(m, &p, &err);
    cr_assert_not_null(s, "%s", err.msg);
    return s;
}

static sl_intervention *make_iv(const sl_model *m, const sl_op *ops, int32_t n)
{
    sl_error err;
    sl_intervention *iv = sl_intervention_new(m, ops, n, &err);
    cr_assert_not_null(iv, "%s", err.msg);
    return iv;
}

static sl_intervention *parse_iv(const sl_model *m, const char *json, const char *base_dir)
{
    sl_error err;
    sl_intervention *iv = sl_intervention_parse(m, json, strlen(json), "spec.json", base_dir, &err);
    cr_assert_not_null(iv, "%s", err.msg);
    return iv;
}

static void set_iv(sl_session *s, sl_intervention *iv)
{
    sl_error err;
    cr_assert_eq(sl_session_set_intervention(s, iv, &err), SL_STATUS_OK, "%s", err.msg);
}

/* Every writable hook of every block, with values that change nothing: zero vectors, factor 1,
 * a score bias of 0 on every key. */
static sl_intervention *noop_intervention(const sl_model *m, float *zeros)
{
    static sl_op ops[MAX_OPS];
    static const int32_t some_positions[] = {0, 2, 5, 30};
    int32_t N = sl_model_n_layer(m), n = 0;
    for (int32_t l = 0; l < N; l++) {
        static const sl_hook_point resid[] = {SL_HOOK_RESID_PRE, SL_HOOK_ATTN_OUT, SL_HOOK_RESID_MID, SL_HOOK_MLP_OUT,
                                              SL_HOOK_RESID_POST};
        for (int k = 0; k < 5; k++) {
            sl_op o = sl_op_default();
            o.hook = (sl_hook){l, resid[k]};
            o.vector = zeros;
            o.n_vector = sl_hook_width(m, o.hook);
            o.scale = k == 2 ? 3.5f : 1.0f;
            if (k == 3)
                o.positions = (sl_positions){SL_POSITIONS_LIST, some_positions, 4};
            ops[n++] = o;
        }
        sl_op z = sl_op_default();
        z.hook = (sl_hook){l, SL_HOOK_Z};
        z.kind = SL_OP_SCALE;
        ops[n++] = z; /* factor 1 on every head */
        z.kind = SL_OP_ADD;
        z.head = l % 4;
        z.vector = zeros;
        z.n_vector = sl_model_n_embd(m) / 4;
        z.positions.kind = SL_POSITIONS_GENERATED;
        ops[n++] = z;
        sl_op sc = sl_op_default();
        sc.hook = (sl_hook){l, SL_HOOK_ATTN_SCORES};
        sc.key_begin = 0;
        sc.key_end = 64;
        sc.value = 0.0f;
        ops[n++] = sc;
        cr_assert_lt(n, MAX_OPS);
    }
    return make_iv(m, ops, n);
}

/* One row of a run: a session of its own, or a fork of row `parent` (which then evaluates the
 * parent's tokens), with an intervention (own_iv: given to the fork rather than inherited). */
typedef struct row_spec {
    int32_t prompt;
    sl_intervention *iv;
    int32_t parent; /* -1: a session of its own */
    bool own_iv;
} row_spec;

static size_t V_of(const sl_model *m) { return (size_t)sl_model_n_vocab(m); }

/* Runs rows: the prompt, then STEPS greedy steps (a fork follows its parent's tokens). With
 * batched, every pass is one sl_session_eval_batch over all rows (odd rows that are not forks
 * join one pass late, so prompts and steps mix); else each row runs alone, a fork right after
 * a parent made for it. out[r] gets (STEPS + 1) rows of final logits. */
static void run_rows(sl_model *m, const row_spec *rows, int32_t n, bool batched, int32_t n_batch, float **out)
{
    size_t V = V_of(m);
    sl_error err;
    if (!batched) {
        for (int32_t r = 0; r < n; r++) {
            const row_spec *rs = &rows[r];
            bool fork = rs->parent >= 0;
            const row_spec *base = fork ? &rows[rs->parent] : rs;
            sl_session *p = new_session(m, n_batch);
            if (base->iv)
                set_iv(p, base->iv);
            sl_session *f = NULL;
            if (fork) {
                f = rs->own_iv ? sl_session_fork_intervened(p, NULL, 0, rs->iv, &err) : sl_session_fork(p, NULL, 0, &err);
                cr_assert_not_null(f, "%s", err.msg);
            }
            sl_session *mine = fork ? f : p;
            sl_token held;
            const sl_token *tok = prompts[base->prompt];
            int32_t len = prompt_len[base->prompt];
            for (int32_t step = 0; step <= STEPS; step++) {
                tu_eval(p, tok, len, 0);
                sl_token next = tu_argmax(sl_session_logits(p), (int32_t)V);
                if (f)
                    tu_eval(f, tok, len, 0);
                memcpy(out[r] + (size_t)step * V, sl_session_logits(mine), V * sizeof(float));
                held = next;
                tok = &held;
                len = 1;
            }
            sl_session_free(f);
            sl_session_free(p);
        }
        return;
    }
    sl_session *s[MAX_ROWS];
    for (int32_t r = 0; r < n; r++) {
        const row_spec *rs = &rows[r];
        if (rs->parent < 0) {
            s[r] = new_session(m, n_batch);
            if (rs->iv)
                set_iv(s[r], rs->iv);
        } else {
            cr_assert_lt(rs->parent, r);
            s[r] = rs->own_iv ? sl_session_fork_intervened(s[rs->parent], NULL, 0, rs->iv, &err)
                              : sl_session_fork(s[rs->parent], NULL, 0, &err);
            cr_assert_not_null(s[r], "%s", err.msg);
        }
    }
    int32_t done[MAX_ROWS] = {0};
    sl_token next[MAX_ROWS];
    bool has_fork[MAX_ROWS] = {false};
    for (int32_t r = 0; r < n; r++)
        if (rows[r].parent >= 0)
            has_fork[rows[r].parent] = true;
    for (int32_t pass = 0; pass < STEPS + 2; pass++) {
        sl_batch_entry e[MAX_ROWS];
        int32_t k = 0, who[MAX_ROWS];
        for (int32_t r = 0; r < n; r++) {
            bool fork = rows[r].parent >= 0;
            int32_t base = fork ? rows[r].parent : r;
            int32_t late = (!fork && !has_fork[r] && r % 2 == 1) ? 1 : 0;
            if (fork)
                late = 0;
            if (pass < late || done[r] > STEPS)
                continue;
            if (done[r] == 0)
                e[k] = (sl_batch_entry){s[r], prompts[rows[base].prompt], prompt_len[rows[base].prompt], 0};
            else
                e[k] = (sl_batch_entry){s[r], &next[base], 1, 0};
            who[k++] = r;
        }
        if (k == 0)
            continue;
        cr_assert_eq(sl_session_eval_batch(e, k, &err), SL_STATUS_OK, "%s", err.msg);
        for (int32_t i = 0; i < k; i++) {
            int32_t r = who[i];
            memcpy(out[r] + (size_t)done[r] * V, sl_session_logits(s[r]), V * sizeof(float));
            done[r]++;
        }
        for (int32_t i = 0; i < k; i++)
            if (rows[who[i]].parent < 0)
                next[who[i]] = tu_argmax(sl_session_logits(s[who[i]]), (int32_t)V);
    }
    for (int32_t r = n - 1; r >= 0; r--) {
        cr_assert_eq(done[r], STEPS + 1);
        sl_session_free(s[r]);
    }
}

static float **alloc_out(const sl_model *m, int32_t n)
{
    float **o = calloc((size_t)n, sizeof *o);
    cr_assert_not_null(o);
    for (int32_t r = 0; r < n; r++) {
        o[r] = malloc((STEPS + 1) * V_of(m) * sizeof(float));
        cr_assert_not_null(o[r]);
    }
    return o;
}

static void free_out(float **o, int32_t n)
{
    for (int32_t r = 0; r < n; r++)
        free(o[r]);
    free(o);
}

static void same_logits(const sl_model *m, float *const *a, float *const *b, int32_t n, const char *what)
{
    size_t V = V_of(m);
    for (int32_t r = 0; r < n; r++)
        for (int32_t step = 0; step <= STEPS; step++)
            cr_assert(memcmp(a[r] + step * V, b[r] + step * V, V * sizeof(float)) == 0,
                      "%s (%s): row %d, evaluation %d differs (max|d| %g)", what, level(), r, step,
                      tu_max_abs_diff(a[r] + step * V, b[r] + step * V, V));
}

/* ------------------------------------------------------------------ no-op */

static void check_noop(const char *name)
{
    sl_model *m = tu_load_tiny(name);
    make_prompts(sl_model_n_vocab(m));
    float *zeros = calloc((size_t)sl_model_n_embd(m), sizeof *zeros);
    sl_intervention *noop = noop_intervention(m, zeros);
    enum { R = 4 };
    row_spec plain[R], with[R];
    for (int32_t r = 0; r < R; r++) {
        plain[r] = (row_spec){r, NULL, -1, false};
        with[r] = (row_spec){r, noop, -1, false};
    }
    float **ref = alloc_out(m, R), **got = alloc_out(m, R);
    run_rows(m, plain, R, false, 256, ref);
    run_rows(m, with, R, false, 256, got);
    same_logits(m, ref, got, R, "no-op, each row alone");
    run_rows(m, with, R, true, 256, got);
    same_logits(m, ref, got, R, "no-op, batched");
    run_rows(m, with, R, true, 5, got);
    same_logits(m, ref, got, R, "no-op, batched, chunks of 5");
    /* a batch mixing rows with and without it */
    for (int32_t r = 0; r < R; r += 2)
        with[r].iv = NULL;
    run_rows(m, with, R, true, 256, got);
    same_logits(m, ref, got, R, "no-op on every other row, batched");
    free_out(ref, R);
    free_out(got, R);
    sl_intervention_free(noop);
    free(zeros);
    sl_model_free(m);
}

static void noop_all_models(void)
{
    for (int k = 0; k < 3; k++)
        check_noop(tu_tiny_models[k]);
}

Test(interventions, noop_is_bit_identical_best) { noop_all_models(); }

Test(interventions, noop_is_bit_identical_avx2)
{
    tu_cap_kernels("SL_NO_AVX512", true);
    noop_all_models();
    tu_cap_kernels("SL_NO_AVX512", false);
}

Test(interventions, noop_is_bit_identical_generic)
{
    tu_cap_kernels("SL_NO_AVX2", true);
    noop_all_models();
    tu_cap_kernels("SL_NO_AVX2", false);
}

/* ------------------------------------------------------------------ rows with their own */

static float vec_a[256], vec_b[256], vec_head[64];

static void check_mixed_batch(const char *name)
{
    sl_model *m = tu_load_tiny(name);
    make_prompts(sl_model_n_vocab(m));
    int32_t D = sl_model_n_embd(m);
    for (int32_t i = 0; i < D; i++) {
        vec_a[i] = 0.25f * (float)((i * 7) % 11) - 1.0f;
        vec_b[i] = 0.5f * sinf((float)i);
    }
    for (int32_t i = 0; i < 64; i++)
        vec_head[i] = 0.75f * cosf((float)i);
    static const int32_t heads01[] = {0, 1}, head2[] = {2};
    sl_op a = sl_op_default(); /* a steering vector after block 1 */
    a.hook = (sl_hook){1, SL_HOOK_RESID_POST}, a.vector = vec_a, a.n_vector = D, a.scale = 2.0f;
    sl_op b = sl_op_default(); /* another at the input of block 0, generated positions only */
    b.hook = (sl_hook){0, SL_HOOK_RESID_PRE}, b.vector = vec_b, b.n_vector = D;
    b.positions.kind = SL_POSITIONS_GENERATED;
    sl_op abl = sl_op_default(); /* two heads of block 2 ablated */
    abl.hook = (sl_hook){2, SL_HOOK_Z}, abl.kind = SL_OP_SCALE, abl.heads = heads01, abl.n_heads = 2;
    abl.factor = 0.0f;
    sl_op iti = sl_op_default(); /* a head's slice shifted */
    iti.hook = (sl_hook){3, SL_HOOK_Z}, iti.head = 3, iti.vector = vec_head, iti.n_vector = D / 4, iti.scale = 5.0f;
    sl_op pasta = sl_op_default(); /* attention away from keys [0, 3) in one head */
    pasta.hook = (sl_hook){1, SL_HOOK_ATTN_SCORES}, pasta.heads = head2, pasta.n_heads = 1;
    pasta.key_begin = 0, pasta.key_end = 3, pasta.value = -4.6f;
    sl_op late = a; /* the same vector deeper: forks of a row with `a` branch at block 5 */
    late.hook.block = 5;
    sl_intervention *iv_a = make_iv(m, &a, 1), *iv_b = make_iv(m, &b, 1), *iv_abl = make_iv(m, &abl, 1),
                    *iv_iti = make_iv(m, &iti, 1), *iv_pasta = make_iv(m, &pasta, 1);
    sl_op a_late[] = {a, late};
    sl_intervention *iv_a_late = make_iv(m, a_late, 2);
    row_spec rows[MAX_ROWS] = {
        {0, iv_a, -1, false},     {1, iv_b, -1, false},      {2, NULL, -1, false},   {3, iv_abl, -1, false},
        {4, iv_pasta, -1, false}, {5, iv_iti, -1, false},    {0, NULL, 0, false},    {0, iv_a_late, 0, true},
    };
    /* rows 6 and 7: forks of row 0 (inheriting `a`; and taking `a` plus the deeper add) */
    float **alone = alloc_out(m, MAX_ROWS), **batch = alloc_out(m, MAX_ROWS);
    run_rows(m, rows, MAX_ROWS, false, 256, alone);
    run_rows(m, rows, MAX_ROWS, true, 256, batch);
    char what[96];
    snprintf(what, sizeof what, "%s: rows with different interventions", name);
    same_logits(m, alone, batch, MAX_ROWS, what);
    /* and the interventions act: every row with one differs from the plain row 2's prompt run */
    row_spec plain[MAX_ROWS];
    for (int32_t r = 0; r < MAX_ROWS; r++)
        plain[r] = (row_spec){rows[r].prompt, NULL, -1, false};
    float **ref = alloc_out(m, MAX_ROWS);
    run_rows(m, plain, MAX_ROWS, false, 256, ref);
    size_t V = V_of(m);
    for (int32_t r = 0; r < MAX_ROWS; r++) {
        if (r == 2)
            continue;
        bool differs = memcmp(ref[r], batch[r], (STEPS + 1) * V * sizeof(float)) != 0;
        cr_assert(differs, "%s: row %d's intervention changed nothing", name, r);
    }
    free_out(ref, MAX_ROWS);
    free_out(alone, MAX_ROWS);
    free_out(batch, MAX_ROWS);
    sl_intervention *all[] = {iv_a, iv_b, iv_abl, iv_iti, iv_pasta, iv_a_late};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        sl_intervention_free(all[k]);
    sl_model_free(m);
}

static void mixed_all_models(void)
{
    for (int k = 0; k < 3; k++)
        check_mixed_batch(tu_tiny_models[k]);
}

Test(interventions, batch_rows_keep_their_own_best) { mixed_all_models(); }

Test(interventions, batch_rows_keep_their_own_avx2)
{
    tu_cap_kernels("SL_NO_AVX512", true);
    mixed_all_models();
    tu_cap_kernels("SL_NO_AVX512", false);
}

Test(interventions, batch_rows_keep_their_own_generic)
{
    tu_cap_kernels("SL_NO_AVX2", true);
    mixed_all_models();
    tu_cap_kernels("SL_NO_AVX2", false);
}

/* ------------------------------------------------------------------ captures */

static sl_capture_view captured(sl_session *s, sl_hook h)
{
    sl_capture_view v;
    sl_error err;
    cr_assert_eq(sl_session_captured(s, h, &v, &err), SL_STATUS_OK, "%s", err.msg);
    return v;
}

static void capture(sl_session *s, const sl_hook *hooks, int32_t n, sl_positions ps)
{
    sl_error err;
    cr_assert_eq(sl_session_capture(s, hooks, n, ps, &err), SL_STATUS_OK, "%s", err.msg);
}

Test(interventions, resid_pre_capture_equals_layer_hidden)
{
    sl_model *m = tu_load_tiny("tiny-llama");
    make_prompts(sl_model_n_vocab(m));
    int32_t N = sl_model_n_layer(m), D = sl_model_n_embd(m), V = sl_model_n_vocab(m);
    sl_session *s = tu_session(m);
    int32_t layers[16];
    sl_hook hooks[16];
    for (int32_t l = 0; l < N; l++)
        layers[l] = l, hooks[l] = (sl_hook){l, SL_HOOK_RESID_PRE};
    sl_error err;
    cr_assert_eq(sl_session_set_layers(s, layers, N, SL_LAYER_HIDDEN, &err), SL_STATUS_OK, "%s", err.msg);
    capture(s, hooks, N, (sl_positions){SL_POSITIONS_ALL, NULL, 0});
    tu_eval(s, prompts[0], prompt_len[0], 0);
    for (int32_t step = 0; step <= STEPS; step++) {
        int32_t last = sl_session_pos(s) - 1;
        for (int32_t l = 0; l < N; l++) {
            sl_capture_view v = captured(s, hooks[l]);
            cr_assert_eq(v.n_pos, last + 1);
            cr_assert_eq(v.positions[last], last);
            cr_assert(memcmp(v.data + (size_t)last * D, sl_session_layer_hidden(s, l), (size_t)D * sizeof(float)) == 0,
                      "block %d resid_pre at position %d differs from hidden_states[%d]", l, last, l);
        }
        sl_token next = tu_argmax(sl_session_logits(s), V);
        if (step < STEPS)
            tu_eval(s, &next, 1, 0);
    }
    sl_session_free(s);
    sl_model_free(m);
}

/* Every hook of blocks 0 and N-1, all positions: the prompt in chunks of 3 records what one
 * chunk does. */
Test(interventions, chunked_prefill_captures_the_same)
{
    sl_model *m = tu_load_tiny("tiny-qwen2");
    make_prompts(sl_model_n_vocab(m));
    int32_t N = sl_model_n_layer(m);
    sl_hook hooks[2 * SL_HOOK_POINTS];
    int32_t n = 0;
    for (int b = 0; b < 2; b++)
        for (int p = 0; p < SL_HOOK_POINTS; p++)
            hooks[n++] = (sl_hook){b ? N - 1 : 0, (sl_hook_point)p};
    sl_session *one = new_session(m, 256), *chunked = new_session(m, 3);
    capture(one, hooks, n, (sl_positions){SL_POSITIONS_ALL, NULL, 0});
    capture(chunked, hooks, n, (sl_positions){SL_POSITIONS_ALL, NULL, 0});
    tu_eval(one, prompts[4], prompt_len[4], 0);
    tu_eval(chunked, prompts[4], prompt_len[4], 0);
    for (int32_t k = 0; k < n; k++) {
        sl_capture_view a = captured(one, hooks[k]), b = captured(chunked, hooks[k]);
        char name[64];
        sl_hook_name(hooks[k], name, sizeof name);
        cr_assert_eq(a.n_pos, prompt_len[4], "%s", name);
        cr_assert_eq(b.n_pos, a.n_pos, "%s", name);
        cr_assert_eq(a.ndim, b.ndim);
        int64_t total = 1;
        for (int32_t d = 0; d < a.ndim; d++) {
            cr_assert_eq(a.shape[d], b.shape[d], "%s dim %d", name, d);
            total *= a.shape[d];
        }
        cr_assert(memcmp(a.data, b.data, (size_t)total * sizeof(float)) == 0, "%s: chunked prefill recorded other values",
                  name);
    }
    sl_session_free(one);
    sl_session_free(chunked);
    sl_model_free(m);
}

Test(interventions, capture_positions)
{
    sl_model *m = tu_load_tiny("tiny-llama");
    make_prompts(sl_model_n_vocab(m));
    int32_t D = sl_model_n_embd(m), V = sl_model_n_vocab(m);
    sl_hook h = {2, SL_HOOK_RESID_POST};
    /* the reference: every position of prompt 2 and three steps */
    sl_session *all = tu_session(m);
    capture(all, &h, 1, (sl_positions){SL_POSITIONS_ALL, NULL, 0});
    tu_eval(all, prompts[2], prompt_len[2], 0);
    sl_token gen[3];
    for (int i = 0; i < 3; i++) {
        gen[i] = tu_argmax(sl_session_logits(all), V);
        tu_eval(all, &gen[i], 1, 0);
    }
    sl_capture_view view = captured(all, h);
    int32_t P = prompt_len[2], T = P + 3;
    cr_assert_eq(view.n_pos, T);
    sl_capture_view ref = view; /* a copy: the view lives until the next call on the session */
    float *ref_data = malloc((size_t)T * D * sizeof(float));
    memcpy(ref_data, view.data, (size_t)T * D * sizeof(float));
    ref.data = ref_data;
    static const int32_t list[] = {18, 1, 9};
    struct {
        sl_positions ps;
        int32_t n, first;
    } kinds[] = {
        {{SL_POSITIONS_PROMPT, NULL, 0}, P, 0},
        {{SL_POSITIONS_GENERATED, NULL, 0}, 3, P},
        {{SL_POSITIONS_LIST, list, 3}, 3, -1},
    };
    for (int k = 0; k < 3; k++) {
        sl_session *s = tu_session(m);
        capture(s, &h, 1, kinds[k].ps);
        tu_eval(s, prompts[2], prompt_len[2], 0);
        for (int i = 0; i < 3; i++)
            tu_eval(s, &gen[i], 1, 0);
        sl_capture_view v = captured(s, h);
        cr_assert_eq(v.n_pos, kinds[k].n, "positions kind %d: %d recorded", k, v.n_pos);
        for (int32_t i = 0; i < v.n_pos; i++) {
            int32_t want = kinds[k].first >= 0 ? kinds[k].first + i : (int32_t[]){1, 9, 18}[i];
            cr_assert_eq(v.positions[i], want, "positions kind %d, record %d", k, i);
            cr_assert(memcmp(v.data + (size_t)i * D, ref.data + (size_t)want * D, (size_t)D * sizeof(float)) == 0);
        }
        sl_session_free(s);
    }
    /* a rewind drops later positions; positions evaluated again are recorded again */
    sl_error err;
    cr_assert_eq(sl_session_rewind(all, P - 2, &err), SL_STATUS_OK, "%s", err.msg);
    sl_capture_view cut = captured(all, h);
    cr_assert_eq(cut.n_pos, P - 2);
    cr_assert_eq(cut.positions[P - 3], P - 3);
    sl_token other[2] = {7, 8};
    tu_eval(all, other, 2, 0);
    sl_capture_view again = captured(all, h);
    cr_assert_eq(again.n_pos, P);
    sl_session *fresh = tu_session(m);
    capture(fresh, &h, 1, (sl_positions){SL_POSITIONS_ALL, NULL, 0});
    tu_eval(fresh, prompts[2], P - 2, 0);
    tu_eval(fresh, other, 2, 0);
    sl_capture_view want = captured(fresh, h);
    cr_assert(memcmp(again.data, want.data, (size_t)P * D * sizeof(float)) == 0,
              "positions evaluated again after a rewind hold the new values");
    cr_assert(memcmp(again.data + (size_t)(P - 1) * D, ref.data + (size_t)(P - 1) * D, (size_t)D * sizeof(float)) != 0,
              "the new token changed the record");
    sl_session_free(fresh);
    sl_session_free(all);
    free(ref_data);
    sl_model_free(m);
}

/* ------------------------------------------------------------------ set (activation patching) */

Test(interventions, set_from_clean_capture_reproduces_clean_run)
{
    sl_model *m = tu_load_tiny("tiny-llama-tied");
    make_prompts(sl_model_n_vocab(m));
    int32_t D = sl_model_n_embd(m), V = sl_model_n_vocab(m), L = 3;
    int32_t P = prompt_len[0];
    sl_token clean[MAX_PROMPT], corrupt[MAX_PROMPT];
    memcpy(clean, prompts[0], (size_t)P * sizeof(sl_token));
    memcpy(corrupt, clean, sizeof clean);
    corrupt[2] = clean[2] == 5 ? 6 : 5;
    corrupt[P - 1] = clean[P - 1] == 9 ? 10 : 9;
    sl_hook h = {L, SL_HOOK_RESID_POST};
    sl_session *s = tu_session(m);
    capture(s, &h, 1, (sl_positions){SL_POSITIONS_ALL, NULL, 0});
    float *clean_logits = malloc((STEPS + 1) * (size_t)V * sizeof(float));
    sl_token gen[STEPS];
    tu_eval(s, clean, P, 0);
    memcpy(clean_logits, sl_session_logits(s), (size_t)V * sizeof(float));
    for (int i = 0; i < STEPS; i++) {
        gen[i] = tu_argmax(sl_session_logits(s), V);
        tu_eval(s, &gen[i], 1, 0);
        memcpy(clean_logits + (size_t)(i + 1) * V, sl_session_logits(s), (size_t)V * sizeof(float));
    }
    sl_capture_view v = captured(s, h);
    int32_t T = P + STEPS;
    cr_assert_eq(v.n_pos, T);
    int32_t pos[MAX_PROMPT + STEPS];
    for (int32_t i = 0; i < T; i++)
        pos[i] = i;
    sl_op set = sl_op_default();
    set.hook = h, set.kind = SL_OP_SET, set.values = v.data, set.n_rows = T;
    set.positions = (sl_positions){SL_POSITIONS_LIST, pos, T};
    sl_intervention *patch = make_iv(m, &set, 1);
    sl_session *c = tu_session(m);
    set_iv(c, patch);
    tu_eval(c, corrupt, P, 0);
    cr_assert(memcmp(sl_session_logits(c), clean_logits, (size_t)V * sizeof(float)) == 0,
              "patched prompt logits differ (max|d| %g)", tu_max_abs_diff(sl_session_logits(c), clean_logits, V));
    for (int i = 0; i < STEPS; i++) {
        tu_eval(c, &gen[i], 1, 0);
        cr_assert(memcmp(sl_session_logits(c), clean_logits + (size_t)(i + 1) * V, (size_t)V * sizeof(float)) == 0,
                  "patched step %d differs", i);
    }
    /* without the patch the corrupted run differs */
    sl_session *u = tu_session(m);
    tu_eval(u, corrupt, P, 0);
    cr_assert(memcmp(sl_session_logits(u), clean_logits, (size_t)V * sizeof(float)) != 0);
    (void)D;
    sl_session_free(u);
    sl_session_free(c);
    sl_intervention_free(patch);
    free(clean_logits);
    sl_session_free(s);
    sl_model_free(m);
}

/* ------------------------------------------------------------------ forks */

Test(interventions, forks_inherit_and_branch)
{
    sl_model *m = tu_load_tiny("tiny-llama");
    make_prompts(sl_model_n_vocab(m));
    int32_t D = sl_model_n_embd(m), V = sl_model_n_vocab(m);
    for (int32_t i = 0; i < D; i++)
        vec_a[i] = 0.1f * (float)(i % 5) - 0.2f;
    sl_op at3 = sl_op_default(), at1 = sl_op_default(), at5 = sl_op_default();
    at3.hook = (sl_hook){3, SL_HOOK_RESID_POST}, at3.vector = vec_a, at3.n_vector = D, at3.scale = 3.0f;
    at1 = at3, at1.hook.block = 1;
    at5 = at3, at5.hook.block = 5;
    sl_intervention *iv3 = make_iv(m, &at3, 1), *iv1 = make_iv(m, &at1, 1), *iv5 = make_iv(m, &at5, 1);
    sl_error err;

    /* inherit: the fork's intervention and logits are its parent's */
    sl_session *p = tu_session(m);
    set_iv(p, iv3);
    sl_session *f = sl_session_fork(p, NULL, 0, &err);
    cr_assert_not_null(f, "%s", err.msg);
    cr_assert_eq(sl_session_intervention(f), iv3);
    tu_eval(p, prompts[1], prompt_len[1], 0);
    tu_eval(f, prompts[1], prompt_len[1], 0);
    cr_assert(memcmp(sl_session_logits(p), sl_session_logits(f), (size_t)V * sizeof(float)) == 0);
    /* the parent keeps it while it has forks */
    cr_assert_eq(sl_session_set_intervention(p, iv1, &err), SL_STATUS_E_STATE);
    sl_session_free(f);
    sl_session_free(p);

    /* a plain parent's fork with its own (first differing block 3) equals a fresh session with it */
    p = tu_session(m);
    f = sl_session_fork_intervened(p, NULL, 0, iv3, &err);
    cr_assert_not_null(f, "%s", err.msg);
    sl_session *fresh = tu_session(m);
    set_iv(fresh, iv3);
    const sl_token *tok = prompts[2];
    int32_t len = prompt_len[2];
    sl_token next;
    for (int step = 0; step <= STEPS; step++) {
        tu_eval(p, tok, len, 0);
        tu_eval(f, tok, len, 0);
        tu_eval(fresh, tok, len, 0);
        cr_assert(memcmp(sl_session_logits(f), sl_session_logits(fresh), (size_t)V * sizeof(float)) == 0,
                  "step %d: the fork differs from a fresh session with its intervention", step);
        next = tu_argmax(sl_session_logits(p), V);
        tok = &next, len = 1;
    }
    /* below its branch (3) it must agree with its parent; at or above it may differ */
    cr_assert_eq(sl_session_set_intervention(f, iv1, &err), SL_STATUS_E_STATE);
    cr_assert(strstr(err.msg, "block 1") != NULL, "%s", err.msg);
    cr_assert_eq(sl_session_set_intervention(f, iv5, &err), SL_STATUS_OK, "%s", err.msg);
    sl_session_free(fresh);
    sl_session_free(f);
    sl_session_free(p);

    /* ops, captures and hook functions on skipped blocks are refused */
    int32_t skip3[] = {3};
    p = tu_session(m);
    set_iv(p, iv3);
    cr_assert_null(sl_session_fork(p, skip3, 1, &err), "a fork skipping block 3 inherits an op on it");
    cr_assert(strstr(err.msg, "op 0") && strstr(err.msg, "block 3"), "%s", err.msg);
    f = sl_session_fork_intervened(p, skip3, 1, iv5, &err);
    cr_assert_not_null(f, "%s", err.msg);
    cr_assert_eq(sl_session_set_intervention(f, iv3, &err), SL_STATUS_E_STATE);
    sl_hook h3 = {3, SL_HOOK_RESID_MID};
    cr_assert_eq(sl_session_capture(f, &h3, 1, (sl_positions){SL_POSITIONS_ALL, NULL, 0}, &err), SL_STATUS_E_STATE);
    sl_session_free(f);
    sl_session_free(p);
    sl_session *sk = tu_session(m);
    cr_assert_eq(sl_session_set_skip(sk, skip3, 1, &err), SL_STATUS_OK, "%s", err.msg);
    cr_assert_eq(sl_session_set_intervention(sk, iv3, &err), SL_STATUS_E_STATE);
    cr_assert(strstr(err.msg, "skip"), "%s", err.msg);
    sl_session_free(sk);
    sk = tu_session(m);
    set_iv(sk, iv3);
    cr_assert_neq(sl_session_set_skip(sk, skip3, 1, &err), SL_STATUS_OK);
    sl_session_free(sk);

    sl_intervention_free(iv1);
    sl_intervention_free(iv3);
    sl_intervention_free(iv5);
    sl_model_free(m);
}

/* ------------------------------------------------------------------ safetensors */

static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16); /* the values below are exact in bfloat16 */
}

static uint16_t to_f16(float f)
{
    /* exact for the small multiples of 1/4 used below (normal half floats) */
    if (f == 0.0f)
        return 0;
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u, exp = ((u >> 23) & 0xffu) - 127 + 15, mant = (u >> 13) & 0x3ffu;
    return (uint16_t)(sign | (exp << 10) | mant);
}

Test(interventions, safetensors_round_trip_and_vector_files)
{
    const char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/caps.safetensors", dir);
    float a[6] = {1.5f, -2.0f, 0.0f, INFINITY, -0.25f, 3e-30f}, b[4] = {7, 8, 9, 10};
    const char *names[] = {"blocks.0.hook_resid_post", "z"};
    const float *data[] = {a, b};
    int64_t sa[] = {2, 3}, sb[] = {1, 2, 2};
    const int64_t *shapes[] = {sa, sb};
    int32_t ndims[] = {2, 3};
    sl_error err;
    cr_assert_eq(sl_safetensors_write(path, names, data, shapes, ndims, 2, &err), SL_STATUS_OK, "%s", err.msg);
    sl_st_set *st = sl_st_open_file(path, false, &err);
    cr_assert_not_null(st, "%s", err.msg);
    cr_assert_eq(sl_st_count(st), 2);
    for (int k = 0; k < 2; k++) {
        const sl_st_tensor *t = sl_st_find(st, names[k]);
        cr_assert_not_null(t, "%s", names[k]);
        cr_assert_eq(t->dtype, SL_ST_F32);
        cr_assert_eq(t->ndim, ndims[k]);
        for (int d = 0; d < ndims[k]; d++)
            cr_assert_eq(t->shape[d], shapes[k][d]);
        cr_assert_eq(t->nbytes, (k ? 4 : 6) * sizeof(float));
        cr_assert(memcmp(t->data, data[k], t->nbytes) == 0, "%s read back other values", names[k]);
    }
    sl_st_close(st);
    /* an unwritable path fails with a message naming it */
    cr_assert_neq(sl_safetensors_write("/nonexistent-dir/x.safetensors", names, data, shapes, ndims, 2, &err),
                  SL_STATUS_OK);
    cr_assert(strstr(err.msg, "/nonexistent-dir/x.safetensors"), "%s", err.msg);

    /* spec vectors from files: F32, F16, BF16 (of any shape holding d_model values); not I32 */
    sl_model *m = tu_load_tiny("tiny-llama");
    int32_t D = sl_model_n_embd(m);
    float f32[64];
    uint16_t h16[64], b16[64];
    for (int32_t i = 0; i < D; i++) {
        f32[i] = 0.25f * (float)(i - 20);
        h16[i] = to_f16(f32[i]);
        b16[i] = to_bf16(f32[i]);
    }
    tu_tensor ts[] = {
        {"v32", "F32", 1, {D}, f32, (size_t)D * 4},
        {"v16", "F16", 1, {D}, h16, (size_t)D * 2},
        {"vb16", "BF16", 2, {1, D}, b16, (size_t)D * 2},
        {"vi", "I32", 1, {D}, f32, (size_t)D * 4},
    };
    snprintf(path, sizeof path, "%s/vecs.safetensors", dir);
    tu_st_write(path, ts, 4);
    static const char *const refs[] = {"v32", "v16", "vb16"};
    for (int k = 0; k < 3; k++) {
        char json[256];
        snprintf(json, sizeof json,
                 "[{\"hook\": \"blocks.2.hook_resid_post\", \"op\": \"add\", \"vector\": \"vecs.safetensors:%s\"}]",
                 refs[k]);
        sl_intervention *iv = parse_iv(m, json, dir);
        const sl_op *o = sl_intervention_op(iv, 0);
        cr_assert_eq(o->n_vector, D);
        cr_assert(memcmp(o->vector, f32, (size_t)D * sizeof(float)) == 0, "%s loaded other values", refs[k]);
        sl_intervention_free(iv);
    }
    const char *bad = "[{\"hook\": \"blocks.2.hook_resid_post\", \"op\": \"add\", \"vector\": \"vecs.safetensors:vi\"}]";
    cr_assert_null(sl_intervention_parse(m, bad, strlen(bad), "spec.json", dir, &err));
    cr_assert(strstr(err.msg, "op 0: field 'vector'") && strstr(err.msg, "I32"), "%s", err.msg);
    sl_model_free(m);
}
