/* The x86 SIMD vocabulary of the kernels: target attributes for the levels, loads that widen
 * stored F32 / BF16 / F16 values to float32, and the horizontal sums whose order defines how a
 * level rounds a dot product. Every x86 kernel file includes this one; each function is
 * compiled for its target with a function attribute, so a portable build still has them all
 * and the level is chosen at run time (sl_kernel_isa). */
#ifndef SLUA_CORE_SIMD_X86_H
#define SLUA_CORE_SIMD_X86_H

#include "kernels_simd.h"

#ifdef SL_X86

#include <stdint.h>

#include <immintrin.h>

#define SL_ALWAYS_INLINE inline __attribute__((always_inline))
#define SL_AVX2 __attribute__((target("avx2,fma,f16c")))
#define SL_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define SL_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))

/* Blocking of the register tiles of every kernel file: bytes of a group of activation rows that
 * stay in L1 while weight rows stream past them (one group; all the rows), and of a block of
 * weight rows that stays in L2 while every group passes over it. */
#define SL_TILE_L1_BYTES (16 << 10)
#define SL_TILE_ALL_L1_BYTES (24 << 10)
#define SL_TILE_L2_BYTES (256 << 10)

/* How far ahead a tile prefetches its weight rows: the same row of the next tile (R rows on),
 * at least 4 KiB. */
static inline int64_t tile_prefetch_distance(int64_t row_bytes, int R)
{
    return R * row_bytes > 4096 ? R * row_bytes : 4096;
}

/* The float32 one-row-at-a-time (decode) kernels prefetch their weight stream this far ahead
 * into L2, one line per 64 bytes read: converting and multiplying takes enough instructions per
 * byte that the out-of-order window alone holds too few reads in flight for the memory's
 * latency. Exact decode of Llama-3.2-1B (BF16) on a Zen 4: 6.4 -> 9.2 tok/s on one thread,
 * 11.3 -> 15.9 on two. The VNNI and vdpbf16ps kernels, with a third of the instructions per
 * byte, ran slower with it. */
#define SL_STREAM_PREFETCH (16 << 10)

/* The prefetch for the 32 values from index c of a weight row (one line, or two for F32). */
static SL_ALWAYS_INLINE void prefetch_stream(const void *row, int64_t c, sl_dtype dt)
{
    const char *p = (const char *)row + c * sl_dtype_size(dt) + SL_STREAM_PREFETCH;
    _mm_prefetch(p, _MM_HINT_T1);
    if (dt == SL_DTYPE_F32)
        _mm_prefetch(p + 64, _MM_HINT_T1);
}

/* Splits nx activation rows into the fewest groups of at most cmax, sizes as equal as can be. */
static SL_ALWAYS_INLINE int group_size(int32_t nx, int32_t j0, int cmax)
{
    int32_t groups = (nx + cmax - 1) / cmax, base = nx / groups, extra = nx % groups;
    return (int)(j0 < extra * (base + 1) ? base + 1 : base);
}

/* Eight stored values from index c of w, as float32 (exact for every dtype). */
static SL_ALWAYS_INLINE SL_AVX2 __m256 load8_w(const void *w, int64_t c, sl_dtype dt)
{
    switch (dt) {
    case SL_DTYPE_F32: return _mm256_loadu_ps((const float *)w + c);
    case SL_DTYPE_BF16: {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + c));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    case SL_DTYPE_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + c)));
    }
    return _mm256_setzero_ps();
}

/* The sum of v's lanes in the AVX2 level's order: ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7)). */
static SL_ALWAYS_INLINE SL_AVX2 float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* hsum8 of four vectors at once, each summed in hsum8's order, so a tile's outputs round as
 * the one-row kernel's. */
static SL_ALWAYS_INLINE SL_AVX2 __m128 hsum8x4(__m256 a, __m256 b, __m256 c, __m256 d)
{
    __m128 t0 = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 t1 = _mm_add_ps(_mm256_castps256_ps128(b), _mm256_extractf128_ps(b, 1));
    __m128 t2 = _mm_add_ps(_mm256_castps256_ps128(c), _mm256_extractf128_ps(c, 1));
    __m128 t3 = _mm_add_ps(_mm256_castps256_ps128(d), _mm256_extractf128_ps(d, 1));
    _MM_TRANSPOSE4_PS(t0, t1, t2, t3); /* t_k now holds lane k of each input */
    return _mm_add_ps(_mm_add_ps(t0, t2), _mm_add_ps(t1, t3));
}

/* log(FLT_MIN): below it e^x is subnormal, which the SIMD exps do not produce. */
#define SL_EXP_LOWEST (-87.33654f)

/* The parts of e^x (Cephes' expf, within 2 ulp) for x = n ln2 + r with n an integer near
 * x / ln2: sets *r (exact: ln2 in two parts) and returns p with e^r = 1 + r + r^2 p. Callers
 * pick n's rounding and how the terms are added, so each keeps its own float32 results. */
static SL_ALWAYS_INLINE SL_AVX2 __m256 expf_poly(__m256 x, __m256 n, __m256 *r)
{
    __m256 t = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    t = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), t);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(1.6666665459e-1f));
    *r = t;
    return _mm256_fmadd_ps(y, t, _mm256_set1_ps(5.0000001201e-1f));
}

/* 2^n as float32 for integers n in [-126, 127]. */
static SL_ALWAYS_INLINE SL_AVX2 __m256 pow2_int(__m256 n)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}

/* Sixteen stored values from index c of w, as float32. */
static SL_ALWAYS_INLINE SL_AVX512 __m512 load16_w(const void *w, int64_t c, sl_dtype dt)
{
    switch (dt) {
    case SL_DTYPE_F32: return _mm512_loadu_ps((const float *)w + c);
    case SL_DTYPE_BF16: {
        __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)w + c));
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    case SL_DTYPE_F16: return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + c)));
    }
    return _mm512_setzero_ps();
}

/* The first lanes of m only; the others read nothing and are zero. */
static SL_ALWAYS_INLINE SL_AVX512 __m512 load16_w_part(const void *w, int64_t c, __mmask16 m, sl_dtype dt)
{
    switch (dt) {
    case SL_DTYPE_F32: return _mm512_maskz_loadu_ps(m, (const float *)w + c);
    case SL_DTYPE_BF16: {
        __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)w + c);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    case SL_DTYPE_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)w + c));
    }
    return _mm512_setzero_ps();
}

/* Eight stored values from index c of w, the lanes of m only (the others read nothing and
 * are zero). */
static SL_ALWAYS_INLINE SL_AVX512 __m256 load8_w_part(const void *w, int64_t c, __mmask8 m, sl_dtype dt)
{
    switch (dt) {
    case SL_DTYPE_F32: return _mm256_maskz_loadu_ps(m, (const float *)w + c);
    case SL_DTYPE_BF16: {
        __m128i h = _mm_maskz_loadu_epi16(m, (const uint16_t *)w + c);
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    case SL_DTYPE_F16: return _mm256_cvtph_ps(_mm_maskz_loadu_epi16(m, (const uint16_t *)w + c));
    }
    return _mm256_setzero_ps();
}

/* The two halves of v added: lanes k and k + 8. The AVX-512 level sums 16 lanes as
 * hsum8(fold16(v)). */
static SL_ALWAYS_INLINE SL_AVX512 __m256 fold16(__m512 v)
{
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    return _mm256_add_ps(_mm512_castps512_ps256(v), hi);
}

#endif
#endif
