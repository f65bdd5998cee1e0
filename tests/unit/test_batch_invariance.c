/* Batch invariance: a token's logits (final, and the raw and normed per-layer logits DoLa and
 * the logit lens read) are a pure function of the model, its context, the session's settings and
 * the kernel level. They are compared for bit equality across what must not matter: the prompt's
 * chunk size, how many sessions shared a batched pass (1, 3, 8, with prompts and steps mixed),
 * and the thread count; at every kernel level, with stored and Q8_0 weights. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "test_util.h"

#define N_PROMPTS 8
#define STEPS 4
#define MAX_PROMPT 40

/* Per session: the final logits and the raw and normed logits of the requested layers after
 * the prompt and after each decode step. */
typedef struct outputs {
    float *v; /* [(STEPS + 1)][1 + 2 * n_layers][V] */
} outputs;

static const int32_t prompt_len[N_PROMPTS] = {37, 3, 11, 1, 24, 8, 40, 16};
static sl_token prompts[N_PROMPTS][MAX_PROMPT];

static void make_prompts(int32_t V)
{
    uint32_t state = 12345u;
    for (int p = 0; p < N_PROMPTS; p++)
        for (int i = 0; i < MAX_PROMPT; i++) {
            state = state * 1664525u + 1013904223u;
            prompts[p][i] = (sl_token)(i == 0 ? 1 : 2 + (int32_t)((state >> 8) % (uint32_t)(V - 2)));
        }
}

static sl_model *load(const char *name, bool q8)
{
    sl_load_params lp = {.weights = q8 ? SL_WEIGHTS_Q8_0 : SL_WEIGHTS_STORED};
    sl_error err;
    sl_model *m = sl_model_load_params(tu_tiny_file(name, ""), &lp, &err);
    cr_assert_not_null(m, "%s", err.msg);
    return m;
}

static sl_session *session(sl_model *m, int32_t n_batch)
{
    sl_session_params p = sl_session_default_params();
    p.n_batch = n_batch;
    sl_error err;
    sl_session *s = sl_session_init(m, &p, &err);
    cr_assert_not_null(s, "%s", err.msg);
    int32_t N = sl_model_n_layer(m), layers[] = {0, N / 2, N - 1};
    cr_assert_eq(sl_session_set_layers(s, layers, 3, SL_LAYER_RAW | SL_LAYER_NORM, &err), SL_STATUS_OK, "%s",
                 err.msg);
    return s;
}

static size_t per_step(const sl_model *m) { return (size_t)(1 + 2 * 3) * (size_t)sl_model_n_vocab(m); }

static void record(const sl_model *m, sl_session *s, float *dst)
{
    size_t V = (size_t)sl_model_n_vocab(m);
    int32_t N = sl_model_n_layer(m), layers[] = {0, N / 2, N - 1};
    memcpy(dst, sl_session_logits(s), V * sizeof(float));
    for (int k = 0; k < 3; k++) {
        memcpy(dst + (1 + 2 * k) * V, sl_session_layer_logits(s, layers[k], false), V * sizeof(float));
        memcpy(dst + (2 + 2 * k) * V, sl_session_layer_logits(s, layers[k], true), V * sizeof(float));
    }
}

/* Prompts [first, first + count) in sessions of chunk size n_batch, evaluated B at a time in
 * batched passes (B = 0: each alone through sl_session_eval), then STEPS greedy steps, also B at
 * a time. Session r joins its batch one pass late when r is odd, so prompts and steps mix. */
static void run(sl_model *m, int32_t n_batch, int32_t B, int threads, outputs *out)
{
    sl_set_num_threads(threads);
    size_t ps = per_step(m);
    int32_t V = sl_model_n_vocab(m);
    sl_session *s[N_PROMPTS];
    sl_token next[N_PROMPTS];
    for (int r = 0; r < N_PROMPTS; r++) {
        s[r] = session(m, n_batch);
        out[r].v = malloc((STEPS + 1) * ps * sizeof(float));
        cr_assert_not_null(out[r].v);
    }
    /* the work of session r: its prompt, then STEPS single tokens */
    int32_t done[N_PROMPTS] = {0};
    for (int32_t g = 0; g < N_PROMPTS; g += (B > 0 ? B : 1)) {
        int32_t count = B > 0 ? (N_PROMPTS - g < B ? N_PROMPTS - g : B) : 1;
        for (int32_t pass = 0; pass < STEPS + 2; pass++) {
            sl_batch_entry e[N_PROMPTS];
            int32_t n = 0, who[N_PROMPTS];
            for (int32_t r = g; r < g + count; r++) {
                int32_t late = (r % 2 == 1 && B > 1) ? 1 : 0;
                if (pass < late || done[r] > STEPS)
                    continue;
                if (done[r] == 0)
                    e[n] = (sl_batch_entry){s[r], prompts[r], prompt_len[r], 0};
                else
                    e[n] = (sl_batch_entry){s[r], &next[r], 1, 0};
                who[n++] = r;
            }
            if (n == 0)
                continue;
            sl_error err;
            if (B == 0)
                cr_assert_eq(sl_session_eval(e[0].session, e[0].tokens, e[0].n_tokens, 0, &err), SL_STATUS_OK, "%s",
                             err.msg);
            else
                cr_assert_eq(sl_session_eval_batch(e, n, &err), SL_STATUS_OK, "%s", err.msg);
            for (int32_t k = 0; k < n; k++) {
                int32_t r = who[k];
                record(m, s[r], out[r].v + (size_t)done[r] * ps);
                next[r] = tu_argmax(sl_session_logits(s[r]), V);
                done[r]++;
            }
        }
    }
    for (int r = 0; r < N_PROMPTS; r++) {
        cr_assert_eq(done[r], STEPS + 1, "session %d ran %d evaluations", r, done[r]);
        sl_session_free(s[r]);
    }
    sl_set_num_threads(1);
}

static void same(const sl_model *m, outputs *a, outputs *b, const char *what)
{
    size_t ps = per_step(m), V = (size_t)sl_model_n_vocab(m);
    for (int r = 0; r < N_PROMPTS; r++) {
        for (size_t k = 0; k < (STEPS + 1) * ps; k += V)
            cr_assert(memcmp(a[r].v + k, b[r].v + k, V * sizeof(float)) == 0,
                      "%s: session %d, evaluation %zu, output %zu differ (max|d| %g)", what, r, k / ps, k % ps / V,
                      tu_max_abs_diff(a[r].v + k, b[r].v + k, V));
    }
}

static void release(outputs *o)
{
    for (int r = 0; r < N_PROMPTS; r++)
        free(o[r].v);
}

static void check_model(const char *name, bool q8)
{
    sl_model *m = load(name, q8);
    make_prompts(sl_model_n_vocab(m));
    outputs ref[N_PROMPTS], other[N_PROMPTS];
    run(m, 256, 0, 1, ref); /* each session alone, whole prompts, one thread */
    static const struct {
        int32_t n_batch, B;
        int threads;
        const char *what;
    } variants[] = {
        {1, 0, 1, "prompts one token per chunk"},  {7, 0, 1, "prompts in chunks of 7"},
        {256, 1, 1, "batched passes of one session"}, {256, 3, 1, "batches of 3"},
        {256, 8, 1, "batches of 8"},               {5, 8, 1, "batches of 8, chunks of 5"},
        {256, 0, 2, "2 threads"},                  {256, 8, 2, "batches of 8, 2 threads"},
    };
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        run(m, variants[v].n_batch, variants[v].B, variants[v].threads, other);
        char what[160];
        snprintf(what, sizeof what, "%s%s, %s: %s", name, q8 ? " q8_0" : "",
                 getenv("SL_NO_AVX2") ? "generic" : getenv("SL_NO_AVX512") ? "avx2" : "best", variants[v].what);
        same(m, ref, other, what);
        release(other);
    }
    release(ref);
    sl_model_free(m);
}

static void check_level(void)
{
    for (int k = 0; k < 3; k++)
        check_model(tu_tiny_models[k], false);
    check_model(tu_tiny_models[0], true);
}

Test(batch_invariance, best_level) { check_level(); }

Test(batch_invariance, avx2_level)
{
    tu_cap_kernels("SL_NO_AVX512", true);
    check_level();
    tu_cap_kernels("SL_NO_AVX512", false);
}

Test(batch_invariance, generic_level)
{
    tu_cap_kernels("SL_NO_AVX2", true);
    check_level();
    tu_cap_kernels("SL_NO_AVX2", false);
}
