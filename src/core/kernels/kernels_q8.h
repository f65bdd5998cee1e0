/* Q8_0 weights (llama.cpp's definition): each row in blocks of 32 values, one scale per block,
 * d = max|x| / 127 rounded to float16, q = round(x / d) in [-127, 127]. The products quantise
 * their activation rows the same way (with a float32 scale, rounding to nearest even as
 * llama.cpp's x86 code does) and sum int8 x int8 products per block in int32, as llama.cpp's
 * Q8_0 x Q8_0 dot product does. Lossy: not HF-exact. */
#ifndef SLUA_CORE_KERNELS_Q8_H
#define SLUA_CORE_KERNELS_Q8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "kernels_simd.h"

#define SL_Q8_BLOCK 32

/* Blocks per row of cols values (the last one zero-padded). */
static inline int64_t sl_q8_blocks(int64_t cols) { return (cols + SL_Q8_BLOCK - 1) / SL_Q8_BLOCK; }

/* One row of cols values into blocks: q gets sl_q8_blocks(cols) * 32 int8 (padding zero),
 * d one scale per block. half_scale rounds each scale to float16 (weights) before use. */
void sl_q8_quantize_row(int8_t *q, float *d, const float *x, int64_t cols, bool half_scale);
/* The portable one; the SIMD one it picks at the AVX2 level and above gives the same bytes. */
void sl_q8_quantize_row_generic(int8_t *q, float *d, const float *x, int64_t cols, bool half_scale);

/* One activation row quantised for the products, as llama.cpp's x86 quantize_row_q8_0 does:
 * d = max|x| / 127 in float32, q = x / d rounded to nearest even. bsum gets, per block,
 * -128 * the sum of its q (the packed kernel's correction, see sl_q8_pack). The same values at
 * every kernel level. */
void sl_q8_quantize_act_row(int8_t *q, float *d, int32_t *bsum, const float *x, int64_t cols);
void sl_q8_quantize_act_row_generic(int8_t *q, float *d, int32_t *bsum, const float *x, int64_t cols);

/* Activation rows quantised once for all products of a group. */
typedef struct sl_q8_act {
    int8_t *q;     /* [n][blocks * 32] */
    float *d;      /* [n][blocks] */
    int32_t *bsum; /* [n][blocks] */
    int64_t blocks;
} sl_q8_act;

/* Bytes of n quantised activation rows of cols values. */
size_t sl_q8_act_bytes(int32_t n, int64_t cols);
/* Lays out room for n rows of cols values in scratch (grown when too small); the rows are then
 * quantised by sl_q8_act_fill. False when it could not grow (a is then empty). */
bool sl_q8_act_init(sl_q8_act *a, int32_t n, int64_t cols, sl_matmul_scratch *scratch);
/* Quantises rows [i0, i1) of x (rows of a's cols values) into a. */
void sl_q8_act_fill(const sl_q8_act *a, const float *x, int64_t cols, int32_t i0, int32_t i1);

/* out[j * ldo + r] = sum over blocks of w.d[r][b] * a.d[j][b] * (int) sum_k w.q[r][b][k] * a.q[j][b][k],
 * for j < nx, r0 <= r < r1; a points at the first of the nx rows. The portable kernel, on the
 * stored layout. */
void sl_q8_rows_generic(float *out, int64_t ldo, const sl_q8_act *a, int32_t nx, const sl_weight *w, int64_t r0,
                        int64_t r1);

/* Converts w (F32/F16/BF16, rows x cols) to Q8_0 in buffers the caller owns:
 * q [rows][blocks * 32], d [rows][blocks]. False when out of memory. */
bool sl_q8_convert(int8_t *q, float *d, const sl_weight *w);

/* The packed layout of the x86 kernels: weight rows in groups of 16 (the last one zero-padded),
 * each block of a group as 8 vectors of 64 bytes whose lane l (4 bytes) holds 4 values of row
 * 16 g + l. Scales as float16 bits (exact: Q8_0's scales are float16) [groups][blocks][16],
 * which makes a block of a group 544 bytes, as llama.cpp's 16 blocks of 34. Per block, a vector of 16 int32 lanes takes 8 products
 * of those vectors with 4 activation bytes broadcast (vpdpbusd with AVX-512 VNNI, where the
 * activation's bsum takes back the 128 that makes the weights unsigned; maddubs with AVX2, 8
 * lanes at a time) and ends as the 16 rows' exact int dot products; then one multiply-add by the
 * two scales. An output is one lane: its blocks' scaled sums added block after block, the same
 * on both kernels and whatever the number of activation rows. */
static inline int64_t sl_q8_groups(int64_t rows) { return (rows + 15) / 16; }
/* Whether the kernel level in use takes the packed layout: weights loaded then are packed. */
bool sl_q8_packed_native(void);
/* Packs a converted weight (q, d as sl_q8_convert writes them) into buffers the caller owns:
 * packed [groups * 16 * blocks * 32] bytes, scales [groups * 16 * blocks]. */
void sl_q8_pack(int8_t *packed, uint16_t *scales, const int8_t *q, const float *d, int64_t rows, int64_t cols);
/* Block b of row `row` of a packed weight: its 32 int8 values and its scale. */
void sl_q8_packed_block(int8_t *q, float *d, const sl_weight *w, int64_t row, int64_t b);
/* Rows [r0, r1) (r0 a multiple of 16) of a product with a packed weight. */
void sl_q8_packed_rows(float *out, int64_t ldo, const sl_q8_act *a, int32_t nx, const sl_weight *w, int64_t r0,
                       int64_t r1);

#endif
