/* The matrix products against a double-precision reference, with the best kernels of this CPU,
 * with AVX2 only (SL_NO_AVX512) and with the generic fallback (SL_NO_AVX2), for every stored
 * dtype, single rows (decode), every tile width of the small-batch kernels, sgemm-sized
 * batches, odd shapes (tails of rows and columns), 1 and 2 threads. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "kernels/kernels.h"
#include "test_util.h"
#include "slua/sl.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

/* A random weight in dtype dt; `ref` receives its exact float32 values. */
static void *make_weight(sl_weight *w, float *ref, int64_t rows, int64_t cols, sl_dtype dt)
{
    int64_t n = rows * cols;
    void *data = malloc((size_t)n * (dt == SL_DTYPE_F32 ? 4 : 2));
    cr_assert_not_null(data);
    for (int64_t i = 0; i < n; i++) {
        float v = uniform();
        if (dt == SL_DTYPE_F32) {
            ((float *)data)[i] = v;
            ref[i] = v;
        } else if (dt == SL_DTYPE_BF16) {
            ((uint16_t *)data)[i] = sl_f32_to_bf16(v);
            ref[i] = sl_bf16_to_f32(((uint16_t *)data)[i]);
        } else {
            ((uint16_t *)data)[i] = sl_f32_to_f16(v);
            ref[i] = sl_f16_to_f32(((uint16_t *)data)[i]);
        }
    }
    *w = (sl_weight){.data = data, .dtype = dt, .rows = rows, .cols = cols};
    return data;
}

static void check_product(int64_t rows, int64_t cols, int32_t n, sl_dtype dt, bool bias)
{
    sl_weight w;
    float *ref = malloc((size_t)(rows * cols) * sizeof *ref);
    float *x = malloc((size_t)n * (size_t)cols * sizeof *x);
    float *b = malloc((size_t)rows * sizeof *b);
    int64_t ldo = rows + 3;
    float *out = malloc((size_t)n * (size_t)ldo * sizeof *out);
    cr_assert(ref && x && b && out);
    void *data = make_weight(&w, ref, rows, cols, dt);
    for (int64_t i = 0; i < (int64_t)n * cols; i++)
        x[i] = uniform();
    for (int64_t r = 0; r < rows; r++)
        b[r] = uniform();
    for (int64_t i = 0; i < (int64_t)n * ldo; i++)
        out[i] = NAN; /* the padding columns must stay untouched */
    cr_assert(sl_matmul(out, ldo, x, n, &w, bias ? b : NULL, NULL));
    for (int32_t i = 0; i < n; i++) {
        for (int64_t r = 0; r < ldo; r++) {
            float got = out[(int64_t)i * ldo + r];
            if (r >= rows) {
                cr_assert(isnan(got), "padding [%d][%ld] written", i, (long)r);
                continue;
            }
            double want = bias ? b[r] : 0.0, mag = bias ? fabs(b[r]) : 0.0;
            for (int64_t c = 0; c < cols; c++) {
                double p = (double)ref[r * cols + c] * x[(int64_t)i * cols + c];
                want += p;
                mag += fabs(p);
            }
            cr_assert(fabs(got - want) <= 1e-5 * mag + 1e-30, "%s n %d [%d][%ld] (%ldx%ld, dtype %d): got %.9g want %.9g",
                      getenv("SL_NO_AVX2") ? "generic" : getenv("SL_NO_AVX512") ? "avx2" : "best", n, i, (long)r, (long)rows, (long)cols, (int)dt,
                      got, want);
        }
    }
    free(data);
    free(ref);
    free(x);
    free(b);
    free(out);
}

static void check_all(void)
{
    static const sl_dtype dts[] = {SL_DTYPE_F32, SL_DTYPE_BF16, SL_DTYPE_F16};
    static const int32_t ns[] = {1, 2, 3, 4, 5, 6, 7, 9, 13, 16, 17, 40, 50};
    static const int64_t shapes[][2] = {{37, 100}, {64, 1030}, {5, 7}, {301, 257}, {8, 16}, {13, 61}, {11, 45}};
    for (int threads = 1; threads <= 2; threads++) {
        sl_set_num_threads(threads);
        for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++)
            for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
                for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                    check_product(shapes[s][0], shapes[s][1], ns[k], dts[d], (s + k) % 2 == 0);
    }
    sl_set_num_threads(1);
}

Test(kernels, matmul_best_matches_double_reference)
{
    tu_cap_kernels("SL_NO_AVX2", false);
    tu_cap_kernels("SL_NO_AVX512", false);
    check_all();
}

Test(kernels, matmul_avx2_matches_double_reference)
{
    tu_cap_kernels("SL_NO_AVX512", true);
    check_all();
    tu_cap_kernels("SL_NO_AVX512", false);
}

Test(kernels, matmul_generic_matches_double_reference)
{
    tu_cap_kernels("SL_NO_AVX2", true);
    check_all();
    tu_cap_kernels("SL_NO_AVX2", false);
}

Test(kernels, swiglu_and_group_match_separate_products)
{
    for (int pass = 0; pass < 2; pass++) {
        if (pass)
            tu_cap_kernels("SL_NO_AVX2", true);
        sl_set_num_threads(2);
        int64_t F = 300, D = 96;
        int32_t n = 2;
        sl_weight wg, wu;
        float *rg = malloc((size_t)(F * D) * sizeof(float)), *ru = malloc((size_t)(F * D) * sizeof(float));
        void *dg = make_weight(&wg, rg, F, D, SL_DTYPE_BF16), *du = make_weight(&wu, ru, F, D, SL_DTYPE_BF16);
        float x[2 * 96], g1[2 * 300], u1[2 * 300], g2[2 * 300], u2[2 * 300];
        for (int i = 0; i < 2 * 96; i++)
            x[i] = uniform();
        cr_assert(sl_matmul(g1, F, x, n, &wg, NULL, NULL));
        cr_assert(sl_matmul(u1, F, x, n, &wu, NULL, NULL));
        for (int i = 0; i < n * F; i++)
            g1[i] = (g1[i] / (1.0f + expf(-g1[i]))) * u1[i];
        cr_assert(sl_matmul_gated(g2, u2, F, x, n, &wg, NULL, &wu, NULL, SL_GATE_SILU, NULL));
        cr_assert(memcmp(g1, g2, sizeof g1) == 0 && memcmp(u1, u2, sizeof u1) == 0);
        sl_matmul_job jobs[2] = {{.out = g2, .ldo = F, .w = &wg}, {.out = u2, .ldo = F, .w = &wu}};
        cr_assert(sl_matmul_group(jobs, 2, x, n, NULL));
        cr_assert(sl_matmul(g1, F, x, n, &wg, NULL, NULL));
        cr_assert(memcmp(g1, g2, sizeof g1) == 0 && memcmp(u1, u2, sizeof u1) == 0);
        free(dg);
        free(du);
        free(rg);
        free(ru);
        sl_set_num_threads(1);
    }
    tu_cap_kernels("SL_NO_AVX2", false);
}

/* Batch invariance: row i of a product of n activation rows is bit-identical to the product of
 * that row alone, for every row count (one-row, few-row and tiled kernels, blocked chunks), every
 * stored dtype, shapes with column tails, and 1 or 2 threads. */
static void check_rows_alone(int64_t rows, int64_t cols, sl_dtype dt, int threads)
{
    static const int32_t ns[] = {2, 3, 4, 5, 6, 7, 8, 13, 17, 33, 37, 49, 70};
    int32_t nmax = 70;
    sl_weight w;
    float *ref = malloc((size_t)(rows * cols) * sizeof *ref);
    float *x = malloc((size_t)nmax * (size_t)cols * sizeof *x);
    float *alone = malloc((size_t)nmax * (size_t)rows * sizeof *alone);
    float *out = malloc((size_t)nmax * (size_t)rows * sizeof *out);
    cr_assert(ref && x && alone && out);
    void *data = make_weight(&w, ref, rows, cols, dt);
    for (int64_t i = 0; i < (int64_t)nmax * cols; i++)
        x[i] = uniform();
    sl_set_num_threads(1);
    for (int32_t i = 0; i < nmax; i++)
        cr_assert(sl_matmul(alone + (int64_t)i * rows, rows, x + (int64_t)i * cols, 1, &w, NULL, NULL));
    sl_set_num_threads(threads);
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        int32_t n = ns[k];
        for (int32_t first = 0; first + n <= nmax; first += nmax - n > 0 ? nmax - n : 1) {
            cr_assert(sl_matmul(out, rows, x + (int64_t)first * cols, n, &w, NULL, NULL));
            for (int32_t i = 0; i < n; i++)
                cr_assert(memcmp(out + (int64_t)i * rows, alone + (int64_t)(first + i) * rows,
                                 (size_t)rows * sizeof *out) == 0,
                          "%s: row %d of %d (%ldx%ld, dtype %d, %d threads) differs from the row alone",
                          getenv("SL_NO_AVX2") ? "generic" : getenv("SL_NO_AVX512") ? "avx2" : "best", i, n,
                          (long)rows, (long)cols, (int)dt, threads);
            if (nmax - n <= 0)
                break;
        }
    }
    sl_set_num_threads(1);
    free(data);
    free(ref);
    free(x);
    free(alone);
    free(out);
}

static void check_rows_alone_all(void)
{
    static const sl_dtype dts[] = {SL_DTYPE_F32, SL_DTYPE_BF16, SL_DTYPE_F16};
    static const int64_t shapes[][2] = {{37, 100}, {64, 1030}, {5, 7}, {70, 576}, {9, 48}, {21, 2056}, {13, 61}, {11, 45}};
    for (int threads = 1; threads <= 2; threads++)
        for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                check_rows_alone(shapes[s][0], shapes[s][1], dts[d], threads);
}

Test(kernels, rows_of_a_batch_equal_rows_alone_best)
{
    tu_cap_kernels("SL_NO_AVX2", false);
    tu_cap_kernels("SL_NO_AVX512", false);
    check_rows_alone_all();
}

Test(kernels, rows_of_a_batch_equal_rows_alone_avx2)
{
    tu_cap_kernels("SL_NO_AVX512", true);
    check_rows_alone_all();
    tu_cap_kernels("SL_NO_AVX512", false);
}

Test(kernels, rows_of_a_batch_equal_rows_alone_generic)
{
    tu_cap_kernels("SL_NO_AVX2", true);
    check_rows_alone_all();
    tu_cap_kernels("SL_NO_AVX2", false);
}
