/* x86 attention kernels (AVX2 + FMA + F16C, and AVX-512), compiled for their targets with
 * function attributes; attention.c calls them only when the CPU has the instructions.
 *
 * Every kernel serves the query heads of a GQA group at once, so each cached key and value is
 * read once per group. Scores take the key blocks (attention.h) a column at a time: one vector
 * of a block's column holds 16 rows (two vectors at AVX2), multiplied by the query's value of
 * that column broadcast, so a score is one lane's chain of multiply-adds over the columns in
 * order, whatever the rows, blocks or heads beside it; tiles of up to 4 heads x 4 blocks
 * (AVX-512) or 4 head-blocks (AVX2) keep enough chains in flight. The weighted sum keeps up to four
 * heads' outputs (64 or 32 columns each) in registers while it walks the rows once, each column
 * summed over the rows in order. */
#include "attention.h"
#include "simd_x86.h"

#ifdef SL_X86

#include <math.h>
#include <stdbool.h>

static SL_ALWAYS_INLINE float kv_scalar(const void *row, int64_t c, sl_dtype kt)
{
    return kt == SL_DTYPE_F16 ? sl_f16_to_f32(((const uint16_t *)row)[c]) : ((const float *)row)[c];
}

static SL_ALWAYS_INLINE const void *kv_row(const void *base, int64_t j, int64_t stride, sl_dtype kt)
{
    return (const char *)base + j * stride * (kt == SL_DTYPE_F16 ? 2 : 4);
}

/* Rows a pass of the weighted sum takes before it moves to the next tile of heads or columns
 * (their values stay in L1 meanwhile); all rows at once when one tile covers the group. */
#define VALUES_BLOCK_ROWS 32

/* How far ahead of the rows being read the kernels prefetch a head's keys and values into L2.
 * The hardware's prefetchers alone keep too few reads in flight: SmolLM2's decode at KV depth
 * 2048 (one thread, Zen 4) went from 0.57 to 0.64 of depth 0's speed with the F32 cache. */
#define KV_PREFETCH_BYTES (16 << 10)

/* Prefetch row j of a head's values (bytes per row) into L2. */
static SL_ALWAYS_INLINE void prefetch_kv_row(const void *base, int64_t j, int64_t stride, int32_t bytes, sl_dtype kt)
{
    const char *row = kv_row(base, j, stride, kt);
    for (int32_t b = 0; b < bytes; b += 64)
        _mm_prefetch(row + b, _MM_HINT_T1);
}

/* The rows a weighted sum prefetches: row j + ahead while it reads row j, if below rows. */
typedef struct kv_prefetch {
    int32_t ahead, rows, bytes;
} kv_prefetch;

/* Rows ahead for KV_PREFETCH_BYTES of a head's rows. */
static SL_ALWAYS_INLINE int32_t prefetch_rows_ahead(int32_t bytes)
{
    return KV_PREFETCH_BYTES / (bytes > 64 ? bytes : 64);
}

/* ------------------------------------------------------------------ AVX2 */

/* The scores of rows [j0, j0 + n) that fall in the 16 (AVX-512) or 8 (AVX2) rows from row0,
 * given as the vector v of those rows' scores in lane order. */
static SL_ALWAYS_INLINE void store_scores(float *sc, const float *v, int width, int64_t row0, int64_t j0, int32_t n)
{
    int64_t lo = j0 > row0 ? j0 - row0 : 0, hi = j0 + n - row0 < width ? j0 + n - row0 : width;
    for (int64_t l = lo; l < hi; l++)
        sc[row0 + l - j0] = v[l];
}

/* Rows of the key blocks [b0, b0 + nb) of nh heads (nh x nb at most 4): lane r of
 * acc[h][b][half] sums row 16 (b0 + b) + 8 half + r over the columns in order. */
static SL_ALWAYS_INLINE SL_AVX2 void scores_tile_avx2(float *sc, int64_t sc_stride, const float *q, int64_t q_stride,
                                                      const char *K, int64_t b0, int nb, int nh, int32_t hd,
                                                      int64_t j0, int32_t n, float denom, bool prefetch, sl_dtype kt)
{
    int64_t es = kt == SL_DTYPE_F16 ? 2 : 4, block = (int64_t)hd * SL_ATTN_KEY_BLOCK * es;
    const char *blk = K + b0 * block;
    __m256 acc[8]; /* [h][b][half] of nh x nb x 2 */
    for (int i = 0; i < 2 * nh * nb; i++)
        acc[i] = _mm256_setzero_ps();
    for (int32_t c = 0; c < hd; c++) {
        __m256 qc[4];
        for (int h = 0; h < nh; h++)
            qc[h] = _mm256_broadcast_ss(q + h * q_stride + c);
        const char *cols = blk + (int64_t)c * SL_ATTN_KEY_BLOCK * es;
        if (prefetch && ((c * SL_ATTN_KEY_BLOCK * es) & 63) == 0)
            for (int b = 0; b < nb; b++)
                _mm_prefetch(cols + b * block + KV_PREFETCH_BYTES, _MM_HINT_T1);
        for (int b = 0; b < nb; b++) {
            const char *col = cols + b * block;
            __m256 k0 = load8_w(col, 0, kt), k1 = load8_w(col, 8, kt);
            for (int h = 0; h < nh; h++) {
                acc[(h * nb + b) * 2] = _mm256_fmadd_ps(k0, qc[h], acc[(h * nb + b) * 2]);
                acc[(h * nb + b) * 2 + 1] = _mm256_fmadd_ps(k1, qc[h], acc[(h * nb + b) * 2 + 1]);
            }
        }
    }
    __m256 dv = _mm256_set1_ps(denom);
    for (int h = 0; h < nh; h++)
        for (int b = 0; b < nb; b++)
            for (int half = 0; half < 2; half++) {
                int64_t row0 = (b0 + b) * SL_ATTN_KEY_BLOCK + 8 * half;
                __m256 v = _mm256_div_ps(acc[(h * nb + b) * 2 + half], dv);
                if (row0 >= j0 && row0 + 8 <= j0 + n) {
                    _mm256_storeu_ps(sc + h * sc_stride + row0 - j0, v);
                } else {
                    float t[8];
                    _mm256_storeu_ps(t, v);
                    store_scores(sc + h * sc_stride, t, 8, row0, j0, n);
                }
            }
}

/* Groups of 4 key blocks (in L1 while every head's tile reads them); within a group, tiles of up
 * to 4 heads by as many blocks as keep 8 multiply-add chains in 16 registers, each key vector
 * converted once per tile. */
static SL_ALWAYS_INLINE SL_AVX2 void scores_avx2(float *sc, int64_t sc_stride, const float *q, int64_t q_stride,
                                                 int32_t n_q, const void *K, int64_t j0, int32_t hd, int32_t n,
                                                 float denom, sl_dtype kt)
{
    if (n <= 0)
        return;
    int64_t first = j0 / SL_ATTN_KEY_BLOCK, end = (j0 + n - 1) / SL_ATTN_KEY_BLOCK + 1;
    for (int64_t g = first; g < end; g += 4) {
        int64_t g_end = end - g < 4 ? end : g + 4;
        for (int32_t h = 0; h < n_q; h += 4) {
            float *s = sc + h * sc_stride;
            const float *qh = q + h * q_stride;
            int nh = n_q - h < 4 ? n_q - h : 4, step = nh == 1 ? 4 : nh == 2 ? 2 : 1;
            for (int64_t b = g; b < g_end; b += step) {
                int nb = g_end - b < step ? (int)(g_end - b) : step;
                bool pf = h == 0;
#define TILE(NH, NB) scores_tile_avx2(s, sc_stride, qh, q_stride, K, b, NB, NH, hd, j0, n, denom, pf, kt)
                switch (nh * 8 + nb) {
                case 8 + 4: TILE(1, 4); break;
                case 8 + 3: TILE(1, 3); break;
                case 8 + 2: TILE(1, 2); break;
                case 8 + 1: TILE(1, 1); break;
                case 16 + 2: TILE(2, 2); break;
                case 16 + 1: TILE(2, 1); break;
                case 24 + 1: TILE(3, 1); break;
                default: TILE(4, 1); break;
                }
#undef TILE
            }
        }
    }
}

/* Columns [c0, c0 + 8 nv) of nh heads over rows [0, n), in registers, from out when add. */
static SL_ALWAYS_INLINE SL_AVX2 void values_tile_avx2(float *out, int64_t out_stride, const float *p, int64_t p_stride,
                                                      const void *V, int64_t stride, int32_t n, int32_t c0, int nh,
                                                      int nv, bool add, kv_prefetch pf, sl_dtype kt)
{
    __m256 acc[3][4];
    for (int h = 0; h < nh; h++)
        for (int v = 0; v < nv; v++)
            acc[h][v] = add ? _mm256_loadu_ps(out + h * out_stride + c0 + 8 * v) : _mm256_setzero_ps();
    for (int32_t j = 0; j < n; j++) {
        const void *vj = kv_row(V, j, stride, kt);
        if (j + pf.ahead < pf.rows)
            prefetch_kv_row(V, j + pf.ahead, stride, pf.bytes, kt);
        __m256 x[4];
        for (int v = 0; v < nv; v++)
            x[v] = load8_w(vj, c0 + 8 * v, kt);
        for (int h = 0; h < nh; h++) {
            __m256 pj = _mm256_broadcast_ss(p + h * p_stride + j);
            for (int v = 0; v < nv; v++)
                acc[h][v] = _mm256_fmadd_ps(pj, x[v], acc[h][v]);
        }
    }
    for (int h = 0; h < nh; h++)
        for (int v = 0; v < nv; v++)
            _mm256_storeu_ps(out + h * out_stride + c0 + 8 * v, acc[h][v]);
}

static SL_ALWAYS_INLINE SL_AVX2 void values_cols_avx2(float *out, int64_t out_stride, const float *p, int64_t p_stride,
                                                      const void *V, int64_t stride, int32_t n, int32_t c0, int nh,
                                                      int nv, bool add, kv_prefetch pf, sl_dtype kt)
{
#define TILE(NH, NV) values_tile_avx2(out, out_stride, p, p_stride, V, stride, n, c0, NH, NV, add, pf, kt)
#define TILES(NH) switch (nv) { case 4: TILE(NH, 4); break; case 3: TILE(NH, 3); break; \
                                case 2: TILE(NH, 2); break; default: TILE(NH, 1); break; }
    switch (nh) {
    case 3: TILES(3); break;
    case 2: TILES(2); break;
    default: TILES(1); break;
    }
#undef TILES
#undef TILE
}

static SL_ALWAYS_INLINE SL_AVX2 void values_avx2(float *out, int64_t out_stride, const float *p, int64_t p_stride,
                                                 int32_t n_q, const void *V, int64_t stride, int32_t hd, int32_t n,
                                                 bool add, sl_dtype kt)
{
    int32_t c8 = hd & ~7, n_tiles = (n_q + 2) / 3 * ((c8 + 31) / 32);
    int32_t bytes = hd * (kt == SL_DTYPE_F16 ? 2 : 4), ahead = prefetch_rows_ahead(bytes);
    int32_t block = n_tiles > 1 ? VALUES_BLOCK_ROWS : n;
    for (int32_t j0 = 0; j0 < n; j0 += block) {
        int32_t m = n - j0 < block ? n - j0 : block;
        const void *Vj = kv_row(V, j0, stride, kt);
        bool cont = add || j0 > 0;
        for (int32_t h = 0; h < n_q; h += 3)
            for (int32_t c = 0; c < c8; c += 32) {
                kv_prefetch pf = {h == 0 && c == 0 ? ahead : n, n - j0, bytes};
                values_cols_avx2(out + h * out_stride, out_stride, p + h * p_stride + j0, p_stride, Vj, stride, m, c,
                                 n_q - h < 3 ? n_q - h : 3, (c8 - c) / 8 < 4 ? (c8 - c) / 8 : 4, cont, pf, kt);
            }
    }
    for (int32_t h = 0; h < n_q; h++) /* columns past the last full vector */
        for (int32_t c = c8; c < hd; c++) {
            float s = add ? out[h * out_stride + c] : 0.0f;
            for (int32_t j = 0; j < n; j++)
                s += p[h * p_stride + j] * kv_scalar(kv_row(V, j, stride, kt), c, kt);
            out[h * out_stride + c] = s;
        }
}

/* e^x for x <= 0 by expf_poly, a NaN x staying NaN (as expf's); 0 below SL_EXP_LOWEST (a
 * subnormal where expf gives one). */
static SL_ALWAYS_INLINE SL_AVX2 __m256 exp8(__m256 x)
{
    const __m256 lowest = _mm256_set1_ps(SL_EXP_LOWEST);
    __m256 below = _mm256_cmp_ps(x, lowest, _CMP_LT_OQ);
    x = _mm256_max_ps(lowest, x); /* max_ps returns its second operand, x, where x is NaN */
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), r;
    __m256 p = expf_poly(x, n, &r);
    __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    return _mm256_andnot_ps(below, _mm256_mul_ps(y, pow2_int(n)));
}

static SL_AVX2 float max_avx2(const float *x, int32_t n)
{
    __m256 m = _mm256_set1_ps(-INFINITY);
    int32_t j = 0;
    for (; j + 8 <= n; j += 8)
        m = _mm256_max_ps(m, _mm256_loadu_ps(x + j));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; j < n; j++)
        r = x[j] > r ? x[j] : r;
    return r;
}

/* x[j] = e^(x[j] - m); returns their sum, eight lanes summed apart, then hsum8. */
static SL_AVX2 float exp_sum_avx2(float *x, int32_t n, float m)
{
    __m256 mv = _mm256_set1_ps(m), sum = _mm256_setzero_ps();
    int32_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), mv));
        _mm256_storeu_ps(x + j, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (j < n) {
        __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - j), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 e = exp8(_mm256_sub_ps(_mm256_maskload_ps(x + j, lanes), mv));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(lanes));
        _mm256_maskstore_ps(x + j, lanes, e);
        sum = _mm256_add_ps(sum, e);
    }
    return hsum8(sum);
}

static SL_AVX2 void scale_avx2(float *x, int32_t n, float s)
{
    __m256 sv = _mm256_set1_ps(s);
    int32_t j = 0;
    for (; j + 8 <= n; j += 8)
        _mm256_storeu_ps(x + j, _mm256_mul_ps(_mm256_loadu_ps(x + j), sv));
    for (; j < n; j++)
        x[j] *= s;
}

/* ------------------------------------------------------------------ AVX-512 */

/* Rows of the key blocks [b0, b0 + nb) of nh heads (tile of at most 4 x 4): lane r of
 * acc[h][b] sums row 16 (b0 + b) + r over the columns in order. */
static SL_ALWAYS_INLINE SL_AVX512 void scores_tile_avx512(float *sc, int64_t sc_stride, const float *q,
                                                          int64_t q_stride, const char *K, int64_t b0, int nb, int nh,
                                                          int32_t hd, int64_t j0, int32_t n, float denom,
                                                          bool prefetch, sl_dtype kt)
{
    int64_t es = kt == SL_DTYPE_F16 ? 2 : 4, block = (int64_t)hd * SL_ATTN_KEY_BLOCK * es;
    const char *blk = K + b0 * block;
    __m512 acc[4][4];
    for (int h = 0; h < nh; h++)
        for (int b = 0; b < nb; b++)
            acc[h][b] = _mm512_setzero_ps();
    for (int32_t c = 0; c < hd; c++) {
        const char *cols = blk + (int64_t)c * SL_ATTN_KEY_BLOCK * es;
        if (prefetch && ((c * SL_ATTN_KEY_BLOCK * es) & 63) == 0)
            for (int b = 0; b < nb; b++)
                _mm_prefetch(cols + b * block + KV_PREFETCH_BYTES, _MM_HINT_T1);
        __m512 k[4];
        for (int b = 0; b < nb; b++)
            k[b] = load16_w(cols + b * block, 0, kt);
        for (int h = 0; h < nh; h++) {
            __m512 qc = _mm512_set1_ps(q[h * q_stride + c]);
            for (int b = 0; b < nb; b++)
                acc[h][b] = _mm512_fmadd_ps(k[b], qc, acc[h][b]);
        }
    }
    __m512 dv = _mm512_set1_ps(denom);
    for (int h = 0; h < nh; h++)
        for (int b = 0; b < nb; b++) {
            int64_t row0 = (b0 + b) * SL_ATTN_KEY_BLOCK;
            __m512 v = _mm512_div_ps(acc[h][b], dv);
            if (row0 >= j0 && row0 + 16 <= j0 + n) {
                _mm512_storeu_ps(sc + h * sc_stride + row0 - j0, v);
            } else {
                float t[16];
                _mm512_storeu_ps(t, v);
                store_scores(sc + h * sc_stride, t, 16, row0, j0, n);
            }
        }
}

static SL_ALWAYS_INLINE SL_AVX512 void scores_avx512(float *sc, int64_t sc_stride, const float *q, int64_t q_stride,
                                                     int32_t n_q, const void *K, int64_t j0, int32_t hd, int32_t n,
                                                     float denom, sl_dtype kt)
{
    if (n <= 0)
        return;
    int64_t first = j0 / SL_ATTN_KEY_BLOCK, end = (j0 + n - 1) / SL_ATTN_KEY_BLOCK + 1;
    for (int64_t b = first; b < end; b += 4) {
        int nb = end - b < 4 ? (int)(end - b) : 4;
        for (int32_t h = 0; h < n_q; h += 4) {
            float *s = sc + h * sc_stride;
            const float *qh = q + h * q_stride;
            bool pf = h == 0;
            int nh = n_q - h < 4 ? n_q - h : 4;
#define TILE(NH, NB) scores_tile_avx512(s, sc_stride, qh, q_stride, K, b, NB, NH, hd, j0, n, denom, pf, kt)
#define TILES(NH) switch (nb) { case 4: TILE(NH, 4); break; case 3: TILE(NH, 3); break; \
                                case 2: TILE(NH, 2); break; default: TILE(NH, 1); break; }
            switch (nh) {
            case 4: TILES(4); break;
            case 3: TILES(3); break;
            case 2: TILES(2); break;
            default: TILES(1); break;
            }
#undef TILES
#undef TILE
        }
    }
}

/* Columns [c0, c0 + 64) of nh heads over rows [0, n), in registers, from out when add; mk
 * masks each vector's columns to the head's. */
static SL_ALWAYS_INLINE SL_AVX512 void values_tile_avx512(float *out, int64_t out_stride, const float *p,
                                                          int64_t p_stride, const void *V, int64_t stride, int32_t n,
                                                          int32_t c0, const __mmask16 mk[4], int nh, bool add,
                                                          kv_prefetch pf, sl_dtype kt)
{
    __m512 acc[4][4];
    for (int h = 0; h < nh; h++)
        for (int v = 0; v < 4; v++)
            acc[h][v] = add ? _mm512_maskz_loadu_ps(mk[v], out + h * out_stride + c0 + 16 * v) : _mm512_setzero_ps();
    for (int32_t j = 0; j < n; j++) {
        const void *vj = kv_row(V, j, stride, kt);
        if (j + pf.ahead < pf.rows)
            prefetch_kv_row(V, j + pf.ahead, stride, pf.bytes, kt);
        __m512 x[4];
        for (int v = 0; v < 4; v++)
            x[v] = load16_w_part(vj, c0 + 16 * v, mk[v], kt);
        for (int h = 0; h < nh; h++) {
            __m512 pj = _mm512_set1_ps(p[h * p_stride + j]);
            for (int v = 0; v < 4; v++)
                acc[h][v] = _mm512_fmadd_ps(pj, x[v], acc[h][v]);
        }
    }
    for (int h = 0; h < nh; h++)
        for (int v = 0; v < 4; v++)
            _mm512_mask_storeu_ps(out + h * out_stride + c0 + 16 * v, mk[v], acc[h][v]);
}

static SL_ALWAYS_INLINE SL_AVX512 void values_avx512(float *out, int64_t out_stride, const float *p,
                                                     int64_t p_stride, int32_t n_q, const void *V, int64_t stride,
                                                     int32_t hd, int32_t n, bool add, sl_dtype kt)
{
    int32_t n_tiles = (n_q + 3) / 4 * ((hd + 63) / 64);
    int32_t bytes = hd * (kt == SL_DTYPE_F16 ? 2 : 4), ahead = prefetch_rows_ahead(bytes);
    int32_t block = n_tiles > 1 ? VALUES_BLOCK_ROWS : n;
    for (int32_t j0 = 0; j0 < n; j0 += block) {
        int32_t m = n - j0 < block ? n - j0 : block;
        const void *Vj = kv_row(V, j0, stride, kt);
        bool cont = add || j0 > 0;
        for (int32_t c = 0; c < hd; c += 64) {
            __mmask16 mk[4];
            for (int v = 0; v < 4; v++) {
                int32_t left = hd - c - 16 * v;
                mk[v] = left >= 16 ? (__mmask16)0xffff : left > 0 ? (__mmask16)((1u << left) - 1u) : 0;
            }
            for (int32_t h = 0; h < n_q; h += 4) {
                kv_prefetch pf = {h == 0 && c == 0 ? ahead : n, n - j0, bytes};
                float *o = out + h * out_stride;
                const float *ph = p + h * p_stride + j0;
                switch (n_q - h < 4 ? n_q - h : 4) {
                case 4: values_tile_avx512(o, out_stride, ph, p_stride, Vj, stride, m, c, mk, 4, cont, pf, kt); break;
                case 3: values_tile_avx512(o, out_stride, ph, p_stride, Vj, stride, m, c, mk, 3, cont, pf, kt); break;
                case 2: values_tile_avx512(o, out_stride, ph, p_stride, Vj, stride, m, c, mk, 2, cont, pf, kt); break;
                default: values_tile_avx512(o, out_stride, ph, p_stride, Vj, stride, m, c, mk, 1, cont, pf, kt); break;
                }
            }
        }
    }
}

static SL_AVX512 float max_avx512(const float *x, int32_t n)
{
    __m512 m = _mm512_set1_ps(-INFINITY);
    int32_t j = 0;
    for (; j + 16 <= n; j += 16)
        m = _mm512_max_ps(m, _mm512_loadu_ps(x + j));
    if (j < n) {
        __mmask16 tail = (__mmask16)((1u << (n - j)) - 1u);
        m = _mm512_mask_max_ps(m, tail, m, _mm512_maskz_loadu_ps(tail, x + j));
    }
    return _mm512_reduce_max_ps(m);
}

/* x[j] = e^(x[j] - m) (exp8 on each half); returns their sum, sixteen lanes summed apart, then
 * reduced. */
static SL_AVX512 float exp_sum_avx512(float *x, int32_t n, float m)
{
    __m512 mv = _mm512_set1_ps(m), sum = _mm512_setzero_ps();
    for (int32_t j = 0; j < n; j += 16) {
        __mmask16 lanes = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1u);
        __m512d d = _mm512_castps_pd(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, x + j), mv));
        __m256 lo = exp8(_mm256_castpd_ps(_mm512_castpd512_pd256(d)));
        __m256 hi = exp8(_mm256_castpd_ps(_mm512_extractf64x4_pd(d, 1)));
        __m512d e2 = _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1);
        __m512 e = _mm512_maskz_mov_ps(lanes, _mm512_castpd_ps(e2));
        _mm512_mask_storeu_ps(x + j, lanes, e);
        sum = _mm512_add_ps(sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

static SL_AVX512 void scale_avx512(float *x, int32_t n, float s)
{
    __m512 sv = _mm512_set1_ps(s);
    int32_t j = 0;
    for (; j + 16 <= n; j += 16)
        _mm512_storeu_ps(x + j, _mm512_mul_ps(_mm512_loadu_ps(x + j), sv));
    for (; j < n; j++)
        x[j] *= s;
}

/* ------------------------------------------------------------------ entry points
 * The cache type is a constant at each call, so the loads fold to one form per variant. */

#define SCORES_ARGS float *sc, int64_t scs, const float *q, int64_t qs, int32_t nq, const void *K, int64_t j0, \
                    int32_t hd, int32_t n, float d
#define VALUES_ARGS float *o, int64_t os, const float *p, int64_t ps, int32_t nq, const void *V, int64_t st, \
                    int32_t hd, int32_t n, bool add

static SL_AVX2 void scores_avx2_f32(SCORES_ARGS) { scores_avx2(sc, scs, q, qs, nq, K, j0, hd, n, d, SL_DTYPE_F32); }
static SL_AVX2 void scores_avx2_f16(SCORES_ARGS) { scores_avx2(sc, scs, q, qs, nq, K, j0, hd, n, d, SL_DTYPE_F16); }
static SL_AVX512 void scores_avx512_f32(SCORES_ARGS)
{
    scores_avx512(sc, scs, q, qs, nq, K, j0, hd, n, d, SL_DTYPE_F32);
}
static SL_AVX512 void scores_avx512_f16(SCORES_ARGS)
{
    scores_avx512(sc, scs, q, qs, nq, K, j0, hd, n, d, SL_DTYPE_F16);
}
static SL_AVX2 void values_avx2_f32(VALUES_ARGS) { values_avx2(o, os, p, ps, nq, V, st, hd, n, add, SL_DTYPE_F32); }
static SL_AVX2 void values_avx2_f16(VALUES_ARGS) { values_avx2(o, os, p, ps, nq, V, st, hd, n, add, SL_DTYPE_F16); }
static SL_AVX512 void values_avx512_f32(VALUES_ARGS)
{
    values_avx512(o, os, p, ps, nq, V, st, hd, n, add, SL_DTYPE_F32);
}
static SL_AVX512 void values_avx512_f16(VALUES_ARGS)
{
    values_avx512(o, os, p, ps, nq, V, st, hd, n, add, SL_DTYPE_F16);
}

void sl_attn_scores_simd(sl_isa level, float *sc, int64_t sc_stride, const float *q, int64_t q_stride, int32_t n_q,
                         const void *K, int64_t j0, sl_dtype kt, int32_t hd, int32_t n, float denom)
{
    bool f16 = kt == SL_DTYPE_F16;
    if (level >= SL_ISA_AVX512)
        (f16 ? scores_avx512_f16 : scores_avx512_f32)(sc, sc_stride, q, q_stride, n_q, K, j0, hd, n, denom);
    else
        (f16 ? scores_avx2_f16 : scores_avx2_f32)(sc, sc_stride, q, q_stride, n_q, K, j0, hd, n, denom);
}

void sl_attn_values_simd(sl_isa level, float *out, int64_t out_stride, const float *p, int64_t p_stride, int32_t n_q,
                         const void *V, int64_t stride, sl_dtype kt, int32_t hd, int32_t n, bool add)
{
    bool f16 = kt == SL_DTYPE_F16;
    if (level >= SL_ISA_AVX512)
        (f16 ? values_avx512_f16 : values_avx512_f32)(out, out_stride, p, p_stride, n_q, V, stride, hd, n, add);
    else
        (f16 ? values_avx2_f16 : values_avx2_f32)(out, out_stride, p, p_stride, n_q, V, stride, hd, n, add);
}

float sl_attn_max_simd(sl_isa level, const float *x, int32_t n)
{
    return level >= SL_ISA_AVX512 ? max_avx512(x, n) : max_avx2(x, n);
}

float sl_attn_exp_sum_simd(sl_isa level, float *x, int32_t n, float m)
{
    return level >= SL_ISA_AVX512 ? exp_sum_avx512(x, n, m) : exp_sum_avx2(x, n, m);
}

void sl_attn_scale_simd(sl_isa level, float *x, int32_t n, float s)
{
    if (level >= SL_ISA_AVX512)
        scale_avx512(x, n, s);
    else
        scale_avx2(x, n, s);
}

#endif
