/* x86 SIMD row kernels (AVX2 + FMA + F16C, and AVX-512), compiled for their targets with
 * function attributes; kernels.c calls them only when the CPU has the instructions. */
#include "simd_x86.h"

#ifdef SL_X86

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cpuid.h>

/* NX activation rows (1 to SL_FEW_ROWS: a decode step, a batched one, an expert with its
 * amateur): the weight rows one after another, each read as a single forward stream that serves
 * every activation row. Interleaving several weight rows' streams halves the read rate on some
 * CPUs (Zen 4: 9 against 19 GB/s from one core), whose prefetchers follow one stream best; four
 * accumulators per row keep the FMA chains from limiting it, and a prefetch into L2 ahead of the
 * stream keeps enough reads in flight (prefetch_stream). Each row sums the same way whatever
 * NX is, so a row's result does not depend on how many rows share the pass. NX is a constant at
 * every call.
 *
 * The whole 32-column blocks of weight row wr: acc[j][k] += columns [32b + 8k, 32b + 8k + 8) of
 * every block b. Both levels run it with 8-lane vectors; at AVX-512 acc[j][2h + k] holds lanes
 * 8k .. 8k + 7 of 16-lane accumulator h, the same sums in the same order. 512-bit conversions
 * and multiply-adds read the stream slower on Zen 4 (exact Llama-3.2-1B decode, one thread:
 * 8.3-8.9 against 9.5-10.3 tok/s). */
static SL_ALWAYS_INLINE SL_AVX2 void stream_blocks_avx2(__m256 acc[][4], const float *x, int64_t cols, const void *wr,
                                                        int64_t c32, sl_dtype dt, const int NX)
{
    for (int64_t c = 0; c < c32; c += 32) {
        prefetch_stream(wr, c, dt);
        __m256 w0 = load8_w(wr, c, dt), w1 = load8_w(wr, c + 8, dt);
        __m256 w2 = load8_w(wr, c + 16, dt), w3 = load8_w(wr, c + 24, dt);
        for (int j = 0; j < NX; j++) {
            const float *xj = x + j * cols + c;
            acc[j][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xj), acc[j][0]);
            acc[j][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xj + 8), acc[j][1]);
            acc[j][2] = _mm256_fmadd_ps(w2, _mm256_loadu_ps(xj + 16), acc[j][2]);
            acc[j][3] = _mm256_fmadd_ps(w3, _mm256_loadu_ps(xj + 24), acc[j][3]);
        }
    }
}

static SL_ALWAYS_INLINE SL_AVX2 void vecn_avx2(float *out, int64_t ldo, const float *x, const sl_weight *w,
                                               int64_t r0, int64_t r1, sl_dtype dt, const int NX)
{
    int64_t cols = w->cols, c32 = cols & ~(int64_t)31, c8 = cols & ~(int64_t)7;
    for (int64_t r = r0; r < r1; r++) {
        const void *wr = sl_row_ptr(w, r);
        __m256 acc[4][4];
        for (int j = 0; j < NX; j++)
            acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = _mm256_setzero_ps();
        stream_blocks_avx2(acc, x, cols, wr, c32, dt, NX);
        int64_t c = c32;
        for (; c < c8; c += 8) {
            __m256 w0 = load8_w(wr, c, dt);
            for (int j = 0; j < NX; j++)
                acc[j][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + j * cols + c), acc[j][0]);
        }
        for (int j = 0; j < NX; j++) {
            float s = hsum8(_mm256_add_ps(_mm256_add_ps(acc[j][0], acc[j][1]), _mm256_add_ps(acc[j][2], acc[j][3])));
            for (int64_t k = c; k < cols; k++)
                s += sl_scalar_w(wr, k, dt) * x[j * cols + k];
            out[j * ldo + r] = s;
        }
    }
}

/* Whether nx activation rows take the few-row kernels: at most SL_FEW_ROWS, and (beyond one)
 * no more than fit in half of L1, since every weight row reads all of them again. */
static inline bool few_rows_fit(int32_t nx, const sl_weight *w)
{
    return nx == 1 || (nx <= SL_FEW_ROWS && (int64_t)nx * w->cols * (int64_t)sizeof(float) <= SL_FEW_ROWS_BYTES);
}

/* SL_FEW_ROWS activation rows or fewer: one weight stream keeps the product near the 1-row
 * read rate (bench_matmul, 2 threads: 2 rows at 20 GB/s, where the 4-row tiles read 15). */
static SL_ALWAYS_INLINE SL_AVX2 bool few_rows_avx2(float *out, int64_t ldo, const float *x, int32_t nx,
                                                   const sl_weight *w, int64_t r0, int64_t r1, sl_dtype dt)
{
    if (!few_rows_fit(nx, w))
        return false;
    switch (nx) {
    case 1: vecn_avx2(out, ldo, x, w, r0, r1, dt, 1); return true;
    case 2: vecn_avx2(out, ldo, x, w, r0, r1, dt, 2); return true;
    case 3: vecn_avx2(out, ldo, x, w, r0, r1, dt, 3); return true;
    case 4: vecn_avx2(out, ldo, x, w, r0, r1, dt, 4); return true;
    default: return false;
    }
}

/* Several activation rows (prefill chunks, the LM head over DoLa's layers): the product is
 * compute-bound, not bandwidth-bound. A tile of R weight rows by C activation rows is
 * accumulated in registers, so each weight load serves C rows and each activation load R
 * rows. R and C are constants at every call, so the loops unroll into registers. */

#define SL_AVX2_ROWS 3 /* weight rows per tile */
#define SL_AVX2_COLS 3 /* activation rows per tile: 3 x 3 accumulators + 3 weight vectors + 1 */
/* Columns per chunk of a tile's passes: the tile's weight and activation rows of this many
 * columns stay in L1 while the passes go over them. A multiple of 32. */
#define SL_TILE_CHUNK 512

/* A tile of R weight rows by C activation rows, each output summed exactly as vecn_avx2 sums
 * it: four accumulators a0..a3, a_k over columns [32b + 8k, 32b + 8k + 8) of every 32-column
 * block, the 8-column blocks past the last 32 into a0, hsum8((a0 + a1) + (a2 + a3)), then the
 * scalar tail. Four accumulators per output do not fit a register tile, so the tile takes the
 * four in turn (pass k holds every output's a_k), chunk by chunk so the rows stay in L1; each
 * a_k still sees its blocks in column order. */
static SL_ALWAYS_INLINE SL_AVX2 void tile_avx2(float *out, int64_t ldo, const float *x, int64_t cols,
                                               const char *w0, int64_t row_bytes, int64_t ahead, const int R,
                                               const int C, sl_dtype dt)
{
    int64_t c32 = cols & ~(int64_t)31, c8 = cols & ~(int64_t)7;
    __m256 part[4][SL_AVX2_ROWS][SL_AVX2_COLS];
    for (int64_t c0 = 0; c0 < c32 || c0 == 0; c0 += SL_TILE_CHUNK) {
        int64_t c1 = c32 - c0 < SL_TILE_CHUNK ? c32 : c0 + SL_TILE_CHUNK;
        for (int k = 0; k < 4; k++) {
            __m256 acc[SL_AVX2_ROWS][SL_AVX2_COLS];
            for (int i = 0; i < R; i++)
                for (int j = 0; j < C; j++)
                    acc[i][j] = c0 == 0 ? _mm256_setzero_ps() : part[k][i][j];
            for (int64_t c = c0 + 8 * k; c < c1; c += 32) {
                if (k == 0 && ahead) /* weights from memory: the hardware prefetchers alone leave the tile waiting */
                    for (int i = 0; i < R; i++)
                        for (int64_t b = 0; b < 32 * (int64_t)sl_dtype_size(dt); b += 64)
                            _mm_prefetch(w0 + i * row_bytes + c * sl_dtype_size(dt) + b + ahead, _MM_HINT_T0);
                __m256 wv[SL_AVX2_ROWS];
                for (int i = 0; i < R; i++)
                    wv[i] = load8_w(w0 + i * row_bytes, c, dt);
                for (int j = 0; j < C; j++) {
                    __m256 xv = _mm256_loadu_ps(x + j * cols + c);
                    for (int i = 0; i < R; i++)
                        acc[i][j] = _mm256_fmadd_ps(wv[i], xv, acc[i][j]);
                }
            }
            for (int i = 0; i < R; i++)
                for (int j = 0; j < C; j++)
                    part[k][i][j] = acc[i][j];
        }
    }
    for (int64_t c = c32; c < c8; c += 8)
        for (int i = 0; i < R; i++) {
            __m256 wv = load8_w(w0 + i * row_bytes, c, dt);
            for (int j = 0; j < C; j++)
                part[0][i][j] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + j * cols + c), part[0][i][j]);
        }
    for (int j = 0; j < C; j++)
        for (int i = 0; i < R; i++) {
            const char *wr = w0 + i * row_bytes;
            float s = hsum8(_mm256_add_ps(_mm256_add_ps(part[0][i][j], part[1][i][j]),
                                          _mm256_add_ps(part[2][i][j], part[3][i][j])));
            for (int64_t k = c8; k < cols; k++)
                s += sl_scalar_w(wr, k, dt) * x[j * cols + k];
            out[j * ldo + i] = s;
        }
}

#define TILE_AVX2(R, C) \
    tile_avx2(out + j0 * ldo + r, ldo, x + j0 * cols, cols, sl_row_ptr(w, r), row_bytes, ahead, R, C, dt)

/* The R x C tile at weight row r and activation row j0 (R and C constants in each case). */
static SL_ALWAYS_INLINE SL_AVX2 void tile_avx2_at(float *out, int64_t ldo, const float *x, const sl_weight *w,
                                                 int64_t r, int32_t j0, int R, int C, bool fetch,
                                                 sl_dtype dt)
{
    int64_t cols = w->cols, row_bytes = cols * sl_dtype_size(dt);
    int64_t ahead = fetch ? tile_prefetch_distance(row_bytes, R) : 0;
    switch (R * 8 + C) {
    case 25: TILE_AVX2(3, 1); break;
    case 26: TILE_AVX2(3, 2); break;
    case 27: TILE_AVX2(3, 3); break;
    case 9: TILE_AVX2(1, 1); break;
    case 10: TILE_AVX2(1, 2); break;
    default: TILE_AVX2(1, 3); break;
    }
}

static SL_ALWAYS_INLINE SL_AVX2 void rows_avx2(float *out, int64_t ldo, const float *x, int32_t nx,
                                               const sl_weight *w, int64_t r0, int64_t r1, sl_dtype dt)
{
    if (few_rows_avx2(out, ldo, x, nx, w, r0, r1, dt))
        return;
    /* Weight rows in blocks that stay in L2 while every group of activation rows passes, so each
     * is read from memory once. When all the activation rows fit in L1 (a batched decode step),
     * each tile's weight rows stay while every group passes: the weights stream from memory once,
     * overlapped with all the work. Otherwise a group that fits in L1 stays there while the
     * block's weight rows go by, and longer rows go the first way round. */
    int64_t block = SL_TILE_L2_BYTES / (w->cols * sl_dtype_size(dt)) / SL_AVX2_ROWS * SL_AVX2_ROWS;
    block = block < SL_AVX2_ROWS ? SL_AVX2_ROWS : block;
    int64_t x_row = w->cols * (int64_t)sizeof(float);
    bool x_in_l1 = (int64_t)nx * x_row > SL_TILE_ALL_L1_BYTES && (int64_t)SL_AVX2_COLS * x_row <= SL_TILE_L1_BYTES;
    for (int64_t b0 = r0; b0 < r1; b0 += block) {
        int64_t b1 = r1 - b0 < block ? r1 : b0 + block;
        if (x_in_l1) {
            for (int32_t j0 = 0, C; j0 < nx; j0 += C) {
                C = group_size(nx, j0, SL_AVX2_COLS);
                for (int64_t r = b0, R; r < b1; r += R) {
                    R = b1 - r >= SL_AVX2_ROWS ? SL_AVX2_ROWS : 1;
                    tile_avx2_at(out, ldo, x, w, r, j0, (int)R, C, j0 == 0, dt);
                }
            }
        } else {
            for (int64_t r = b0, R; r < b1; r += R) {
                R = b1 - r >= SL_AVX2_ROWS ? SL_AVX2_ROWS : 1;
                for (int32_t j0 = 0, C; j0 < nx; j0 += C) {
                    C = group_size(nx, j0, SL_AVX2_COLS);
                    tile_avx2_at(out, ldo, x, w, r, j0, (int)R, C, j0 == 0, dt);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- AVX-512 */

/* The AVX-512 level's one-stream kernel: each output summed as the AVX-512 tiles sum it (two
 * 16-lane accumulators a0, a1 over every 32-column block, a last 16-column block into a0, the
 * masked tail into a1, then hsum8(fold16(a0 + a1))), in 8-lane halves (stream_blocks_avx2). */
static SL_ALWAYS_INLINE SL_AVX512 void vecn_avx512(float *out, int64_t ldo, const float *x, const sl_weight *w,
                                                   int64_t r0, int64_t r1, sl_dtype dt, const int NX)
{
    int64_t cols = w->cols, c32 = cols & ~(int64_t)31, c16 = cols & ~(int64_t)15;
    unsigned tail = (1u << (cols - c16)) - 1u;
    __mmask8 tail_lo = (__mmask8)(tail & 0xff), tail_hi = (__mmask8)(tail >> 8);
    /* Sums wait in a small buffer and go out 16 rows at a time: storing each row's NX sums at
     * once, ldo apart (often a multiple of 4 KiB), made the next weight loads wait on them. */
    float sums[4][16];
    for (int64_t r = r0; r < r1; r++) {
        const void *wr = sl_row_ptr(w, r);
        __m256 acc[4][4]; /* acc[j][2h + k]: lanes 8k .. 8k + 7 of a_h */
        for (int j = 0; j < NX; j++)
            acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = _mm256_setzero_ps();
        stream_blocks_avx2(acc, x, cols, wr, c32, dt, NX);
        int64_t c = c32;
        if (c < c16) {
            __m256 w0 = load8_w(wr, c, dt), w1 = load8_w(wr, c + 8, dt);
            for (int j = 0; j < NX; j++) {
                acc[j][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + j * cols + c), acc[j][0]);
                acc[j][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + j * cols + c + 8), acc[j][1]);
            }
            c += 16;
        }
        if (tail) {
            __m256 w0 = load8_w_part(wr, c, tail_lo, dt), w1 = load8_w_part(wr, c + 8, tail_hi, dt);
            for (int j = 0; j < NX; j++) {
                acc[j][2] = _mm256_fmadd_ps(w0, _mm256_maskz_loadu_ps(tail_lo, x + j * cols + c), acc[j][2]);
                acc[j][3] = _mm256_fmadd_ps(w1, _mm256_maskz_loadu_ps(tail_hi, x + j * cols + c + 8), acc[j][3]);
            }
        }
        for (int j = 0; j < NX; j++) /* fold16(a0 + a1) */
            sums[j][(r - r0) & 15] =
                hsum8(_mm256_add_ps(_mm256_add_ps(acc[j][0], acc[j][2]), _mm256_add_ps(acc[j][1], acc[j][3])));
        if (((r - r0) & 15) == 15 || r + 1 == r1) {
            int64_t first = r - ((r - r0) & 15);
            for (int j = 0; j < NX; j++)
                for (int64_t k = first; k <= r; k++)
                    out[j * ldo + k] = sums[j][k - first];
        }
    }
}

static SL_ALWAYS_INLINE SL_AVX512 bool few_rows_avx512(float *out, int64_t ldo, const float *x, int32_t nx,
                                                       const sl_weight *w, int64_t r0, int64_t r1, sl_dtype dt)
{
    if (!few_rows_fit(nx, w))
        return false;
    switch (nx) {
    case 1: vecn_avx512(out, ldo, x, w, r0, r1, dt, 1); return true;
    case 2: vecn_avx512(out, ldo, x, w, r0, r1, dt, 2); return true;
    case 3: vecn_avx512(out, ldo, x, w, r0, r1, dt, 3); return true;
    case 4: vecn_avx512(out, ldo, x, w, r0, r1, dt, 4); return true;
    default: return false;
    }
}

/* Tile shapes (weight rows x activation rows, two accumulators per output): 2 x 6 where six
 * activation rows fit in L1 (each weight load and BF16 conversion serves six rows), 4 x 3 for
 * longer rows (half the activation bytes per multiply-add from L2). */
#define SL_AVX512_COLS 6

/* A tile of R weight rows by C activation rows, each output summed exactly as vecn_avx512 sums
 * it: two accumulators over every 32-column block (the first 16 columns into a0, the next 16
 * into a1), a last 16-column block into a0, the masked tail into a1, then
 * hsum8(fold16(a0 + a1)); so a row's result does not depend on how many rows share the pass.
 * Each activation vector is loaded once for the four weight rows: loads, not multiply-adds,
 * limit 512-bit tiles on some CPUs (Zen 4 loads one 512-bit vector per cycle). */
static SL_ALWAYS_INLINE SL_AVX512 void tile_avx512(float *out, int64_t ldo, const float *x, int64_t cols,
                                                   const char *w0, int64_t row_bytes, int64_t ahead, const int R,
                                                   const int C, sl_dtype dt)
{
    int64_t c32 = cols & ~(int64_t)31, c16 = cols & ~(int64_t)15;
    __m512 acc[4][SL_AVX512_COLS][2];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            acc[i][j][0] = acc[i][j][1] = _mm512_setzero_ps();
    for (int64_t c = 0; c < c32; c += 32) {
        if (ahead) /* weights from memory: the hardware prefetchers alone leave the tile waiting */
            for (int i = 0; i < R; i++)
                for (int64_t b = 0; b < 32 * (int64_t)sl_dtype_size(dt); b += 64)
                    _mm_prefetch(w0 + i * row_bytes + c * sl_dtype_size(dt) + b + ahead, _MM_HINT_T0);
        for (int h = 0; h < 2; h++) {
            __m512 wv[4];
            for (int i = 0; i < R; i++)
                wv[i] = load16_w(w0 + i * row_bytes, c + 16 * h, dt);
            for (int j = 0; j < C; j++) {
                __m512 xv = _mm512_loadu_ps(x + j * cols + c + 16 * h);
                __asm__("" : "+v"(xv)); /* one load per activation vector, not one per weight row */
                for (int i = 0; i < R; i++)
                    acc[i][j][h] = _mm512_fmadd_ps(wv[i], xv, acc[i][j][h]);
            }
        }
    }
    int64_t c = c32;
    if (c < c16) {
        for (int i = 0; i < R; i++) {
            __m512 wv = load16_w(w0 + i * row_bytes, c, dt);
            for (int j = 0; j < C; j++)
                acc[i][j][0] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + j * cols + c), acc[i][j][0]);
        }
        c += 16;
    }
    if (c < cols) {
        __mmask16 m = (__mmask16)((1u << (cols - c)) - 1);
        for (int i = 0; i < R; i++) {
            __m512 wv = load16_w_part(w0 + i * row_bytes, c, m, dt);
            for (int j = 0; j < C; j++)
                acc[i][j][1] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + j * cols + c), acc[i][j][1]);
        }
    }
    /* four outputs of a weight row at once (activation rows j .. j + 3) */
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j += 4) {
            __m256 v[4];
            for (int k = 0; k < 4; k++)
                v[k] = j + k < C ? fold16(_mm512_add_ps(acc[i][j + k][0], acc[i][j + k][1])) : _mm256_setzero_ps();
            float sum[4];
            _mm_storeu_ps(sum, hsum8x4(v[0], v[1], v[2], v[3]));
            for (int k = 0; k < 4 && j + k < C; k++)
                out[(j + k) * ldo + i] = sum[k];
        }
}

#define TILE_AVX512(R, C) \
    tile_avx512(out + j0 * ldo + r, ldo, x + j0 * cols, cols, sl_row_ptr(w, r), row_bytes, ahead, R, C, dt)

/* The R x C tile at weight row r and activation row j0 (R and C constants in each case). */
static SL_ALWAYS_INLINE SL_AVX512 void tile_avx512_at(float *out, int64_t ldo, const float *x, const sl_weight *w,
                                                 int64_t r, int32_t j0, int R, int C, bool fetch,
                                                 sl_dtype dt)
{
    int64_t cols = w->cols, row_bytes = cols * sl_dtype_size(dt);
    int64_t ahead = fetch ? tile_prefetch_distance(row_bytes, R) : 0;
    switch (R * 8 + C) {
    case 33: TILE_AVX512(4, 1); break;
    case 34: TILE_AVX512(4, 2); break;
    case 35: TILE_AVX512(4, 3); break;
    case 17: TILE_AVX512(2, 1); break;
    case 18: TILE_AVX512(2, 2); break;
    case 19: TILE_AVX512(2, 3); break;
    case 20: TILE_AVX512(2, 4); break;
    case 21: TILE_AVX512(2, 5); break;
    case 22: TILE_AVX512(2, 6); break;
    case 9: TILE_AVX512(1, 1); break;
    case 10: TILE_AVX512(1, 2); break;
    case 11: TILE_AVX512(1, 3); break;
    case 12: TILE_AVX512(1, 4); break;
    case 13: TILE_AVX512(1, 5); break;
    default: TILE_AVX512(1, 6); break;
    }
}

static SL_ALWAYS_INLINE SL_AVX512 void rows_avx512(float *out, int64_t ldo, const float *x, int32_t nx,
                                                   const sl_weight *w, int64_t r0, int64_t r1, sl_dtype dt)
{
    if (few_rows_avx512(out, ldo, x, nx, w, r0, r1, dt))
        return;
    int64_t x_row = w->cols * (int64_t)sizeof(float);
    bool short_rows = 6 * x_row <= SL_TILE_L1_BYTES;
    int rows = short_rows ? 2 : 4, cmax = short_rows ? 6 : 3;
    /* Weight rows in blocks that stay in L2 while every group of activation rows passes, so each
     * is read from memory once. With short rows and more activation rows than fit in L1 (a
     * prefill), a group stays in L1 while the block's weight rows go by; otherwise (a batched
     * decode step, long rows) each tile's weight rows stay while every group passes, so the
     * weights stream from memory once, overlapped with all the work. */
    bool groups_outside = short_rows && (int64_t)nx * x_row > SL_TILE_ALL_L1_BYTES;
    int64_t block = SL_TILE_L2_BYTES / (w->cols * sl_dtype_size(dt)) / rows * rows;
    block = block < rows ? rows : block;
    for (int64_t b0 = r0; b0 < r1; b0 += block) {
        int64_t b1 = r1 - b0 < block ? r1 : b0 + block;
        if (groups_outside) {
            for (int32_t j0 = 0, C; j0 < nx; j0 += C) {
                C = group_size(nx, j0, cmax);
                for (int64_t r = b0, R; r < b1; r += R) {
                    R = b1 - r >= rows ? rows : 1;
                    tile_avx512_at(out, ldo, x, w, r, j0, (int)R, C, j0 == 0, dt);
                }
            }
        } else {
            for (int64_t r = b0, R; r < b1; r += R) {
                R = b1 - r >= rows ? rows : 1;
                for (int32_t j0 = 0, C; j0 < nx; j0 += C) {
                    C = group_size(nx, j0, cmax);
                    tile_avx512_at(out, ldo, x, w, r, j0, (int)R, C, j0 == 0, dt);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- dispatch */

#define SL_ROWS_VARIANT(name, target, body, dt)                                                              \
    static target void name(float *o, int64_t ldo, const float *x, int32_t nx, const sl_weight *w, int64_t r0, \
                            int64_t r1)                                                                        \
    {                                                                                                          \
        body(o, ldo, x, nx, w, r0, r1, dt);                                                                    \
    }
SL_ROWS_VARIANT(rows_avx2_f32, SL_AVX2, rows_avx2, SL_DTYPE_F32)
SL_ROWS_VARIANT(rows_avx2_bf16, SL_AVX2, rows_avx2, SL_DTYPE_BF16)
SL_ROWS_VARIANT(rows_avx2_f16, SL_AVX2, rows_avx2, SL_DTYPE_F16)
SL_ROWS_VARIANT(rows_avx512_f32, SL_AVX512, rows_avx512, SL_DTYPE_F32)
SL_ROWS_VARIANT(rows_avx512_bf16, SL_AVX512, rows_avx512, SL_DTYPE_BF16)
SL_ROWS_VARIANT(rows_avx512_f16, SL_AVX512, rows_avx512, SL_DTYPE_F16)

sl_rows_fn sl_rows_simd(sl_dtype dt, sl_isa isa)
{
    static const sl_rows_fn avx2[] = {[SL_DTYPE_F32] = rows_avx2_f32, [SL_DTYPE_BF16] = rows_avx2_bf16,
                                      [SL_DTYPE_F16] = rows_avx2_f16};
    static const sl_rows_fn avx512[] = {[SL_DTYPE_F32] = rows_avx512_f32, [SL_DTYPE_BF16] = rows_avx512_bf16,
                                        [SL_DTYPE_F16] = rows_avx512_f16};
    return isa >= SL_ISA_AVX512 ? avx512[dt] : avx2[dt];
}

/* The level in use, -1 until read: the CPU's features and the environment's caps are read
 * once, not on every product. */
static _Atomic int g_isa = -1;

/* F16C from CPUID (leaf 1, ECX): clang's __builtin_cpu_supports does not know the name. */
static bool has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

static sl_isa detect_isa(void)
{
    __builtin_cpu_init();
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl");
    if (!avx2 || getenv("SL_NO_AVX2"))
        return SL_ISA_GENERIC;
    return avx512 && !getenv("SL_NO_AVX512") ? SL_ISA_AVX512 : SL_ISA_AVX2;
}

sl_isa sl_kernel_isa(void)
{
    int isa = atomic_load_explicit(&g_isa, memory_order_relaxed);
    if (isa < 0) {
        isa = (int)detect_isa();
        atomic_store_explicit(&g_isa, isa, memory_order_relaxed);
    }
    return (sl_isa)isa;
}

void sl_kernel_isa_reload(void) { atomic_store_explicit(&g_isa, -1, memory_order_relaxed); }

#else

sl_isa sl_kernel_isa(void) { return SL_ISA_GENERIC; }
void sl_kernel_isa_reload(void) {}

#endif
