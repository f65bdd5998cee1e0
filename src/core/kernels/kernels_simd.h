/* The row kernels of the matrix products: a portable version and x86 SIMD versions, compiled
 * for their targets and picked at run time (kernels.c), so a portable build still gets them. */
#ifndef SLUA_CORE_KERNELS_SIMD_H
#define SLUA_CORE_KERNELS_SIMD_H

#include <stdint.h>

#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#define SL_X86 1 /* the SIMD kernels are compiled in (and used when the CPU has them) */
#endif

/* Up to this many activation rows the SIMD row kernels read each weight row as one stream and
 * accumulate every row as the one-row kernel does; more rows go through register tiles, which
 * accumulate in another order. */
#define SL_FEW_ROWS 4
/* ... while those rows fit in half of a 32 KiB L1 data cache: every weight row reads all of them
 * again, and from L2 they would cost more than the tiles (Llama-3.2-1B shape, 8192 columns). */
#define SL_FEW_ROWS_BYTES (16 << 10)

/* out[j * ldo + r] = sum_c x[j][c] * w[r][c] for j < nx, r0 <= r < r1. */
typedef void (*sl_rows_fn)(float *out, int64_t ldo, const float *x, int32_t nx, const sl_weight *w, int64_t r0,
                           int64_t r1);

/* Instruction sets, best last. SL_NO_AVX512 and SL_NO_AVX2 in the environment cap the level
 * (for tests and comparisons); both are read on first use. */
typedef enum sl_isa { SL_ISA_GENERIC = 0, SL_ISA_AVX2 = 1, SL_ISA_AVX512 = 2 } sl_isa;
sl_isa sl_kernel_isa(void);
/* Reads the environment's caps again on next use (tests that change them mid-process). */
void sl_kernel_isa_reload(void);

/* The SIMD row kernel for dt at level isa (> SL_ISA_GENERIC and supported by the CPU). */
sl_rows_fn sl_rows_simd(sl_dtype dt, sl_isa isa);

/* out[j * ldo + r] = sum_c x[j][c] * w[r][c] with x and w in BF16 (BF16 compute). */
typedef void (*sl_bf16_rows_fn)(float *out, int64_t ldo, const uint16_t *x, int32_t nx, const sl_weight *w,
                                int64_t r0, int64_t r1);
/* The vdpbf16ps kernel where the CPU has AVX512-BF16 and the level in use is AVX-512; NULL
 * otherwise (the products then take the inputs rounded to BF16 through the float32 kernels). */
sl_bf16_rows_fn sl_bf16_rows_simd(void);

static inline float sl_scalar_w(const void *w, int64_t i, sl_dtype dt)
{
    switch (dt) {
    case SL_DTYPE_F32: return ((const float *)w)[i];
    case SL_DTYPE_BF16: return sl_bf16_to_f32(((const uint16_t *)w)[i]);
    case SL_DTYPE_F16: return sl_f16_to_f32(((const uint16_t *)w)[i]);
    }
    return 0.0f;
}

/* Bytes per stored value. */
static inline int64_t sl_dtype_size(sl_dtype dt) { return dt == SL_DTYPE_F32 ? 4 : 2; }

static inline const void *sl_row_ptr(const sl_weight *w, int64_t r)
{
    return (const char *)w->data + r * w->cols * sl_dtype_size(w->dtype);
}

#endif
