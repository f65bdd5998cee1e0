/* Where a decode step's time goes: each weight-matrix class timed on its own with the real
 * kernels and mapped weights, against a full decode step and a plain read of the same bytes.
 *   profile_decode MODEL_DIR [--threads N] [--context 128] [--steps 16]
 *
 * Classes run layer by layer in forward-pass order, so caches see what a real step sees.
 * "attention + rest" is a full step minus the matrix products: attention over the KV cache,
 * RoPE, norms, SwiGLU, residual adds and per-call overheads. "read" streams the same weight
 * bytes with plain loads and the same thread count: the speed a matrix-vector product could
 * reach if compute and threading cost nothing. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/internal.h"
#include "slua/sl.h"

#include "bench_cli.h"

enum { CLASS_QKV, CLASS_O, CLASS_GATE_UP, CLASS_DOWN, CLASS_LM_HEAD, N_CLASSES };
static const char *const class_names[N_CLASSES] = {"q/k/v proj", "o proj", "gate+up proj", "down proj",
                                                   "LM head"};

static void die(const char *file, const char *what, const char *detail) { bench_die(file, what, detail); }

static long parse_long(const char *flag, const char *v, long lo, long hi)
{
    return bench_parse_long("profile_decode", flag, v, lo, hi);
}

static double weight_bytes(const sl_weight *w)
{
    return (double)w->rows * (double)w->cols * (w->dtype == SL_DTYPE_F32 ? 4.0 : 2.0);
}

/* ------------------------------------------------------------------ plain read bandwidth */

typedef struct read_job {
    const sl_weight *const *weights;
    int32_t n_weights;
    int part, parts;
    uint64_t sink;
} read_job;

/* XOR-folds this thread's share of every weight, 8 bytes at a time; the result is kept so
 * the loads cannot be optimised away. */
static void *read_share(void *arg)
{
    read_job *job = arg;
    uint64_t acc = 0;
    for (int32_t i = 0; i < job->n_weights; i++) {
        const sl_weight *w = job->weights[i];
        size_t words = (size_t)weight_bytes(w) / 8, per = (words + (size_t)job->parts - 1) / (size_t)job->parts;
        size_t b = per * (size_t)job->part, e = b + per < words ? b + per : words;
        const uint64_t *p = w->data;
        for (size_t k = b; k < e; k++)
            acc ^= p[k];
    }
    job->sink = acc;
    return NULL;
}

/* Seconds to read every listed weight once with `threads` threads (one join per weight list,
 * so this is the best case for thread overhead). */
static double time_read(const sl_weight *const *weights, int32_t n, int threads, uint64_t *sink)
{
    pthread_t tid[64];
    read_job jobs[64];
    if (threads > 64)
        threads = 64;
    double t0 = bench_now_s();
    for (int t = 0; t < threads; t++) {
        jobs[t] = (read_job){weights, n, t, threads, 0};
        if (t > 0 && pthread_create(&tid[t], NULL, read_share, &jobs[t]) != 0)
            die("profile_decode", "cannot start thread", strerror(errno));
    }
    read_share(&jobs[0]);
    for (int t = 1; t < threads; t++)
        pthread_join(tid[t], NULL);
    double dt = bench_now_s() - t0;
    for (int t = 0; t < threads; t++)
        *sink ^= jobs[t].sink;
    return dt;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    const char *dir = NULL;
    long threads = 0, context = 128, steps = 16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0') {
            if (dir)
                die("profile_decode", "too many arguments", a);
            dir = a;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || i + 1 >= argc) {
            fprintf(stderr, "usage: profile_decode MODEL_DIR [--threads N] [--context 128] [--steps 16]\n");
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--threads") == 0)
            threads = parse_long(a, v, 0, 64);
        else if (strcmp(a, "--context") == 0)
            context = parse_long(a, v, 1, 1 << 20);
        else if (strcmp(a, "--steps") == 0)
            steps = parse_long(a, v, 1, 100000);
        else
            die("profile_decode", "unknown option", a);
    }
    if (!dir) {
        fprintf(stderr, "usage: profile_decode MODEL_DIR [--threads N] [--context 128] [--steps 16]\n");
        return 2;
    }
    sl_set_num_threads((int)threads);
    int nt = sl_get_num_threads();

    sl_error err;
    sl_model *m = sl_model_load(dir, &err);
    if (!m) {
        fprintf(stderr, "slua: %s\n", err.msg);
        return 1;
    }
    const sl_model_config *c = &m->cfg;
    if (context + steps > c->max_position)
        die(dir, "sequence too long", "context + steps > max_position_embeddings");
    sl_session_params params = sl_session_default_params();
    params.n_ctx = (int32_t)(context + steps);
    sl_session *s = sl_session_init(m, &params, &err);
    if (!s) {
        fprintf(stderr, "slua: %s\n", err.msg);
        return 1;
    }

    /* Real decode steps after a prompt of `context` tokens (ids cycle through the vocabulary). */
    int64_t n_tok = context + steps;
    sl_token *tokens = malloc((size_t)n_tok * sizeof *tokens);
    if (!tokens)
        die(dir, "out of memory", "tokens");
    for (int64_t i = 0; i < n_tok; i++)
        tokens[i] = (sl_token)((i * 7919 + 13) % c->n_vocab);
    if (sl_session_eval(s, tokens, (int32_t)context, 0, &err) != SL_STATUS_OK) {
        fprintf(stderr, "slua: %s\n", err.msg);
        return 1;
    }
    double step_total = 0.0;
    for (long i = 0; i < steps; i++) {
        double t0 = bench_now_s();
        if (sl_session_eval(s, &tokens[context + i], 1, 0, &err) != SL_STATUS_OK) {
            fprintf(stderr, "slua: %s\n", err.msg);
            return 1;
        }
        step_total += bench_now_s() - t0;
    }
    double step_s = step_total / (double)steps;

    /* The same matrix products in isolation. Inputs are small random activations; the values
     * do not change the kernels' speed. */
    int64_t D = c->n_embd, F = c->n_ff, QD = (int64_t)c->n_head * c->head_dim;
    int64_t widest = D > F ? D : F;
    widest = widest > QD ? widest : QD;
    int64_t out_len = c->n_vocab > widest ? c->n_vocab : widest;
    float *x = malloc((size_t)widest * sizeof *x), *out = malloc((size_t)out_len * sizeof *out);
    if (!x || !out)
        die(dir, "out of memory", "activations");
    for (int64_t i = 0; i < widest; i++)
        x[i] = (float)sin((double)i) * 0.1f;
    double class_s[N_CLASSES] = {0}, class_bytes[N_CLASSES] = {0};
    for (int32_t l = 0; l < c->n_layer; l++) {
        const sl_block *b = &m->blocks[l];
        class_bytes[CLASS_QKV] += weight_bytes(&b->wq) + weight_bytes(&b->wk) + weight_bytes(&b->wv);
        class_bytes[CLASS_O] += weight_bytes(&b->wo);
        class_bytes[CLASS_GATE_UP] += weight_bytes(&b->w_gate) + weight_bytes(&b->w_up);
        class_bytes[CLASS_DOWN] += weight_bytes(&b->w_down);
    }
    class_bytes[CLASS_LM_HEAD] = weight_bytes(&m->lm_head);
    for (long step = 0; step < steps; step++) {
        for (int32_t l = 0; l < c->n_layer; l++) {
            const sl_block *b = &m->blocks[l];
            double t0 = bench_now_s();
            sl_matmul(out, QD, x, 1, &b->wq, NULL, NULL);
            sl_matmul(out, QD, x, 1, &b->wk, NULL, NULL);
            sl_matmul(out, QD, x, 1, &b->wv, NULL, NULL);
            double t1 = bench_now_s();
            sl_matmul(out, D, x, 1, &b->wo, NULL, NULL);
            double t2 = bench_now_s();
            sl_matmul(out, F, x, 1, &b->w_gate, NULL, NULL);
            sl_matmul(out, F, x, 1, &b->w_up, NULL, NULL);
            double t3 = bench_now_s();
            sl_matmul(out, D, x, 1, &b->w_down, NULL, NULL);
            double t4 = bench_now_s();
            class_s[CLASS_QKV] += t1 - t0;
            class_s[CLASS_O] += t2 - t1;
            class_s[CLASS_GATE_UP] += t3 - t2;
            class_s[CLASS_DOWN] += t4 - t3;
        }
        double t0 = bench_now_s();
        sl_matmul(out, c->n_vocab, x, 1, &m->lm_head, NULL, NULL);
        class_s[CLASS_LM_HEAD] += bench_now_s() - t0;
    }

    /* Plain reads of the same matrices, in the same order. */
    int32_t n_weights = 7 * c->n_layer + 1, k = 0;
    const sl_weight **weights = malloc((size_t)n_weights * sizeof *weights);
    if (!weights)
        die(dir, "out of memory", "weight list");
    for (int32_t l = 0; l < c->n_layer; l++) {
        const sl_block *b = &m->blocks[l];
        const sl_weight *ws[7] = {&b->wq, &b->wk, &b->wv, &b->wo, &b->w_gate, &b->w_up, &b->w_down};
        for (int j = 0; j < 7; j++)
            weights[k++] = ws[j];
    }
    weights[k++] = &m->lm_head;
    uint64_t sink = 0;
    double read_s = 1e30;
    for (long i = 0; i < (steps < 5 ? steps : 5); i++) {
        double t = time_read(weights, n_weights, nt, &sink);
        read_s = t < read_s ? t : read_s;
    }

    double matmul_s = 0.0, matmul_bytes = 0.0;
    for (int i = 0; i < N_CLASSES; i++) {
        class_s[i] /= (double)steps;
        matmul_s += class_s[i];
        matmul_bytes += class_bytes[i];
    }
    printf("profile   %s  threads %d, context %ld, %ld steps (sink %llx)\n", dir, nt, context, steps,
           (unsigned long long)(sink & 0xf));
    printf("%-18s %10s %10s %8s %8s\n", "class", "MB/token", "ms/token", "GB/s", "share");
    for (int i = 0; i < N_CLASSES; i++)
        printf("%-18s %10.1f %10.3f %8.2f %7.1f%%\n", class_names[i], class_bytes[i] / 1e6, class_s[i] * 1e3,
               class_bytes[i] / class_s[i] / 1e9, 100.0 * class_s[i] / step_s);
    double rest_s = step_s - matmul_s;
    printf("%-18s %10s %10.3f %8s %7.1f%%\n", "attention + rest", "", rest_s * 1e3, "", 100.0 * rest_s / step_s);
    printf("%-18s %10.1f %10.3f %8.2f %7.1f%%\n", "decode step", matmul_bytes / 1e6, step_s * 1e3,
           matmul_bytes / step_s / 1e9, 100.0);
    printf("%-18s %10.1f %10.3f %8.2f\n", "plain read (best)", matmul_bytes / 1e6, read_s * 1e3,
           matmul_bytes / read_s / 1e9);
    free(weights);
    free(x);
    free(out);
    free(tokens);
    sl_session_free(s);
    sl_model_free(m);
    return 0;
}
