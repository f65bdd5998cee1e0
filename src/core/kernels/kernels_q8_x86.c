/* x86 Q8_0 row kernels: AVX2 (int8 products through maddubs) and AVX-512 VNNI (dpbusd, two
 * blocks per instruction). Both sum each block exactly in int32, like the portable kernel;
 * only the float summation of the scaled block sums differs in order. */
#include "kernels_q8.h"
#include "simd_x86.h"

#ifdef SL_X86

/* Eight int32 partial sums of one block's 32 products (|w| <= 127, so maddubs cannot saturate). */
static inline SL_AVX2 __m256i block_dot_avx2(const int8_t *wq, const int8_t *xq)
{
    __m256i w = _mm256_loadu_si256((const __m256i *)wq), x = _mm256_loadu_si256((const __m256i *)xq);
    __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

/* Four weight rows per pass share every load of the activation row; with a few activation rows
 * (decode) the weight rows go one after another instead, each read as one forward stream (see
 * vecn_avx2). Either way each output sums its blocks in the same order. */
static SL_AVX2 void rows_q8_avx2(float *out, int64_t ldo, const sl_q8_act *a, int32_t nx, const sl_weight *w,
                                    int64_t r0, int64_t r1)
{
    int64_t blocks = a->blocks, stride = blocks * SL_Q8_BLOCK;
    int64_t r = r0;
    for (; nx > SL_FEW_ROWS && r + 4 <= r1; r += 4) {
        const int8_t *wq = (const int8_t *)w->data + r * stride;
        const float *wd = w->q8_scales + r * blocks;
        for (int32_t j = 0; j < nx; j++) {
            const int8_t *xq = a->q + j * stride;
            const float *xd = a->d + j * blocks;
            __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            for (int64_t b = 0; b < blocks; b++) {
                for (int i = 0; i < 4; i++) {
                    __m256i p = block_dot_avx2(wq + i * stride + b * SL_Q8_BLOCK, xq + b * SL_Q8_BLOCK);
                    acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(wd[i * blocks + b] * xd[b]), _mm256_cvtepi32_ps(p),
                                             acc[i]);
                }
            }
            for (int i = 0; i < 4; i++)
                out[(int64_t)j * ldo + r + i] = hsum8(acc[i]);
        }
    }
    for (; r < r1; r++) {
        const int8_t *wq = (const int8_t *)w->data + r * stride;
        const float *wd = w->q8_scales + r * blocks;
        for (int32_t j = 0; j < nx; j++) {
            const int8_t *xq = a->q + j * stride;
            const float *xd = a->d + j * blocks;
            __m256 acc = _mm256_setzero_ps();
            for (int64_t b = 0; b < blocks; b++)
                acc = _mm256_fmadd_ps(_mm256_set1_ps(wd[b] * xd[b]),
                                      _mm256_cvtepi32_ps(block_dot_avx2(wq + b * SL_Q8_BLOCK, xq + b * SL_Q8_BLOCK)),
                                      acc);
            out[(int64_t)j * ldo + r] = hsum8(acc);
        }
    }
}

/* AVX-512 VNNI: dpbusd multiplies unsigned bytes by signed ones, four per int32 lane. The
 * weights go in as w + 128 (w ^ 0x80, one xor per load shared by every activation row) and each
 * lane starts from -128 * (the sum of its four x), so it holds exactly sum w * x of its four
 * bytes. One 512-bit vector covers two blocks (lanes 0-7 and 8-15), scaled by
 * d_w * d_x per lane. A tile of R weight rows by C activation rows is accumulated in
 * registers (R and C constant at each call, so the loops unroll). */
#define SL_Q8_VNNI_COLS 4

static SL_ALWAYS_INLINE SL_AVX512_VNNI void tile_vnni(float *out, int64_t ldo, const sl_q8_act *a, int32_t j0,
                                                  const int8_t *wq, const float *wd, int64_t blocks, const int R,
                                                  const int C)
{
    int64_t stride = blocks * SL_Q8_BLOCK, pairs = blocks & ~(int64_t)1;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __m512i halves = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512 acc[4][SL_Q8_VNNI_COLS];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            acc[i][j] = _mm512_setzero_ps();
    for (int64_t b = 0; b < pairs; b += 2) {
        __m512i wu[4];
        __m512 ws[4];
        for (int i = 0; i < R; i++) {
            wu[i] = _mm512_xor_si512(_mm512_loadu_si512(wq + i * stride + b * SL_Q8_BLOCK), flip);
            __m512 two = _mm512_maskz_loadu_ps(0x3, wd + i * blocks + b); /* d[b], d[b + 1] */
            ws[i] = _mm512_permutexvar_ps(halves, two);
        }
        for (int j = 0; j < C; j++) {
            int64_t row = j0 + j;
            __m512i xv = _mm512_loadu_si512(a->q + row * stride + b * SL_Q8_BLOCK);
            __m512i start = _mm512_loadu_si512(a->offset + (row * blocks + b) * 8);
            __m512 xs = _mm512_loadu_ps(a->d8 + (row * blocks + b) * 8);
            for (int i = 0; i < R; i++) {
                __m512i p = _mm512_dpbusd_epi32(start, wu[i], xv);
                acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(ws[i], xs), acc[i][j]);
            }
        }
    }
    for (int j = 0; j < C; j++) {
        int64_t row = j0 + j;
        for (int i = 0; i < R; i++) {
            float s = _mm512_reduce_add_ps(acc[i][j]);
            if (pairs < blocks) { /* an odd last block, in 256 bits */
                const int8_t *wb = wq + i * stride + pairs * SL_Q8_BLOCK;
                __m256i wv = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)wb), _mm512_castsi512_si256(flip));
                __m256i p = _mm256_dpbusd_epi32(
                    _mm256_loadu_si256((const __m256i *)(a->offset + (row * blocks + pairs) * 8)), wv,
                    _mm256_loadu_si256((const __m256i *)(a->q + row * stride + pairs * SL_Q8_BLOCK)));
                __m256 sc = _mm256_set1_ps(wd[i * blocks + pairs] * a->d[row * blocks + pairs]);
                s += hsum8(_mm256_mul_ps(_mm256_cvtepi32_ps(p), sc));
            }
            out[row * ldo + i] = s;
        }
    }
}

#define TILE_VNNI(R, C) tile_vnni(out + r, ldo, a, j0, wq, wd, blocks, R, C)

static SL_AVX512_VNNI void rows_q8_vnni(float *out, int64_t ldo, const sl_q8_act *a, int32_t nx, const sl_weight *w,
                                    int64_t r0, int64_t r1)
{
    int64_t blocks = a->blocks, stride = blocks * SL_Q8_BLOCK;
    for (int64_t r = r0; r < r1;) {
        const int8_t *wq = (const int8_t *)w->data + r * stride;
        const float *wd = w->q8_scales + r * blocks;
        /* few activation rows: one weight row per tile, so the weights stream forward */
        const int R = nx > SL_FEW_ROWS && r1 - r >= 4 ? 4 : 1;
        for (int32_t j0 = 0; j0 < nx;) {
            int C = nx - j0 >= SL_Q8_VNNI_COLS ? SL_Q8_VNNI_COLS : nx - j0;
            switch (R * 8 + C) {
            case 33: TILE_VNNI(4, 1); break;
            case 34: TILE_VNNI(4, 2); break;
            case 35: TILE_VNNI(4, 3); break;
            case 36: TILE_VNNI(4, 4); break;
            case 9: TILE_VNNI(1, 1); break;
            case 10: TILE_VNNI(1, 2); break;
            case 11: TILE_VNNI(1, 3); break;
            default: TILE_VNNI(1, 4); break;
            }
            j0 += C;
        }
        r += R;
    }
}

static bool has_vnni(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512dq");
}

sl_q8_rows_fn sl_q8_rows_at(sl_isa isa)
{
    if (isa >= SL_ISA_AVX512 && has_vnni())
        return rows_q8_vnni;
    if (isa >= SL_ISA_AVX2)
        return rows_q8_avx2;
    return sl_q8_rows_generic;
}

#endif
