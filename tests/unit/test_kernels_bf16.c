/* BF16 compute (SL_COMPUTE_BF16): the products at every kernel level (best = vdpbf16ps where the
 * CPU has AVX512-BF16, AVX2 and generic emulate it) against a double reference on the inputs
 * rounded to BF16, their closeness to the exact float32 product, and batch invariance within
 * the mode. */
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

/* A random BF16 weight marked for BF16 compute (owned by the caller through *h). */
static sl_weight make_bf16(int64_t rows, int64_t cols, uint16_t **h)
{
    *h = malloc((size_t)(rows * cols) * sizeof **h);
    cr_assert_not_null(*h);
    for (int64_t i = 0; i < rows * cols; i++)
        (*h)[i] = sl_f32_to_bf16(uniform() * (i % 5 == 0 ? 3.0f : 1.0f));
    return (sl_weight){.data = *h, .dtype = SL_DTYPE_BF16, .rows = rows, .cols = cols, .bf16_compute = true};
}

static const char *level_name(void)
{
    return getenv("SL_NO_AVX2") ? "generic" : getenv("SL_NO_AVX512") ? "avx2" : "best";
}

static void check_product(int64_t rows, int64_t cols, int32_t n, bool bias)
{
    uint16_t *wh;
    sl_weight w = make_bf16(rows, cols, &wh);
    int64_t ldo = rows + 3;
    float *x = malloc((size_t)(n * cols) * sizeof *x), *b = malloc((size_t)rows * sizeof *b);
    float *out = malloc((size_t)(n * ldo) * sizeof *out);
    cr_assert(x && b && out);
    for (int64_t i = 0; i < n * cols; i++)
        x[i] = uniform() * 1.7f; /* most values are not BF16: the product must round them */
    for (int64_t r = 0; r < rows; r++)
        b[r] = uniform();
    for (int64_t i = 0; i < n * ldo; i++)
        out[i] = NAN;
    cr_assert(sl_matmul(out, ldo, x, n, &w, bias ? b : NULL, NULL));
    for (int32_t i = 0; i < n; i++) {
        for (int64_t r = 0; r < ldo; r++) {
            float got = out[i * ldo + r];
            if (r >= rows) {
                cr_assert(isnan(got), "padding [%d][%ld] written", i, (long)r);
                continue;
            }
            double want = bias ? b[r] : 0.0, mag = bias ? fabs(b[r]) : 0.0;
            for (int64_t c = 0; c < cols; c++) {
                double p = (double)sl_bf16_to_f32(wh[r * cols + c]) * sl_bf16_to_f32(sl_f32_to_bf16(x[i * cols + c]));
                want += p;
                mag += fabs(p);
            }
            cr_assert(fabs(got - want) <= 1e-5 * mag + 1e-30, "%s n %d [%d][%ld] (%ldx%ld): got %.9g want %.9g",
                      level_name(), n, i, (long)r, (long)rows, (long)cols, got, want);
        }
    }
    free(wh);
    free(x);
    free(b);
    free(out);
}

static void check_all(void)
{
    static const int32_t ns[] = {1, 2, 3, 4, 5, 17, 33, 50};
    static const int64_t shapes[][2] = {{37, 100}, {64, 1030}, {5, 7}, {301, 257}, {8, 64}, {70, 172}, {16, 96},
                                        {9, 31}, {11, 33}, {6, 65}, {13, 1500}};
    for (int threads = 1; threads <= 2; threads++) {
        sl_set_num_threads(threads);
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                check_product(shapes[s][0], shapes[s][1], ns[k], (s + k) % 2 == 0);
    }
    sl_set_num_threads(1);
}

Test(kernels_bf16, matmul_best_matches_double_reference)
{
    tu_cap_kernels("SL_NO_AVX2", false);
    tu_cap_kernels("SL_NO_AVX512", false);
    check_all();
}

Test(kernels_bf16, matmul_avx2_matches_double_reference)
{
    tu_cap_kernels("SL_NO_AVX512", true);
    cr_assert_not(sl_bf16_dot_native(), "the AVX2 level emulates BF16 compute");
    check_all();
    tu_cap_kernels("SL_NO_AVX512", false);
}

Test(kernels_bf16, matmul_generic_matches_double_reference)
{
    tu_cap_kernels("SL_NO_AVX2", true);
    check_all();
    tu_cap_kernels("SL_NO_AVX2", false);
}

/* The rounding of the input rows (vectorised at the SIMD levels) is sl_f32_to_bf16's, bit for
 * bit: ties to even, NaN kept quiet, infinities, subnormals, overflow to infinity. */
static void check_rounding(void)
{
    enum { N = 4099 };
    static float x[N], back[N];
    static uint16_t got[N];
    static const uint32_t special[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x807fffffu, 0x3f808000u, 0x3f818000u,
                                       0x3f80ffffu, 0x7f7fffffu, 0xff7fffffu, 0x7f800000u, 0xff800000u, 0x7fc00000u,
                                       0x7f800001u, 0xffbfffffu, 0x00008000u, 0x3f7f8000u};
    uint64_t bits = 0x0123456789abcdefull;
    for (int i = 0; i < N; i++) {
        bits ^= bits << 13, bits ^= bits >> 7, bits ^= bits << 17;
        uint32_t u = i < (int)(sizeof special / sizeof *special) ? special[i] : (uint32_t)(bits >> 11);
        memcpy(&x[i], &u, sizeof u);
    }
    sl_round_bf16(got, x, N);
    sl_round_bf16_f32(back, x, N);
    for (int i = 0; i < N; i++) {
        uint16_t want = sl_f32_to_bf16(x[i]);
        uint32_t ux, ub, wb = (uint32_t)want << 16;
        memcpy(&ux, &x[i], sizeof ux);
        memcpy(&ub, &back[i], sizeof ub);
        cr_assert_eq(got[i], want, "%s: 0x%08x rounds to 0x%04x, not 0x%04x", level_name(), ux, want, got[i]);
        cr_assert_eq(ub, wb, "%s: 0x%08x as float32 0x%08x, not 0x%08x", level_name(), ux, wb, ub);
    }
}

Test(kernels_bf16, rounding_best) { check_rounding(); }

Test(kernels_bf16, rounding_generic)
{
    tu_cap_kernels("SL_NO_AVX2", true);
    check_rounding();
    tu_cap_kernels("SL_NO_AVX2", false);
}

/* Rounding the inputs moves each product by at most 2^-9 of its size: the BF16 product stays
 * within 2^-9 of the sum of |w x| (plus float32 summation) of the exact float32 one. */
Test(kernels_bf16, matmul_is_close_to_the_exact_product)
{
    int64_t rows = 48, cols = 576;
    uint16_t *wh;
    sl_weight w = make_bf16(rows, cols, &wh);
    sl_weight exact = w;
    exact.bf16_compute = false;
    float x[576], got[48], want[48];
    for (int i = 0; i < 576; i++)
        x[i] = uniform();
    cr_assert(sl_matmul(got, rows, x, 1, &w, NULL, NULL));
    cr_assert(sl_matmul(want, rows, x, 1, &exact, NULL, NULL));
    bool moved = false;
    for (int64_t r = 0; r < rows; r++) {
        double mag = 0.0;
        for (int64_t c = 0; c < cols; c++)
            mag += fabs((double)sl_bf16_to_f32(wh[r * cols + c]) * x[c]);
        cr_assert(fabs(got[r] - want[r]) <= mag * (1.0 / 512.0 + 1e-5), "row %ld: %g vs %g", (long)r, got[r], want[r]);
        moved |= got[r] != want[r];
    }
    cr_assert(moved, "BF16 compute gave the exact products: the inputs were not rounded");
    free(wh);
}

/* Batch invariance within the mode: row i of a product of n activation rows is bit-identical to
 * the product of that row alone, for every row count and 1 or 2 threads. */
static void check_rows_alone(int64_t rows, int64_t cols, int threads)
{
    static const int32_t ns[] = {2, 3, 4, 5, 7, 13, 33, 40};
    const int32_t nmax = 40;
    uint16_t *wh;
    sl_weight w = make_bf16(rows, cols, &wh);
    float *x = malloc((size_t)(nmax * cols) * sizeof *x), *alone = malloc((size_t)(nmax * rows) * sizeof *alone);
    float *out = malloc((size_t)(nmax * rows) * sizeof *out);
    cr_assert(x && alone && out);
    for (int64_t i = 0; i < nmax * cols; i++)
        x[i] = uniform();
    sl_set_num_threads(1);
    for (int32_t i = 0; i < nmax; i++)
        cr_assert(sl_matmul(alone + i * rows, rows, x + i * cols, 1, &w, NULL, NULL));
    sl_set_num_threads(threads);
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        int32_t n = ns[k];
        cr_assert(sl_matmul(out, rows, x + (nmax - n) * cols, n, &w, NULL, NULL));
        for (int32_t i = 0; i < n; i++)
            cr_assert(memcmp(out + i * rows, alone + (nmax - n + i) * rows, (size_t)rows * sizeof *out) == 0,
                      "%s: row %d of %d (%ldx%ld, %d threads) differs from the row alone", level_name(), i, n,
                      (long)rows, (long)cols, threads);
    }
    sl_set_num_threads(1);
    free(wh);
    free(x);
    free(alone);
    free(out);
}

static void check_rows_alone_all(void)
{
    static const int64_t shapes[][2] = {{37, 100}, {64, 1030}, {5, 7}, {70, 172}, {40, 2048}, {13, 1500}};
    for (int threads = 1; threads <= 2; threads++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            check_rows_alone(shapes[s][0], shapes[s][1], threads);
}

Test(kernels_bf16, rows_of_a_batch_equal_rows_alone_best) { check_rows_alone_all(); }

Test(kernels_bf16, rows_of_a_batch_equal_rows_alone_avx2)
{
    tu_cap_kernels("SL_NO_AVX512", true);
    check_rows_alone_all();
    tu_cap_kernels("SL_NO_AVX512", false);
}

Test(kernels_bf16, rows_of_a_batch_equal_rows_alone_generic)
{
    tu_cap_kernels("SL_NO_AVX2", true);
    check_rows_alone_all();
    tu_cap_kernels("SL_NO_AVX2", false);
}

/* The scratch a forward pass reserves covers the rounded rows, so a product allocates nothing. */
Test(kernels_bf16, scratch_reserved_covers_the_rounded_rows)
{
    uint16_t *wh;
    sl_weight w = make_bf16(16, 96, &wh);
    float x[4 * 96], out[4 * 16];
    for (int i = 0; i < 4 * 96; i++)
        x[i] = uniform();
    sl_matmul_scratch s = {0};
    cr_assert(sl_matmul_scratch_reserve(&s, &w, 4));
    void *mem = s.mem;
    size_t cap = s.cap;
    cr_assert(cap >= 4 * 96 * sizeof(uint16_t));
    cr_assert(sl_matmul(out, 16, x, 4, &w, NULL, &s));
    cr_assert(s.mem == mem && s.cap == cap, "the product reallocated the reserved scratch");
    sl_matmul_scratch_free(&s);
    free(wh);
}
