/* Q8_0 quantisation, the quantised activation rows, the packed layout and the portable row kernel
 * (kernels_q8.h). */
#include "kernels_q8.h"
#include "kernels_simd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

/* The values of block b of a row (n of them, fewer in a partial last block) and its scale
 * max|x| / 127 with the inverse that quantises (0 for an all-zero block). */
static inline float block_scale(const float *x, int64_t cols, int64_t b, int64_t *n, float *inv)
{
    int64_t c0 = b * SL_Q8_BLOCK;
    *n = cols - c0 < SL_Q8_BLOCK ? cols - c0 : SL_Q8_BLOCK;
    float amax = 0.0f;
    for (int64_t k = 0; k < *n; k++)
        amax = fmaxf(amax, fabsf(x[c0 + k]));
    float scale = amax / 127.0f;
    *inv = scale > 0.0f ? 1.0f / scale : 0.0f;
    return scale;
}

void sl_q8_quantize_row_generic(int8_t *q, float *d, const float *x, int64_t cols, bool half_scale)
{
    int64_t blocks = sl_q8_blocks(cols);
    for (int64_t b = 0; b < blocks; b++) {
        int64_t c0 = b * SL_Q8_BLOCK, n;
        float inv, scale = block_scale(x, cols, b, &n, &inv);
        /* As llama.cpp: q from the unrounded scale, the stored scale rounded to float16. */
        for (int64_t k = 0; k < n; k++)
            q[c0 + k] = (int8_t)lrintf(roundf(x[c0 + k] * inv));
        memset(q + c0 + n, 0, (size_t)(SL_Q8_BLOCK - n));
        d[b] = half_scale ? sl_f16_to_f32(sl_f32_to_f16(scale)) : scale;
    }
}

bool sl_q8_convert(int8_t *q, float *d, const sl_weight *w)
{
    int64_t blocks = sl_q8_blocks(w->cols);
    int nt = sl_threads();
    float *rows = malloc((size_t)nt * (size_t)w->cols * sizeof *rows);
    if (!rows)
        return false;
    /* Rows are independent: the conversion of a large model is worth the threads. */
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && w->rows * w->cols >= (1 << 20))
    for (int64_t r = 0; r < w->rows; r++) {
        float *row = rows + (int64_t)omp_get_thread_num() * w->cols;
        sl_weight_row(row, w, r);
        sl_q8_quantize_row(q + r * blocks * SL_Q8_BLOCK, d + r * blocks, row, w->cols, true);
    }
    free(rows);
    return true;
}

/* The portable activation quantiser; the x86 one (kernels_q8_x86.c) gives the same bytes. */
void sl_q8_quantize_act_row_generic(int8_t *q, float *d, int32_t *bsum, const float *x, int64_t cols)
{
    int64_t blocks = sl_q8_blocks(cols);
    for (int64_t b = 0; b < blocks; b++) {
        int64_t c0 = b * SL_Q8_BLOCK, n;
        float inv, scale = block_scale(x, cols, b, &n, &inv);
        int32_t sum = 0;
        for (int64_t k = 0; k < n; k++) {
            q[c0 + k] = (int8_t)lrintf(x[c0 + k] * inv); /* to nearest even (the default mode) */
            sum += q[c0 + k];
        }
        memset(q + c0 + n, 0, (size_t)(SL_Q8_BLOCK - n));
        d[b] = scale;
        bsum[b] = -128 * sum;
    }
}

#ifndef SL_X86
void sl_q8_quantize_row(int8_t *q, float *d, const float *x, int64_t cols, bool half_scale)
{
    sl_q8_quantize_row_generic(q, d, x, cols, half_scale);
}

void sl_q8_quantize_act_row(int8_t *q, float *d, int32_t *bsum, const float *x, int64_t cols)
{
    sl_q8_quantize_act_row_generic(q, d, bsum, x, cols);
}
#endif

/* Bytes of each array of n quantised rows of cols values, in the order they are laid out (every
 * size a multiple of 64, so each array starts on a cache line). */
static void act_sizes(int32_t n, int64_t cols, size_t size[3])
{
    size_t blocks = (size_t)sl_q8_blocks(cols), rows = (size_t)n;
    size[0] = rows * blocks * sizeof(float);   /* d */
    size[1] = rows * blocks * sizeof(int32_t); /* bsum */
    size[2] = rows * blocks * SL_Q8_BLOCK;     /* q */
    for (int k = 0; k < 3; k++)
        size[k] = (size[k] + 63) & ~(size_t)63;
}

size_t sl_q8_act_bytes(int32_t n, int64_t cols)
{
    size_t size[3];
    act_sizes(n, cols, size);
    return size[0] + size[1] + size[2];
}

bool sl_q8_act_init(sl_q8_act *a, int32_t n, int64_t cols, sl_matmul_scratch *scratch)
{
    *a = (sl_q8_act){0};
    if (!sl_matmul_scratch_grow(scratch, sl_q8_act_bytes(n, cols)))
        return false;
    size_t size[3];
    act_sizes(n, cols, size);
    char *mem = scratch->mem;
    *a = (sl_q8_act){.d = (float *)mem,
                     .bsum = (int32_t *)(mem + size[0]),
                     .q = (int8_t *)(mem + size[0] + size[1]),
                     .blocks = sl_q8_blocks(cols)};
    return true;
}

void sl_q8_act_fill(const sl_q8_act *a, const float *x, int64_t cols, int32_t i0, int32_t i1)
{
    int64_t blocks = a->blocks;
    for (int64_t i = i0; i < i1; i++)
        sl_q8_quantize_act_row(a->q + i * blocks * SL_Q8_BLOCK, a->d + i * blocks, a->bsum + i * blocks,
                               x + i * cols, cols);
}

/* Byte k of block b of row r in the packed layout: group, block, 4-byte step, lane, byte. */
static inline int64_t packed_index(int64_t r, int64_t b, int64_t k, int64_t blocks)
{
    return (((r / 16) * blocks + b) * 8 + k / 4) * 64 + (r % 16) * 4 + k % 4;
}

void sl_q8_pack(int8_t *packed, uint16_t *scales, const int8_t *q, const float *d, int64_t rows, int64_t cols)
{
    int64_t blocks = sl_q8_blocks(cols), groups = sl_q8_groups(rows);
#pragma omp parallel for num_threads(sl_threads()) schedule(static) if (rows * cols >= (1 << 20))
    for (int64_t g = 0; g < groups; g++)
        for (int64_t b = 0; b < blocks; b++)
            for (int64_t l = 0; l < 16; l++) {
                int64_t r = g * 16 + l;
                for (int64_t k = 0; k < SL_Q8_BLOCK; k += 4) {
                    int8_t *dst = packed + packed_index(r, b, k, blocks);
                    if (r < rows)
                        memcpy(dst, q + (r * blocks + b) * SL_Q8_BLOCK + k, 4);
                    else
                        memset(dst, 0, 4);
                }
                scales[(g * blocks + b) * 16 + l] = sl_f32_to_f16(r < rows ? d[r * blocks + b] : 0.0f);
            }
}

void sl_q8_packed_block(int8_t *q, float *d, const sl_weight *w, int64_t row, int64_t b)
{
    int64_t blocks = sl_q8_blocks(w->cols);
    const int8_t *packed = w->data;
    for (int64_t k = 0; k < SL_Q8_BLOCK; k++)
        q[k] = packed[packed_index(row, b, k, blocks)];
    *d = sl_f16_to_f32(((const uint16_t *)w->q8_scales)[((row / 16) * blocks + b) * 16 + row % 16]);
}

void sl_q8_rows_generic(float *out, int64_t ldo, const sl_q8_act *a, int32_t nx, const sl_weight *w, int64_t r0,
                        int64_t r1)
{
    int64_t blocks = a->blocks, stride = blocks * SL_Q8_BLOCK;
    for (int64_t r = r0; r < r1; r++) {
        const int8_t *wq = (const int8_t *)w->data + r * stride;
        const float *wd = (const float *)w->q8_scales + r * blocks;
        for (int32_t j = 0; j < nx; j++) {
            const int8_t *xq = a->q + j * stride;
            const float *xd = a->d + j * blocks;
            float s = 0.0f;
            for (int64_t b = 0; b < blocks; b++) {
                int32_t acc = 0;
                for (int k = 0; k < SL_Q8_BLOCK; k++)
                    acc += (int32_t)wq[b * SL_Q8_BLOCK + k] * xq[b * SL_Q8_BLOCK + k];
                s += wd[b] * xd[b] * (float)acc;
            }
            out[(int64_t)j * ldo + r] = s;
        }
    }
}

#ifndef SL_X86
bool sl_q8_packed_native(void) { return false; }

void sl_q8_packed_rows(float *out, int64_t ldo, const sl_q8_act *a, int32_t nx, const sl_weight *w, int64_t r0,
                       int64_t r1)
{
    (void)out, (void)ldo, (void)a, (void)nx, (void)w, (void)r0, (void)r1; /* never packed without x86 */
}
#endif
