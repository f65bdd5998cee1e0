/* x86 Q8_0 kernels: the weight and activation quantisers and the AVX-512 VNNI and AVX2 kernels on
 * the packed layout (sl_q8_pack). Like the portable kernel on the stored layout, they sum each block exactly
 * in int32; only the float summation of the scaled block sums differs in order. */
#include "kernels_q8.h"
#include "simd_x86.h"

#include <string.h>

#ifdef SL_X86

/* Up to 32 values of block b of a row, zero-padded, as four vectors; returns the block's scale
 * max|x| / 127 and sets *inv to the inverse that quantises (0 for an all-zero block), as
 * block_scale in kernels_q8.c computes them. */
static SL_ALWAYS_INLINE SL_AVX2 float load_block(__m256 v[4], const float *x, int64_t cols, int64_t b, __m256 *inv)
{
    int64_t c0 = b * SL_Q8_BLOCK, n = cols - c0 < SL_Q8_BLOCK ? cols - c0 : SL_Q8_BLOCK;
    float part[SL_Q8_BLOCK] = {0};
    const float *src = x + c0;
    if (n < SL_Q8_BLOCK) {
        memcpy(part, src, (size_t)n * sizeof *part);
        src = part;
    }
    for (int k = 0; k < 4; k++)
        v[k] = _mm256_loadu_ps(src + 8 * k);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                             _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float scale = _mm_cvtss_f32(h) / 127.0f;
    *inv = _mm256_set1_ps(scale > 0.0f ? 1.0f / scale : 0.0f);
    return scale;
}

/* Four vectors of int32 in [-127, 127] as 32 bytes in order. */
static SL_ALWAYS_INLINE SL_AVX2 void store_block(int8_t *q, const __m256i i[4])
{
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
    _mm256_storeu_si256((__m256i *)q, _mm256_permutevar8x32_epi32(packed, order));
}

/* The weights' quantiser (sl_q8_quantize_row_generic's bytes): roundf, halves away from zero,
 * as the truncation plus one step away where the dropped fraction is at least a half (exact:
 * the fraction v - trunc(v) is exact). */
static SL_AVX2 void quantize_row_avx2(int8_t *q, float *d, const float *x, int64_t cols, bool half_scale)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    int64_t blocks = sl_q8_blocks(cols);
    for (int64_t b = 0; b < blocks; b++) {
        __m256 v[4], vinv;
        float scale = load_block(v, x, cols, b, &vinv);
        __m256i i[4];
        for (int k = 0; k < 4; k++) {
            __m256 y = _mm256_mul_ps(v[k], vinv);
            __m256 t = _mm256_round_ps(y, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            __m256 away = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(y, t)), half, _CMP_GE_OQ);
            __m256 step = _mm256_and_ps(away, _mm256_or_ps(_mm256_and_ps(y, sign), one));
            i[k] = _mm256_cvttps_epi32(_mm256_add_ps(t, step));
        }
        store_block(q + b * SL_Q8_BLOCK, i);
        d[b] = half_scale ? sl_f16_to_f32(sl_f32_to_f16(scale)) : scale;
    }
}

void sl_q8_quantize_row(int8_t *q, float *d, const float *x, int64_t cols, bool half_scale)
{
    if (sl_kernel_isa() >= SL_ISA_AVX2)
        quantize_row_avx2(q, d, x, cols, half_scale);
    else
        sl_q8_quantize_row_generic(q, d, x, cols, half_scale);
}

/* The activations' quantiser: sl_q8_quantize_act_row_generic's float operations in the same
 * order, so the same bytes. */
static SL_AVX2 void quantize_act_row_avx2(int8_t *q, float *d, int32_t *bsum, const float *x, int64_t cols)
{
    int64_t blocks = sl_q8_blocks(cols);
    for (int64_t b = 0; b < blocks; b++) {
        __m256 v[4], vinv;
        float scale = load_block(v, x, cols, b, &vinv);
        __m256i i[4];
        for (int k = 0; k < 4; k++)
            i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], vinv)); /* to nearest even */
        __m256i sum = _mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3]));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        store_block(q + b * SL_Q8_BLOCK, i);
        d[b] = scale;
        bsum[b] = -128 * _mm_cvtsi128_si32(s4);
    }
}

void sl_q8_quantize_act_row(int8_t *q, float *d, int32_t *bsum, const float *x, int64_t cols)
{
    if (sl_kernel_isa() >= SL_ISA_AVX2)
        quantize_act_row_avx2(q, d, bsum, x, cols);
    else
        sl_q8_quantize_act_row_generic(q, d, bsum, x, cols);
}

/* The packed kernels (sl_q8_pack) take a group of 16 weight rows against C activation rows at a
 * time, loading each of the group's vectors once per block for all C rows. */
static inline int32_t load_i32(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* AVX-512 VNNI: each activation row's lanes start from its bsum and take 8 vpdpbusd of the
 * weights made unsigned (w ^ 0x80 = w + 128) by the row's 4 bytes broadcast. */
#define SL_Q8_VNNI_COLS 8

static SL_ALWAYS_INLINE SL_AVX512_VNNI void tile_vnni(float *out, int64_t ldo, const sl_q8_act *a, int32_t j0,
                                                      const int8_t *wp, const uint16_t *ws, int64_t blocks,
                                                      __mmask16 keep, const int C)
{
    int64_t stride = blocks * SL_Q8_BLOCK;
    const int8_t *xq = a->q + j0 * stride;
    const float *xd = a->d + j0 * blocks;
    const int32_t *xs = a->bsum + j0 * blocks;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512 acc[SL_Q8_VNNI_COLS];
    for (int j = 0; j < C; j++)
        acc[j] = _mm512_setzero_ps();
    for (int64_t b = 0; b < blocks; b++) {
        const int8_t *wb = wp + b * 16 * SL_Q8_BLOCK;
        __m512i s[SL_Q8_VNNI_COLS];
        for (int j = 0; j < C; j++)
            s[j] = _mm512_set1_epi32(xs[j * blocks + b]);
        for (int k = 0; k < 8; k++) {
            __m512i wv = _mm512_xor_si512(_mm512_loadu_si512(wb + 64 * k), flip);
            for (int j = 0; j < C; j++)
                s[j] = _mm512_dpbusd_epi32(s[j], wv, _mm512_set1_epi32(load_i32(xq + j * stride + b * 32 + 4 * k)));
        }
        __m512 scale = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(ws + b * 16)));
        for (int j = 0; j < C; j++)
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[j]), _mm512_mul_ps(scale, _mm512_set1_ps(xd[j * blocks + b])),
                                     acc[j]);
    }
    for (int j = 0; j < C; j++)
        _mm512_mask_storeu_ps(out + (j0 + j) * ldo, keep, acc[j]);
}

#define TILE_VNNI(C) tile_vnni(out + r, ldo, a, j0, wp, ws, blocks, keep, C)

static SL_AVX512_VNNI void packed_rows_vnni(float *out, int64_t ldo, const sl_q8_act *a, int32_t nx,
                                            const sl_weight *w, int64_t r0, int64_t r1)
{
    int64_t blocks = a->blocks;
    for (int64_t r = r0; r < r1; r += 16) {
        const int8_t *wp = (const int8_t *)w->data + (r / 16) * blocks * 16 * SL_Q8_BLOCK;
        const uint16_t *ws = (const uint16_t *)w->q8_scales + (r / 16) * blocks * 16;
        __mmask16 keep = r1 - r >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (r1 - r)) - 1);
        for (int32_t j0 = 0; j0 < nx;) {
            int C = group_size(nx, j0, SL_Q8_VNNI_COLS);
            switch (C) {
            case 1: TILE_VNNI(1); break;
            case 2: TILE_VNNI(2); break;
            case 3: TILE_VNNI(3); break;
            case 4: TILE_VNNI(4); break;
            case 5: TILE_VNNI(5); break;
            case 6: TILE_VNNI(6); break;
            case 7: TILE_VNNI(7); break;
            default: TILE_VNNI(8); break;
            }
            j0 += C;
        }
    }
}

/* AVX2: H halves of a group at a time, a half being 8 rows (the low or high 32 bytes of each
 * vector): per 4-byte step maddubs multiplies |w| by x carrying w's sign (|w| <= 127, so its
 * pairs cannot saturate) and madd adds the pairs into the lanes; each lane sums the same way
 * whatever H and the number of activation rows. With three times the instructions per byte of
 * the VNNI kernel, too few loads are in flight for the memory's latency: the first tile of each
 * pass prefetches the stream 16 KiB ahead into L2 (decode of SmolLM2-135M's shape on one thread
 * 95-106 -> 146-162 tok/s on a Zen 4 at this level, against 102-106 when only the first half
 * prefetches; the VNNI kernel runs slower with any of it). */
#define SL_Q8_AVX2_COLS 4
#define SL_Q8_AVX2_PREFETCH (16 << 10)
/* Both halves in one pass (H = 2) for one or two activation rows, as registers allow: each
 * 64-byte vector is read whole and one broadcast of the activation's 4 bytes serves both
 * halves; where a group's bytes exceed SL_Q8_AVX2_WHOLE_BYTES. A smaller group stays in L1 for
 * the second of two half passes, which read faster there (SmolLM2-135M's 576 columns, 9.8 KB a
 * group: 155-167 against 139-144 tok/s in one pass; Llama-3.2-1B's 2048 and 8192, 35 and
 * 139 KB: 15.0-15.7 against 12.0-12.3 in two). */
#define SL_Q8_AVX2_WHOLE_COLS 2
#define SL_Q8_AVX2_WHOLE_BYTES (16 << 10)

/* H halves from wp (the caller offsets wp by 32 and ws by 8 for a high half alone) against C
 * activation rows from j0; lanes: outputs to store (at most 8 H). */
static SL_ALWAYS_INLINE SL_AVX2 void halves_avx2(float *out, int64_t ldo, const sl_q8_act *a, int32_t j0,
                                                 const int8_t *wp, const uint16_t *ws, int64_t blocks, int lanes,
                                                 bool prefetch, const int H, const int C)
{
    int64_t stride = blocks * SL_Q8_BLOCK;
    const int8_t *xq = a->q + j0 * stride;
    const float *xd = a->d + j0 * blocks;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[SL_Q8_AVX2_COLS][2];
    for (int j = 0; j < C; j++)
        for (int h = 0; h < H; h++)
            acc[j][h] = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; b++) {
        const int8_t *wb = wp + b * 16 * SL_Q8_BLOCK;
        __m256i s[SL_Q8_AVX2_COLS][2];
        for (int j = 0; j < C; j++)
            for (int h = 0; h < H; h++)
                s[j][h] = _mm256_setzero_si256();
        if (prefetch)
            for (int k = 0; k < 8; k++)
                _mm_prefetch((const char *)(wb + SL_Q8_AVX2_PREFETCH + 64 * k), _MM_HINT_T1);
        for (int k = 0; k < 8; k++) {
            __m256i wv[2], mag[2];
            for (int h = 0; h < H; h++) {
                wv[h] = _mm256_loadu_si256((const __m256i *)(wb + 64 * k + 32 * h));
                mag[h] = _mm256_sign_epi8(wv[h], wv[h]);
            }
            for (int j = 0; j < C; j++) {
                __m256i xv = _mm256_set1_epi32(load_i32(xq + j * stride + b * 32 + 4 * k));
                for (int h = 0; h < H; h++) {
                    __m256i pairs = _mm256_maddubs_epi16(mag[h], _mm256_sign_epi8(xv, wv[h]));
                    s[j][h] = _mm256_add_epi32(s[j][h], _mm256_madd_epi16(pairs, ones));
                }
            }
        }
        __m256 scale[2];
        for (int h = 0; h < H; h++)
            scale[h] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(ws + b * 16 + 8 * h)));
        for (int j = 0; j < C; j++) {
            __m256 xs = _mm256_set1_ps(xd[j * blocks + b]);
            for (int h = 0; h < H; h++)
                acc[j][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[j][h]), _mm256_mul_ps(scale[h], xs), acc[j][h]);
        }
    }
    for (int h = 0; h < H && lanes > 8 * h; h++) {
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes - 8 * h), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (int j = 0; j < C; j++)
            _mm256_maskstore_ps(out + (j0 + j) * ldo + 8 * h, mask, acc[j][h]);
    }
}

#define HALF_AVX2(C) \
    halves_avx2(out + r + 8 * h, ldo, a, j0, wp + 32 * h, ws + 8 * h, blocks, lanes, j0 == 0, 1, C)

static SL_AVX2 void packed_rows_avx2(float *out, int64_t ldo, const sl_q8_act *a, int32_t nx, const sl_weight *w,
                                     int64_t r0, int64_t r1)
{
    int64_t blocks = a->blocks;
    for (int64_t r = r0; r < r1; r += 16) {
        const int8_t *wp = (const int8_t *)w->data + (r / 16) * blocks * 16 * SL_Q8_BLOCK;
        const uint16_t *ws = (const uint16_t *)w->q8_scales + (r / 16) * blocks * 16;
        if (nx <= SL_Q8_AVX2_WHOLE_COLS && blocks * 16 * (SL_Q8_BLOCK + 2) > SL_Q8_AVX2_WHOLE_BYTES) {
            int lanes = r1 - r >= 16 ? 16 : (int)(r1 - r);
            if (nx == 1)
                halves_avx2(out + r, ldo, a, 0, wp, ws, blocks, lanes, true, 2, 1);
            else
                halves_avx2(out + r, ldo, a, 0, wp, ws, blocks, lanes, true, 2, 2);
            continue;
        }
        for (int h = 0; h < 2 && r + 8 * h < r1; h++) {
            int lanes = r1 - r - 8 * h >= 8 ? 8 : (int)(r1 - r - 8 * h);
            for (int32_t j0 = 0; j0 < nx;) {
                int C = group_size(nx, j0, SL_Q8_AVX2_COLS);
                switch (C) {
                case 1: HALF_AVX2(1); break;
                case 2: HALF_AVX2(2); break;
                case 3: HALF_AVX2(3); break;
                default: HALF_AVX2(4); break;
                }
                j0 += C;
            }
        }
    }
}

static bool has_vnni(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512dq");
}

bool sl_q8_packed_native(void) { return sl_kernel_isa() >= SL_ISA_AVX2; }

/* Both kernels give the same bytes; weights packed at one level still multiply at another. */
void sl_q8_packed_rows(float *out, int64_t ldo, const sl_q8_act *a, int32_t nx, const sl_weight *w, int64_t r0,
                       int64_t r1)
{
    if (sl_kernel_isa() >= SL_ISA_AVX512 && has_vnni())
        packed_rows_vnni(out, ldo, a, nx, w, r0, r1);
    else
        packed_rows_avx2(out, ldo, a, nx, w, r0, r1);
}

#endif
