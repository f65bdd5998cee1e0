/* Decode speed against context depth, with a float32 and a float16 KV cache.
 *   bench_depth MODEL_DIR [--threads 1] [--gen 32] [--runs 7] [--seed 1]
 * Depths 0, 512 and 2048: one session per (cache type, depth) is filled once with random ids to
 * its depth (untimed); a measurement rewinds it to the depth and evaluates the next --gen ids
 * one at a time, exactly the work of a decode step there (attention over `depth` cached rows plus the
 * weight reads). Runs interleave every (cache type, depth) pair, so a change in the machine's
 * load hits all of them alike; the report gives median tok/s per pair, the median over runs of
 * each run's depth / depth-0 ratio, the share of all CPUs other processes used during the
 * measurements (/proc/stat busy time minus this process's), and the load average. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/times.h>
#include <unistd.h>

#include "bench_cli.h"
#include "slua/sl.h"

#define N_DEPTHS 3
#define N_KV 2
static const int32_t depths[N_DEPTHS] = {0, 512, 2048};
static const sl_dtype kv_types[N_KV] = {SL_DTYPE_F32, SL_DTYPE_F16};
static const char *kv_names[N_KV] = {"f32", "f16"};

/* Busy ticks of the whole machine (-1 if unknown) and of this process. */
static void busy_ticks(double *machine, double *own)
{
    unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal;
    *machine = -1.0;
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle, &iowait, &irq,
                   &softirq, &steal) == 8)
            *machine = (double)(user + nice + sys + irq + softirq + steal);
        fclose(f);
    }
    struct tms t;
    times(&t);
    *own = (double)(t.tms_utime + t.tms_stime);
}

static double load_average(void)
{
    double l = -1.0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1.0;
        fclose(f);
    }
    return l;
}

static void check(sl_status rc, const sl_error *err, const char *dir)
{
    if (rc != SL_STATUS_OK)
        bench_die(dir, "evaluation failed", err->msg);
}

int main(int argc, char **argv)
{
    const char *prog = "bench_depth";
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: bench_depth MODEL_DIR [--threads 1] [--gen 32] [--runs 7] [--seed 1]\n");
        return 2;
    }
    const char *dir = argv[1];
    long threads = 1, gen = 32, runs = 7, seed = 1;
    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc)
            bench_die(prog, "option without a value", argv[i]);
        if (strcmp(argv[i], "--threads") == 0)
            threads = bench_parse_long(prog, argv[i], argv[i + 1], 0, 256);
        else if (strcmp(argv[i], "--gen") == 0)
            gen = bench_parse_long(prog, argv[i], argv[i + 1], 1, 4096);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = bench_parse_long(prog, argv[i], argv[i + 1], 1, 1000);
        else if (strcmp(argv[i], "--seed") == 0)
            seed = bench_parse_long(prog, argv[i], argv[i + 1], 0, 2147483647L);
        else
            bench_die(prog, "unknown option", argv[i]);
    }
    sl_set_num_threads((int)threads);
    sl_error err;
    sl_model *model = sl_model_load(dir, &err);
    if (!model)
        bench_die(dir, "cannot load the model", err.msg);
    int32_t V = sl_model_n_vocab(model), total = depths[N_DEPTHS - 1] + (int32_t)gen;
    sl_token *ids = malloc((size_t)total * sizeof *ids);
    double *tps = malloc((size_t)(N_KV * N_DEPTHS * runs) * sizeof *tps);
    double *ratio = malloc((size_t)(N_KV * N_DEPTHS * runs) * sizeof *ratio);
    if (!ids || !tps || !ratio)
        bench_die(prog, "out of memory", "buffers");
    uint32_t state = (uint32_t)seed * 2654435761u + 1u;
    for (int32_t i = 0; i < total; i++) {
        state ^= state << 13, state ^= state >> 17, state ^= state << 5;
        ids[i] = (sl_token)(state % (uint32_t)V);
    }
    sl_session *s[N_KV * N_DEPTHS]; /* one per (cache type, depth), filled to its depth once */
    for (int i = 0; i < N_KV * N_DEPTHS; i++) {
        sl_session_params p = sl_session_default_params();
        p.n_ctx = total;
        p.kv_type = kv_types[i / N_DEPTHS];
        if (!(s[i] = sl_session_init(model, &p, &err)))
            bench_die(dir, "cannot create a session", err.msg);
        if (depths[i % N_DEPTHS] > 0)
            check(sl_session_eval(s[i], ids, depths[i % N_DEPTHS], 0, &err), &err, dir);
    }
    double load0 = load_average(), m0, o0, machine_sum = 0, own_sum = 0, wall_sum = 0;
    busy_ticks(&m0, &o0);
    for (long r = -1; r < runs; r++) { /* run -1 warms up */
        for (int k = 0; k < N_KV; k++)
            for (int d = 0; d < N_DEPTHS; d++) {
                sl_session *sk = s[k * N_DEPTHS + d];
                check(sl_session_rewind(sk, depths[d], &err), &err, dir);
                double ma, oa, mb, ob;
                busy_ticks(&ma, &oa);
                double t0 = bench_now_s();
                for (long g = 0; g < gen; g++)
                    check(sl_session_eval(sk, &ids[depths[d] + g], 1, 0, &err), &err, dir);
                double dt = bench_now_s() - t0;
                busy_ticks(&mb, &ob);
                if (r < 0)
                    continue;
                tps[(k * N_DEPTHS + d) * runs + r] = (double)gen / dt;
                if (ma >= 0 && mb >= 0) {
                    machine_sum += mb - ma;
                    own_sum += ob - oa;
                    wall_sum += dt;
                }
            }
        if (r < 0)
            continue;
        for (int k = 0; k < N_KV; k++)
            for (int d = 0; d < N_DEPTHS; d++)
                ratio[(k * N_DEPTHS + d) * runs + r] =
                    tps[(k * N_DEPTHS + d) * runs + r] / tps[(k * N_DEPTHS + 0) * runs + r];
    }
    double load1 = load_average();
    double ticks = wall_sum * (double)sysconf(_SC_CLK_TCK) * (double)sysconf(_SC_NPROCESSORS_ONLN);
    double foreign = ticks > 0 && machine_sum - own_sum > 0 ? (machine_sum - own_sum) / ticks : 0.0;
    printf("%s: decode tok/s by depth, %ld thread(s), %ld steps per measurement, median of %ld interleaved runs\n",
           dir, threads, gen, runs);
    printf("other processes used %.0f %% of all CPUs while measuring; load average %.2f -> %.2f\n", 100 * foreign,
           load0, load1);
    printf("cache  depth  tok/s    depth/0 (median of per-run ratios)\n");
    double med_t[N_KV * N_DEPTHS], med_q[N_KV * N_DEPTHS];
    for (int i = 0; i < N_KV * N_DEPTHS; i++) {
        med_t[i] = bench_median(&tps[i * runs], runs);
        med_q[i] = bench_median(&ratio[i * runs], runs);
        printf("%-5s  %5d  %7.2f  %.3f\n", kv_names[i / N_DEPTHS], depths[i % N_DEPTHS], med_t[i], med_q[i]);
    }
    printf("{\"bench\":\"depth\",\"threads\":%ld,\"gen\":%ld,\"runs\":%ld,\"foreign\":%.3f,"
           "\"load\":[%.2f,%.2f],\"rows\":[",
           threads, gen, runs, foreign, load0, load1);
    for (int i = 0; i < N_KV * N_DEPTHS; i++)
        printf("%s{\"kv\":\"%s\",\"depth\":%d,\"tok_s\":%.3f,\"ratio\":%.4f}", i ? "," : "", kv_names[i / N_DEPTHS],
               depths[i % N_DEPTHS], med_t[i], med_q[i]);
    printf("]}\n");
    for (int i = 0; i < N_KV * N_DEPTHS; i++)
        sl_session_free(s[i]);
    sl_model_free(model);
    free(ids);
    free(tps);
    free(ratio);
    return 0;
}
