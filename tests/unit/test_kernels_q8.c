/* Q8_0 weights: the quantisation against llama.cpp's definition, and the products at every
 * kernel level (best = AVX-512 VNNI where the CPU has it, AVX2, generic) on the stored and the
 * packed layout against a double reference on the same quantised data: exact up to the order
 * of the float summation. The two packed kernels give the same bytes. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "kernels/kernels.h"
#include "kernels/kernels_q8.h"
#include "test_util.h"
#include "slua/sl.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static float uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

Test(kernels_q8, quantize_row_follows_llama_cpp_q8_0)
{
    float x[40], d[2];
    int8_t q[64];
    for (int i = 0; i < 40; i++)
        x[i] = (float)(i - 20) * 0.37f;
    x[3] = -9.5f; /* the largest magnitude of block 0 */
    sl_q8_quantize_row(q, d, x, 40, true);
    float d0 = 9.5f / 127.0f;
    cr_assert_eq(d[0], sl_f16_to_f32(sl_f32_to_f16(d0)), "scale is max|x| / 127 as float16");
    cr_assert_eq(q[3], -127);
    for (int i = 0; i < 32; i++)
        cr_assert_eq(q[i], (int8_t)roundf(x[i] / d0), "q[%d]", i);
    float d1 = 19.0f * 0.37f / 127.0f; /* block 1: x[32..39] = 12..19 * 0.37 */
    cr_assert_eq(d[1], sl_f16_to_f32(sl_f32_to_f16(d1)));
    cr_assert_eq(q[39], 127);
    for (int i = 40; i < 64; i++)
        cr_assert_eq(q[i], 0, "padding q[%d]", i);
    float z[32] = {0};
    sl_q8_quantize_row(q, d, z, 32, false);
    cr_assert(d[0] == 0.0f && q[0] == 0 && q[31] == 0, "an all-zero block has scale 0");
}

/* A Q8_0 weight converted from a random stored matrix (owned by the caller through q, d: the
 * stored layout, which the reference reads), and, with packed, the same weight packed (owned
 * through *pq, *pd). */
static sl_weight make_q8_as(int64_t rows, int64_t cols, sl_dtype dt, int8_t **q, float **d, bool packed, int8_t **pq,
                            uint16_t **pd)
{
    float *f = malloc((size_t)(rows * cols) * sizeof *f);
    cr_assert_not_null(f);
    for (int64_t i = 0; i < rows * cols; i++)
        f[i] = uniform() * (i % 7 == 0 ? 4.0f : 1.0f); /* outliers make the scales differ */
    void *stored = f;
    uint16_t *h = NULL;
    if (dt == SL_DTYPE_BF16) {
        h = malloc((size_t)(rows * cols) * sizeof *h);
        cr_assert_not_null(h);
        for (int64_t i = 0; i < rows * cols; i++)
            h[i] = sl_f32_to_bf16(f[i]);
        stored = h;
    }
    sl_weight src = {.data = stored, .dtype = dt, .rows = rows, .cols = cols};
    int64_t blocks = sl_q8_blocks(cols);
    *q = malloc((size_t)(rows * blocks * SL_Q8_BLOCK));
    *d = malloc((size_t)(rows * blocks) * sizeof **d);
    cr_assert(*q && *d && sl_q8_convert(*q, *d, &src));
    free(f);
    free(h);
    if (!packed)
        return (sl_weight){.data = *q, .dtype = dt, .rows = rows, .cols = cols, .q8_scales = *d};
    int64_t padded = sl_q8_groups(rows) * 16;
    *pq = malloc((size_t)(padded * blocks * SL_Q8_BLOCK));
    *pd = malloc((size_t)(padded * blocks) * sizeof **pd);
    cr_assert(*pq && *pd);
    sl_q8_pack(*pq, *pd, *q, *d, rows, cols);
    return (sl_weight){.data = *pq, .dtype = dt, .rows = rows, .cols = cols, .q8_scales = *pd, .q8_packed = true};
}

static sl_weight make_q8(int64_t rows, int64_t cols, sl_dtype dt, int8_t **q, float **d)
{
    return make_q8_as(rows, cols, dt, q, d, false, NULL, NULL);
}

/* Whether this machine runs the packed layout (x86 with AVX2). */
static bool packed_runs(void)
{
    tu_cap_kernels("SL_NO_AVX2", false);
    tu_cap_kernels("SL_NO_AVX512", false);
    return sl_q8_packed_native();
}

static void check_product(int64_t rows, int64_t cols, int32_t n, bool bias, bool packed)
{
    int8_t *wq, *pq = NULL;
    float *wd;
    uint16_t *pd = NULL;
    sl_weight w = make_q8_as(rows, cols, (rows + cols) % 2 ? SL_DTYPE_BF16 : SL_DTYPE_F32, &wq, &wd, packed, &pq, &pd);
    int64_t blocks = sl_q8_blocks(cols), stride = blocks * SL_Q8_BLOCK, ldo = rows + 3;
    float *x = malloc((size_t)(n * cols) * sizeof *x), *b = malloc((size_t)rows * sizeof *b);
    float *out = malloc((size_t)(n * ldo) * sizeof *out), *xd = malloc((size_t)(n * blocks) * sizeof *xd);
    int8_t *xq = malloc((size_t)(n * stride));
    int32_t *xs = malloc((size_t)(n * blocks) * sizeof *xs);
    cr_assert(x && b && out && xd && xq && xs);
    for (int64_t i = 0; i < n * cols; i++)
        x[i] = uniform();
    for (int64_t r = 0; r < rows; r++)
        b[r] = uniform();
    for (int32_t i = 0; i < n; i++)
        sl_q8_quantize_act_row_generic(xq + i * stride, xd + i * blocks, xs + i * blocks, x + i * cols, cols);
    for (int64_t i = 0; i < n * ldo; i++)
        out[i] = NAN;
    cr_assert(sl_matmul(out, ldo, x, n, &w, bias ? b : NULL, NULL));
    const char *level = getenv("SL_NO_AVX2") ? "generic" : getenv("SL_NO_AVX512") ? "avx2" : "best";
    for (int32_t i = 0; i < n; i++) {
        for (int64_t r = 0; r < ldo; r++) {
            float got = out[i * ldo + r];
            if (r >= rows) {
                cr_assert(isnan(got), "padding [%d][%ld] written", i, (long)r);
                continue;
            }
            double want = bias ? b[r] : 0.0, mag = bias ? fabs(b[r]) : 0.0;
            for (int64_t k = 0; k < blocks; k++) {
                int64_t dot = 0;
                for (int e = 0; e < SL_Q8_BLOCK; e++)
                    dot += (int64_t)wq[r * stride + k * SL_Q8_BLOCK + e] * xq[i * stride + k * SL_Q8_BLOCK + e];
                double p = (double)wd[r * blocks + k] * xd[i * blocks + k] * (double)dot;
                want += p;
                mag += fabs(p);
            }
            cr_assert(fabs(got - want) <= 1e-5 * mag + 1e-30, "%s%s n %d [%d][%ld] (%ldx%ld): got %.9g want %.9g",
                      level, packed ? " packed" : "", n, i, (long)r, (long)rows, (long)cols, got, want);
        }
    }
    free(wq);
    free(wd);
    free(pq);
    free(pd);
    free(x);
    free(b);
    free(out);
    free(xd);
    free(xq);
    free(xs);
}

static void check_all_of(bool packed)
{
    static const int32_t ns[] = {1, 2, 3, 5, 9, 17, 33, 50};
    static const int64_t shapes[][2] = {{37, 100}, {64, 1030}, {5, 7}, {301, 257}, {8, 64}, {70, 172}, {16, 96},
                                        {21, 2100}}; /* 66 blocks: the AVX2 one-pass kernel (groups over 16 KiB) */
    for (int threads = 1; threads <= 2; threads++) {
        sl_set_num_threads(threads);
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                check_product(shapes[s][0], shapes[s][1], ns[k], (s + k) % 2 == 0, packed);
    }
    sl_set_num_threads(1);
}

static void check_all(void)
{
    check_all_of(false);
    bool packed = sl_q8_packed_native();
    if (packed)
        check_all_of(true);
}

Test(kernels_q8, matmul_best_matches_double_reference)
{
    tu_cap_kernels("SL_NO_AVX2", false);
    tu_cap_kernels("SL_NO_AVX512", false);
    check_all();
}

Test(kernels_q8, matmul_avx2_matches_double_reference)
{
    tu_cap_kernels("SL_NO_AVX512", true);
    check_all();
    tu_cap_kernels("SL_NO_AVX512", false);
}

Test(kernels_q8, matmul_generic_matches_double_reference)
{
    tu_cap_kernels("SL_NO_AVX2", true);
    check_all();
    tu_cap_kernels("SL_NO_AVX2", false);
}

/* The quantised product stays close to the exact one: per element at most half a step of the
 * weight's and of the activation's scale. */
Test(kernels_q8, matmul_is_close_to_the_float_product)
{
    int64_t rows = 48, cols = 256;
    float *f = malloc((size_t)(rows * cols) * sizeof *f), x[256], out[48], row[256];
    cr_assert_not_null(f);
    for (int64_t i = 0; i < rows * cols; i++)
        f[i] = uniform();
    for (int i = 0; i < 256; i++)
        x[i] = uniform();
    sl_weight src = {.data = f, .dtype = SL_DTYPE_F32, .rows = rows, .cols = cols};
    int8_t *q = malloc((size_t)(rows * cols));
    float *d = malloc((size_t)(rows * cols / 32) * sizeof *d);
    cr_assert(q && d && sl_q8_convert(q, d, &src));
    sl_weight w = {.data = q, .dtype = SL_DTYPE_F32, .rows = rows, .cols = cols, .q8_scales = d};
    cr_assert(sl_matmul(out, rows, x, 1, &w, NULL, NULL));
    for (int64_t r = 0; r < rows; r++) {
        double exact = 0.0, bound = 0.0;
        for (int64_t c = 0; c < cols; c++) {
            exact += (double)f[r * cols + c] * x[c];
            bound += 0.5 * (1.0 / 127.0) * 2.0 + 1e-6; /* |w|,|x| <= 1: each error under a step of either */
        }
        cr_assert(fabs(out[r] - exact) <= bound, "row %ld: %g vs %g", (long)r, out[r], exact);
        sl_weight_row(row, &w, r);
        for (int64_t c = 0; c < cols; c++)
            cr_assert(fabsf(row[c] - f[r * cols + c]) <= 0.57f * d[r * 8 + c / 32], "dequantised [%ld][%ld]",
                      (long)r, (long)c);
    }
    free(f);
    free(q);
    free(d);
}

/* Batch invariance: row i of a Q8_0 product of n activation rows is bit-identical to the
 * product of that row alone, for every row count and 1 or 2 threads. */
static void check_rows_alone(int64_t rows, int64_t cols, int threads, bool packed)
{
    static const int32_t ns[] = {2, 4, 5, 7, 9, 13, 33, 40};
    const int32_t nmax = 40;
    int8_t *wq, *pq = NULL;
    float *wd;
    uint16_t *pd = NULL;
    sl_weight w = make_q8_as(rows, cols, SL_DTYPE_BF16, &wq, &wd, packed, &pq, &pd);
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
                      "row %d of %d (%ldx%ld, %d threads%s) differs from the row alone", i, n, (long)rows,
                      (long)cols, threads, packed ? ", packed" : "");
    }
    sl_set_num_threads(1);
    free(wq);
    free(wd);
    free(pq);
    free(pd);
    free(x);
    free(alone);
    free(out);
}

static void check_rows_alone_all(void)
{
    static const int64_t shapes[][2] = {{37, 100}, {64, 1030}, {5, 7}, {70, 172}, {21, 2100}};
    bool packed = sl_q8_packed_native();
    for (int threads = 1; threads <= 2; threads++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            check_rows_alone(shapes[s][0], shapes[s][1], threads, false);
            if (packed)
                check_rows_alone(shapes[s][0], shapes[s][1], threads, true);
        }
}

Test(kernels_q8, rows_of_a_batch_equal_rows_alone_best) { check_rows_alone_all(); }

Test(kernels_q8, rows_of_a_batch_equal_rows_alone_avx2)
{
    tu_cap_kernels("SL_NO_AVX512", true);
    check_rows_alone_all();
    tu_cap_kernels("SL_NO_AVX512", false);
}

Test(kernels_q8, rows_of_a_batch_equal_rows_alone_generic)
{
    tu_cap_kernels("SL_NO_AVX2", true);
    check_rows_alone_all();
    tu_cap_kernels("SL_NO_AVX2", false);
}

/* The products' scratch grows to the largest product and is reused; a growth that cannot be
 * had is reported and leaves it as it was, so a product reports failure instead of writing
 * anything. */
Test(kernels_q8, scratch_grows_once_and_reports_failure)
{
    int8_t *wq;
    float *wd;
    sl_weight w = make_q8(16, 96, SL_DTYPE_F32, &wq, &wd);
    float x[4 * 96], out[4 * 16], again[4 * 16];
    for (int i = 0; i < 4 * 96; i++)
        x[i] = uniform();
    sl_matmul_scratch s = {0};
    cr_assert(sl_matmul_scratch_reserve(&s, &w, 4));
    void *mem = s.mem;
    size_t cap = s.cap;
    cr_assert(cap >= sl_q8_act_bytes(4, 96));
    cr_assert(sl_matmul(out, 16, x, 4, &w, NULL, &s));
    cr_assert(sl_matmul(again, 16, x, 3, &w, NULL, &s));
    cr_assert(s.mem == mem && s.cap == cap, "a smaller product reallocated the scratch");
    cr_assert(memcmp(out, again, 3 * 16 * sizeof *out) == 0);
#ifndef __SANITIZE_ADDRESS__ /* ASan stops the process at an impossible allocation instead of failing it */
    cr_assert_not(sl_matmul_scratch_grow(&s, SIZE_MAX / 2));
    cr_assert(s.mem == mem && s.cap == cap, "a failed growth changed the scratch");
#endif
    sl_matmul_scratch_free(&s);
    cr_assert(s.mem == NULL && s.cap == 0);
    free(wq);
    free(wd);
}

/* A row for the quantiser tests: random values (every `every`-th one scaled by `big`), block 1
 * all zero, and block 2 with scale 1 (x[64] = 127), so that its values k + 0.5 are exact ties. */
static void quantiser_row(float *x, int cols, int every, float big)
{
    for (int i = 0; i < cols; i++)
        x[i] = uniform() * (i % every == 0 ? big : 1.0f);
    for (int i = 32; i < 64; i++)
        x[i] = 0.0f;
    x[64] = 127.0f;
}

/* The activation quantiser at the SIMD level gives the portable one's bytes: scales, rounding to
 * nearest even (ties included), the sums, zero blocks and a partial last block. */
Test(kernels_q8, act_quantiser_same_bytes_at_every_level)
{
    enum { COLS = 200, BLOCKS = 7 };
    float x[COLS];
    quantiser_row(x, COLS, 5, 3.0f);
    x[65] = 2.5f, x[66] = -2.5f, x[67] = 3.5f, x[68] = -0.5f, x[69] = 0.5f;
    int8_t q[2][BLOCKS * 32];
    float d[2][BLOCKS];
    int32_t bs[2][BLOCKS];
    sl_q8_quantize_act_row_generic(q[0], d[0], bs[0], x, COLS);
    tu_cap_kernels("SL_NO_AVX2", false);
    tu_cap_kernels("SL_NO_AVX512", false);
    sl_q8_quantize_act_row(q[1], d[1], bs[1], x, COLS);
    cr_assert(memcmp(q[0], q[1], sizeof q[0]) == 0 && memcmp(d[0], d[1], sizeof d[0]) == 0 &&
              memcmp(bs[0], bs[1], sizeof bs[0]) == 0);
    cr_assert(d[0][2] == 1.0f && q[0][65] == 2 && q[0][66] == -2 && q[0][67] == 4 && q[0][68] == 0 && q[0][69] == 0,
              "ties go to even");
    cr_assert(d[0][1] == 0.0f && bs[0][1] == 0 && q[0][40] == 0, "a zero block");
    for (int b = 0; b < BLOCKS; b++) {
        int32_t sum = 0;
        for (int k = 0; k < 32; k++)
            sum += q[0][b * 32 + k];
        cr_assert_eq(bs[0][b], -128 * sum, "bsum of block %d", b);
    }
    for (int k = COLS - 6 * 32; k < 32; k++)
        cr_assert_eq(q[0][6 * 32 + k], 0, "padding of the last block");
}

/* A packed weight: its rows read back as the stored layout's (the weight-row reader), and the
 * AVX-512 VNNI and AVX2 kernels give the same bytes. */
Test(kernels_q8, packed_layout_rows_and_kernels_agree)
{
    if (!packed_runs())
        cr_skip_test("no packed layout on this machine");
    static const int64_t shapes[][2] = {{37, 100}, {48, 576}, {5, 7}, {70, 172}, {21, 2100}};
    static const int32_t ns[] = {1, 2, 5, 8, 9, 17};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t rows = shapes[s][0], cols = shapes[s][1];
        int8_t *wq, *pq;
        float *wd;
        uint16_t *pd;
        sl_weight plain = make_q8(rows, cols, SL_DTYPE_F32, &wq, &wd);
        free(wq), free(wd);
        sl_weight w = make_q8_as(rows, cols, SL_DTYPE_F32, &wq, &wd, true, &pq, &pd);
        plain.data = wq, plain.q8_scales = wd;
        float *a = malloc((size_t)cols * sizeof *a), *b = malloc((size_t)cols * sizeof *b);
        float *x = malloc((size_t)(17 * cols) * sizeof *x);
        float *best = malloc((size_t)(17 * rows) * sizeof *best), *avx2 = malloc((size_t)(17 * rows) * sizeof *avx2);
        cr_assert(a && b && x && best && avx2);
        for (int64_t r = 0; r < rows; r++) {
            sl_weight_row(a, &plain, r);
            sl_weight_row(b, &w, r);
            cr_assert(memcmp(a, b, (size_t)cols * sizeof *a) == 0, "row %ld of %ldx%ld", (long)r, (long)rows,
                      (long)cols);
        }
        for (int64_t i = 0; i < 17 * cols; i++)
            x[i] = uniform();
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            tu_cap_kernels("SL_NO_AVX512", false);
            cr_assert(sl_matmul(best, rows, x, ns[k], &w, NULL, NULL));
            tu_cap_kernels("SL_NO_AVX512", true);
            cr_assert(sl_matmul(avx2, rows, x, ns[k], &w, NULL, NULL));
            cr_assert(memcmp(best, avx2, (size_t)(ns[k] * rows) * sizeof *best) == 0, "%d rows x %ldx%ld", ns[k],
                      (long)rows, (long)cols);
        }
        tu_cap_kernels("SL_NO_AVX512", false);
        free(wq), free(wd), free(pq), free(pd), free(a), free(b), free(x), free(best), free(avx2);
    }
}

/* The weights' quantiser at the SIMD level gives the portable one's bytes: roundf's halves away
 * from zero (x / d exactly k + 0.5), zero blocks, a partial last block, float16 scales. */
Test(kernels_q8, weight_quantiser_same_bytes_at_every_level)
{
    enum { COLS = 300, BLOCKS = 10 };
    float x[COLS];
    quantiser_row(x, COLS, 3, 5.0f);
    x[65] = 2.5f, x[66] = -2.5f, x[67] = 0.5f, x[68] = -0.5f, x[69] = 126.5f, x[70] = -3.4999998f;
    int8_t q[2][BLOCKS * 32];
    float d[2][BLOCKS];
    for (int half = 0; half <= 1; half++) {
        tu_cap_kernels("SL_NO_AVX2", true);
        sl_q8_quantize_row(q[0], d[0], x, COLS, half);
        tu_cap_kernels("SL_NO_AVX2", false);
        sl_q8_quantize_row(q[1], d[1], x, COLS, half);
        cr_assert(memcmp(q[0], q[1], sizeof q[0]) == 0 && memcmp(d[0], d[1], sizeof d[0]) == 0, "half %d", half);
        cr_assert(q[1][65] == 3 && q[1][66] == -3 && q[1][67] == 1 && q[1][68] == -1 && q[1][69] == 127 &&
                      q[1][70] == -3,
                  "halves away from zero");
        for (int k = COLS % 32; k < 32; k++)
            cr_assert_eq(q[1][(BLOCKS - 1) * 32 + k], 0, "padding");
    }
}
