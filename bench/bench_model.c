/* Prefill and decode throughput of one model directory, against a memory-bandwidth bound.
 *   bench_model MODEL_DIR [--threads N] [--prompt-len 128] [--gen 64] [--runs 5]
 *                         [--warmup 1] [--bandwidth-gbs 29] [--seed 1]
 *                         [--max-foreign 0.05] [--retries 20] [--weights stored|q8_0] [--compute exact|bf16] [--mmap]
 * Each run resets the session, evaluates a prompt of random token ids in one call (prefill)
 * and then evaluates --gen single tokens (decode). The report gives medians over the runs as
 * readable lines followed by one JSON line for scripts.
 *
 * On a shared machine another process's CPU time ruins multi-threaded timings: a thread
 * preempted at one of the ~250 barriers of a decode step stalls the whole step for a
 * scheduler slice. Each phase therefore records the CPU time other processes used while it
 * ran (system busy time from /proc/stat minus this process's own); a phase whose share
 * exceeds --max-foreign is discarded and the run repeated, up to --retries extra runs. If
 * too few clean samples arrive, the least disturbed ones are used and the report says so.
 *
 * Decode reads every weight matrix once per token (the tied or separate LM head included),
 * so bytes/token is the checkpoint's mapped weight size and decode speed is bounded by
 * memory bandwidth / bytes per token. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "slua/sl.h"

#include "bench_cli.h"

typedef struct options {
    const char *model_dir;
    long threads;     /* 0 = every online CPU */
    long prompt_len;
    long gen;
    long runs;
    long warmup;      /* untimed runs first: they fault the mapped weights into memory */
    double bandwidth_gbs;
    long seed;
    double max_foreign; /* tolerated share of all CPUs used by other processes */
    long retries;
    sl_weight_format weights;
    sl_compute_mode compute;
    bool mmap; /* map the checkpoint instead of reading it into memory */
} options;

static void usage(FILE *to)
{
    fprintf(to, "usage: bench_model MODEL_DIR [--threads N] [--prompt-len 128] [--gen 64] [--runs 5]\n"
                "                   [--warmup 1] [--bandwidth-gbs 29] [--seed 1] [--max-foreign 0.05]\n"
                "                   [--retries 20] [--weights stored|q8_0] [--compute exact|bf16] [--mmap]\n");
}

static void die(const char *file, const char *what, const char *detail) { bench_die(file, what, detail); }

static long parse_long(const char *flag, const char *v, long lo, long hi)
{
    return bench_parse_long("bench_model", flag, v, lo, hi);
}

static double parse_positive(const char *flag, const char *v)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x > 0.0) || !isfinite(x)) {
        char detail[160];
        snprintf(detail, sizeof detail, "%s %s; expected a positive number", flag, v);
        die("bench_model", "invalid option value", detail);
    }
    return x;
}

static options parse_options(int argc, char **argv)
{
    options o = {NULL, 0, 128, 64, 5, 1, 29.0, 1, 0.05, 20, SL_WEIGHTS_STORED, SL_COMPUTE_EXACT, false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (o.model_dir)
                die("bench_model", "too many arguments", a);
            o.model_dir = a;
            continue;
        }
        if (strcmp(a, "--mmap") == 0) {
            o.mmap = true;
            continue;
        }
        if (i + 1 >= argc)
            die("bench_model", strncmp(a, "--", 2) == 0 ? "missing value" : "unknown option", a);
        const char *v = argv[++i];
        if (strcmp(a, "--threads") == 0)
            o.threads = parse_long(a, v, 0, 1024);
        else if (strcmp(a, "--prompt-len") == 0)
            o.prompt_len = parse_long(a, v, 1, 1 << 20);
        else if (strcmp(a, "--gen") == 0)
            o.gen = parse_long(a, v, 1, 1 << 20);
        else if (strcmp(a, "--runs") == 0)
            o.runs = parse_long(a, v, 1, 1000);
        else if (strcmp(a, "--warmup") == 0)
            o.warmup = parse_long(a, v, 0, 1000);
        else if (strcmp(a, "--seed") == 0)
            o.seed = parse_long(a, v, 0, 2147483647L);
        else if (strcmp(a, "--bandwidth-gbs") == 0)
            o.bandwidth_gbs = parse_positive(a, v);
        else if (strcmp(a, "--max-foreign") == 0)
            o.max_foreign = parse_positive(a, v);
        else if (strcmp(a, "--retries") == 0)
            o.retries = parse_long(a, v, 0, 10000);
        else if (strcmp(a, "--weights") == 0 && (strcmp(v, "stored") == 0 || strcmp(v, "q8_0") == 0))
            o.weights = strcmp(v, "q8_0") == 0 ? SL_WEIGHTS_Q8_0 : SL_WEIGHTS_STORED;
        else if (strcmp(a, "--weights") == 0)
            die("bench_model", "invalid option value", "--weights; expected stored or q8_0");
        else if (strcmp(a, "--compute") == 0 && (strcmp(v, "exact") == 0 || strcmp(v, "bf16") == 0))
            o.compute = strcmp(v, "bf16") == 0 ? SL_COMPUTE_BF16 : SL_COMPUTE_EXACT;
        else if (strcmp(a, "--compute") == 0)
            die("bench_model", "invalid option value", "--compute; expected exact or bf16");
        else
            die("bench_model", "unknown option", a);
    }
    if (!o.model_dir) {
        usage(stderr);
        exit(2);
    }
    return o;
}

/* Peak resident set in MiB. Mapped weight pages that were touched count, as they should:
 * they are the memory the model really occupies. */
static double peak_rss_mib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1.0;
    return (double)ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}


static void eval_or_die(sl_session *s, const sl_token *tokens, int32_t n)
{
    sl_error err;
    if (sl_session_eval(s, tokens, n, 0, &err) != SL_STATUS_OK) {
        fprintf(stderr, "slua: %s\n", err.msg);
        exit(1);
    }
}

/* Wall time plus busy CPU ticks of the whole machine and of this process. */
typedef struct clock_mark {
    double wall;
    double machine_busy; /* -1 when /proc/stat cannot be read */
    double own;
} clock_mark;

static clock_mark mark_now(void)
{
    clock_mark m = {bench_now_s(), -1.0, 0.0};
    unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal;
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        /* Steal counts as busy: CPU time the hypervisor gave to someone else. */
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle, &iowait, &irq,
                   &softirq, &steal) == 8)
            m.machine_busy = (double)(user + nice + sys + irq + softirq + steal);
        fclose(f);
    }
    struct tms t;
    times(&t);
    m.own = (double)(t.tms_utime + t.tms_stime);
    return m;
}

/* Share of all CPUs that other processes used between two marks (0 if unknown). */
static double foreign_share(clock_mark a, clock_mark b)
{
    if (a.machine_busy < 0 || b.machine_busy < 0)
        return 0.0;
    double ticks = (b.wall - a.wall) * (double)sysconf(_SC_CLK_TCK) * (double)sysconf(_SC_NPROCESSORS_ONLN);
    double foreign = (b.machine_busy - a.machine_busy) - (b.own - a.own);
    return ticks > 0 && foreign > 0 ? foreign / ticks : 0.0;
}

typedef struct sample {
    double tok_s;
    double foreign;
} sample;

typedef struct phase {
    sample *all;
    long n, clean;
} phase;

static void phase_add(phase *p, double tokens, clock_mark a, clock_mark b, double max_foreign)
{
    sample x = {tokens / (b.wall - a.wall), foreign_share(a, b)};
    p->all[p->n++] = x;
    p->clean += x.foreign <= max_foreign;
}

static int cmp_foreign(const void *a, const void *b)
{
    const sample *x = a, *y = b;
    return x->foreign < y->foreign ? -1 : x->foreign > y->foreign;
}

/* The `want` least disturbed samples: median, min, max of their speed and their worst
 * foreign share. */
typedef struct summary {
    double median, lo, hi, worst_foreign;
    long used, discarded;
} summary;

static summary summarize(phase *p, long want)
{
    qsort(p->all, (size_t)p->n, sizeof *p->all, cmp_foreign);
    long used = p->n < want ? p->n : want;
    double *speeds = malloc((size_t)used * sizeof *speeds);
    if (!speeds)
        die("bench_model", "out of memory", "summary");
    for (long i = 0; i < used; i++)
        speeds[i] = p->all[i].tok_s;
    summary s = {bench_median(speeds, used), speeds[0], speeds[used - 1], p->all[used - 1].foreign, used, p->n - used};
    free(speeds);
    return s;
}

/* One reset-prefill-decode run, recorded into the two phases. */
static void run_once(sl_session *s, const sl_token *tokens, const options *o, phase *prefill, phase *decode)
{
    sl_session_reset(s);
    clock_mark t0 = mark_now();
    eval_or_die(s, tokens, (int32_t)o->prompt_len);
    clock_mark t1 = mark_now();
    for (long i = 0; i < o->gen; i++)
        eval_or_die(s, &tokens[o->prompt_len + i], 1);
    clock_mark t2 = mark_now();
    if (prefill) {
        phase_add(prefill, (double)o->prompt_len, t0, t1, o->max_foreign);
        phase_add(decode, (double)o->gen, t1, t2, o->max_foreign);
    }
}

static json_object *json_fixed(double x, int decimals)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.*f", decimals, x);
    return json_object_new_double_s(x, buf);
}

static const char *dtype_name(sl_dtype dt)
{
    switch (dt) {
    case SL_DTYPE_F32: return "F32";
    case SL_DTYPE_F16: return "F16";
    case SL_DTYPE_BF16: return "BF16";
    }
    return "?";
}

int main(int argc, char **argv)
{
    options o = parse_options(argc, argv);
    sl_set_num_threads((int)o.threads);

    sl_error err;
    double t_load0 = bench_now_s();
    sl_load_params load = {.weights = o.weights, .compute = o.compute, .mmap = o.mmap};
    sl_model *model = sl_model_load_params(o.model_dir, &load, &err);
    double load_s = bench_now_s() - t_load0;
    if (!model) {
        fprintf(stderr, "slua: %s\n", err.msg);
        return 1;
    }
    const sl_model_config *c = sl_model_get_config(model);
    long n_ctx = o.prompt_len + o.gen;
    if (n_ctx > c->max_position) {
        char detail[128];
        snprintf(detail, sizeof detail, "prompt-len + gen = %ld > max_position_embeddings %d", n_ctx, c->max_position);
        die(o.model_dir, "sequence too long", detail);
    }
    sl_session_params params = sl_session_default_params();
    params.n_ctx = (int32_t)n_ctx;
    sl_session *s = sl_session_init(model, &params, &err);
    if (!s) {
        fprintf(stderr, "slua: %s\n", err.msg);
        return 1;
    }

    long max_runs = o.runs + o.retries;
    sl_token *tokens = malloc((size_t)n_ctx * sizeof *tokens);
    phase prefill = {malloc((size_t)max_runs * sizeof(sample)), 0, 0};
    phase decode = {malloc((size_t)max_runs * sizeof(sample)), 0, 0};
    if (!tokens || !prefill.all || !decode.all)
        die(o.model_dir, "out of memory", "benchmark buffers");
    uint32_t state = (uint32_t)o.seed * 2654435761u + 1u;
    for (long i = 0; i < n_ctx; i++)
        tokens[i] = (sl_token)(bench_next_rand(&state) % (uint32_t)c->n_vocab);

    for (long r = 0; r < o.warmup; r++)
        run_once(s, tokens, &o, NULL, NULL);
    for (long r = 0; r < max_runs && (prefill.clean < o.runs || decode.clean < o.runs); r++)
        run_once(s, tokens, &o, &prefill, &decode);
    long attempts = prefill.n;
    summary ps = summarize(&prefill, o.runs), ds = summarize(&decode, o.runs);
    double prefill_med = ps.median, decode_med = ds.median;
    bool disturbed = ps.worst_foreign > o.max_foreign || ds.worst_foreign > o.max_foreign;

    double weight_bytes = (double)sl_model_weight_bytes(model);
    double decode_gbs = weight_bytes * decode_med / 1e9;
    double bound_fraction = decode_gbs / o.bandwidth_gbs;
    double rss = peak_rss_mib();
    int threads = sl_get_num_threads();

    printf("model     %s  %s %s  D=%d L=%d heads=%d/%d hd=%d F=%d V=%d%s\n", o.model_dir, c->architecture,
           dtype_name(c->dtype), c->n_embd, c->n_layer, c->n_head, c->n_head_kv, c->head_dim, c->n_ff, c->n_vocab,
           c->tie_word_embeddings ? " tied" : "");
    printf("weights   %.1f MB mapped, load %.1f ms%s\n", weight_bytes / 1e6, load_s * 1e3,
           o.weights == SL_WEIGHTS_Q8_0 ? " (converted to q8_0: the bandwidth line counts the mapped bytes)" : "");
    printf("setup     threads %d, prompt %ld, gen %ld, runs %ld of %ld (+%ld warm-up)\n", threads, o.prompt_len,
           o.gen, o.runs, attempts, o.warmup);
    printf("prefill   %.1f tok/s median (%.1f .. %.1f), other processes <= %.0f %% CPU\n", prefill_med, ps.lo, ps.hi,
           100.0 * ps.worst_foreign);
    printf("decode    %.2f tok/s median (%.2f .. %.2f), %.2f ms/token, other processes <= %.0f %% CPU\n",
           decode_med, ds.lo, ds.hi, 1e3 / decode_med, 100.0 * ds.worst_foreign);
    printf("bandwidth %.1f MB/token -> %.2f GB/s = %.0f %% of %.1f GB/s\n", weight_bytes / 1e6, decode_gbs,
           100.0 * bound_fraction, o.bandwidth_gbs);
    printf("memory    peak RSS %.1f MiB\n", rss);
    if (disturbed)
        fprintf(stderr,
                "slua: %s: timings disturbed by other processes (fewer than %ld runs with <= %.0f %% foreign CPU "
                "in %ld attempts)\n",
                o.model_dir, o.runs, 100.0 * o.max_foreign, attempts);

    json_object *j = json_object_new_object();
    json_object_object_add(j, "model", json_object_new_string(o.model_dir));
    json_object_object_add(j, "architecture", json_object_new_string(c->architecture));
    json_object_object_add(j, "dtype", json_object_new_string(dtype_name(c->dtype)));
    json_object_object_add(j, "weights", json_object_new_string(o.weights == SL_WEIGHTS_Q8_0 ? "q8_0" : "stored"));
    json_object_object_add(j, "compute", json_object_new_string(o.compute == SL_COMPUTE_BF16 ? "bf16" : "exact"));
    json_object_object_add(j, "n_embd", json_object_new_int(c->n_embd));
    json_object_object_add(j, "n_layer", json_object_new_int(c->n_layer));
    json_object_object_add(j, "n_head", json_object_new_int(c->n_head));
    json_object_object_add(j, "n_head_kv", json_object_new_int(c->n_head_kv));
    json_object_object_add(j, "head_dim", json_object_new_int(c->head_dim));
    json_object_object_add(j, "n_ff", json_object_new_int(c->n_ff));
    json_object_object_add(j, "n_vocab", json_object_new_int(c->n_vocab));
    json_object_object_add(j, "weight_bytes", json_object_new_int64((int64_t)weight_bytes));
    json_object_object_add(j, "load_ms", json_fixed(load_s * 1e3, 2));
    json_object_object_add(j, "threads", json_object_new_int(threads));
    json_object_object_add(j, "prompt_len", json_object_new_int64(o.prompt_len));
    json_object_object_add(j, "gen", json_object_new_int64(o.gen));
    json_object_object_add(j, "runs", json_object_new_int64(o.runs));
    json_object_object_add(j, "attempts", json_object_new_int64(attempts));
    json_object_object_add(j, "prefill_tok_s", json_fixed(prefill_med, 2));
    json_object_object_add(j, "decode_tok_s", json_fixed(decode_med, 3));
    json_object_object_add(j, "decode_ms_per_token", json_fixed(1e3 / decode_med, 3));
    json_object_object_add(j, "decode_bytes_per_token", json_object_new_int64((int64_t)weight_bytes));
    json_object_object_add(j, "decode_gb_s", json_fixed(decode_gbs, 3));
    json_object_object_add(j, "bandwidth_bound_gb_s", json_fixed(o.bandwidth_gbs, 2));
    json_object_object_add(j, "bound_fraction", json_fixed(bound_fraction, 4));
    json_object_object_add(j, "peak_rss_mib", json_fixed(rss, 1));
    json_object_object_add(j, "prefill_foreign_cpu", json_fixed(ps.worst_foreign, 3));
    json_object_object_add(j, "decode_foreign_cpu", json_fixed(ds.worst_foreign, 3));
    json_object_object_add(j, "disturbed", json_object_new_boolean(disturbed));
    printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(j);

    free(tokens);
    free(prefill.all);
    free(decode.all);
    sl_session_free(s);
    sl_model_free(model);
    return 0;
}
