/* tinydeploy runtime: the base of the Arm Cortex-M kernel headers td_arm_*.h
 * (DSP extension, Helium, FPU): the intrinsics headers, TD_ARM_AI, the
 * word-access types, SXTB16/PKH helpers and the im2col geometry arguments.
 *
 * These are templates: static inline functions whose shape arguments are
 * compile-time constants at every call site.  tinydeploy/backends/arm.py emits
 * one small wrapper function per layer that calls them with the layer's
 * constants, so the compiler unrolls the loops for exactly that shape and
 * keeps the offsets as immediates.  In the generated file the constants are
 * named: a `static const` parameter struct per layer (depthwise, fully
 * connected, pooling; td_arm_*_cfg) or, for the convolutions, enum constants
 * L<n>_field (see TD_ARM_WIN_PARAMS).  The constant data they read (int16
 * weights in the order the inner loop consumes them, per-channel
 * requantization records) is prepared by the generator as well.
 *
 * The family headers: td_arm_requant.h (requantization, fused add),
 * td_arm_gemm.h (convolution / fully connected), td_arm_dw.h (depthwise),
 * td_arm_pool.h (pooling), td_arm_mve.h (Helium), td_arm_fpu.h (float32).
 */
#ifndef TD_ARM_COMMON_H
#define TD_ARM_COMMON_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#endif
#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>
#endif

#define TD_ARM_AI static inline __attribute__((always_inline))

/* GCC and clang.  The hand-scheduled inline assembly (LDRD + SMLAD inner
 * loops) is written for GCC: every generated layer function is
 * TD_ARM_LAYER_FN, which GCC compiles at -O2 without a frame pointer whatever
 * the command line says, so the templates always see constant arguments
 * (asm immediates, "i" operands) and may use r7 (the Thumb frame pointer)
 * as the fourteenth register.  clang has no per-function optimization level
 * or frame-pointer switch, and there is no macro that tells whether r7 is
 * the frame pointer; so under clang (TD_ARM_GCC 0) the few asm blocks that
 * need r7 or fourteen registers are C with the ACLE intrinsics instead (the
 * same arithmetic, bit for bit; clang allocates the registers itself), and
 * the blocks with immediates from template arguments are used only when
 * clang optimizes (TD_ARM_IMM: at -O0 the arguments are not constants).
 * GCC builds are unchanged, instruction for instruction. */
#if defined(__GNUC__) && !defined(__clang__)
#define TD_ARM_GCC 1
#else
#define TD_ARM_GCC 0
#endif
#if TD_ARM_GCC || defined(__OPTIMIZE__)
#define TD_ARM_IMM 1
#else
#define TD_ARM_IMM 0
#endif
/* The 3x3 depthwise block's fourteen-register assembly: GCC in an optimized build.  At
 * -O0, GCC 12 may keep r7 as the frame pointer in a layer function that follows one
 * pinning r7 (a GEMM's), whatever TD_ARM_LAYER_FN asks ("impossible constraints" in
 * vww's first depthwise layer): the block is then the C of the clang build.  At -Og
 * with -fno-omit-frame-pointer GCC 12 does the same and never finishes compiling
 * (no macro tells that build from -O2): -DTD_ARM_DW_ASM=0 asks for the C there. */
#ifndef TD_ARM_DW_ASM
#if TD_ARM_GCC && defined(__OPTIMIZE__)
#define TD_ARM_DW_ASM 1
#else
#define TD_ARM_DW_ASM 0
#endif
#endif
/* Every generated layer function: kept separate (per-layer profile,
 * readable code); under GCC optimized even in a -O0 or frame-pointer build
 * (see above).  noclone: GCC 12 cloned a layer for its constant arena
 * pointers, addressed the output from a null base in the clone, and then
 * deleted the call as having no effect (a max pool that never ran; see
 * docs/testing.md, bug 5).  Without the clones the layers also run faster. */
#if TD_ARM_GCC
#define TD_ARM_LAYER_FN __attribute__((noinline, noclone, optimize("O2", "omit-frame-pointer")))
#else
#define TD_ARM_LAYER_FN __attribute__((noinline))
#endif

/* Word loads of int8/int16 data that may alias anything and, for int8
 * activations, may be unaligned (LDR allows it on Armv7-M). */
typedef uint32_t td_u32u __attribute__((may_alias, aligned(1)));
typedef uint32_t td_u32a __attribute__((may_alias));
typedef int32_t td_s32a __attribute__((may_alias)); /* the same, for the int16x2_t intrinsics */

/* in + off for the start of a window row that may lie in the padding (off < 0 when the
 * layer's input starts the arena): formed in integer arithmetic, because a pointer before
 * the object is undefined behaviour in C (and GCC's -Warray-bounds rejects it once it
 * propagates the arena offset); the kernels read through it only inside the input. */
static inline const int8_t *td_arm_row_at(const int8_t *in, int off)
{
    return (const int8_t *)((uintptr_t)in + (uintptr_t)(intptr_t)off);
}

#if defined(__ARM_FEATURE_DSP)

/* sxtb16(v ror 8): ACLE has no rotated form, GCC does not fold the ROR. */
TD_ARM_AI uint32_t td_arm_sxtb16_ror8(uint32_t v)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

/* (a.lo, b.lo) and (b.hi, a.hi) as halfword pairs (PKHBT / PKHTB). */
TD_ARM_AI uint32_t td_arm_pkhbt16(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

TD_ARM_AI uint32_t td_arm_pkhtb16(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* A layer's window geometry (convolution, depthwise, pooling; NHWC int8):
 * input in_h x in_w x in_c, output out_h x out_w, kernel k_h x k_w.  Part
 * of the `static const` parameter struct that the generator emits per
 * depthwise or pooling layer; the templates read it through a pointer whose
 * loads the compiler folds into constants. */
typedef struct {
    int in_h, in_w, in_c;
    int out_h, out_w;
    int k_h, k_w;
    int stride_h, stride_w;
    int pad_top, pad_left;
    int in_zero_point; /* value of the padding cells */
} td_arm_win;

/* An int8-weight convolution's shape as run-time data (--optimize size: the layers of
 * one kind share one function and pass it this; see TD_ARM_CONV_W8_RT_PARAMS). */
typedef struct {
    int32_t pixels;            /* out_h * out_w */
    int16_t out_c, k4;         /* output channels, im2col length / 4 */
    int16_t in_h, in_w, in_c, out_h, out_w, k_h, k_w, stride_h, stride_w, pad_top, pad_left;
    int16_t in_zero_point;     /* value of the padding cells */
} td_arm_conv_shape;

/* A depthwise layer's shape as run-time data (td_arm_dw_layer_rt, --optimize size: the
 * layers of one kernel size, stride along x, weight format and requantization flags share
 * one function); the fields of td_arm_dw_cfg that change between such layers. */
typedef struct {
    int16_t in_h, in_w, in_c, out_h, out_w, stride_h, pad_top, pad_left;
    int16_t in_zero_point;  /* value of the padding cells */
    int16_t group_c;        /* channels per ring group */
    int16_t ring_w;         /* ring row length (padded input row) */
    int16_t dir;            /* 1 output rows in increasing order, -1 decreasing */
    int16_t out_zero_point, act_min, act_max;
} td_arm_dw_shape;

/* The requantization of a fused residual add's sum as run-time data (see td_arm_epi_add;
 * TD_ARM_CONV_ADD_W8_RT_PARAMS). */
typedef struct {
    int32_t add_mult, add_c, add_fix_mask, add_min, add_max;
} td_arm_epi_rq;

/* The im2col templates' geometry arguments (all compile-time constants):
 * IH x IW x C input, OH x OW output, KH x KW kernel, strides SH/SW,
 * top/left padding PT/PL, IZP the input zero point.  A window row (KW * C
 * int8, contiguous in the input) gives G = KW * C / 4 whole 4-groups (SXTB16
 * order) and L = KW * C % 4 leftover elements; the leftovers of all rows
 * follow the KH * G groups, in natural order, padded to whole groups. */
#define TD_ARM_WIN_ARGS const int IH, const int IW, const int C, const int OH, const int OW, \
    const int KH, const int KW, const int SH, const int SW, const int PT, const int PL, \
    const int IZP
#define TD_ARM_WIN_PASS IH, IW, C, OH, OW, KH, KW, SH, SW, PT, PL, IZP

/* Named layer constants.  The convolutions take their parameters as integer
 * constant expressions: net.c declares them per layer as enum constants
 * named PREFIX_field (`enum { L0_in_h = 49, L0_stride_w = 2, ... }`, fields
 * as in the structs) and passes them with the family's PARAMS macro, e.g.
 * td_arm_conv(..., TD_ARM_CONV_PARAMS(L0)).  (GCC also folds loads from a
 * static const struct, but only after early inlining, which changes the
 * code of some convolutions.) */
#define TD_ARM_WIN_PARAMS(L) L##_in_h, L##_in_w, L##_in_c, L##_out_h, L##_out_w, L##_k_h, \
    L##_k_w, L##_stride_h, L##_stride_w, L##_pad_top, L##_pad_left, L##_in_zero_point

#endif /* __ARM_FEATURE_DSP */

#if defined(__ARM_FEATURE_MVE)
/* td_mbqm of four lanes (TFLite's MultiplyByQuantizedMultiplier): VSHL by the left
 * shift (wrapping, as td_shl_wrap), VQRDMULH (its doubling high multiply; saturates only
 * INT32_MIN * INT32_MIN), then for a right shift VRSHL by -shift, which rounds half up,
 * after lowering negative lanes by one (saturating: INT32_MIN stays, exactly), which
 * makes it round half away from zero as TFLite's divide by a power of two. */
TD_ARM_AI int32x4_t td_mve_mbqm4(int32x4_t v, int32_t mult, int32_t shift)
{
    v = vshlq_s32(v, vdupq_n_s32(shift > 0 ? shift : 0));
    v = vqrdmulhq_n_s32(v, mult);
    if (shift < 0) {
        v = vqaddq_s32(v, vshrq_n_s32(v, 31));
        v = vrshlq_s32(v, vdupq_n_s32(shift));
    }
    return v;
}

/* each lane clamped to [lo, hi] */
TD_ARM_AI int32x4_t td_mve_clamp4(int32x4_t v, int32_t lo, int32_t hi)
{
    return vminq_s32(vmaxq_s32(v, vdupq_n_s32(lo)), vdupq_n_s32(hi));
}
#endif

#endif
