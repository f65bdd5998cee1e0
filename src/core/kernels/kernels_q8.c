/* Q8_0 quantisation and the portable Q8_0 row kernel (kernels_q8.h). */
#include "kernels_q8.h"
#include "kernels_simd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

void sl_q8_quantize_row(int8_t *q, float *d, const float *x, int64_t cols, bool half_scale)
{
    int64_t blocks = sl_q8_blocks(cols);
    for (int64_t b = 0; b < blocks; b++) {
        int64_t c0 = b * SL_Q8_BLOCK, n = cols - c0 < SL_Q8_BLOCK ? cols - c0 : SL_Q8_BLOCK;
        float amax = 0.0f;
        for (int64_t k = 0; k < n; k++)
            amax = fmaxf(amax, fabsf(x[c0 + k]));
        float scale = amax / 127.0f;
        /* As llama.cpp: q from the unrounded scale, the stored scale rounded to float16. */
        float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
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

/* Bytes of each array of n quantised rows of cols values, in the order they are laid out (every
 * size a multiple of 64, so each array starts on a cache line). */
static void act_sizes(int32_t n, int64_t cols, size_t size[4])
{
    size_t blocks = (size_t)sl_q8_blocks(cols), rows = (size_t)n;
    size[0] = rows * blocks * 8 * sizeof(float);   /* d8 */
    size[1] = rows * blocks * 8 * sizeof(int32_t); /* offset */
    size[2] = rows * blocks * sizeof(float);       /* d */
    size[3] = rows * blocks * SL_Q8_BLOCK;         /* q */
    for (int k = 0; k < 4; k++)
        size[k] = (size[k] + 63) & ~(size_t)63;
}

size_t sl_q8_act_bytes(int32_t n, int64_t cols)
{
    size_t size[4];
    act_sizes(n, cols, size);
    return size[0] + size[1] + size[2] + size[3];
}

bool sl_q8_act_init(sl_q8_act *a, const float *x, int32_t n, int64_t cols, sl_matmul_scratch *scratch)
{
    *a = (sl_q8_act){0};
    if (!sl_matmul_scratch_grow(scratch, sl_q8_act_bytes(n, cols)))
        return false;
    size_t size[4];
    act_sizes(n, cols, size);
    char *mem = scratch->mem;
    int64_t blocks = sl_q8_blocks(cols), stride = blocks * SL_Q8_BLOCK;
    float *d8 = (float *)mem;
    int32_t *offset = (int32_t *)(mem + size[0]);
    float *d = (float *)(mem + size[0] + size[1]);
    int8_t *q = (int8_t *)(mem + size[0] + size[1] + size[2]);
    *a = (sl_q8_act){.q = q, .d = d, .blocks = blocks, .offset = offset, .d8 = d8};
    for (int64_t i = 0; i < n; i++) {
        sl_q8_quantize_row(q + i * stride, d + i * blocks, x + i * cols, cols, false);
        for (int64_t g = 0; g < blocks * 8; g++) {
            const int8_t *qg = q + i * stride + g * 4;
            offset[i * blocks * 8 + g] = -128 * ((int32_t)qg[0] + qg[1] + qg[2] + qg[3]);
            d8[i * blocks * 8 + g] = d[i * blocks + g / 8];
        }
    }
    return true;
}

void sl_q8_rows_generic(float *out, int64_t ldo, const sl_q8_act *a, int32_t nx, const sl_weight *w, int64_t r0,
                        int64_t r1)
{
    int64_t blocks = a->blocks, stride = blocks * SL_Q8_BLOCK;
    for (int64_t r = r0; r < r1; r++) {
        const int8_t *wq = (const int8_t *)w->data + r * stride;
        const float *wd = w->q8_scales + r * blocks;
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
sl_q8_rows_fn sl_q8_rows_at(sl_isa isa)
{
    (void)isa;
    return sl_q8_rows_generic;
}
#endif
