/* Helpers shared by the benchmark programs (each is its own executable): errors, options,
 * clock, medians. */
#ifndef SLUA_BENCH_CLI_H
#define SLUA_BENCH_CLI_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Prints "slua: <file>: <what> (<detail>)" and exits 1. */
static inline void bench_die(const char *file, const char *what, const char *detail)
{
    fprintf(stderr, "slua: %s: %s (%s)\n", file, what, detail);
    exit(1);
}

/* v as an integer in [lo, hi], or a clean exit naming the program and the flag. */
static inline long bench_parse_long(const char *program, const char *flag, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        char detail[160];
        snprintf(detail, sizeof detail, "%s %s; expected an integer in [%ld, %ld]", flag, v, lo, hi);
        bench_die(program, "invalid option value", detail);
    }
    return x;
}

/* Monotonic clock in seconds. */
static inline double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* xorshift32: the random token ids of the benchmarks (speed does not depend on them). */
static inline uint32_t bench_next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Median of n values (sorts them in place). */
static inline double bench_median(double *v, long n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#endif
