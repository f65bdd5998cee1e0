/* x86 Q8_0 row kernels: AVX2 (int8 products through maddubs) and AVX-512 VNNI (dpbusd, two
 * blocks per instruction). Both sum each block exactly in int32, like the portable kernel;
 * only the float summation of the scaled block sums differs in order. */
#include "kernels_q8.h"
#include "kernels_simd.h"

#ifdef SL_X86

#include <immintrin.h>

#define SL_Q8_AVX2 __attribute__((target("avx2,fma")))
#define SL_Q8_VNNI __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

/* Eight int32 partial sums of one block's 32 products (|w| <= 127, so maddubs cannot saturate). */
static inline SL_Q8_AVX2 __m256i block_dot_avx2(const int8_t *wq, const int8_t *xq)
{
    __m256i w = _mm256_loadu_si256((const __m256i *)wq), x = _mm256_loadu_si256((const __m256i *)xq);
    __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

static inline SL_Q8_AVX2 float hsum8_q8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Four weight rows per pass share every load of the activation row. */
static SL_Q8_AVX2 void rows_q8_avx2(float *out, int64_t ldo, const sl_q8_act *a, int32_t nx, const sl_weight *w,
                                    int64_t r0, int64_t r1)
{
    int64_t blocks = a->blocks, stride = blocks * SL_Q8_BLOCK;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
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
                out[(int64_t)j * ldo + r + i] = hsum8_q8(acc[i]);
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
            out[(int64_t)j * ldo + r] = hsum8_q8(acc);
        }
    }
}

/* Two blocks of w . x: lanes 0-7 hold block b's partial sums, 8-15 block b + 1's. dpbusd takes
 * unsigned times signed bytes, so x takes w's sign and w its absolute value. */
static inline SL_Q8_VNNI __m512i pair_dot_vnni(const int8_t *wq, const int8_t *xq)
{
    __m512i w = _mm512_loadu_si512(wq), x = _mm512_loadu_si512(xq);
    __mmask64 neg = _mm512_movepi8_mask(w);
    __m512i sx = _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), sx);
}

static inline SL_Q8_VNNI __m256i block_dot_vnni(const int8_t *wq, const int8_t *xq)
{
    __m256i w = _mm256_loadu_si256((const __m256i *)wq), x = _mm256_loadu_si256((const __m256i *)xq);
    __m256i sx = _mm256_sign_epi8(x, w);
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w), sx);
}

static inline SL_Q8_VNNI __m512 pair_scale(float s0, float s1)
{
    return _mm512_insertf32x8(_mm512_set1_ps(s0), _mm256_set1_ps(s1), 1);
}

static inline SL_Q8_VNNI float row_dot_vnni(const int8_t *wq, const float *wd, const int8_t *xq, const float *xd,
                                            int64_t blocks)
{
    __m512 acc = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= blocks; b += 2) {
        __m512i p = pair_dot_vnni(wq + b * SL_Q8_BLOCK, xq + b * SL_Q8_BLOCK);
        acc = _mm512_fmadd_ps(pair_scale(wd[b] * xd[b], wd[b + 1] * xd[b + 1]), _mm512_cvtepi32_ps(p), acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    if (b < blocks) {
        __m256 t = _mm256_mul_ps(_mm256_set1_ps(wd[b] * xd[b]),
                                 _mm256_cvtepi32_ps(block_dot_vnni(wq + b * SL_Q8_BLOCK, xq + b * SL_Q8_BLOCK)));
        s += hsum8_q8(t);
    }
    return s;
}

static SL_Q8_VNNI void rows_q8_vnni(float *out, int64_t ldo, const sl_q8_act *a, int32_t nx, const sl_weight *w,
                                    int64_t r0, int64_t r1)
{
    int64_t blocks = a->blocks, stride = blocks * SL_Q8_BLOCK, pairs = blocks & ~(int64_t)1;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const int8_t *wq = (const int8_t *)w->data + r * stride;
        const float *wd = w->q8_scales + r * blocks;
        for (int32_t j = 0; j < nx; j++) {
            const int8_t *xq = a->q + j * stride;
            const float *xd = a->d + j * blocks;
            __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
            for (int64_t b = 0; b < pairs; b += 2) {
                __m512i x = _mm512_loadu_si512(xq + b * SL_Q8_BLOCK);
                for (int i = 0; i < 4; i++) {
                    __m512i wv = _mm512_loadu_si512(wq + i * stride + b * SL_Q8_BLOCK);
                    __m512i sx = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(wv), _mm512_setzero_si512(), x);
                    __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(wv), sx);
                    const float *d = wd + i * blocks;
                    acc[i] = _mm512_fmadd_ps(pair_scale(d[b] * xd[b], d[b + 1] * xd[b + 1]), _mm512_cvtepi32_ps(p),
                                             acc[i]);
                }
            }
            for (int i = 0; i < 4; i++) {
                float s = _mm512_reduce_add_ps(acc[i]);
                if (pairs < blocks) {
                    const float *d = wd + i * blocks;
                    __m256i p = block_dot_vnni(wq + i * stride + pairs * SL_Q8_BLOCK, xq + pairs * SL_Q8_BLOCK);
                    s += hsum8_q8(_mm256_mul_ps(_mm256_set1_ps(d[pairs] * xd[pairs]), _mm256_cvtepi32_ps(p)));
                }
                out[(int64_t)j * ldo + r + i] = s;
            }
        }
    }
    for (; r < r1; r++)
        for (int32_t j = 0; j < nx; j++)
            out[(int64_t)j * ldo + r] = row_dot_vnni((const int8_t *)w->data + r * stride, w->q8_scales + r * blocks,
                                                     a->q + j * stride, a->d + j * blocks, blocks);
}

static bool has_vnni(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512dq");
}

sl_q8_rows_fn sl_q8_rows_at(int isa)
{
    if (isa >= SL_ISA_AVX512 && has_vnni())
        return rows_q8_vnni;
    if (isa >= SL_ISA_AVX2)
        return rows_q8_avx2;
    return sl_q8_rows_generic;
}

#endif
