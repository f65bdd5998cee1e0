/* The machine's float32 multiply-add peak, the ceiling the prefill products are measured
 * against (as the bandwidth probe of bench_model is the decode ceiling).
 *
 *   bench_fma_peak [--threads 0] [--runs 7] [--ms 200]
 *
 * Each thread runs independent chains of vector multiply-adds on registers (no memory traffic):
 * 16 at 16 lanes, 12 at 8 lanes (16 would not fit AVX2's 16 registers with the operands); both
 * cover the latency of every x86 core's FMA units (2 units x 4 cycles). Prints, for the AVX-512
 * (16 lanes) and AVX2 (8 lanes) levels the CPU has, and for 1 thread and --threads threads
 * (0 = all CPUs), the median GFLOP/s of --runs runs of about --ms milliseconds each (one
 * multiply-add = 2 flops). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>
#include <omp.h>

#include "bench_cli.h"

#define CHAINS 16
#define CHAINS_AVX2 12

/* iters rounds of CHAINS multiply-adds on 16 lanes; returns a value that depends on all of them
 * so the compiler keeps the work. */
__attribute__((target("avx512f"), noinline)) static float fma_avx512(long iters)
{
    __m512 acc[CHAINS], a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++)
        acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
        for (int i = 0; i < CHAINS; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], a, b);
        __asm__("" : "+v"(a)); /* a stays a register operand, not a folded constant */
    }
    __m512 s = acc[0];
    for (int i = 1; i < CHAINS; i++)
        s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"), noinline)) static float fma_avx2(long iters)
{
    __m256 acc[CHAINS_AVX2], a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS_AVX2; i++)
        acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
        for (int i = 0; i < CHAINS_AVX2; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], a, b);
        __asm__("" : "+x"(a));
    }
    __m256 s = acc[0];
    for (int i = 1; i < CHAINS_AVX2; i++)
        s = _mm256_add_ps(s, acc[i]);
    float v[8];
    _mm256_storeu_ps(v, s);
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

static volatile float g_sink;

/* GFLOP/s of nt threads each running iters rounds at `lanes` lanes. */
static double run_once(int lanes, int nt, long iters)
{
    double t0 = bench_now_s();
#pragma omp parallel num_threads(nt)
    {
        float v = lanes == 16 ? fma_avx512(iters) : fma_avx2(iters);
#pragma omp atomic
        g_sink += v;
    }
    double t = bench_now_s() - t0;
    return 2.0 * lanes * (lanes == 16 ? CHAINS : CHAINS_AVX2) * (double)iters * nt / t / 1e9;
}

static double median_gflops(int lanes, int nt, int runs, double seconds)
{
    long iters = 1 << 16; /* grow until one run takes about `seconds` */
    while (iters < (1L << 40)) {
        double t0 = bench_now_s();
        run_once(lanes, nt, iters);
        if (bench_now_s() - t0 >= seconds / 4)
            break;
        iters *= 2;
    }
    iters *= 4;
    double *g = malloc((size_t)runs * sizeof *g);
    if (!g)
        bench_die("bench_fma_peak", "out of memory", "runs");
    for (int r = 0; r < runs; r++)
        g[r] = run_once(lanes, nt, iters);
    qsort(g, (size_t)runs, sizeof *g, bench_cmp_double);
    double m = g[runs / 2];
    free(g);
    return m;
}

int main(int argc, char **argv)
{
    long threads = 0, runs = 7;
    double seconds = 0.2;
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            bench_die("bench_fma_peak", "missing option value", flag);
        if (!strcmp(flag, "--threads"))
            threads = bench_parse_long("bench_fma_peak", flag, v, 0, 256);
        else if (!strcmp(flag, "--runs"))
            runs = bench_parse_long("bench_fma_peak", flag, v, 1, 1000);
        else if (!strcmp(flag, "--ms"))
            seconds = bench_parse_long("bench_fma_peak", flag, v, 1, 60000) / 1000.0;
        else
            bench_die("bench_fma_peak", "unknown option", flag);
        i++;
    }
    if (threads == 0)
        threads = omp_get_num_procs();
    __builtin_cpu_init();
    int levels[2] = {0}, n = 0;
    if (__builtin_cpu_supports("avx512f"))
        levels[n++] = 16;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        levels[n++] = 8;
    if (!n)
        bench_die("bench_fma_peak", "no vector multiply-add", "the CPU has neither AVX-512 nor AVX2 with FMA");
    for (int l = 0; l < n; l++) {
        int nts[2] = {1, (int)threads};
        for (int k = 0; k < (threads > 1 ? 2 : 1); k++)
            printf("{\"level\":\"%s\",\"threads\":%d,\"gflops\":%.1f}\n", levels[l] == 16 ? "avx512" : "avx2", nts[k],
                   median_gflops(levels[l], nts[k], (int)runs, seconds));
    }
    return 0;
}
