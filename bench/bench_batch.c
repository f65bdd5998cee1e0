/* Aggregate throughput of batched evaluation (sl_session_eval_batch), the workload of
 * llama-batched-bench: B sequences each prefill a prompt, then decode one token per step
 * together.
 *   bench_batch MODEL_DIR [--threads N] [--prompt-len 128] [--gen 64] [--batch 1,2,4,8,16,32]
 *                         [--runs 3] [--seed 1] [--weights stored|q8_0] [--compute exact|bf16] [--kv-type f32|f16] [--mmap]
 * For each B: B fresh sessions; the B prompts (random ids) as one batched call (prefill),
 * then --gen batched calls of B single tokens (decode). Reports medians over --runs, as
 * readable lines and one JSON line per B: {batch, prefill_tok_s, decode_tok_s, decode_step_ms,
 * speedup (decode tok/s over B = 1's, when B = 1 is in the list)}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "slua/sl.h"

#include "bench_cli.h"

#define MAX_B 256

typedef struct options {
    const char *model_dir;
    long threads, prompt_len, gen, runs, seed;
    long batches[32];
    int n_batches;
    sl_weight_format weights;
    sl_compute_mode compute;
    sl_dtype kv_type;
    bool mmap;
} options;

static void usage(FILE *to)
{
    fprintf(to, "usage: bench_batch MODEL_DIR [--threads N] [--prompt-len 128] [--gen 64]\n"
                "                   [--batch 1,2,4,8,16,32] [--runs 3] [--seed 1] [--weights stored|q8_0]\n"
                "                   [--compute exact|bf16] [--kv-type f32|f16] [--mmap]\n");
}

static void parse_batches(options *o, const char *v)
{
    char *copy = strdup(v), *save = NULL;
    o->n_batches = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->n_batches == 32)
            bench_die("bench_batch", "invalid option value", "--batch takes at most 32 sizes");
        o->batches[o->n_batches++] = bench_parse_long("bench_batch", "--batch", t, 1, MAX_B);
    }
    free(copy);
    if (o->n_batches == 0)
        bench_die("bench_batch", "invalid option value", "--batch needs sizes, e.g. 1,8,32");
}

static options parse(int argc, char **argv)
{
    options o = {.threads = 0, .prompt_len = 128, .gen = 64, .runs = 3, .seed = 1, .weights = SL_WEIGHTS_STORED,
                 .kv_type = SL_DTYPE_F32};
    parse_batches(&o, "1,2,4,8,16,32");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (a[0] != '-') {
            if (o.model_dir)
                bench_die("bench_batch", "unexpected argument", a);
            o.model_dir = a;
            continue;
        }
        if (!strcmp(a, "--mmap")) {
            o.mmap = true;
            continue;
        }
        if (i + 1 >= argc)
            bench_die("bench_batch", "option needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--threads"))
            o.threads = bench_parse_long("bench_batch", a, v, 0, 256);
        else if (!strcmp(a, "--prompt-len"))
            o.prompt_len = bench_parse_long("bench_batch", a, v, 1, 1 << 16);
        else if (!strcmp(a, "--gen"))
            o.gen = bench_parse_long("bench_batch", a, v, 1, 1 << 16);
        else if (!strcmp(a, "--runs"))
            o.runs = bench_parse_long("bench_batch", a, v, 1, 1000);
        else if (!strcmp(a, "--seed"))
            o.seed = bench_parse_long("bench_batch", a, v, 0, 1L << 30);
        else if (!strcmp(a, "--batch"))
            parse_batches(&o, v);
        else if (!strcmp(a, "--weights") && (!strcmp(v, "stored") || !strcmp(v, "q8_0")))
            o.weights = !strcmp(v, "q8_0") ? SL_WEIGHTS_Q8_0 : SL_WEIGHTS_STORED;
        else if (!strcmp(a, "--compute") && (!strcmp(v, "exact") || !strcmp(v, "bf16")))
            o.compute = !strcmp(v, "bf16") ? SL_COMPUTE_BF16 : SL_COMPUTE_EXACT;
        else if (!strcmp(a, "--kv-type") && (!strcmp(v, "f32") || !strcmp(v, "f16")))
            o.kv_type = !strcmp(v, "f16") ? SL_DTYPE_F16 : SL_DTYPE_F32;
        else {
            usage(stderr);
            bench_die("bench_batch", "unknown option or value", a);
        }
    }
    if (!o.model_dir) {
        usage(stderr);
        exit(2);
    }
    return o;
}

/* One run at batch B: seconds of the prefill call and of all decode calls. */
static void run_once(sl_model *m, const options *o, int B, uint32_t *rng, double *t_prefill, double *t_decode)
{
    int32_t V = sl_model_n_vocab(m);
    sl_session_params sp = sl_session_default_params();
    sp.n_ctx = (int32_t)(o->prompt_len + o->gen + 1);
    sp.n_batch = (int32_t)o->prompt_len;
    sp.kv_type = o->kv_type;
    sl_session *s[MAX_B];
    sl_batch_entry e[MAX_B];
    sl_token *prompts = malloc((size_t)B * (size_t)o->prompt_len * sizeof *prompts), next[MAX_B];
    sl_error err;
    for (int b = 0; b < B; b++) {
        s[b] = sl_session_init(m, &sp, &err);
        if (!s[b])
            bench_die(o->model_dir, "session", err.msg);
        for (long i = 0; i < o->prompt_len; i++)
            prompts[(long)b * o->prompt_len + i] = (sl_token)(bench_next_rand(rng) % (uint32_t)V);
        e[b] = (sl_batch_entry){s[b], prompts + (long)b * o->prompt_len, (int32_t)o->prompt_len, 0};
    }
    double t0 = bench_now_s();
    if (sl_session_eval_batch(e, B, &err) != SL_STATUS_OK)
        bench_die(o->model_dir, "prefill", err.msg);
    double t1 = bench_now_s();
    for (long g = 0; g < o->gen; g++) {
        for (int b = 0; b < B; b++) {
            next[b] = (sl_token)(bench_next_rand(rng) % (uint32_t)V);
            e[b] = (sl_batch_entry){s[b], &next[b], 1, 0};
        }
        if (sl_session_eval_batch(e, B, &err) != SL_STATUS_OK)
            bench_die(o->model_dir, "decode", err.msg);
    }
    double t2 = bench_now_s();
    *t_prefill = t1 - t0;
    *t_decode = t2 - t1;
    for (int b = 0; b < B; b++)
        sl_session_free(s[b]);
    free(prompts);
}

int main(int argc, char **argv)
{
    options o = parse(argc, argv);
    sl_set_num_threads((int)o.threads);
    sl_load_params lp = {.weights = o.weights, .compute = o.compute, .mmap = o.mmap};
    sl_error err;
    sl_model *m = sl_model_load_params(o.model_dir, &lp, &err);
    if (!m)
        bench_die(o.model_dir, "cannot load", err.msg);
    uint32_t rng = (uint32_t)o.seed * 2654435761u + 1u;
    double dummy_p, dummy_d;
    run_once(m, &o, 1, &rng, &dummy_p, &dummy_d); /* faults the mapped weights in */
    double base_decode = 0;
    printf("threads %d, prompt %ld, gen %ld, %s weights, %s compute, %s KV, median of %ld\n", sl_get_num_threads(),
           o.prompt_len, o.gen, o.weights == SL_WEIGHTS_Q8_0 ? "q8_0" : "stored",
           o.compute == SL_COMPUTE_BF16 ? "bf16" : "exact",
           o.kv_type == SL_DTYPE_F16 ? "f16" : "f32", o.runs);
    for (int k = 0; k < o.n_batches; k++) {
        int B = (int)o.batches[k];
        double tp[1000], td[1000];
        for (long r = 0; r < o.runs; r++)
            run_once(m, &o, B, &rng, &tp[r], &td[r]);
        double p = bench_median(tp, o.runs), d = bench_median(td, o.runs);
        double pp = (double)B * (double)o.prompt_len / p, tg = (double)B * (double)o.gen / d;
        if (B == 1)
            base_decode = tg;
        printf("B %3d: prefill %8.1f tok/s, decode %8.1f tok/s (%.2f ms/step)%s", B, pp, tg, 1e3 * d / (double)o.gen,
               base_decode > 0 ? "" : "\n");
        if (base_decode > 0)
            printf(", %.2fx B = 1\n", tg / base_decode);
        json_object *j = json_object_new_object();
        json_object_object_add(j, "batch", json_object_new_int(B));
        json_object_object_add(j, "threads", json_object_new_int(sl_get_num_threads()));
        json_object_object_add(j, "prefill_tok_s", json_object_new_double(pp));
        json_object_object_add(j, "decode_tok_s", json_object_new_double(tg));
        json_object_object_add(j, "decode_step_ms", json_object_new_double(1e3 * d / (double)o.gen));
        if (base_decode > 0)
            json_object_object_add(j, "speedup", json_object_new_double(tg / base_decode));
        printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
        json_object_put(j);
    }
    sl_model_free(m);
    return 0;
}
