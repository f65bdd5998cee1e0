/* Matrix product throughput against the number of activation rows: the decode kernel (1 row),
 * the small-batch tiles and, above 16 rows, the tiles or convert + sgemm, on one weight shape.
 *
 *   bench_matmul [--rows 49152] [--cols 576] [--threads 1] [--runs 7] [--dtype bf16|f16|f32]
 *                [--weights stored|q8_0]
 *
 * Prints, per activation-row count, the median time of one product, GFLOP/s and weight GB/s.
 * --weights q8_0 converts the weight to Q8_0 as a model load does (packed for the VNNI kernel
 * where it runs, on huge pages where the kernel gives them); GB/s then counts the Q8_0 bytes
 * and scales.
 * The weight (rows x cols) is a random matrix; with --rows 49152 --cols 576 it is SmolLM2's LM
 * head. Compare kernel levels with SL_NO_AVX512=1 / SL_NO_AVX2=1 in the environment. */
#define _DEFAULT_SOURCE /* madvise */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>

#include "bench_cli.h"
#include "kernels/kernels.h"
#include "kernels/kernels_q8.h"
#include "slua/sl.h"

int main(int argc, char **argv)
{
    long rows = 49152, cols = 576, threads = 1, runs = 7;
    sl_dtype dt = SL_DTYPE_BF16;
    bool q8 = false;
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            bench_die("bench_matmul", "missing option value", flag);
        if (!strcmp(flag, "--rows"))
            rows = bench_parse_long("bench_matmul", flag, v, 1, 1L << 20);
        else if (!strcmp(flag, "--cols"))
            cols = bench_parse_long("bench_matmul", flag, v, 1, 1L << 16);
        else if (!strcmp(flag, "--threads"))
            threads = bench_parse_long("bench_matmul", flag, v, 1, 256);
        else if (!strcmp(flag, "--runs"))
            runs = bench_parse_long("bench_matmul", flag, v, 1, 1000);
        else if (!strcmp(flag, "--dtype")) {
            if (!strcmp(v, "bf16"))
                dt = SL_DTYPE_BF16;
            else if (!strcmp(v, "f16"))
                dt = SL_DTYPE_F16;
            else if (!strcmp(v, "f32"))
                dt = SL_DTYPE_F32;
            else
                bench_die("bench_matmul", "invalid option value", "--dtype: expected bf16, f16 or f32");
        } else if (!strcmp(flag, "--weights")) {
            if (strcmp(v, "stored") && strcmp(v, "q8_0"))
                bench_die("bench_matmul", "invalid option value", "--weights: expected stored or q8_0");
            q8 = !strcmp(v, "q8_0");
        } else
            bench_die("bench_matmul", "unknown option", flag);
        i++;
    }
    static const int counts[] = {1, 2, 5, 9, 16, 17, 32, 64, 128};
    enum { MAX_N = 128 };
    size_t esize = dt == SL_DTYPE_F32 ? 4 : 2, n_w = (size_t)rows * (size_t)cols;
    void *data = malloc(n_w * esize);
    float *x = malloc((size_t)MAX_N * (size_t)cols * sizeof *x);
    float *out = malloc((size_t)MAX_N * (size_t)rows * sizeof *out);
    double *times = malloc((size_t)runs * sizeof *times);
    if (!data || !x || !out || !times)
        bench_die("bench_matmul", "out of memory", "weight, inputs or outputs");
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n_w; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        float v = (float)((s >> 40) * (1.0 / 16777216.0)) - 0.5f;
        if (dt == SL_DTYPE_F32)
            ((float *)data)[i] = v;
        else
            ((uint16_t *)data)[i] = dt == SL_DTYPE_BF16 ? sl_f32_to_bf16(v) : sl_f32_to_f16(v);
    }
    for (size_t i = 0; i < (size_t)MAX_N * (size_t)cols; i++)
        x[i] = (float)(i % 17) * 0.01f;
    sl_set_num_threads((int)threads);
    sl_weight w = {.data = data, .dtype = dt, .rows = rows, .cols = cols};
    double weight_bytes = (double)(n_w * esize);
    void *q8_mem = NULL;
    if (q8) {
        int64_t blocks = sl_q8_blocks(cols), padded = sl_q8_groups(rows) * 16;
        size_t q_bytes = (size_t)(padded * blocks * SL_Q8_BLOCK), bytes = q_bytes + (size_t)(padded * blocks) * 4;
        bool pack = sl_q8_packed_native();
        int8_t *q = malloc((size_t)(rows * blocks * SL_Q8_BLOCK));
        float *d = malloc((size_t)(rows * blocks) * sizeof *d);
        if (posix_memalign(&q8_mem, 2 << 20, bytes) || !q || !d || !sl_q8_convert(q, d, &w))
            bench_die("bench_matmul", "out of memory", "q8_0 weight");
        madvise(q8_mem, bytes, MADV_HUGEPAGE);
        void *scales = (char *)q8_mem + q_bytes;
        if (pack)
            sl_q8_pack(q8_mem, scales, q, d, rows, cols);
        else {
            memcpy(q8_mem, q, (size_t)(rows * blocks * SL_Q8_BLOCK));
            memcpy(scales, d, (size_t)(rows * blocks) * sizeof *d);
        }
        free(q);
        free(d);
        w = (sl_weight){.data = q8_mem, .dtype = dt, .rows = rows, .cols = cols, .q8_scales = scales,
                        .q8_packed = pack};
        weight_bytes = (double)(rows * blocks) * (SL_Q8_BLOCK + (pack ? 2 : 4));
    }
    printf("weight %ld x %ld %s, threads %ld, median of %ld\n", rows, cols,
           q8 ? "q8_0" : dt == SL_DTYPE_BF16 ? "bf16" : dt == SL_DTYPE_F16 ? "f16" : "f32", threads, runs);
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        int n = counts[k];
        sl_matmul(out, rows, x, n, &w, NULL, NULL); /* warm-up */
        for (long r = 0; r < runs; r++) {
            double t = bench_now_s();
            sl_matmul(out, rows, x, n, &w, NULL, NULL);
            times[r] = bench_now_s() - t;
        }
        double t = bench_median(times, runs);
        printf("rows %3d  %9.3f ms  %7.1f GFLOP/s  %6.1f GB/s\n", n, t * 1e3, 2.0 * (double)n_w * n / t * 1e-9,
               weight_bytes / t * 1e-9);
    }
    free(data);
    free(q8_mem);
    free(x);
    free(out);
    free(times);
    return 0;
}
