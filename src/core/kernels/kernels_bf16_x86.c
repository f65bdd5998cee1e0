/* BF16-compute products on vdpbf16ps (AVX512-BF16): activation rows already rounded to BF16
 * times BF16 weights, each instruction 32 products summed pairwise into 16 float32 lanes.
 *
 * Every output is summed in one order, whatever the number of rows in the pass: two
 * accumulators over each 64-column block (the first 32 columns into a0, the next 32 into a1), a
 * last 32-column block into a0, the masked tail into a1, then hsum8(fold16(a0 + a1)). */
#include "simd_x86.h"

#ifdef SL_X86

#include <stdatomic.h>
#include <stdbool.h>

#define SL_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")))

static SL_ALWAYS_INLINE SL_AVX512_BF16 __m512 dot32(__m512 acc, __m512i x, __m512i w)
{
    return _mm512_dpbf16_ps(acc, (__m512bh)x, (__m512bh)w);
}

static SL_ALWAYS_INLINE SL_AVX512_BF16 __m512i load32(const uint16_t *p) { return _mm512_loadu_si512(p); }

/* NX activation rows (1 to 4) against each weight row read as one forward stream, as
 * vecn_avx512 reads them, but without its prefetch: with a third of its instructions per byte
 * this kernel keeps enough reads in flight, and the prefetch slowed it (SmolLM2-135M shape, one
 * thread: 71-74 against 88-93 tok/s). */
static SL_ALWAYS_INLINE SL_AVX512_BF16 void vecn_bf16(float *out, int64_t ldo, const uint16_t *x, const sl_weight *w,
                                                      int64_t r0, int64_t r1, const int NX)
{
    int64_t cols = w->cols, c64 = cols & ~(int64_t)63, c32 = cols & ~(int64_t)31;
    __mmask32 tail = (__mmask32)((1ull << (cols - c32)) - 1ull);
    float sums[4][16];
    for (int64_t r = r0; r < r1; r++) {
        const uint16_t *wr = (const uint16_t *)w->data + r * cols;
        __m512 acc[4][2];
        for (int j = 0; j < NX; j++)
            acc[j][0] = acc[j][1] = _mm512_setzero_ps();
        int64_t c = 0;
        for (; c < c64; c += 64) {
            __m512i w0 = load32(wr + c), w1 = load32(wr + c + 32);
            for (int j = 0; j < NX; j++) {
                acc[j][0] = dot32(acc[j][0], load32(x + j * cols + c), w0);
                acc[j][1] = dot32(acc[j][1], load32(x + j * cols + c + 32), w1);
            }
        }
        if (c < c32) {
            __m512i w0 = load32(wr + c);
            for (int j = 0; j < NX; j++)
                acc[j][0] = dot32(acc[j][0], load32(x + j * cols + c), w0);
            c += 32;
        }
        if (tail) {
            __m512i w0 = _mm512_maskz_loadu_epi16(tail, wr + c);
            for (int j = 0; j < NX; j++)
                acc[j][1] = dot32(acc[j][1], _mm512_maskz_loadu_epi16(tail, x + j * cols + c), w0);
        }
        for (int j = 0; j < NX; j++)
            sums[j][(r - r0) & 15] = hsum8(fold16(_mm512_add_ps(acc[j][0], acc[j][1])));
        if (((r - r0) & 15) == 15 || r + 1 == r1) {
            int64_t first = r - ((r - r0) & 15);
            for (int j = 0; j < NX; j++)
                for (int64_t k = first; k <= r; k++)
                    out[j * ldo + k] = sums[j][k - first];
        }
    }
}

/* A tile of R weight rows (1 or 2) by C activation rows (1 to 6), summed as vecn_bf16 sums. */
#define SL_BF16_ROWS 2
#define SL_BF16_COLS 6
static SL_ALWAYS_INLINE SL_AVX512_BF16 void tile_bf16(float *out, int64_t ldo, const uint16_t *x, int64_t cols,
                                                      const uint16_t *w0, int64_t ahead, const int R, const int C)
{
    int64_t c64 = cols & ~(int64_t)63, c32 = cols & ~(int64_t)31;
    __m512 acc[SL_BF16_ROWS][SL_BF16_COLS][2];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            acc[i][j][0] = acc[i][j][1] = _mm512_setzero_ps();
    for (int64_t c = 0; c < c64; c += 64) {
        if (ahead) /* weights from memory: the hardware prefetchers alone leave the tile waiting */
            for (int i = 0; i < R; i++)
                for (int b = 0; b < 128; b += 64)
                    _mm_prefetch((const char *)(w0 + i * cols + c) + b + ahead, _MM_HINT_T0);
        for (int h = 0; h < 2; h++) {
            __m512i wv[SL_BF16_ROWS];
            for (int i = 0; i < R; i++)
                wv[i] = load32(w0 + i * cols + c + 32 * h);
            for (int j = 0; j < C; j++) {
                __m512i xv = load32(x + j * cols + c + 32 * h);
                __asm__("" : "+v"(xv)); /* one load per activation vector, not one per weight row */
                for (int i = 0; i < R; i++)
                    acc[i][j][h] = dot32(acc[i][j][h], xv, wv[i]);
            }
        }
    }
    int64_t c = c64;
    if (c < c32) {
        for (int i = 0; i < R; i++) {
            __m512i wv = load32(w0 + i * cols + c);
            for (int j = 0; j < C; j++)
                acc[i][j][0] = dot32(acc[i][j][0], load32(x + j * cols + c), wv);
        }
        c += 32;
    }
    if (c < cols) {
        __mmask32 m = (__mmask32)((1ull << (cols - c)) - 1ull);
        for (int i = 0; i < R; i++) {
            __m512i wv = _mm512_maskz_loadu_epi16(m, w0 + i * cols + c);
            for (int j = 0; j < C; j++)
                acc[i][j][1] = dot32(acc[i][j][1], _mm512_maskz_loadu_epi16(m, x + j * cols + c), wv);
        }
    }
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

#define TILE_BF16(R, C) tile_bf16(out + j0 * ldo + r, ldo, x + j0 * cols, cols, wr, ahead, R, C)

static SL_ALWAYS_INLINE SL_AVX512_BF16 void tile_bf16_at(float *out, int64_t ldo, const uint16_t *x,
                                                         const sl_weight *w, int64_t r, int32_t j0, int R, int C,
                                                         bool fetch)
{
    int64_t cols = w->cols, row_bytes = cols * 2;
    const uint16_t *wr = (const uint16_t *)w->data + r * cols;
    int64_t ahead = fetch ? tile_prefetch_distance(row_bytes, R) : 0;
    switch (R * 8 + C) {
    case 17: TILE_BF16(2, 1); break;
    case 18: TILE_BF16(2, 2); break;
    case 19: TILE_BF16(2, 3); break;
    case 20: TILE_BF16(2, 4); break;
    case 21: TILE_BF16(2, 5); break;
    case 22: TILE_BF16(2, 6); break;
    case 9: TILE_BF16(1, 1); break;
    case 10: TILE_BF16(1, 2); break;
    case 11: TILE_BF16(1, 3); break;
    case 12: TILE_BF16(1, 4); break;
    case 13: TILE_BF16(1, 5); break;
    default: TILE_BF16(1, 6); break;
    }
}

static SL_AVX512_BF16 void rows_bf16(float *out, int64_t ldo, const uint16_t *x, int32_t nx, const sl_weight *w,
                                     int64_t r0, int64_t r1)
{
    int64_t x_row = w->cols * 2;
    if (nx == 1 || (nx <= SL_FEW_ROWS && nx * x_row <= SL_FEW_ROWS_BYTES)) {
        switch (nx) {
        case 1: vecn_bf16(out, ldo, x, w, r0, r1, 1); return;
        case 2: vecn_bf16(out, ldo, x, w, r0, r1, 2); return;
        case 3: vecn_bf16(out, ldo, x, w, r0, r1, 3); return;
        default: vecn_bf16(out, ldo, x, w, r0, r1, 4); return;
        }
    }
    /* blocked as rows_avx512: see there */
    bool groups_outside = (int64_t)nx * x_row > SL_TILE_ALL_L1_BYTES;
    int64_t block = SL_TILE_L2_BYTES / x_row / SL_BF16_ROWS * SL_BF16_ROWS;
    block = block < SL_BF16_ROWS ? SL_BF16_ROWS : block;
    for (int64_t b0 = r0; b0 < r1; b0 += block) {
        int64_t b1 = r1 - b0 < block ? r1 : b0 + block;
        if (groups_outside) {
            for (int32_t j0 = 0, C; j0 < nx; j0 += C) {
                C = group_size(nx, j0, SL_BF16_COLS);
                for (int64_t r = b0, R; r < b1; r += R) {
                    R = b1 - r >= SL_BF16_ROWS ? SL_BF16_ROWS : 1;
                    tile_bf16_at(out, ldo, x, w, r, j0, (int)R, C, j0 == 0);
                }
            }
        } else {
            for (int64_t r = b0, R; r < b1; r += R) {
                R = b1 - r >= SL_BF16_ROWS ? SL_BF16_ROWS : 1;
                for (int32_t j0 = 0, C; j0 < nx; j0 += C) {
                    C = group_size(nx, j0, SL_BF16_COLS);
                    tile_bf16_at(out, ldo, x, w, r, j0, (int)R, C, j0 == 0);
                }
            }
        }
    }
}

sl_bf16_rows_fn sl_bf16_rows_simd(void)
{
    static _Atomic int has = -1; /* read from the CPU once */
    int h = atomic_load_explicit(&has, memory_order_relaxed);
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("avx512bf16") ? 1 : 0;
        atomic_store_explicit(&has, h, memory_order_relaxed);
    }
    return h && sl_kernel_isa() >= SL_ISA_AVX512 ? rows_bf16 : NULL;
}

#else

sl_bf16_rows_fn sl_bf16_rows_simd(void) { return NULL; }

#endif
