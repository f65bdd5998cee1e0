/* The cost of interventions and captures on a decode step.
 *   bench_interventions MODEL_DIR [--threads 2] [--prompt-len 32] [--steps 200] [--block N/2] [--rows 8]
 *                                 [--seed 1]
 * Sessions that differ only in what they hook advance in lockstep through the same random
 * tokens, and each decode step of each is timed on its own, the order rotating every step, so
 * that a shared machine's load falls on all of them alike. Reports medians of the per-step
 * times, by the wall clock and by the process's CPU clock (steady under a foreign load that
 * only takes turns on the cores), and the load average before and after:
 *   one: a plain session; one `add` at blocks.B.hook_resid_post (every position); a capture of
 *        that hook at one generated position; and, to lift the cost of one hook above the noise
 *        of a shared machine, an add (of zeros) on every residual hook of every block (5 N ops)
 *        and a capture of all of them at one position, reported per hook
 *   batch: --rows sessions in one sl_session_eval_batch call, plain, and each row with an add
 *          of its own vector (the rows' blocks differ too: B, B+1, ...)
 * with each ratio also as the median of the per-step ratios to the plain group's step taken next
 * to it (drift cancels), as readable lines and one JSON line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "slua/sl.h"

#include "bench_cli.h"

#define MAX_ROWS 64

typedef struct options {
    const char *model_dir;
    long threads, prompt_len, steps, block, rows, seed;
    int32_t n_layer; /* of the model */
} options;

static void usage(FILE *to)
{
    fprintf(to, "usage: bench_interventions MODEL_DIR [--threads 2] [--prompt-len 32] [--steps 200]\n"
                "                           [--block N/2] [--rows 8] [--seed 1]\n");
}

static options parse(int argc, char **argv)
{
    options o = {.threads = 2, .prompt_len = 32, .steps = 200, .block = -1, .rows = 8, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (a[0] != '-') {
            if (o.model_dir)
                bench_die("bench_interventions", "unexpected argument", a);
            o.model_dir = a;
            continue;
        }
        if (i + 1 >= argc)
            bench_die("bench_interventions", "option needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--threads"))
            o.threads = bench_parse_long("bench_interventions", a, v, 0, 256);
        else if (!strcmp(a, "--prompt-len"))
            o.prompt_len = bench_parse_long("bench_interventions", a, v, 1, 1 << 14);
        else if (!strcmp(a, "--steps"))
            o.steps = bench_parse_long("bench_interventions", a, v, 1, 1 << 14);
        else if (!strcmp(a, "--block"))
            o.block = bench_parse_long("bench_interventions", a, v, 0, 1 << 10);
        else if (!strcmp(a, "--rows"))
            o.rows = bench_parse_long("bench_interventions", a, v, 1, MAX_ROWS);
        else if (!strcmp(a, "--seed"))
            o.seed = bench_parse_long("bench_interventions", a, v, 0, 1L << 30);
        else {
            usage(stderr);
            bench_die("bench_interventions", "unknown option", a);
        }
    }
    if (!o.model_dir) {
        usage(stderr);
        exit(2);
    }
    return o;
}

static void load_average(char *buf, size_t size)
{
    FILE *f = fopen("/proc/loadavg", "r");
    buf[0] = 0;
    if (f) {
        if (!fgets(buf, (int)size, f))
            buf[0] = 0;
        fclose(f);
        buf[strcspn(buf, "\n")] = 0;
    }
}

/* An add of `vector` (d_model) at blocks.block.hook_resid_post, every position. */
static sl_intervention *add_at(sl_model *m, int32_t block, const float *vector, const char *dir)
{
    sl_op op = sl_op_default();
    op.hook = (sl_hook){block, SL_HOOK_RESID_POST};
    op.vector = vector;
    op.n_vector = sl_model_n_embd(m);
    sl_error err;
    sl_intervention *iv = sl_intervention_new(m, &op, 1, &err);
    if (!iv)
        bench_die(dir, "intervention", err.msg);
    return iv;
}

/* A group of sessions evaluated together (rows > 1: one batched call) or one session. */
typedef struct group {
    sl_session *s[MAX_ROWS];
    int32_t n;
    double *times[2]; /* per step: wall seconds, and CPU seconds of the process (all its threads) */
} group;

static double cpu_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void group_eval(group *g, const sl_token *tokens, int32_t n_tokens, const char *dir)
{
    sl_batch_entry e[MAX_ROWS];
    for (int32_t r = 0; r < g->n; r++)
        e[r] = (sl_batch_entry){g->s[r], tokens + (int64_t)r * n_tokens, n_tokens, 0};
    sl_error err;
    if (sl_session_eval_batch(e, g->n, &err) != SL_STATUS_OK)
        bench_die(dir, "eval", err.msg);
}

/* Prefills every group with the same prompts, then times each step of each group, the order
 * rotating by one every step. */
static void lockstep(group *groups, int n_groups, const options *o, int32_t V, uint32_t *rng)
{
    int32_t rows = 0;
    for (int k = 0; k < n_groups; k++)
        rows = groups[k].n > rows ? groups[k].n : rows;
    sl_token *prompt = malloc((size_t)rows * (size_t)o->prompt_len * sizeof *prompt), step[MAX_ROWS];
    for (long i = 0; i < rows * o->prompt_len; i++)
        prompt[i] = (sl_token)(bench_next_rand(rng) % (uint32_t)V);
    for (int k = 0; k < n_groups; k++)
        group_eval(&groups[k], prompt, (int32_t)o->prompt_len, o->model_dir);
    for (long t = 0; t < o->steps; t++) {
        for (int32_t r = 0; r < rows; r++)
            step[r] = (sl_token)(bench_next_rand(rng) % (uint32_t)V);
        for (int j = 0; j < n_groups; j++) {
            group *g = &groups[(j + t) % n_groups];
            double t0 = bench_now_s(), c0 = cpu_now_s();
            group_eval(g, step, 1, o->model_dir);
            g->times[1][t] = cpu_now_s() - c0;
            g->times[0][t] = bench_now_s() - t0;
        }
    }
    free(prompt);
}

/* The median over steps of a[t] / b[t]. */
static double paired_ratio(const double *a, const double *b, long n)
{
    double *r = malloc((size_t)n * sizeof *r);
    for (long t = 0; t < n; t++)
        r[t] = a[t] / b[t];
    double med = bench_median(r, n);
    free(r);
    return med;
}

/* Medians and paired ratios by one clock ("wall" or "cpu"), printed and added to j. */
static void report(const char *clock, group *one, group *batch, const options *o, json_object *j)
{
    int c = strcmp(clock, "cpu") == 0;
    long n = o->steps;
    double add_paired = paired_ratio(one[1].times[c], one[0].times[c], n);
    double capture_paired = paired_ratio(one[2].times[c], one[0].times[c], n);
    double batch_paired = paired_ratio(batch[0].times[c], batch[1].times[c], n);
    double adds_paired = paired_ratio(one[3].times[c], one[0].times[c], n);
    double captures_paired = paired_ratio(one[4].times[c], one[0].times[c], n);
    double med[5];
    static const char *const names[5] = {"plain", "add", "capture", "batch_plain", "batch_add"};
    for (int k = 0; k < 3; k++)
        med[k] = bench_median(one[k].times[c], n);
    for (int k = 0; k < 2; k++)
        med[3 + k] = bench_median(batch[k].times[c], n);
    int32_t hooks = 5 * o->n_layer;
    printf("%s: %d adds (every residual hook) %+.2f %% paired, %+.3f %% per add; %d captures at one position "
           "%+.2f %% paired, %+.3f %% per capture\n",
           clock, hooks, 100.0 * (adds_paired - 1.0), 100.0 * (adds_paired - 1.0) / hooks, hooks,
           100.0 * (captures_paired - 1.0), 100.0 * (captures_paired - 1.0) / hooks);
    char key[64];
    snprintf(key, sizeof key, "%s_per_add_paired_pct", clock);
    json_object_object_add(j, key, json_object_new_double(100.0 * (adds_paired - 1.0) / hooks));
    snprintf(key, sizeof key, "%s_per_capture_paired_pct", clock);
    json_object_object_add(j, key, json_object_new_double(100.0 * (captures_paired - 1.0) / hooks));
    printf("%s: decode step plain %.3f ms, one add %.3f ms (%+.2f %%; paired %+.2f %%), one capture %.3f ms "
           "(%+.2f %%; paired %+.2f %%)\n",
           clock, 1e3 * med[0], 1e3 * med[1], 100.0 * (med[1] / med[0] - 1.0), 100.0 * (add_paired - 1.0),
           1e3 * med[2], 100.0 * (med[2] / med[0] - 1.0), 100.0 * (capture_paired - 1.0));
    printf("%s: %ld rows batched, plain %.3f ms/step, each its own add %.3f ms/step (throughput %.1f %% of plain; "
           "paired %.1f %%)\n",
           clock, o->rows, 1e3 * med[3], 1e3 * med[4], 100.0 * med[3] / med[4], 100.0 * batch_paired);
    for (int k = 0; k < 5; k++) {
        snprintf(key, sizeof key, "%s_%s_ms", clock, names[k]);
        json_object_object_add(j, key, json_object_new_double(1e3 * med[k]));
    }
    snprintf(key, sizeof key, "%s_add_overhead_pct", clock);
    json_object_object_add(j, key, json_object_new_double(100.0 * (med[1] / med[0] - 1.0)));
    snprintf(key, sizeof key, "%s_capture_overhead_pct", clock);
    json_object_object_add(j, key, json_object_new_double(100.0 * (med[2] / med[0] - 1.0)));
    snprintf(key, sizeof key, "%s_batch_throughput_pct", clock);
    json_object_object_add(j, key, json_object_new_double(100.0 * med[3] / med[4]));
    snprintf(key, sizeof key, "%s_add_overhead_paired_pct", clock);
    json_object_object_add(j, key, json_object_new_double(100.0 * (add_paired - 1.0)));
    snprintf(key, sizeof key, "%s_capture_overhead_paired_pct", clock);
    json_object_object_add(j, key, json_object_new_double(100.0 * (capture_paired - 1.0)));
    snprintf(key, sizeof key, "%s_batch_throughput_paired_pct", clock);
    json_object_object_add(j, key, json_object_new_double(100.0 * batch_paired));
}

static sl_session *new_session(sl_model *m, const options *o)
{
    sl_session_params sp = sl_session_default_params();
    sp.n_ctx = (int32_t)(o->prompt_len + o->steps + 1);
    sp.n_batch = (int32_t)o->prompt_len;
    sl_error err;
    sl_session *s = sl_session_init(m, &sp, &err);
    if (!s)
        bench_die(o->model_dir, "session", err.msg);
    return s;
}

static void set_iv(sl_session *s, sl_intervention *iv, const char *dir)
{
    sl_error err;
    if (sl_session_set_intervention(s, iv, &err) != SL_STATUS_OK)
        bench_die(dir, "intervention", err.msg);
}

int main(int argc, char **argv)
{
    options o = parse(argc, argv);
    sl_set_num_threads((int)o.threads);
    sl_error err;
    sl_model *m = sl_model_load(o.model_dir, &err);
    if (!m)
        bench_die(o.model_dir, "cannot load", err.msg);
    int32_t N = sl_model_n_layer(m), D = sl_model_n_embd(m), V = sl_model_n_vocab(m);
    int32_t block = o.block >= 0 ? (int32_t)o.block : N / 2;
    o.n_layer = N;
    if (block >= N)
        bench_die(o.model_dir, "invalid option value", "--block is beyond the model's blocks");
    uint32_t rng = (uint32_t)o.seed * 2654435761u + 1u;
    float *vectors = malloc((size_t)o.rows * (size_t)D * sizeof *vectors);
    for (long i = 0; i < o.rows * D; i++)
        vectors[i] = 0.01f * (float)((int32_t)(bench_next_rand(&rng) % 201u) - 100);
    char load_before[128], load_after[128];
    load_average(load_before, sizeof load_before);

    /* one session: plain, one add, one capture, adds on every residual hook, captures of them */
    group one[5];
    for (int k = 0; k < 5; k++) {
        one[k] = (group){.n = 1, .times = {malloc((size_t)o.steps * sizeof(double)), malloc((size_t)o.steps * sizeof(double))}};
        one[k].s[0] = new_session(m, &o);
    }
    sl_intervention *add = add_at(m, block, vectors, o.model_dir);
    set_iv(one[1].s[0], add, o.model_dir);
    sl_hook hook = {block, SL_HOOK_RESID_POST};
    int32_t at = (int32_t)(o.prompt_len + o.steps / 2);
    if (sl_session_capture(one[2].s[0], &hook, 1, (sl_positions){SL_POSITIONS_LIST, &at, 1}, &err) != SL_STATUS_OK)
        bench_die(o.model_dir, "capture", err.msg);
    sl_op *every = malloc((size_t)(5 * N) * sizeof *every);
    float *zeros = calloc((size_t)D, sizeof *zeros);
    sl_hook *every_hook = malloc((size_t)(5 * N) * sizeof *every_hook);
    for (int32_t l = 0; l < N; l++)
        for (int p = 0; p < 5; p++) { /* the residual hooks are points 0-4 */
            sl_op op = sl_op_default();
            op.hook = every_hook[5 * l + p] = (sl_hook){l, (sl_hook_point)p};
            op.vector = zeros; /* the machinery's cost: values that move the activations would
                                * change the model's arithmetic (e.g. exp underflowing into
                                * subnormals in softmax) */
            op.n_vector = D;
            every[5 * l + p] = op;
        }
    sl_intervention *adds = sl_intervention_new(m, every, 5 * N, &err);
    if (!adds)
        bench_die(o.model_dir, "intervention", err.msg);
    set_iv(one[3].s[0], adds, o.model_dir);
    if (sl_session_capture(one[4].s[0], every_hook, 5 * N, (sl_positions){SL_POSITIONS_LIST, &at, 1}, &err) !=
        SL_STATUS_OK)
        bench_die(o.model_dir, "capture", err.msg);
    lockstep(one, 5, &o, V, &rng);
    sl_capture_view view;
    if (sl_session_captured(one[2].s[0], hook, &view, &err) != SL_STATUS_OK || view.n_pos != 1)
        bench_die(o.model_dir, "capture", "the position was not recorded");

    /* rows in one batched call: plain, and each with its own add */
    group batch[2];
    sl_intervention *ivs[MAX_ROWS];
    for (int k = 0; k < 2; k++) {
        batch[k] = (group){.n = (int32_t)o.rows,
                           .times = {malloc((size_t)o.steps * sizeof(double)), malloc((size_t)o.steps * sizeof(double))}};
        for (int32_t r = 0; r < batch[k].n; r++)
            batch[k].s[r] = new_session(m, &o);
    }
    for (int32_t r = 0; r < o.rows; r++) {
        ivs[r] = add_at(m, (block + r) % N, vectors + (int64_t)r * D, o.model_dir);
        set_iv(batch[1].s[r], ivs[r], o.model_dir);
    }
    lockstep(batch, 2, &o, V, &rng);
    load_average(load_after, sizeof load_after);

    const char *level = getenv("SL_NO_AVX2") ? "generic" : getenv("SL_NO_AVX512") ? "avx2" : "best";
    printf("%s, %d threads, %s kernels, prompt %ld, %ld steps, block %d; load before %s, after %s\n", o.model_dir,
           sl_get_num_threads(), level, o.prompt_len, o.steps, block, load_before, load_after);
    json_object *j = json_object_new_object();
    json_object_object_add(j, "kernels", json_object_new_string(level));
    json_object_object_add(j, "threads", json_object_new_int(sl_get_num_threads()));
    json_object_object_add(j, "rows", json_object_new_int((int)o.rows));
    json_object_object_add(j, "load_before", json_object_new_string(load_before));
    json_object_object_add(j, "load_after", json_object_new_string(load_after));
    report("wall", one, batch, &o, j);
    report("cpu", one, batch, &o, j);
    printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
    json_object_put(j);

    sl_intervention_free(adds);
    free(every);
    free(every_hook);
    free(zeros);
    for (int k = 0; k < 5; k++) {
        sl_session_free(one[k].s[0]);
        free(one[k].times[0]);
        free(one[k].times[1]);
    }
    for (int k = 0; k < 2; k++) {
        for (int32_t r = 0; r < batch[k].n; r++)
            sl_session_free(batch[k].s[r]);
        free(batch[k].times[0]);
        free(batch[k].times[1]);
    }
    for (int32_t r = 0; r < o.rows; r++)
        sl_intervention_free(ivs[r]);
    sl_intervention_free(add);
    free(vectors);
    sl_model_free(m);
    return 0;
}
