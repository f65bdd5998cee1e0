/* Float conversions: BF16 and F16 to and from float32 (round to nearest even, as torch), and
 * stored rows widened to float32, with an AVX2 version picked at run time. */
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "simd_x86.h"

static inline float bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

float sl_bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

float sl_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f)
        return bits_to_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0)
            return bits_to_f32(sign);
        float v = ldexpf((float)man, -24); /* subnormal: man * 2^-24 */
        return sign ? -v : v;
    }
    return bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t sl_f32_to_bf16(float f)
{
    uint32_t u = f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1);         /* round to nearest even */
    return (uint16_t)(u >> 16);
}

uint16_t sl_f32_to_f16(float f)
{
    uint32_t u = f32_to_bits(f), sign = (u >> 16) & 0x8000;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00);
    if (a >= 0x477ff000u) /* rounds to >= 65520: infinity */
        return (uint16_t)(sign | 0x7c00);
    if (a < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        float v = bits_to_f32(a) * 16777216.0f; /* scale by 2^24; rint rounds half to even */
        return (uint16_t)(sign | (uint32_t)rintf(v));
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1) - (112u << 23);
    return (uint16_t)(sign | (r >> 13));
}

static void convert_generic(float *out, const void *src, int64_t n, sl_dtype dt)
{
    switch (dt) {
    case SL_DTYPE_F32:
        memcpy(out, src, (size_t)n * sizeof *out);
        break;
    case SL_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            out[i] = sl_bf16_to_f32(((const uint16_t *)src)[i]);
        break;
    case SL_DTYPE_F16:
        for (int64_t i = 0; i < n; i++)
            out[i] = sl_f16_to_f32(((const uint16_t *)src)[i]);
        break;
    }
}

#ifdef SL_X86
/* Stored 16-bit values to float32, 16 at a time (exact, like the scalar conversions). */
static SL_AVX2 void convert_avx2(float *out, const void *src, int64_t n, sl_dtype dt)
{
    if (dt == SL_DTYPE_F32) {
        memcpy(out, src, (size_t)n * sizeof *out);
        return;
    }
    const uint16_t *p = src;
    int64_t i = 0;
    if (dt == SL_DTYPE_BF16) {
        for (; i + 16 <= n; i += 16) {
            _mm256_storeu_ps(out + i, load8_w(p, i, SL_DTYPE_BF16));
            _mm256_storeu_ps(out + i + 8, load8_w(p, i + 8, SL_DTYPE_BF16));
        }
        for (; i < n; i++)
            out[i] = sl_bf16_to_f32(p[i]);
    } else {
        for (; i + 16 <= n; i += 16) {
            _mm256_storeu_ps(out + i, load8_w(p, i, SL_DTYPE_F16));
            _mm256_storeu_ps(out + i + 8, load8_w(p, i + 8, SL_DTYPE_F16));
        }
        for (; i < n; i++)
            out[i] = sl_f16_to_f32(p[i]);
    }
}
#endif

#ifdef SL_X86
/* sl_f32_to_bf16 on 8 values at once, bit for bit: the upper halves of the rounded bits (NaN kept
 * quiet), as 32-bit lanes. */
static SL_ALWAYS_INLINE SL_AVX2 __m256i round8_bf16(const float *x)
{
    __m256i u = _mm256_loadu_si256((const __m256i *)x);
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), odd)), 16);
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
    __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    return _mm256_blendv_epi8(r, quiet, nan);
}

static SL_AVX2 void round_bf16_avx2(uint16_t *out, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i h = round8_bf16(x + i);
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(h, h), 0x08); /* lanes 0-3, then 4-7 */
        _mm_storeu_si128((__m128i *)(out + i), _mm256_castsi256_si128(packed));
    }
    for (; i < n; i++)
        out[i] = sl_f32_to_bf16(x[i]);
}

static SL_AVX2 void round_bf16_f32_avx2(float *out, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_si256((__m256i *)(out + i), _mm256_slli_epi32(round8_bf16(x + i), 16));
    for (; i < n; i++)
        out[i] = sl_bf16_to_f32(sl_f32_to_bf16(x[i]));
}
#endif

void sl_round_bf16(uint16_t *out, const float *x, int64_t n)
{
#ifdef SL_X86
    if (sl_kernel_isa() >= SL_ISA_AVX2) {
        round_bf16_avx2(out, x, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++)
        out[i] = sl_f32_to_bf16(x[i]);
}

void sl_round_bf16_f32(float *out, const float *x, int64_t n)
{
#ifdef SL_X86
    if (sl_kernel_isa() >= SL_ISA_AVX2) {
        round_bf16_f32_avx2(out, x, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++)
        out[i] = sl_bf16_to_f32(sl_f32_to_bf16(x[i]));
}

void sl_convert_values(float *out, const void *src, int64_t n, sl_dtype dt)
{
#ifdef SL_X86
    if (sl_kernel_isa() >= SL_ISA_AVX2) {
        convert_avx2(out, src, n, dt);
        return;
    }
#endif
    convert_generic(out, src, n, dt);
}
