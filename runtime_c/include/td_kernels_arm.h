/* tinydeploy runtime: Arm Cortex-M kernel variants (DSP extension, Helium).
 *
 * These are templates: static inline functions whose shape arguments are
 * compile-time constants at every call site.  tinydeploy/kernels_arm.py emits
 * one small wrapper function per layer that calls them with the layer's
 * constants, so the compiler unrolls the loops for exactly that shape and
 * keeps the offsets as immediates.  The constant data they read (int16
 * weights in the order the inner loop consumes them, per-channel
 * requantization records) is prepared by the generator as well.
 *
 * Arithmetic: bit-exact with the portable kernels (TFLite int8 rules).  The
 * generator folds the input zero point into the bias, scales weights and
 * bias by 2^(left_shift + 1) and turns TFLite's two roundings
 * (SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT) into one
 * SMMLAR plus an arithmetic shift:
 *
 *   out = ssat8((smmlar(acc2, m, C) >> e))       with acc2 = acc << (left + 1)
 *
 *   floor((floor((acc2 * m + 2^31) / 2^32) + 2^(e-1) - [t < 0]) / 2^e)
 *     = floor((acc2 * m + 2^31 + (2^(e-1) - [t < 0]) * 2^32) / 2^(32 + e))
 *
 * (nested floor divisions by positive integers merge), so C = 2^(e-1) +
 * zero_point * 2^e, minus 1 for negative accumulators when that can change
 * the clamped result ("fix").  kernels_arm.py proves the ranges (no int32
 * overflow anywhere) before it picks these kernels; otherwise the layer
 * keeps the portable kernel.
 *
 * The inner loops are short inline-assembly blocks (LDRD + SMLAD): the only
 * way to make GCC keep six accumulators, four weight words and two
 * activation words in the fourteen allocatable registers without spilling.
 * Everything around them is C with the ACLE intrinsics of <arm_acle.h>.
 */
#ifndef TD_KERNELS_ARM_H
#define TD_KERNELS_ARM_H

#include <stdint.h>
#include <string.h>

#include "td_kernels_s8.h"

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#endif
#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define TD_ARM_AI static inline __attribute__((always_inline))

/* Word loads of int8/int16 data that may alias anything and, for int8
 * activations, may be unaligned (LDR allows it on Armv7-M). */
typedef uint32_t td_u32u __attribute__((may_alias, aligned(1)));
typedef uint32_t td_u32a __attribute__((may_alias));

#if defined(__ARM_FEATURE_DSP)

/* ---------------------------------------------------------------------- */
/* Scalar primitives                                                       */
/* ---------------------------------------------------------------------- */

/* (c * 2^32 + a * b + 2^31) >> 32: ACLE has no SMMLAR intrinsic. */
TD_ARM_AI int32_t td_arm_smmlar(int32_t a, int32_t b, int32_t c)
{
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}

/* (c * 2^32 + a * b) >> 32 */
TD_ARM_AI int32_t td_arm_smmla(int32_t a, int32_t b, int32_t c)
{
    int32_t r;
    __asm__("smmla %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}

/* ssat(v >> E, 8) in one instruction (GCC only sometimes combines them). */
TD_ARM_AI int32_t td_arm_ssat8_asr(int32_t v, const int E)
{
    int32_t r;
    if (E <= 0) {
        return __ssat(v, 8);
    }
    __asm__("ssat %0, #8, %1, asr %2" : "=r"(r) : "r"(v), "i"(E));
    return r;
}

/* Requantize one accumulator with its channel record r = {m, C, e, fix
 * mask} (as loaded by td_arm_rec_load; see kernels_arm.requant_plan).
 * E >= 0: uniform mode, SMMLA and the layer's shift E; E < 0: SMMLAR and the
 * channel's shift.  FIX: 0 none, 1 add acc >> 31, 2 add (acc >> 31) & mask.
 * FOLD: zero point folded into C, else ZP is added after the shift.  CLAMP:
 * clamp to [LO, HI] after the int8 saturation. */
TD_ARM_AI int32_t td_arm_rq(int32_t acc, const int32_t *r, const int FIX,
                            const int E, const int FOLD, const int ZP,
                            const int CLAMP, const int LO, const int HI)
{
    int32_t c = r[1], v;
    if (FIX == 1) {
        c += acc >> 31;
    } else if (FIX == 2) {
        c += (acc >> 31) & r[3];
    }
    if (E >= 0) {
        v = td_arm_smmla(acc, r[0], c);
        if (FOLD) {
            v = td_arm_ssat8_asr(v, E);
        } else {
            v = __ssat((v >> E) + ZP, 8);
        }
    } else {
        v = td_arm_smmlar(acc, r[0], c) >> r[2];
        if (!FOLD) {
            v += ZP;
        }
        v = __ssat(v, 8);
    }
    if (CLAMP) {
        v = v < LO ? LO : v;
        v = v > HI ? HI : v;
    }
    return v;
}

/* A channel record copied into registers (int8 stores may alias it):
 * {m, C, e (per-channel mode only), fix mask (FIX == 2 only)}. */
typedef struct {
    int32_t r[4];
} td_arm_rec;

TD_ARM_AI td_arm_rec td_arm_rec_load(const int32_t *p, const int RS, const int E,
                                     const int FIX)
{
    td_arm_rec k;
    k.r[0] = p[0];
    k.r[1] = p[1];
    k.r[2] = E >= 0 ? 0 : p[2];
    k.r[3] = FIX == 2 ? p[RS - 1] : 0;
    return k;
}

/* Requantization constants shared by every call of one layer.  RS: words
 * per channel record. */
#define TD_ARM_RQ_ARGS const int FIX, const int RS, const int E, const int FOLD, \
    const int ZP, const int CLAMP, const int LO, const int HI
#define TD_ARM_RQ_PASS FIX, RS, E, FOLD, ZP, CLAMP, LO, HI
#define TD_ARM_RQ(acc, r) td_arm_rq((acc), (r), FIX, E, FOLD, ZP, CLAMP, LO, HI)

/* ---------------------------------------------------------------------- */
/* GEMM micro-kernels: M output channels x N output pixels, one K step.    */
/* ---------------------------------------------------------------------- */
/* Weights: int16, interleaved per step ([m][4] for a 4-step, [m][2] for a
 * 2-step), read with post-increment.  Activations: int16; pixel n of the
 * block is at byte offset n * PX from xp; xp post-increments by XS. */

#define TD_SM_(a, x, w) "smlad %[" a "], %[" x "], %[" w "], %[" a "]\n\t"
#define TD_SM4_(a0, a1) TD_SM_(a0, "x0", "w0") TD_SM_(a0, "x1", "w1") \
    TD_SM_(a1, "x0", "w2") TD_SM_(a1, "x1", "w3")
#define TD_SM2_(a0, a1) TD_SM_(a0, "x0", "w0") TD_SM_(a1, "x0", "w2")

#define TD_W2_4_ "ldrd %[w0], %[w1], [%[wp]], #16\n\tldrd %[w2], %[w3], [%[wp], #-8]\n\t"
#define TD_W2_2_ "ldr %[w0], [%[wp]], #8\n\tldr %[w2], [%[wp], #-4]\n\t"
#define TD_W1_4_ "ldrd %[w0], %[w1], [%[wp]], #8\n\t"
#define TD_W1_2_ "ldr %[w0], [%[wp]], #4\n\t"
#define TD_X4_(off) "ldrd %[x0], %[x1], [%[xp], %[" off "]]\n\t"
#define TD_X4P_ "ldrd %[x0], %[x1], [%[xp]], %[xs]\n\t"
#define TD_X2_(off) "ldr %[x0], [%[xp], %[" off "]]\n\t"
#define TD_X2P_ "ldr %[x0], [%[xp]], %[xs]\n\t"

#define TD_TMP4_ [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3), \
    [x0] "=&r"(x0), [x1] "=&r"(x1)
#define TD_TMP2_ [w0] "=&r"(w0), [w2] "=&r"(w2), [x0] "=&r"(x0)
#define TD_TMP14_ [w0] "=&r"(w0), [w1] "=&r"(w1), [x0] "=&r"(x0), [x1] "=&r"(x1)
#define TD_TMP12_ [w0] "=&r"(w0), [x0] "=&r"(x0)
#define TD_PXI_ [p1] "i"(PX), [p2] "i"(2 * PX), [xs] "i"(XS)

#define TD_SMF_(a, x, w, b) "smlad %[" a "], %[" x "], %[" w "], %[" b "]\n\t"
/* First K step: pixels 1 and 2 start from the biases held in a00 / a10. */
#define TD_SM4F_(a0, a1) TD_SMF_(a0, "x0", "w0", "a00") TD_SM_(a0, "x1", "w1") \
    TD_SMF_(a1, "x0", "w2", "a10") TD_SM_(a1, "x1", "w3")

/* Accumulator block: a<m><n>. */
typedef struct {
    int32_t a00, a01, a02, a10, a11, a12;
} td_arm_acc6;

TD_ARM_AI void td_arm_k4(td_arm_acc6 *a, const int16_t **xpp, const int16_t **wpp,
                         const int M, const int N, const int PX, const int XS)
{
    const int16_t *xp = *xpp, *wp = *wpp;
    uint32_t w0, w1, w2, w3, x0, x1;
    if (M == 2 && N == 3) {
        __asm__ volatile(TD_W2_4_ TD_X4_("p1") TD_SM4_("a01", "a11") TD_X4_("p2")
                         TD_SM4_("a02", "a12") TD_X4P_ TD_SM4_("a00", "a10")
                         : [a00] "+r"(a->a00), [a01] "+r"(a->a01), [a02] "+r"(a->a02),
                           [a10] "+r"(a->a10), [a11] "+r"(a->a11), [a12] "+r"(a->a12),
                           [xp] "+r"(xp), [wp] "+r"(wp), TD_TMP4_
                         : TD_PXI_ : "memory");
    } else if (M == 2 && N == 2) {
        __asm__ volatile(TD_W2_4_ TD_X4_("p1") TD_SM4_("a01", "a11") TD_X4P_
                         TD_SM4_("a00", "a10")
                         : [a00] "+r"(a->a00), [a01] "+r"(a->a01), [a10] "+r"(a->a10),
                           [a11] "+r"(a->a11), [xp] "+r"(xp), [wp] "+r"(wp), TD_TMP4_
                         : TD_PXI_ : "memory");
    } else if (M == 2 && N == 1) {
        __asm__ volatile(TD_W2_4_ TD_X4P_ TD_SM4_("a00", "a10")
                         : [a00] "+r"(a->a00), [a10] "+r"(a->a10), [xp] "+r"(xp),
                           [wp] "+r"(wp), TD_TMP4_
                         : TD_PXI_ : "memory");
    } else if (M == 1 && N == 3) {
        __asm__ volatile(TD_W1_4_ TD_X4_("p1") TD_SM_("a01", "x0", "w0")
                         TD_SM_("a01", "x1", "w1") TD_X4_("p2") TD_SM_("a02", "x0", "w0")
                         TD_SM_("a02", "x1", "w1") TD_X4P_ TD_SM_("a00", "x0", "w0")
                         TD_SM_("a00", "x1", "w1")
                         : [a00] "+r"(a->a00), [a01] "+r"(a->a01), [a02] "+r"(a->a02),
                           [xp] "+r"(xp), [wp] "+r"(wp), TD_TMP14_
                         : TD_PXI_ : "memory");
    } else if (M == 1 && N == 2) {
        __asm__ volatile(TD_W1_4_ TD_X4_("p1") TD_SM_("a01", "x0", "w0")
                         TD_SM_("a01", "x1", "w1") TD_X4P_ TD_SM_("a00", "x0", "w0")
                         TD_SM_("a00", "x1", "w1")
                         : [a00] "+r"(a->a00), [a01] "+r"(a->a01), [xp] "+r"(xp),
                           [wp] "+r"(wp), TD_TMP14_
                         : TD_PXI_ : "memory");
    } else {
        __asm__ volatile(TD_W1_4_ TD_X4P_ TD_SM_("a00", "x0", "w0")
                         TD_SM_("a00", "x1", "w1")
                         : [a00] "+r"(a->a00), [xp] "+r"(xp), [wp] "+r"(wp), TD_TMP14_
                         : TD_PXI_ : "memory");
    }
    *xpp = xp;
    *wpp = wp;
}

/* The same for a 2-element K step (an odd number of int16 pairs). */
TD_ARM_AI void td_arm_k2(td_arm_acc6 *a, const int16_t **xpp, const int16_t **wpp,
                         const int M, const int N, const int PX, const int XS)
{
    const int16_t *xp = *xpp, *wp = *wpp;
    uint32_t w0, w2, x0;
    if (M == 2 && N == 3) {
        __asm__ volatile(TD_W2_2_ TD_X2_("p1") TD_SM2_("a01", "a11") TD_X2_("p2")
                         TD_SM2_("a02", "a12") TD_X2P_ TD_SM2_("a00", "a10")
                         : [a00] "+r"(a->a00), [a01] "+r"(a->a01), [a02] "+r"(a->a02),
                           [a10] "+r"(a->a10), [a11] "+r"(a->a11), [a12] "+r"(a->a12),
                           [xp] "+r"(xp), [wp] "+r"(wp), TD_TMP2_
                         : TD_PXI_ : "memory");
    } else if (M == 2 && N == 2) {
        __asm__ volatile(TD_W2_2_ TD_X2_("p1") TD_SM2_("a01", "a11") TD_X2P_
                         TD_SM2_("a00", "a10")
                         : [a00] "+r"(a->a00), [a01] "+r"(a->a01), [a10] "+r"(a->a10),
                           [a11] "+r"(a->a11), [xp] "+r"(xp), [wp] "+r"(wp), TD_TMP2_
                         : TD_PXI_ : "memory");
    } else if (M == 2 && N == 1) {
        __asm__ volatile(TD_W2_2_ TD_X2P_ TD_SM2_("a00", "a10")
                         : [a00] "+r"(a->a00), [a10] "+r"(a->a10), [xp] "+r"(xp),
                           [wp] "+r"(wp), TD_TMP2_
                         : TD_PXI_ : "memory");
    } else {
        if (N == 3) {
            __asm__ volatile(TD_W1_2_ TD_X2_("p1") TD_SM_("a01", "x0", "w0") TD_X2_("p2")
                             TD_SM_("a02", "x0", "w0") TD_X2P_ TD_SM_("a00", "x0", "w0")
                             : [a00] "+r"(a->a00), [a01] "+r"(a->a01), [a02] "+r"(a->a02),
                               [xp] "+r"(xp), [wp] "+r"(wp), TD_TMP12_
                             : TD_PXI_ : "memory");
        } else if (N == 2) {
            __asm__ volatile(TD_W1_2_ TD_X2_("p1") TD_SM_("a01", "x0", "w0") TD_X2P_
                             TD_SM_("a00", "x0", "w0")
                             : [a00] "+r"(a->a00), [a01] "+r"(a->a01), [xp] "+r"(xp),
                               [wp] "+r"(wp), TD_TMP12_
                             : TD_PXI_ : "memory");
        } else {
            __asm__ volatile(TD_W1_2_ TD_X2P_ TD_SM_("a00", "x0", "w0")
                             : [a00] "+r"(a->a00), [xp] "+r"(xp), [wp] "+r"(wp), TD_TMP12_
                             : TD_PXI_ : "memory");
        }
    }
    *xpp = xp;
    *wpp = wp;
}

/* Load the block's biases from the stream into every accumulator. */
TD_ARM_AI void td_arm_bias(td_arm_acc6 *a, const int16_t **wpp, const int M, const int N)
{
    const int16_t *wp = *wpp;
    if (M == 2 && N == 3) {
        __asm__ volatile("ldrd %[a00], %[a10], [%[wp]], #8\n\tmov %[a01], %[a00]\n\t"
                         "mov %[a02], %[a00]\n\tmov %[a11], %[a10]\n\tmov %[a12], %[a10]"
                         : [a00] "=&r"(a->a00), [a01] "=&r"(a->a01), [a02] "=&r"(a->a02),
                           [a10] "=&r"(a->a10), [a11] "=&r"(a->a11), [a12] "=&r"(a->a12),
                           [wp] "+r"(wp) : : "memory");
    } else if (M == 2 && N == 2) {
        __asm__ volatile("ldrd %[a00], %[a10], [%[wp]], #8\n\tmov %[a01], %[a00]\n\t"
                         "mov %[a11], %[a10]"
                         : [a00] "=&r"(a->a00), [a01] "=&r"(a->a01), [a10] "=&r"(a->a10),
                           [a11] "=&r"(a->a11), [wp] "+r"(wp) : : "memory");
    } else if (M == 2) {
        __asm__ volatile("ldrd %[a00], %[a10], [%[wp]], #8"
                         : [a00] "=&r"(a->a00), [a10] "=&r"(a->a10), [wp] "+r"(wp)
                         : : "memory");
    } else if (N == 3) {
        __asm__ volatile("ldr %[a00], [%[wp]], #4\n\tmov %[a01], %[a00]\n\t"
                         "mov %[a02], %[a00]"
                         : [a00] "=&r"(a->a00), [a01] "=&r"(a->a01), [a02] "=&r"(a->a02),
                           [wp] "+r"(wp) : : "memory");
    } else if (N == 2) {
        __asm__ volatile("ldr %[a00], [%[wp]], #4\n\tmov %[a01], %[a00]"
                         : [a00] "=&r"(a->a00), [a01] "=&r"(a->a01), [wp] "+r"(wp)
                         : : "memory");
    } else {
        __asm__ volatile("ldr %[a00], [%[wp]], #4"
                         : [a00] "=&r"(a->a00), [wp] "+r"(wp) : : "memory");
    }
    *wpp = wp;
}

/* ---------------------------------------------------------------------- */
/* Fused residual add (in-place mode "conv_add")                           */
/* ---------------------------------------------------------------------- */
/* y = add(conv, r) with TFLite's Add arithmetic: each operand's rescaled
 * value comes from a 256-entry table (t1 for the conv result, t2 for the
 * residual; both point at entry 128 so a signed int8 indexes them), the
 * sum is requantized like a convolution accumulator (uniform mode, see
 * td_arm_rq: SMMLA with AM, C = AC (+ fix mask AMASK), shift AE). */
typedef struct {
    const int8_t *res;  /* residual, indexed like the output */
    const int32_t *t1;  /* conv value -> rescaled (entry 128 = value 0) */
    const int32_t *t2;  /* residual value -> rescaled */
} td_arm_epi;

#define TD_ARM_EPI_ARGS const int ADD, const int AM, const int AC, const int AMASK, \
    const int AE, const int ACL, const int ALO, const int AHI
#define TD_ARM_EPI_PASS ADD, AM, AC, AMASK, AE, ACL, ALO, AHI
#define TD_ARM_EPI_PASS_NONE 0, 0, 0, 0, 0, 0, 0, 0

TD_ARM_AI int32_t td_arm_epi_add(const td_arm_epi *ep, int32_t v, int32_t r, TD_ARM_EPI_ARGS)
{
    const int32_t sum = ep->t1[v] + ep->t2[r];
    int32_t c = AC, o;
    (void)ADD;
    if (AMASK) {
        c += (sum >> 31) & AMASK;
    }
    o = td_arm_ssat8_asr(td_arm_smmla(sum, AM, c), AE);
    if (ACL) {
        o = o < ALO ? ALO : o;
        o = o > AHI ? AHI : o;
    }
    return o;
}

/* Store the block's values: plain, or through the fused residual add. */
#define TD_ARM_PUT(idx, v)                                                   \
    do {                                                                     \
        if (ADD) {                                                           \
            o[idx] = (int8_t)td_arm_epi_add(ep, (v), ep->res[(o - y0) + (idx)], \
                                            TD_ARM_EPI_PASS);                \
        } else {                                                             \
            o[idx] = (int8_t)(v);                                            \
        }                                                                    \
    } while (0)

/* ---------------------------------------------------------------------- */
/* Convolution as a GEMM over small im2col blocks                          */
/* ---------------------------------------------------------------------- */
/* N output pixels at a time: their windows are copied (td_arm_im2col) into
 * an int16 block laid out [K/4][N][4] (then [N][2] for a last 2-step), with
 * the zero point where the window leaves the image; then every output
 * channel, two at a time, runs over the block.  All of a block's inputs are
 * read before any of its outputs is written, and blocks go in increasing
 * (DIR > 0) or decreasing order, so the kernel is safe wherever the
 * per-pixel order of inplace.py is.
 *
 * The constant stream has, for each block of M (2, the last one 1) output
 * channels: M int32 biases, the int16 weights in K-step order, then M
 * requantization records of RS int32 (see td_arm_rq). */
TD_ARM_AI void td_arm_gemm_block(const int16_t *x, const int16_t **wpp, int8_t *o,
                                 int8_t *y0, const td_arm_epi *ep, const int M, const int N,
                                 const int OC, const int K4, const int KH2, const int UNROLL,
                                 TD_ARM_RQ_ARGS, TD_ARM_EPI_ARGS)
{
    td_arm_acc6 a;
    const int16_t *xp = x;
    const int16_t *wp = *wpp;
    const int32_t *r;
    int i;
    if (M == 2 && N >= 2) {
        /* The hot case with every operand pinned to one register, so that
         * GCC never shuffles values between the steps: the biases go to
         * a00 / a10, the first step copies them into the other pixels. */
        register int32_t p00 __asm__("r0"), p01 __asm__("r1"), p02 __asm__("r2");
        register int32_t p10 __asm__("r3"), p11 __asm__("r4"), p12 __asm__("r5");
        register const int16_t *pxp __asm__("r6") = x;
        register const int16_t *pwp __asm__("r8") = wp;
        register uint32_t w0 __asm__("r9"), w1 __asm__("r10"), w2 __asm__("r11");
        register uint32_t w3 __asm__("r12"), x0 __asm__("lr"), x1 __asm__("r7");
#define TD_PIN_TMP_ [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3), \
    [x0] "=&r"(x0), [x1] "=&r"(x1)
#define TD_PIN_IN_ : [p1] "i"(8), [p2] "i"(16), [xs] "i"(8 * N) : "memory"
        p01 = p02 = p11 = p12 = 0;
        __asm__ volatile("ldrd %[a00], %[a10], [%[wp]], #8"
                         : [a00] "=r"(p00), [a10] "=r"(p10), [wp] "+r"(pwp) : : "memory");
        if (N == 3) {
            __asm__ volatile(TD_W2_4_ TD_X4_("p1") TD_SM4F_("a01", "a11") TD_X4_("p2")
                             TD_SM4F_("a02", "a12") TD_X4P_ TD_SM4_("a00", "a10")
                             : [a00] "+r"(p00), [a01] "+r"(p01), [a02] "+r"(p02),
                               [a10] "+r"(p10), [a11] "+r"(p11), [a12] "+r"(p12),
                               [xp] "+r"(pxp), [wp] "+r"(pwp), TD_PIN_TMP_ TD_PIN_IN_);
        } else {
            __asm__ volatile(TD_W2_4_ TD_X4_("p1") TD_SM4F_("a01", "a11") TD_X4P_
                             TD_SM4_("a00", "a10")
                             : [a00] "+r"(p00), [a01] "+r"(p01), [a10] "+r"(p10),
                               [a11] "+r"(p11), [xp] "+r"(pxp), [wp] "+r"(pwp), TD_PIN_TMP_
                               TD_PIN_IN_);
        }
#pragma GCC unroll 128
        for (i = 1; i < K4; ++i) {
            if (N == 3) {
                __asm__ volatile(TD_W2_4_ TD_X4_("p1") TD_SM4_("a01", "a11") TD_X4_("p2")
                                 TD_SM4_("a02", "a12") TD_X4P_ TD_SM4_("a00", "a10")
                                 : [a00] "+r"(p00), [a01] "+r"(p01), [a02] "+r"(p02),
                                   [a10] "+r"(p10), [a11] "+r"(p11), [a12] "+r"(p12),
                                   [xp] "+r"(pxp), [wp] "+r"(pwp), TD_PIN_TMP_ TD_PIN_IN_);
            } else {
                __asm__ volatile(TD_W2_4_ TD_X4_("p1") TD_SM4_("a01", "a11") TD_X4P_
                                 TD_SM4_("a00", "a10")
                                 : [a00] "+r"(p00), [a01] "+r"(p01), [a10] "+r"(p10),
                                   [a11] "+r"(p11), [xp] "+r"(pxp), [wp] "+r"(pwp),
                                   TD_PIN_TMP_ TD_PIN_IN_);
            }
        }
#undef TD_PIN_TMP_
#undef TD_PIN_IN_
        a.a00 = p00;
        a.a01 = p01;
        a.a02 = p02;
        a.a10 = p10;
        a.a11 = p11;
        a.a12 = p12;
        xp = pxp;
        wp = pwp;
    } else {
    td_arm_bias(&a, &wp, M, N);
    if (UNROLL) {
#pragma GCC unroll 128
        for (i = 0; i < K4; ++i) {
            td_arm_k4(&a, &xp, &wp, M, N, 8, 8 * N);
        }
    } else {
        for (i = 0; i + 8 <= K4; i += 8) {
            int j;
#pragma GCC unroll 8
            for (j = 0; j < 8; ++j) {
                td_arm_k4(&a, &xp, &wp, M, N, 8, 8 * N);
            }
        }
#pragma GCC unroll 8
        for (i = 0; i < K4 % 8; ++i) {
            td_arm_k4(&a, &xp, &wp, M, N, 8, 8 * N);
        }
    }
    }
    if (KH2) {
        td_arm_k2(&a, &xp, &wp, M, N, 4, 4 * N);
    }
    r = (const int32_t *)(const void *)wp;
    *wpp = wp + 2 * M * RS;
    {
        const td_arm_rec k0 = td_arm_rec_load(r, RS, E, FIX);
        const td_arm_rec k1 = td_arm_rec_load(r + (M > 1 ? RS : 0), RS, E, FIX);
        const int32_t v00 = TD_ARM_RQ(a.a00, k0.r);
        const int32_t v01 = N > 1 ? TD_ARM_RQ(a.a01, k0.r) : 0;
        const int32_t v02 = N > 2 ? TD_ARM_RQ(a.a02, k0.r) : 0;
        const int32_t v10 = M > 1 ? TD_ARM_RQ(a.a10, k1.r) : 0;
        const int32_t v11 = M > 1 && N > 1 ? TD_ARM_RQ(a.a11, k1.r) : 0;
        const int32_t v12 = M > 1 && N > 2 ? TD_ARM_RQ(a.a12, k1.r) : 0;
        TD_ARM_PUT(0, v00);
        if (N > 1) {
            TD_ARM_PUT(OC, v01);
        }
        if (N > 2) {
            TD_ARM_PUT(2 * OC, v02);
        }
        if (M > 1) {
            TD_ARM_PUT(1, v10);
            if (N > 1) {
                TD_ARM_PUT(OC + 1, v11);
            }
            if (N > 2) {
                TD_ARM_PUT(2 * OC + 1, v12);
            }
        }
    }
}

/* All output channels of one block of N pixels (outputs o[n * OC + c]). */
TD_ARM_AI void td_arm_gemm_pixels(const int16_t *x, const int16_t *w, int8_t *o, int8_t *y0,
                                  const td_arm_epi *ep, const int N, const int OC, const int K4,
                                  const int KH2, const int UNROLL, TD_ARM_RQ_ARGS,
                                  TD_ARM_EPI_ARGS)
{
    const int16_t *wp = w;
    int8_t *oc = o;
    int8_t *const oend = o + (OC & ~1);
    while (oc != oend) {
        td_arm_gemm_block(x, &wp, oc, y0, ep, 2, N, OC, K4, KH2, UNROLL, TD_ARM_RQ_PASS,
                          TD_ARM_EPI_PASS);
        oc += 2;
    }
    if (OC & 1) {
        td_arm_gemm_block(x, &wp, oc, y0, ep, 1, N, OC, K4, KH2, UNROLL, TD_ARM_RQ_PASS,
                          TD_ARM_EPI_PASS);
    }
}

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

/* Four int8 -> four int16 at d (8-byte slot) in SXTB16 order (x0, x2, x1, x3). */
TD_ARM_AI void td_arm_widen4(int16_t *d, uint32_t v)
{
    const uint32_t lo = (uint32_t)__sxtb16(v), hi = td_arm_sxtb16_ror8(v);
    __asm__ volatile("strd %1, %2, [%0]" : : "r"(d), "r"(lo), "r"(hi) : "memory");
}

/* The same at base + OFF bytes (an STRD immediate when OFF <= 1020). */
TD_ARM_AI void td_arm_widen4_at(int16_t *base, const int OFF, uint32_t v)
{
    if (__builtin_constant_p(OFF) && OFF <= 1020) {
        const uint32_t lo = (uint32_t)__sxtb16(v), hi = td_arm_sxtb16_ror8(v);
        __asm__ volatile("strd %1, %2, [%0, %3]"
                         : : "r"(base), "r"(lo), "r"(hi), "i"(OFF) : "memory");
    } else {
        td_arm_widen4(base + OFF / 2, v);
    }
}

TD_ARM_AI void td_arm_fill4(int16_t *d, uint32_t zz)
{
    __asm__ volatile("strd %1, %1, [%0]" : : "r"(d), "r"(zz) : "memory");
}

/* Layer geometry for the im2col templates (all compile-time constants):
 * input IH x IW x C, output OH x OW, kernel KH x KW, strides, top/left
 * padding, IZP the input zero point.  A window row (KW * C int8, contiguous
 * in the input) gives G = KW * C / 4 whole 4-groups (SXTB16 order) and
 * L = KW * C % 4 leftover elements; the leftovers of all rows follow the
 * KH * G groups, in natural order, padded to whole groups. */
#define TD_ARM_WIN_ARGS const int IH, const int IW, const int C, const int OH, const int OW, \
    const int KH, const int KW, const int SH, const int SW, const int PT, const int PL, \
    const int IZP
#define TD_ARM_WIN_PASS IH, IW, C, OH, OW, KH, KW, SH, SW, PT, PL, IZP

/* Slow path of one window row r (padding inside a row when C % 4 != 0):
 * element by element.  d: the pixel's first slot, n4 int16 between groups. */
void td_arm_win_row(const int8_t *in, int16_t *d, int n4, int iy, int ix0, int ih, int iw,
                    int c, int kw, int kh, int r, int zp);

/* The windows of N output pixels starting at output pixel p = (oy, ox)
 * into blk ([K/4][N][4]). */
TD_ARM_AI void td_arm_im2col(const int8_t *in, int16_t *blk, int p, const int N,
                             TD_ARM_WIN_ARGS)
{
    const uint32_t zz = ((uint32_t)IZP & 0xffffu) * 0x10001u;
    const int PW1 = KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 && PL == 0;
    /* no padding needed anywhere along x / y */
    const int NOPAD_X = PL == 0 && (OW - 1) * SW + KW <= IW;
    const int NOPAD_Y = PT == 0 && (OH - 1) * SH + KH <= IH;
    const int G = KW * C / 4, L = KW * C % 4, N4 = N * 4;
    int n, r, q, t;
    if (PW1) {
        const int8_t *src = in + p * C;
#pragma GCC unroll 3
        for (n = 0; n < N; ++n) {
#pragma GCC unroll 16
            for (q = 0; q < G; ++q) {
                td_arm_widen4_at(blk, (q * N4 + n * 4) * 2,
                                 *(const td_u32u *)(const void *)(src + n * C + 4 * q));
            }
#pragma GCC unroll 3
            for (t = 0; t < L; ++t) {
                blk[G * N4 + n * 4 + t] = src[n * C + 4 * G + t];
            }
        }
        return;
    }
    {
        int oy = p / OW, ox = p - (p / OW) * OW;
#pragma GCC unroll 3
        for (n = 0; n < N; ++n) {
            const int iy0 = oy * SH - PT, ix0 = ox * SW - PL;
            const int full_x = NOPAD_X || (ix0 >= 0 && ix0 + KW <= IW);
            int16_t *dn = blk + n * 4;
            int16_t *dl = dn + KH * G * N4; /* leftover groups */
#pragma GCC unroll 11
            for (r = 0; r < KH; ++r) {
                const int iy = iy0 + r;
                int16_t *d = dn + r * G * N4;
                const int8_t *src = in + (iy * IW + ix0) * C;
                if (!NOPAD_Y && (iy < 0 || iy >= IH)) {
#pragma GCC unroll 16
                    for (q = 0; q < G; ++q) {
                        td_arm_fill4(d + q * N4, zz);
                    }
#pragma GCC unroll 3
                    for (t = 0; t < L; ++t) {
                        dl[((r * L + t) >> 2) * N4 + ((r * L + t) & 3)] = (int16_t)IZP;
                    }
                } else if (full_x) {
#pragma GCC unroll 16
                    for (q = 0; q < G; ++q) {
                        td_arm_widen4_at(blk, ((r * G + q) * N4 + n * 4) * 2,
                                         *(const td_u32u *)(const void *)(src + 4 * q));
                    }
#pragma GCC unroll 3
                    for (t = 0; t < L; ++t) {
                        dl[((r * L + t) >> 2) * N4 + ((r * L + t) & 3)] = src[4 * G + t];
                    }
                } else if (C % 4 == 0) {
                    /* padding inside the row: whole taps */
                    int kx, j;
                    for (kx = 0; kx < KW; ++kx) {
                        const int ix = ix0 + kx;
                        int16_t *dk = d + kx * (C / 4) * N4;
                        if (ix >= 0 && ix < IW) {
                            for (j = 0; j < C / 4; ++j) {
                                td_arm_widen4(dk + j * N4, *(const td_u32u *)(const void *)(
                                                               src + kx * C + 4 * j));
                            }
                        } else {
                            for (j = 0; j < C / 4; ++j) {
                                td_arm_fill4(dk + j * N4, zz);
                            }
                        }
                    }
                } else if (KW * C <= 48) {
                    /* padding inside the row, C % 4 != 0: element by element at
                     * compile-time positions */
                    int kx, j;
#pragma GCC unroll 48
                    for (kx = 0; kx < KW; ++kx) {
                        const int ok = ix0 + kx >= 0 && ix0 + kx < IW;
#pragma GCC unroll 48
                        for (j = 0; j < C; ++j) {
                            const int e = kx * C + j;
                            const int pos = e < 4 * G
                                ? (r * G + e / 4) * N4 + ((e & 3) == 1 ? 2 : (e & 3) == 2 ? 1 : (e & 3))
                                : (KH * G + (r * L + e - 4 * G) / 4) * N4 + ((r * L + e - 4 * G) & 3);
                            dn[pos] = ok ? src[e] : (int16_t)IZP;
                        }
                    }
                } else {
                    td_arm_win_row(in, dn, N4, iy, ix0, IH, IW, C, KW, KH, r, IZP);
                }
            }
            if (++ox == OW) {
                ox = 0;
                ++oy;
            }
        }
    }
}

/* A whole convolution: P output pixels, NMAX (<= 3) per block.  DIR < 0:
 * blocks in decreasing order (in-place "backward").  ep: the fused
 * residual add when ADD. */
TD_ARM_AI void td_arm_conv(const int8_t *in, int16_t *blk,
                           const int16_t *w, int8_t *out, const td_arm_epi *ep, const int P,
                           const int OC, const int K4, const int UNROLL, const int NMAX,
                           const int DIR, TD_ARM_WIN_ARGS, TD_ARM_RQ_ARGS, TD_ARM_EPI_ARGS)
{
    const int REM = P % NMAX;
    int p;
#define TD_ARM_CONV_STEP(NN)                                                          \
    td_arm_im2col(in, blk, p, NN, TD_ARM_WIN_PASS);                          \
    td_arm_gemm_pixels(blk, w, out + p * OC, out, ep, NN, OC, K4, 0, UNROLL,        \
                       TD_ARM_RQ_PASS, TD_ARM_EPI_PASS)
    if (DIR >= 0) {
        for (p = 0; p + NMAX <= P; p += NMAX) {
            TD_ARM_CONV_STEP(NMAX);
        }
        if (REM) {
            TD_ARM_CONV_STEP(REM);
        }
    } else {
        p = P - REM;
        if (REM) {
            TD_ARM_CONV_STEP(REM);
        }
        while (p > 0) {
            p -= NMAX;
            TD_ARM_CONV_STEP(NMAX);
        }
    }
#undef TD_ARM_CONV_STEP
}

/* ---------------------------------------------------------------------- */
/* Depthwise 3x3 (depth multiplier 1)                                      */
/* ---------------------------------------------------------------------- */
/* The kernel rows of an output row are kept as channel-major int16 rows
 * ("ring slots", td_arm_dw_fill) with the zero point around the image:
 * slot[c][u], PU int16 per channel, u the image column.  For one channel
 * and output row, a kernel row (3 taps, weights W01 = (w0, w1),
 * W12 = (w1, w2)) contributes to output u:  SU == 1: x[u] w0 + x[u+1] w1 +
 * x[u+2] w2 as
 *   even u: smlad((x[u], x[u+1]), W01) + smlabt((x[u+2], .), W12)
 *   odd u:  smlatb((., x[u]), W01) + smlad((x[u+1], x[u+2]), W12)
 * SU == 2: smlad((x[2u], x[2u+1]), W01) + smlabt((x[2u+2], .), W12).
 * The channel stream: bias2, W01/W12 of the three rows, the record. */

#define TD_I4_(op, d, n, m, acc) op " %[" d "], %[" n "], %[" m "], %[" acc "]\n\t"

/* One kernel row for eight outputs (SU == 1: words x[0..9]; SU == 2:
 * x[0..17]).  FIRST: the accumulators start from the bias held in a0, whose
 * own first terms come last. */
#define TD_DW_ROW1_FIRST_                                                            \
    "ldrd %[t0], %[t1], [%[xp]]\n\t"                                                 \
    TD_I4_("smlatb", "a1", "t0", "w01", "a0") TD_I4_("smlad", "a1", "t1", "w12", "a1") \
    TD_I4_("smlad", "a2", "t1", "w01", "a0") TD_I4_("smlatb", "a3", "t1", "w01", "a0") \
    "ldrd %[t0], %[t1], [%[xp], #8]\n\t"                                             \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w12", "a3") \
    TD_I4_("smlad", "a4", "t0", "w01", "a0") TD_I4_("smlatb", "a5", "t0", "w01", "a0") \
    TD_I4_("smlabt", "a4", "t1", "w12", "a4") TD_I4_("smlad", "a5", "t1", "w12", "a5") \
    TD_I4_("smlad", "a6", "t1", "w01", "a0") TD_I4_("smlatb", "a7", "t1", "w01", "a0") \
    "ldr %[t0], [%[xp], #16]\n\t"                                                    \
    TD_I4_("smlabt", "a6", "t0", "w12", "a6") TD_I4_("smlad", "a7", "t0", "w12", "a7") \
    "ldrd %[t0], %[t1], [%[xp]]\n\t"                                                 \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0")
#define TD_DW_ROW1_                                                                  \
    "ldrd %[t0], %[t1], [%[xp]]\n\t"                                                 \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlatb", "a1", "t0", "w01", "a1") \
    TD_I4_("smlabt", "a0", "t1", "w12", "a0") TD_I4_("smlad", "a1", "t1", "w12", "a1") \
    TD_I4_("smlad", "a2", "t1", "w01", "a2") TD_I4_("smlatb", "a3", "t1", "w01", "a3") \
    "ldrd %[t0], %[t1], [%[xp], #8]\n\t"                                             \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w12", "a3") \
    TD_I4_("smlad", "a4", "t0", "w01", "a4") TD_I4_("smlatb", "a5", "t0", "w01", "a5") \
    TD_I4_("smlabt", "a4", "t1", "w12", "a4") TD_I4_("smlad", "a5", "t1", "w12", "a5") \
    TD_I4_("smlad", "a6", "t1", "w01", "a6") TD_I4_("smlatb", "a7", "t1", "w01", "a7") \
    "ldr %[t0], [%[xp], #16]\n\t"                                                    \
    TD_I4_("smlabt", "a6", "t0", "w12", "a6") TD_I4_("smlad", "a7", "t0", "w12", "a7")
#define TD_DW_ROW2_FIRST_                                                            \
    "ldrd %[t0], %[t1], [%[xp], #4]\n\t"                                             \
    TD_I4_("smlad", "a1", "t0", "w01", "a0") TD_I4_("smlabt", "a1", "t1", "w12", "a1") \
    TD_I4_("smlad", "a2", "t1", "w01", "a0")                                         \
    "ldrd %[t0], %[t1], [%[xp], #12]\n\t"                                            \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w01", "a0") \
    TD_I4_("smlabt", "a3", "t1", "w12", "a3") TD_I4_("smlad", "a4", "t1", "w01", "a0") \
    "ldrd %[t0], %[t1], [%[xp], #20]\n\t"                                            \
    TD_I4_("smlabt", "a4", "t0", "w12", "a4") TD_I4_("smlad", "a5", "t0", "w01", "a0") \
    TD_I4_("smlabt", "a5", "t1", "w12", "a5") TD_I4_("smlad", "a6", "t1", "w01", "a0") \
    "ldrd %[t0], %[t1], [%[xp], #28]\n\t"                                            \
    TD_I4_("smlabt", "a6", "t0", "w12", "a6") TD_I4_("smlad", "a7", "t0", "w01", "a0") \
    TD_I4_("smlabt", "a7", "t1", "w12", "a7")                                        \
    "ldrd %[t0], %[t1], [%[xp]]\n\t"                                                 \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0")
#define TD_DW_ROW2_                                                                  \
    "ldrd %[t0], %[t1], [%[xp]]\n\t"                                                 \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0") \
    TD_I4_("smlad", "a1", "t1", "w01", "a1")                                         \
    "ldrd %[t0], %[t1], [%[xp], #8]\n\t"                                             \
    TD_I4_("smlabt", "a1", "t0", "w12", "a1") TD_I4_("smlad", "a2", "t0", "w01", "a2") \
    TD_I4_("smlabt", "a2", "t1", "w12", "a2") TD_I4_("smlad", "a3", "t1", "w01", "a3") \
    "ldrd %[t0], %[t1], [%[xp], #16]\n\t"                                            \
    TD_I4_("smlabt", "a3", "t0", "w12", "a3") TD_I4_("smlad", "a4", "t0", "w01", "a4") \
    TD_I4_("smlabt", "a4", "t1", "w12", "a4") TD_I4_("smlad", "a5", "t1", "w01", "a5") \
    "ldrd %[t0], %[t1], [%[xp], #24]\n\t"                                            \
    TD_I4_("smlabt", "a5", "t0", "w12", "a5") TD_I4_("smlad", "a6", "t0", "w01", "a6") \
    TD_I4_("smlabt", "a6", "t1", "w12", "a6") TD_I4_("smlad", "a7", "t1", "w01", "a7") \
    "ldr %[t0], [%[xp], #32]\n\t"                                                    \
    TD_I4_("smlabt", "a7", "t0", "w12", "a7")
/* Four outputs (SU == 1: words x[0..5]; SU == 2: x[0..9]). */
#define TD_DW4_ROW1_FIRST_                                                           \
    "ldrd %[t0], %[t1], [%[xp]]\n\t"                                                 \
    TD_I4_("smlatb", "a1", "t0", "w01", "a0") TD_I4_("smlad", "a1", "t1", "w12", "a1") \
    TD_I4_("smlad", "a2", "t1", "w01", "a0") TD_I4_("smlatb", "a3", "t1", "w01", "a0") \
    "ldr %[t0], [%[xp], #8]\n\t"                                                     \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w12", "a3") \
    "ldr %[t0], [%[xp]]\n\t"                                                         \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0")
#define TD_DW4_ROW1_                                                                 \
    "ldrd %[t0], %[t1], [%[xp]]\n\t"                                                 \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlatb", "a1", "t0", "w01", "a1") \
    TD_I4_("smlabt", "a0", "t1", "w12", "a0") TD_I4_("smlad", "a1", "t1", "w12", "a1") \
    TD_I4_("smlad", "a2", "t1", "w01", "a2") TD_I4_("smlatb", "a3", "t1", "w01", "a3") \
    "ldr %[t0], [%[xp], #8]\n\t"                                                     \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w12", "a3")
#define TD_DW4_ROW2_FIRST_                                                           \
    "ldrd %[t0], %[t1], [%[xp], #4]\n\t"                                             \
    TD_I4_("smlad", "a1", "t0", "w01", "a0") TD_I4_("smlabt", "a1", "t1", "w12", "a1") \
    TD_I4_("smlad", "a2", "t1", "w01", "a0")                                         \
    "ldrd %[t0], %[t1], [%[xp], #12]\n\t"                                            \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w01", "a0") \
    TD_I4_("smlabt", "a3", "t1", "w12", "a3")                                        \
    "ldrd %[t0], %[t1], [%[xp]]\n\t"                                                 \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0")
#define TD_DW4_ROW2_                                                                 \
    "ldrd %[t0], %[t1], [%[xp]]\n\t"                                                 \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0") \
    TD_I4_("smlad", "a1", "t1", "w01", "a1")                                         \
    "ldrd %[t0], %[t1], [%[xp], #8]\n\t"                                             \
    TD_I4_("smlabt", "a1", "t0", "w12", "a1") TD_I4_("smlad", "a2", "t0", "w01", "a2") \
    TD_I4_("smlabt", "a2", "t1", "w12", "a2") TD_I4_("smlad", "a3", "t1", "w01", "a3") \
    "ldr %[t0], [%[xp], #16]\n\t"                                                    \
    TD_I4_("smlabt", "a3", "t0", "w12", "a3")

/* Six outputs (SU == 1: words x[0..7]; SU == 2: x[0..13]). */
#define TD_DW6_ROW1_FIRST_                                                           \
    "ldrd %[t0], %[t1], [%[xp]]\n\t"                                                 \
    TD_I4_("smlatb", "a1", "t0", "w01", "a0") TD_I4_("smlad", "a1", "t1", "w12", "a1") \
    TD_I4_("smlad", "a2", "t1", "w01", "a0") TD_I4_("smlatb", "a3", "t1", "w01", "a0") \
    "ldrd %[t0], %[t1], [%[xp], #8]\n\t"                                             \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w12", "a3") \
    TD_I4_("smlad", "a4", "t0", "w01", "a0") TD_I4_("smlatb", "a5", "t0", "w01", "a0") \
    TD_I4_("smlabt", "a4", "t1", "w12", "a4") TD_I4_("smlad", "a5", "t1", "w12", "a5") \
    "ldrd %[t0], %[t1], [%[xp]]\n\t"                                                 \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0")
#define TD_DW6_ROW1_                                                                 \
    "ldrd %[t0], %[t1], [%[xp]]\n\t"                                                 \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlatb", "a1", "t0", "w01", "a1") \
    TD_I4_("smlabt", "a0", "t1", "w12", "a0") TD_I4_("smlad", "a1", "t1", "w12", "a1") \
    TD_I4_("smlad", "a2", "t1", "w01", "a2") TD_I4_("smlatb", "a3", "t1", "w01", "a3") \
    "ldrd %[t0], %[t1], [%[xp], #8]\n\t"                                             \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w12", "a3") \
    TD_I4_("smlad", "a4", "t0", "w01", "a4") TD_I4_("smlatb", "a5", "t0", "w01", "a5") \
    TD_I4_("smlabt", "a4", "t1", "w12", "a4") TD_I4_("smlad", "a5", "t1", "w12", "a5")
#define TD_DW6_ROW2_FIRST_                                                           \
    "ldrd %[t0], %[t1], [%[xp], #4]\n\t"                                             \
    TD_I4_("smlad", "a1", "t0", "w01", "a0") TD_I4_("smlabt", "a1", "t1", "w12", "a1") \
    TD_I4_("smlad", "a2", "t1", "w01", "a0")                                         \
    "ldrd %[t0], %[t1], [%[xp], #12]\n\t"                                            \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w01", "a0") \
    TD_I4_("smlabt", "a3", "t1", "w12", "a3") TD_I4_("smlad", "a4", "t1", "w01", "a0") \
    "ldrd %[t0], %[t1], [%[xp], #20]\n\t"                                            \
    TD_I4_("smlabt", "a4", "t0", "w12", "a4") TD_I4_("smlad", "a5", "t0", "w01", "a0") \
    TD_I4_("smlabt", "a5", "t1", "w12", "a5")                                        \
    "ldrd %[t0], %[t1], [%[xp]]\n\t"                                                 \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0")
#define TD_DW6_ROW2_                                                                 \
    "ldrd %[t0], %[t1], [%[xp]]\n\t"                                                 \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0") \
    TD_I4_("smlad", "a1", "t1", "w01", "a1")                                         \
    "ldrd %[t0], %[t1], [%[xp], #8]\n\t"                                             \
    TD_I4_("smlabt", "a1", "t0", "w12", "a1") TD_I4_("smlad", "a2", "t0", "w01", "a2") \
    TD_I4_("smlabt", "a2", "t1", "w12", "a2") TD_I4_("smlad", "a3", "t1", "w01", "a3") \
    "ldrd %[t0], %[t1], [%[xp], #16]\n\t"                                            \
    TD_I4_("smlabt", "a3", "t0", "w12", "a3") TD_I4_("smlad", "a4", "t0", "w01", "a4") \
    TD_I4_("smlabt", "a4", "t1", "w12", "a4") TD_I4_("smlad", "a5", "t1", "w01", "a5") \
    "ldr %[t0], [%[xp], #24]\n\t"                                                    \
    TD_I4_("smlabt", "a5", "t0", "w12", "a5")

#define TD_DW_W_(off) "ldrd %[w01], %[w12], [%[wp], #" off "]\n\t"
#define TD_DW_D1_ "add %[xp], %[xp], %[d1]\n\t"
#define TD_DW_D2_ "add %[xp], %[xp], %[d2]\n\t"
#define TD_DW_IN_ : [wp] "r"(wp), [d1] "i"(D1), [d2] "i"(D2) : "memory"
#define TD_DW_OPS8_ : [a0] "+r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3),        \
    [a4] "=&r"(a4), [a5] "=&r"(a5), [a6] "=&r"(a6), [a7] "=&r"(a7), [t0] "=&r"(t0), \
    [t1] "=&r"(t1), [w01] "=&r"(w01), [w12] "=&r"(w12), [xp] "+r"(xp) TD_DW_IN_
#define TD_DW_OPS6_ : [a0] "+r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3),        \
    [a4] "=&r"(a4), [a5] "=&r"(a5), [t0] "=&r"(t0), [t1] "=&r"(t1), [w01] "=&r"(w01),       \
    [w12] "=&r"(w12), [xp] "+r"(xp) TD_DW_IN_
#define TD_DW_OPS4_ : [a0] "+r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3),        \
    [t0] "=&r"(t0), [t1] "=&r"(t1), [w01] "=&r"(w01), [w12] "=&r"(w12), [xp] "+r"(xp) TD_DW_IN_

/* NB (8, 6 or 4) outputs of one channel: bias + three kernel rows; the second
 * row starts D1 bytes after the first, the third D2 after the second (ring
 * slots).  wp: the channel's stream. */
TD_ARM_AI void td_arm_dw_blk(int32_t *acc, const int16_t *x, const int32_t *wp, const int NB,
                             const int SU, const int D1, const int D2)
{
    const int16_t *xp = x;
    int32_t a0 = wp[0], a1, a2, a3, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    uint32_t t0, t1, w01, w12;
    if (NB == 8 && SU == 1) {
        __asm__ volatile(TD_DW_W_("4") TD_DW_ROW1_FIRST_ TD_DW_D1_ TD_DW_W_("12") TD_DW_ROW1_
                         TD_DW_D2_ TD_DW_W_("20") TD_DW_ROW1_ TD_DW_OPS8_);
    } else if (NB == 8) {
        __asm__ volatile(TD_DW_W_("4") TD_DW_ROW2_FIRST_ TD_DW_D1_ TD_DW_W_("12") TD_DW_ROW2_
                         TD_DW_D2_ TD_DW_W_("20") TD_DW_ROW2_ TD_DW_OPS8_);
    } else if (NB == 6 && SU == 1) {
        __asm__ volatile(TD_DW_W_("4") TD_DW6_ROW1_FIRST_ TD_DW_D1_ TD_DW_W_("12") TD_DW6_ROW1_
                         TD_DW_D2_ TD_DW_W_("20") TD_DW6_ROW1_ TD_DW_OPS6_);
    } else if (NB == 6) {
        __asm__ volatile(TD_DW_W_("4") TD_DW6_ROW2_FIRST_ TD_DW_D1_ TD_DW_W_("12") TD_DW6_ROW2_
                         TD_DW_D2_ TD_DW_W_("20") TD_DW6_ROW2_ TD_DW_OPS6_);
    } else if (SU == 1) {
        __asm__ volatile(TD_DW_W_("4") TD_DW4_ROW1_FIRST_ TD_DW_D1_ TD_DW_W_("12") TD_DW4_ROW1_
                         TD_DW_D2_ TD_DW_W_("20") TD_DW4_ROW1_ TD_DW_OPS4_);
    } else {
        __asm__ volatile(TD_DW_W_("4") TD_DW4_ROW2_FIRST_ TD_DW_D1_ TD_DW_W_("12") TD_DW4_ROW2_
                         TD_DW_D2_ TD_DW_W_("20") TD_DW4_ROW2_ TD_DW_OPS4_);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    if (NB >= 6) {
        acc[4] = a4;
        acc[5] = a5;
    }
    if (NB == 8) {
        acc[6] = a6;
        acc[7] = a7;
    }
}

/* One or two outputs of one channel (the row's tail), in C. */
TD_ARM_AI void td_arm_dw_tail(int32_t *a, const int16_t *x, const int32_t *wp, const int NO,
                              const int SU, const int D1, const int D2)
{
    const char *xb = (const char *)(const void *)x;
    int r;
    a[0] = a[1] = wp[0];
#pragma GCC unroll 3
    for (r = 0; r < 3; ++r) {
        const td_u32a *xr = (const td_u32a *)(const void *)(xb + (r > 0 ? D1 : 0) + (r > 1 ? D2 : 0));
        const uint32_t w01 = (uint32_t)wp[1 + 2 * r], w12 = (uint32_t)wp[2 + 2 * r];
        if (SU == 1) {
            const uint32_t p = xr[0], q = xr[1];
            a[0] = __smlabt(q, w12, __smlad(p, w01, a[0]));
            if (NO > 1) {
                a[1] = __smlad(q, w12, __smlatb(p, w01, a[1]));
            }
        } else {
            a[0] = __smlabt(xr[1], w12, __smlad(xr[0], w01, a[0]));
            if (NO > 1) {
                a[1] = __smlabt(xr[2], w12, __smlad(xr[1], w01, a[1]));
            }
        }
    }
}

/* One output row of a group of C channels from three ring slots (phase:
 * D1, D2 are the byte steps between the slots of its kernel rows).  Slot
 * layout: [C][PU] int16.  OC: the output's pixel stride (all channels). */
TD_ARM_AI void td_arm_dw_row(const int16_t *x0, const int32_t *stream, int8_t *o, const int C,
                             const int OC, const int OU, const int SU, const int PU,
                             const int D1, const int D2, TD_ARM_RQ_ARGS)
{
    const int CS = 7 + RS;  /* words per channel in the stream: bias, 2 x 3 weights, record */
    int c, u, j;
    for (c = 0; c < C; ++c) {
        const int32_t *st = stream + c * CS;
        const int16_t *xc = x0 + c * PU;
        int8_t *oc = o + c;
        const td_arm_rec k = td_arm_rec_load(st + 7, RS, E, FIX);
        for (u = 0; u + 8 <= OU; u += 8) {
            int32_t acc[8];
            td_arm_dw_blk(acc, xc + u * SU, st, 8, SU, D1, D2);
#pragma GCC unroll 8
            for (j = 0; j < 8; ++j) {
                acc[j] = TD_ARM_RQ(acc[j], k.r);
            }
#pragma GCC unroll 8
            for (j = 0; j < 8; ++j) {
                oc[(u + j) * OC] = (int8_t)acc[j];
            }
        }
        if (OU % 8 > 2) {
            /* the rest: one block of 4, 6 or 8 storing 3..7 */
            const int NB = OU % 8 > 6 ? 8 : (OU % 8 > 4 ? 6 : 4);
            int32_t acc[8];
            td_arm_dw_blk(acc, xc + u * SU, st, NB, SU, D1, D2);
#pragma GCC unroll 8
            for (j = 0; j < OU % 8; ++j) {
                acc[j] = TD_ARM_RQ(acc[j], k.r);
            }
#pragma GCC unroll 8
            for (j = 0; j < OU % 8; ++j) {
                oc[(u + j) * OC] = (int8_t)acc[j];
            }
        } else if (OU % 8) {
            int32_t acc[2];
            td_arm_dw_tail(acc, xc + u * SU, st, OU % 8, SU, D1, D2);
            oc[u * OC] = (int8_t)TD_ARM_RQ(acc[0], k.r);
            if (OU % 8 > 1) {
                oc[(u + 1) * OC] = (int8_t)TD_ARM_RQ(acc[1], k.r);
            }
        }
    }
}

/* Load channels 0 .. nc - 1 of input row iy (pixel stride c; the zero
 * point outside the image) into a ring slot [nc][PU] int16 at columns
 * PL .. PL + IW - 1 (the border columns are filled once by
 * td_arm_dw_ring_init). */
void td_arm_dw_fill(const int8_t *in, int16_t *slot, int iy, int ih, int iw, int c, int nc,
                    int pu, int pl, int zp);
/* All three slots: zero point everywhere. */
void td_arm_dw_ring_init(int16_t *ring, int n, int zp);

/* td_arm_dw_fill for a valid row with compile-time shapes (NC % 4 == 0):
 * two pixels x four channels per step, LDR + SXTB16 + PKH + STR. */
TD_ARM_AI void td_arm_dw_fill_t(const int8_t *src, int16_t *slot, const int IW, const int C,
                                const int NC, const int PU, const int PL)
{
    int b, k;
    int16_t *dst = slot + PL;
    for (b = 0; b + 2 <= IW; b += 2) {
        const int8_t *p0 = src + b * C;
        int16_t *d = dst + b;
#pragma GCC unroll 16
        for (k = 0; k < NC; k += 4) {
            const uint32_t v0 = *(const td_u32u *)(const void *)(p0 + k);
            const uint32_t v1 = *(const td_u32u *)(const void *)(p0 + C + k);
            const uint32_t e0 = (uint32_t)__sxtb16(v0), o0 = td_arm_sxtb16_ror8(v0);
            const uint32_t e1 = (uint32_t)__sxtb16(v1), o1 = td_arm_sxtb16_ror8(v1);
            *(td_u32u *)(void *)(d + k * PU) = td_arm_pkhbt16(e0, e1);
            *(td_u32u *)(void *)(d + (k + 1) * PU) = td_arm_pkhbt16(o0, o1);
            *(td_u32u *)(void *)(d + (k + 2) * PU) = td_arm_pkhtb16(e1, e0);
            *(td_u32u *)(void *)(d + (k + 3) * PU) = td_arm_pkhtb16(o1, o0);
        }
    }
    if (IW & 1) {
        /* the last pixel: four channels per LDR */
        const int8_t *p0 = src + (IW - 1) * C;
        int16_t *d = dst + IW - 1;
#pragma GCC unroll 16
        for (k = 0; k < NC; k += 4) {
            const uint32_t v = *(const td_u32u *)(const void *)(p0 + k);
            const uint32_t e = (uint32_t)__sxtb16(v), o = td_arm_sxtb16_ror8(v);
            d[k * PU] = (int16_t)e;
            d[(k + 1) * PU] = (int16_t)o;
            d[(k + 2) * PU] = (int16_t)(e >> 16);
            d[(k + 3) * PU] = (int16_t)(o >> 16);
        }
    }
}

/* Input row iy (channels 0 .. NC - 1) into a ring slot: the unrolled
 * compile-time fill for rows inside the image, else the general one. */
TD_ARM_AI void td_arm_dw_load(const int8_t *in, int16_t *slot, int iy, const int IH,
                              const int IW, const int C, const int NC, const int PU,
                              const int PL, const int IZP)
{
    if (NC % 4 == 0 && iy >= 0 && iy < IH) {
        td_arm_dw_fill_t(in + iy * IW * C, slot, IW, C, NC, PU, PL);
    } else {
        td_arm_dw_fill(in, slot, iy, IH, IW, C, NC, PU, PL, IZP);
    }
}

/* Channels c0 .. c0 + NC - 1 of the layer (see td_arm_dw3x3): three ring
 * slots of NC * PU int16 hold the kernel rows of the current output row. */
#define TD_DW_SLOT_ (NC * PU * 2)
TD_ARM_AI void td_arm_dw3x3_group(const int8_t *in, int16_t *ring, const int32_t *stream,
                                  int8_t *out, const int IH, const int IW, const int C,
                                  const int NC, const int OH, const int OW, const int SV,
                                  const int SU, const int PT, const int PL, const int PU,
                                  const int IZP, const int DIR, TD_ARM_RQ_ARGS)
{
    /* Input rows are loaded in order (decreasing for DIR < 0) into slots
     * taken in rotation; ns: the slot of the next load.  Once an output
     * row's three rows are loaded, its top row iy0 sits in slot ph and
     * iy0 + r in (ph + r) % 3. */
    int nx = DIR >= 0 ? -PT : (OH - 1) * SV - PT + 2; /* the next row to load */
    int ns = 0, n;
    for (n = 0; n < OH; ++n) {
        const int oy = DIR >= 0 ? n : OH - 1 - n;
        const int iy0 = oy * SV - PT;
        int ph;
        if (DIR >= 0) {
            nx = nx < iy0 ? iy0 : nx;
            for (; nx <= iy0 + 2; ++nx, ns = ns == 2 ? 0 : ns + 1) {
                td_arm_dw_load(in, ring + ns * NC * PU, nx, IH, IW, C, NC, PU, PL, IZP);
            }
            ph = ns;
        } else {
            nx = nx > iy0 + 2 ? iy0 + 2 : nx;
            for (; nx >= iy0; --nx, ns = ns == 0 ? 2 : ns - 1) {
                td_arm_dw_load(in, ring + ns * NC * PU, nx, IH, IW, C, NC, PU, PL, IZP);
            }
            ph = ns == 2 ? 0 : ns + 1;
        }
        {
            const int16_t *x0 = ring + ph * NC * PU;
            int8_t *o = out + oy * OW * C;
            if (ph == 0) {
                td_arm_dw_row(x0, stream, o, NC, C, OW, SU, PU, TD_DW_SLOT_, TD_DW_SLOT_,
                              TD_ARM_RQ_PASS);
            } else if (ph == 1) {
                td_arm_dw_row(x0, stream, o, NC, C, OW, SU, PU, TD_DW_SLOT_, -2 * TD_DW_SLOT_,
                              TD_ARM_RQ_PASS);
            } else {
                td_arm_dw_row(x0, stream, o, NC, C, OW, SU, PU, -2 * TD_DW_SLOT_, TD_DW_SLOT_,
                              TD_ARM_RQ_PASS);
            }
        }
    }
}
#undef TD_DW_SLOT_

/* The layer: depthwise 3x3, depth multiplier 1, OH x OW outputs, input
 * IH x IW x C, strides SV (rows), SU (columns), padding PT/PL.  The
 * channels go in groups of CG (the ring holds 3 x CG x PU int16); per group
 * the output rows go in increasing (DIR > 0) or decreasing order, each
 * written after all of its inputs were read.  Safe for in-place "window"
 * with one group; with several, out may EQUAL in where every output row is
 * written over input rows already read (kernels_arm.alias_safe). */
TD_ARM_AI void td_arm_dw3x3(const int8_t *in, int16_t *ring, const int32_t *stream, int8_t *out,
                            const int IH, const int IW, const int C, const int CG, const int OH,
                            const int OW, const int SV, const int SU, const int PT,
                            const int PL, const int PU, const int IZP, const int DIR,
                            TD_ARM_RQ_ARGS)
{
    const int CS = 7 + RS; /* stream words per channel */
    int c0;
    td_arm_dw_ring_init(ring, 3 * CG * PU, IZP);
    for (c0 = 0; c0 + CG <= C; c0 += CG) {
        td_arm_dw3x3_group(in + c0, ring, stream + c0 * CS, out + c0, IH, IW, C, CG, OH, OW, SV,
                           SU, PT, PL, PU, IZP, DIR, TD_ARM_RQ_PASS);
    }
    if (C % CG) {
        td_arm_dw_ring_init(ring, 3 * (C % CG) * PU, IZP);
        td_arm_dw3x3_group(in + c0, ring, stream + c0 * CS, out + c0, IH, IW, C, C % CG, OH, OW,
                           SV, SU, PT, PL, PU, IZP, DIR, TD_ARM_RQ_PASS);
    }
}

/* ---------------------------------------------------------------------- */
/* Fully connected without scratch: activations read as int8              */
/* ---------------------------------------------------------------------- */
/* Four output features at a time; per four inputs one LDR + two SXTB16 of
 * the activations (SXTB16 order, as the weights), then per feature one
 * LDRD of int16 weights and two SMLADs.  Stream per block of M (4, 2, 1)
 * features: biases, K/4 steps of [m][4] int16, records (see td_arm_rq). */
#define TD_FX_X_ "ldr %[x1], [%[xp]], #4\n\tsxtb16 %[x0], %[x1]\n\tsxtb16 %[x1], %[x1], ror #8\n\t"
#define TD_FX_M_(a) "ldrd %[w0], %[w1], [%[wp]], #8\n\t" TD_SM_(a, "x0", "w0") TD_SM_(a, "x1", "w1")
TD_ARM_AI void td_arm_fc_block(const int8_t *x, const int16_t **wpp, int8_t *o, const int M,
                               const int K4, TD_ARM_RQ_ARGS)
{
    const int16_t *wp = *wpp;
    const int8_t *xp = x;
    const int32_t *bp = (const int32_t *)(const void *)wp;
    int32_t a0 = bp[0], a1 = M > 1 ? bp[1] : 0, a2 = M > 2 ? bp[2] : 0, a3 = M > 3 ? bp[3] : 0;
    uint32_t x0, x1, w0, w1;
    int i;
    wp += 2 * M;
#pragma GCC unroll 8
    for (i = 0; i < K4; ++i) {
        if (M == 4) {
            __asm__ volatile(TD_FX_X_ TD_FX_M_("a0") TD_FX_M_("a1") TD_FX_M_("a2") TD_FX_M_("a3")
                             : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                               [xp] "+r"(xp), [wp] "+r"(wp), [x0] "=&r"(x0), [x1] "=&r"(x1),
                               [w0] "=&r"(w0), [w1] "=&r"(w1) : : "memory");
        } else if (M == 2) {
            __asm__ volatile(TD_FX_X_ TD_FX_M_("a0") TD_FX_M_("a1")
                             : [a0] "+r"(a0), [a1] "+r"(a1), [xp] "+r"(xp), [wp] "+r"(wp),
                               [x0] "=&r"(x0), [x1] "=&r"(x1), [w0] "=&r"(w0), [w1] "=&r"(w1)
                             : : "memory");
        } else {
            __asm__ volatile(TD_FX_X_ TD_FX_M_("a0")
                             : [a0] "+r"(a0), [xp] "+r"(xp), [wp] "+r"(wp), [x0] "=&r"(x0),
                               [x1] "=&r"(x1), [w0] "=&r"(w0), [w1] "=&r"(w1) : : "memory");
        }
    }
    {
        const int32_t *r = (const int32_t *)(const void *)wp;
        const td_arm_rec k0 = td_arm_rec_load(r, RS, E, FIX);
        const td_arm_rec k1 = td_arm_rec_load(r + (M > 1 ? RS : 0), RS, E, FIX);
        const td_arm_rec k2 = td_arm_rec_load(r + (M > 2 ? 2 * RS : 0), RS, E, FIX);
        const td_arm_rec k3 = td_arm_rec_load(r + (M > 3 ? 3 * RS : 0), RS, E, FIX);
        const int32_t v0 = TD_ARM_RQ(a0, k0.r);
        const int32_t v1 = M > 1 ? TD_ARM_RQ(a1, k1.r) : 0;
        const int32_t v2 = M > 2 ? TD_ARM_RQ(a2, k2.r) : 0;
        const int32_t v3 = M > 3 ? TD_ARM_RQ(a3, k3.r) : 0;
        o[0] = (int8_t)v0;
        if (M > 1) {
            o[1] = (int8_t)v1;
        }
        if (M > 2) {
            o[2] = (int8_t)v2;
            o[3] = (int8_t)v3;
        }
        *wpp = wp + 2 * M * RS;
    }
}

TD_ARM_AI void td_arm_fc(const int8_t *in, const int16_t *w, int8_t *out, const int ROWS,
                         const int K, const int OC, TD_ARM_RQ_ARGS)
{
    int row, c;
    for (row = 0; row < ROWS; ++row) {
        const int16_t *wp = w;
        for (c = 0; c + 4 <= OC; c += 4) {
            td_arm_fc_block(in + row * K, &wp, out + row * OC + c, 4, K / 4, TD_ARM_RQ_PASS);
        }
        if (OC & 2) {
            td_arm_fc_block(in + row * K, &wp, out + row * OC + c, 2, K / 4, TD_ARM_RQ_PASS);
            c += 2;
        }
        if (OC & 1) {
            td_arm_fc_block(in + row * K, &wp, out + row * OC + c, 1, K / 4, TD_ARM_RQ_PASS);
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Global average pool (the window is the whole image)                     */
/* ---------------------------------------------------------------------- */
/* TFLite's average: (sum + P/2) / P for sum > 0, (sum - P/2) / P else (C
 * division), clamped.  Four channels at a time in two 16-bit lane sums
 * (SXTAB16): exact for P <= 255 pixels. */
TD_ARM_AI uint32_t td_arm_sxtab16_ror8(uint32_t acc, uint32_t v)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(v));
    return r;
}

TD_ARM_AI int32_t td_arm_avg_div(int32_t sum, const int P, const int LO, const int HI)
{
    int32_t v = sum > 0 ? (sum + P / 2) / P : (sum - P / 2) / P;
    v = v < LO ? LO : v;
    return v > HI ? HI : v;
}

TD_ARM_AI void td_arm_gavg(const int8_t *in, int8_t *out, const int P, const int C,
                           const int LO, const int HI)
{
    int c, p;
    for (c = 0; c + 4 <= C; c += 4) {
        uint32_t se = 0, so = 0;
        const int8_t *x = in + c;
#pragma GCC unroll 4
        for (p = 0; p < P; ++p) {
            const uint32_t v = *(const td_u32u *)(const void *)(x + p * C);
            se = (uint32_t)__sxtab16(se, v);
            so = td_arm_sxtab16_ror8(so, v);
        }
        out[c] = (int8_t)td_arm_avg_div((int16_t)se, P, LO, HI);
        out[c + 1] = (int8_t)td_arm_avg_div((int16_t)so, P, LO, HI);
        out[c + 2] = (int8_t)td_arm_avg_div((int32_t)se >> 16, P, LO, HI);
        out[c + 3] = (int8_t)td_arm_avg_div((int32_t)so >> 16, P, LO, HI);
    }
    for (; c < C; ++c) {
        int32_t sum = 0;
        for (p = 0; p < P; ++p) {
            sum += in[p * C + c];
        }
        out[c] = (int8_t)td_arm_avg_div(sum, P, LO, HI);
    }
}

/* ---------------------------------------------------------------------- */
/* Max pooling: four channels per word                                     */
/* ---------------------------------------------------------------------- */
/* Per byte lane max(m, x): SSUB8 sets the GE flag of each lane where
 * x >= m, SEL then takes those lanes from x.  One asm statement, so that no
 * other GE-setting instruction can come between the two. */
TD_ARM_AI uint32_t td_arm_max4(uint32_t m, uint32_t x)
{
    uint32_t r;
    __asm__("ssub8 %[r], %[x], %[m]\n\tsel %[r], %[x], %[m]"
            : [r] "=&r"(r) : [x] "r"(x), [m] "r"(m) : "cc");
    return r;
}

/* Per byte lane min(m, x). */
TD_ARM_AI uint32_t td_arm_min4(uint32_t m, uint32_t x)
{
    uint32_t r;
    __asm__("ssub8 %[r], %[x], %[m]\n\tsel %[r], %[m], %[x]"
            : [r] "=&r"(r) : [x] "r"(x), [m] "r"(m) : "cc");
    return r;
}

/* The window rows/columns [*lo, *hi) of origin o inside 0 .. SIZE - 1. */
TD_ARM_AI void td_arm_clip_window(int o, const int K, const int SIZE, int *lo, int *hi)
{
    *lo = o < 0 ? -o : 0;
    *hi = SIZE - o < K ? SIZE - o : K;
    *hi = *hi < *lo ? *lo : *hi;
}

/* TFLite max pooling (padding cells ignored) with the activation clamp:
 * the running max starts at LO (so the lower clamp is free), and HI < 127
 * adds one min per word.  Channels beyond a multiple of 4 one at a time. */
TD_ARM_AI void td_arm_maxpool(const int8_t *in, int8_t *out, const int IH, const int IW,
                              const int C, const int OH, const int OW, const int KH,
                              const int KW, const int SH, const int SW, const int PT,
                              const int PL, const int LO, const int HI)
{
    const uint32_t lo4 = (uint32_t)(uint8_t)LO * 0x01010101u;
    const uint32_t hi4 = (uint32_t)(uint8_t)HI * 0x01010101u;
    int oy, ox, c, y, x, ky0, ky1, kx0, kx1;
    for (oy = 0; oy < OH; ++oy) {
        td_arm_clip_window(oy * SH - PT, KH, IH, &ky0, &ky1);
        for (ox = 0; ox < OW; ++ox) {
            const int8_t *w; /* the window's first cell inside the image */
            int8_t *o = out + (oy * OW + ox) * C;
            td_arm_clip_window(ox * SW - PL, KW, IW, &kx0, &kx1);
            w = in + ((oy * SH - PT + ky0) * IW + ox * SW - PL + kx0) * C;
            for (c = 0; c + 4 <= C; c += 4) {
                uint32_t m = lo4;
                for (y = 0; y < ky1 - ky0; ++y) {
#pragma GCC unroll 4
                    for (x = 0; x < kx1 - kx0; ++x) {
                        m = td_arm_max4(m, *(const td_u32u *)(const void *)(w + (y * IW + x) * C + c));
                    }
                }
                if (HI < 127) {
                    m = td_arm_min4(m, hi4);
                }
                *(td_u32u *)(void *)(o + c) = m;
            }
            for (; c < C; ++c) {
                int32_t m = LO;
                for (y = 0; y < ky1 - ky0; ++y) {
                    for (x = 0; x < kx1 - kx0; ++x) {
                        const int32_t v = w[(y * IW + x) * C + c];
                        m = v > m ? v : m;
                    }
                }
                o[c] = (int8_t)(m < HI ? m : HI);
            }
        }
    }
}

#endif /* __ARM_FEATURE_DSP */

#if defined(__ARM_FEATURE_MVE)
/* ---------------------------------------------------------------------- */
/* Helium (MVE): convolution / fully connected                              */
/* ---------------------------------------------------------------------- */
/* int8 weights and activations, 16 MACs per VMLADAVA.S8.  A block is M
 * (4, 2 or 1) output channels x N (2 or 1) pixels; the pixels' windows are
 * copied (td_mve_im2col) into int8 rows of KC * 16 bytes (zero tail), so
 * every output reads contiguous memory.  VMLADAV accumulates into even
 * registers only: the accumulators are pinned to r0, r2, ..., r12, lr.
 *
 * Constant stream per block of M channels: bias'[M] (zero point folded,
 * unscaled), s[M] (acc2 = (acc + bias') << s), m[M], C[M], e[M], mask[M]
 * (see td_arm_rq), then KC chunks of [M][16] int8 weights. */
#define TD_MV_X_(n) "vldrb.8 %q[x" #n "], [%[p" #n "]], #16\n\t"
#define TD_MV_W_ "vldrb.8 %q[w], [%[wp]], #16\n\t"
#define TD_MV_A_(op, m, n) op " %[a" #m #n "], %q[x" #n "], %q[w]\n\t"
#define TD_MV_M2_(op, m) TD_MV_W_ TD_MV_A_(op, m, 0) TD_MV_A_(op, m, 1)
#define TD_MV_M1_(op, m) TD_MV_W_ TD_MV_A_(op, m, 0)
#define TD_MV_S42_(op) TD_MV_X_(0) TD_MV_X_(1) TD_MV_M2_(op, 0) TD_MV_M2_(op, 1) \
    TD_MV_M2_(op, 2) TD_MV_M2_(op, 3)
#define TD_MV_S41_(op) TD_MV_X_(0) TD_MV_M1_(op, 0) TD_MV_M1_(op, 1) TD_MV_M1_(op, 2) \
    TD_MV_M1_(op, 3)
#define TD_MV_S22_(op) TD_MV_X_(0) TD_MV_X_(1) TD_MV_M2_(op, 0) TD_MV_M2_(op, 1)
#define TD_MV_S21_(op) TD_MV_X_(0) TD_MV_M1_(op, 0) TD_MV_M1_(op, 1)
#define TD_MV_S12_(op) TD_MV_X_(0) TD_MV_X_(1) TD_MV_M2_(op, 0)
#define TD_MV_S11_(op) TD_MV_X_(0) TD_MV_M1_(op, 0)
#define TD_MV_Q_ [x0] "=&w"(x0), [x1] "=&w"(x1), [w] "=&w"(w)
#define TD_MV_P_ [p0] "+r"(p0), [p1] "+r"(p1), [wp] "+r"(pw)

/* One chunk of 16 K values for every accumulator of the block; FIRST:
 * VMLADAV (start from 0) instead of VMLADAVA. */
#define TD_MV_STEP_(M, N, FIRST)                                                         \
    do {                                                                                 \
        if (M == 4 && N == 2 && FIRST) {                                                 \
            __asm__ volatile(TD_MV_S42_("vmladav.s8")                                    \
                             : [a00] "=r"(a00), [a01] "=r"(a01), [a10] "=r"(a10),         \
                               [a11] "=r"(a11), [a20] "=r"(a20), [a21] "=r"(a21),         \
                               [a30] "=r"(a30), [a31] "=r"(a31), TD_MV_P_, TD_MV_Q_       \
                             : : "memory");                                              \
        } else if (M == 4 && N == 2) {                                                   \
            __asm__ volatile(TD_MV_S42_("vmladava.s8")                                   \
                             : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10),         \
                               [a11] "+r"(a11), [a20] "+r"(a20), [a21] "+r"(a21),         \
                               [a30] "+r"(a30), [a31] "+r"(a31), TD_MV_P_, TD_MV_Q_       \
                             : : "memory");                                              \
        } else if (M == 4 && FIRST) {                                                    \
            __asm__ volatile(TD_MV_S41_("vmladav.s8")                                    \
                             : [a00] "=r"(a00), [a10] "=r"(a10), [a20] "=r"(a20),          \
                               [a30] "=r"(a30), TD_MV_P_, TD_MV_Q_ : : "memory");         \
        } else if (M == 4) {                                                             \
            __asm__ volatile(TD_MV_S41_("vmladava.s8")                                   \
                             : [a00] "+r"(a00), [a10] "+r"(a10), [a20] "+r"(a20),          \
                               [a30] "+r"(a30), TD_MV_P_, TD_MV_Q_ : : "memory");         \
        } else if (M == 2 && N == 2 && FIRST) {                                          \
            __asm__ volatile(TD_MV_S22_("vmladav.s8")                                    \
                             : [a00] "=r"(a00), [a01] "=r"(a01), [a10] "=r"(a10),         \
                               [a11] "=r"(a11), TD_MV_P_, TD_MV_Q_ : : "memory");         \
        } else if (M == 2 && N == 2) {                                                   \
            __asm__ volatile(TD_MV_S22_("vmladava.s8")                                   \
                             : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10),         \
                               [a11] "+r"(a11), TD_MV_P_, TD_MV_Q_ : : "memory");         \
        } else if (M == 2 && FIRST) {                                                    \
            __asm__ volatile(TD_MV_S21_("vmladav.s8")                                    \
                             : [a00] "=r"(a00), [a10] "=r"(a10), TD_MV_P_, TD_MV_Q_       \
                             : : "memory");                                              \
        } else if (M == 2) {                                                             \
            __asm__ volatile(TD_MV_S21_("vmladava.s8")                                   \
                             : [a00] "+r"(a00), [a10] "+r"(a10), TD_MV_P_, TD_MV_Q_       \
                             : : "memory");                                              \
        } else if (N == 2 && FIRST) {                                                    \
            __asm__ volatile(TD_MV_S12_("vmladav.s8")                                    \
                             : [a00] "=r"(a00), [a01] "=r"(a01), TD_MV_P_, TD_MV_Q_       \
                             : : "memory");                                              \
        } else if (N == 2) {                                                             \
            __asm__ volatile(TD_MV_S12_("vmladava.s8")                                   \
                             : [a00] "+r"(a00), [a01] "+r"(a01), TD_MV_P_, TD_MV_Q_       \
                             : : "memory");                                              \
        } else if (FIRST) {                                                              \
            __asm__ volatile(TD_MV_S11_("vmladav.s8")                                    \
                             : [a00] "=r"(a00), TD_MV_P_, TD_MV_Q_ : : "memory");         \
        } else {                                                                         \
            __asm__ volatile(TD_MV_S11_("vmladava.s8")                                   \
                             : [a00] "+r"(a00), TD_MV_P_, TD_MV_Q_ : : "memory");         \
        }                                                                                \
    } while (0)

/* {a, b, c, d} from four core registers in two VMOVs. */
TD_ARM_AI int32x4_t td_mve_vec4(int32_t a, int32_t b, int32_t c, int32_t d)
{
    int32x4_t v;
    /* (QEMU and the architecture agree: the first register goes to the
     * lower lane of the pair) */
    __asm__("vmov %q0[2], %q0[0], %1, %2\n\tvmov %q0[3], %q0[1], %3, %4"
            : "=&w"(v) : "r"(a), "r"(c), "r"(b), "r"(d));
    return v;
}

/* Requantize NP (1 or 2) pixels x four channels as vectors (uniform mode):
 * ((acc + bias') << s, VMULH m, + C [+ fix], >> E, clamp) -> 4 bytes each;
 * the channel constants are loaded once. */
TD_ARM_AI void td_mve_rq4x(int8_t *o, const int OC, const int NP, int32x4_t v0, int32x4_t v1,
                           const int32_t *r, TD_ARM_RQ_ARGS)
{
    const int32x4_t bias = vldrwq_s32(r), sh = vldrwq_s32(r + 4), m = vldrwq_s32(r + 8);
    const int32x4_t c = vldrwq_s32(r + 12);
    const int32x4_t lo = vdupq_n_s32(CLAMP ? LO : -128), hi = vdupq_n_s32(CLAMP ? HI : 127);
    int32x4_t c0 = c, c1 = c;
    (void)RS;
    v0 = vshlq_s32(vaddq_s32(v0, bias), sh);
    if (NP > 1) {
        v1 = vshlq_s32(vaddq_s32(v1, bias), sh);
    }
    if (FIX) {
        const int32x4_t mask = vldrwq_s32(r + 20);
        c0 = vaddq_s32(c, vandq_s32(vshrq_n_s32(v0, 31), mask));
        c1 = vaddq_s32(c, vandq_s32(vshrq_n_s32(v1, 31), mask));
    }
    v0 = vshrq_n_s32(vaddq_s32(vmulhq_s32(v0, m), c0), E > 0 ? E : 1);
    if (!FOLD) {
        v0 = vaddq_s32(v0, vdupq_n_s32(ZP));
    }
    vstrbq_s32(o, vminq_s32(vmaxq_s32(v0, lo), hi));
    if (NP > 1) {
        v1 = vshrq_n_s32(vaddq_s32(vmulhq_s32(v1, m), c1), E > 0 ? E : 1);
        if (!FOLD) {
            v1 = vaddq_s32(v1, vdupq_n_s32(ZP));
        }
        vstrbq_s32(o + OC, vminq_s32(vmaxq_s32(v1, lo), hi));
    }
}

/* One channel, scalar: acc2 = (acc + bias') << s, then td_arm_rq. */
TD_ARM_AI int32_t td_mve_rq1(int32_t acc, const int32_t *r, const int M, const int m,
                             TD_ARM_RQ_ARGS)
{
    int32_t k[4];
    const int32_t acc2 = (int32_t)((uint32_t)(acc + r[m]) << r[M + m]);
    k[0] = r[2 * M + m];
    k[1] = r[3 * M + m];
    k[2] = r[4 * M + m];
    k[3] = r[5 * M + m];
    (void)RS;
    return TD_ARM_RQ(acc2, k);
}

TD_ARM_AI void td_mve_block(const int8_t *x0p, const int8_t *x1p, const int8_t **wpp,
                            int8_t *o, int8_t *y0, const td_arm_epi *ep, const int M,
                            const int N, const int OC, const int KC, TD_ARM_RQ_ARGS,
                            TD_ARM_EPI_ARGS)
{
    const int32_t *r = (const int32_t *)(const void *)*wpp;
    register int32_t a00 __asm__("r0"), a01 __asm__("r2"), a10 __asm__("r4");
    register int32_t a11 __asm__("r6"), a20 __asm__("r8"), a21 __asm__("r10");
    register int32_t a30 __asm__("r12"), a31 __asm__("lr");
    register const int8_t *p0 __asm__("r1") = x0p;
    register const int8_t *p1 __asm__("r5") = x1p;
    register const int8_t *pw __asm__("r3") = *wpp + 24 * M;
    int8x16_t x0, x1, w;
    int k;
    a00 = a01 = a10 = a11 = a20 = a21 = a30 = a31 = 0;
    TD_MV_STEP_(M, N, 1);
#pragma GCC unroll 64
    for (k = 1; k < KC; ++k) {
        TD_MV_STEP_(M, N, 0);
    }
    *wpp = pw;
    {
        const int32_t b00 = a00, b01 = a01, b10 = a10, b11 = a11;
        const int32_t b20 = a20, b21 = a21, b30 = a30, b31 = a31;
        if (M == 4 && E >= 0 && !ADD) {
            const int32x4_t v0 = td_mve_vec4(b00, b10, b20, b30);
            const int32x4_t v1 = N == 2 ? td_mve_vec4(b01, b11, b21, b31) : v0;
            td_mve_rq4x(o, OC, N, v0, v1, r, TD_ARM_RQ_PASS);
        } else {
#define TD_MV_PUT_(m, n, acc) TD_ARM_PUT((n) * OC + (m), td_mve_rq1((acc), r, M, (m), TD_ARM_RQ_PASS))
            TD_MV_PUT_(0, 0, b00);
            if (N == 2) {
                TD_MV_PUT_(0, 1, b01);
            }
            if (M > 1) {
                TD_MV_PUT_(1, 0, b10);
                if (N == 2) {
                    TD_MV_PUT_(1, 1, b11);
                }
            }
            if (M > 2) {
                TD_MV_PUT_(2, 0, b20);
                TD_MV_PUT_(3, 0, b30);
                if (N == 2) {
                    TD_MV_PUT_(2, 1, b21);
                    TD_MV_PUT_(3, 1, b31);
                }
            }
#undef TD_MV_PUT_
        }
    }
}

/* Copy the windows of output pixels p and p + 1 (n = 1 or 2) into two rows
 * of KC * 16 int8 (zero point outside the image, zeros in the tail). */
void td_mve_im2col(const int8_t *in, int8_t *blk, int p, int n, int ih, int iw, int c,
                   int ow, int kh, int kw, int sh, int sw, int pt, int pl, int kc, int zp);

TD_ARM_AI void td_mve_pixels(const int8_t *x0p, const int8_t *x1p, const int8_t *w, int8_t *o,
                             int8_t *y0, const td_arm_epi *ep, const int N, const int OC,
                             const int KC, TD_ARM_RQ_ARGS, TD_ARM_EPI_ARGS)
{
    const int8_t *wp = w;
    int c;
    for (c = 0; c + 4 <= OC; c += 4) {
        td_mve_block(x0p, x1p, &wp, o + c, y0, ep, 4, N, OC, KC, TD_ARM_RQ_PASS, TD_ARM_EPI_PASS);
    }
    if (OC & 2) {
        td_mve_block(x0p, x1p, &wp, o + c, y0, ep, 2, N, OC, KC, TD_ARM_RQ_PASS, TD_ARM_EPI_PASS);
        c += 2;
    }
    if (OC & 1) {
        td_mve_block(x0p, x1p, &wp, o + c, y0, ep, 1, N, OC, KC, TD_ARM_RQ_PASS, TD_ARM_EPI_PASS);
    }
}

/* SEG (compile-time) bytes from src to dst, any alignment: 16-byte vectors,
 * then 8/4/2/1-byte scalar moves. */
TD_ARM_AI void td_mve_copy(int8_t *dst, const int8_t *src, const int SEG)
{
    int i;
#pragma GCC unroll 16
    for (i = 0; i + 16 <= SEG; i += 16) {
        vstrbq_s8(dst + i, vldrbq_s8(src + i));
    }
    if (SEG % 16 >= 8) {
        ((td_u32u *)(void *)(dst + i))[0] = ((const td_u32u *)(const void *)(src + i))[0];
        ((td_u32u *)(void *)(dst + i))[1] = ((const td_u32u *)(const void *)(src + i))[1];
        i += 8;
    }
    if (SEG % 8 >= 4) {
        *(td_u32u *)(void *)(dst + i) = *(const td_u32u *)(const void *)(src + i);
        i += 4;
    }
    if (SEG % 4 >= 2) {
        *(uint16_t *)(void *)(dst + i) = *(const uint16_t *)(const void *)(src + i);
        i += 2;
    }
    if (SEG % 2) {
        dst[i] = src[i];
    }
}

TD_ARM_AI void td_mve_set(int8_t *dst, const int ZP, const int SEG)
{
    const uint32_t zz = ((uint32_t)ZP & 0xffu) * 0x01010101u;
    int i;
#pragma GCC unroll 16
    for (i = 0; i + 16 <= SEG; i += 16) {
        vstrbq_s8(dst + i, vdupq_n_s8((int8_t)ZP));
    }
    for (; i + 4 <= SEG; i += 4) {
        *(td_u32u *)(void *)(dst + i) = zz;
    }
    for (; i < SEG; ++i) {
        dst[i] = (int8_t)ZP;
    }
}

/* The windows of n (1 or 2) output pixels from p into rows of KC * 16 int8
 * (the zero tails were written once by the caller). */
TD_ARM_AI void td_mve_im2col_t(const int8_t *in, int8_t *blk, int p, const int N, const int KC,
                               TD_ARM_WIN_ARGS)
{
    const int PW1 = KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 && PL == 0;
    const int NOPAD_X = PL == 0 && (OW - 1) * SW + KW <= IW;
    const int NOPAD_Y = PT == 0 && (OH - 1) * SH + KH <= IH;
    const int SEG = KW * C;
    int n, r;
    if (PW1) {
#pragma GCC unroll 2
        for (n = 0; n < N; ++n) {
            td_mve_copy(blk + n * KC * 16, in + (p + n) * C, C);
        }
        return;
    }
    {
        int oy = p / OW, ox = p - (p / OW) * OW;
#pragma GCC unroll 2
        for (n = 0; n < N; ++n) {
            const int iy0 = oy * SH - PT, ix0 = ox * SW - PL;
            const int full_x = NOPAD_X || (ix0 >= 0 && ix0 + KW <= IW);
            int8_t *d = blk + n * KC * 16;
#pragma GCC unroll 11
            for (r = 0; r < KH; ++r) {
                const int iy = iy0 + r;
                const int8_t *src = in + (iy * IW + ix0) * C;
                if (!NOPAD_Y && (iy < 0 || iy >= IH)) {
                    td_mve_set(d + r * SEG, IZP, SEG);
                } else if (full_x) {
                    td_mve_copy(d + r * SEG, src, SEG);
                } else {
                    int kx;
#pragma GCC unroll 11
                    for (kx = 0; kx < KW; ++kx) {
                        const int ix = ix0 + kx;
                        if (ix >= 0 && ix < IW) {
                            td_mve_copy(d + r * SEG + kx * C, src + kx * C, C);
                        } else {
                            td_mve_set(d + r * SEG + kx * C, IZP, C);
                        }
                    }
                }
            }
            if (++ox == OW) {
                ox = 0;
                ++oy;
            }
        }
    }
}

/* The layer: P output pixels two at a time (DIR < 0: decreasing). */
TD_ARM_AI void td_mve_conv(const int8_t *in, int8_t *blk, const int8_t *w, int8_t *out,
                           const td_arm_epi *ep, const int P, const int OC, const int KC,
                           const int DIR, TD_ARM_WIN_ARGS, TD_ARM_RQ_ARGS, TD_ARM_EPI_ARGS)
{
    const int KLEN = KH * KW * C;
    int i;
    td_mve_set(blk + KLEN, 0, KC * 16 - KLEN);
    td_mve_set(blk + KC * 16 + KLEN, 0, KC * 16 - KLEN);
    for (i = 0; i + 2 <= P; i += 2) {
        const int p = DIR >= 0 ? i : P - i - 2;
        td_mve_im2col_t(in, blk, p, 2, KC, TD_ARM_WIN_PASS);
        td_mve_pixels(blk, blk + KC * 16, w, out + p * OC, out, ep, 2, OC, KC,
                      TD_ARM_RQ_PASS, TD_ARM_EPI_PASS);
    }
    if (P & 1) {
        const int p = DIR >= 0 ? P - 1 : 0;
        td_mve_im2col_t(in, blk, p, 1, KC, TD_ARM_WIN_PASS);
        td_mve_pixels(blk, blk, w, out + p * OC, out, ep, 1, OC, KC, TD_ARM_RQ_PASS,
                      TD_ARM_EPI_PASS);
    }
}
/* Fully connected reading its int8 input rows directly (K % 16 == 0, no
 * scratch): two rows at a time. */
TD_ARM_AI void td_mve_fc(const int8_t *in, const int8_t *w, int8_t *out, const int ROWS,
                         const int K, const int OC, TD_ARM_RQ_ARGS)
{
    int r;
    for (r = 0; r + 2 <= ROWS; r += 2) {
        td_mve_pixels(in + r * K, in + (r + 1) * K, w, out + r * OC, out, NULL, 2, OC, K / 16,
                      TD_ARM_RQ_PASS, TD_ARM_EPI_PASS_NONE);
    }
    if (ROWS & 1) {
        td_mve_pixels(in + r * K, in + r * K, w, out + r * OC, out, NULL, 1, OC, K / 16,
                      TD_ARM_RQ_PASS, TD_ARM_EPI_PASS_NONE);
    }
}

/* ---------------------------------------------------------------------- */
/* Helium (MVE): depthwise 3x3                                             */
/* ---------------------------------------------------------------------- */
/* A ring of three input rows, channel-major int8 with the zero point
 * around the image: ring[c][slot][PU].  The row fill is a transposition:
 * eight channels of a pixel per VLDRB.S16 + scatter VSTRB.16.  An output
 * (u, c) is then one gather (the nine taps: lane 3 r + kx at offset
 * slot(r) * PU + kx, from one of three precomputed offset vectors for the
 * ring phase; lanes 9..15 have zero weights) and one VMLADAVA.S8 onto the
 * bias, then the scalar requantization (td_arm_rq, uniform mode).
 *
 * The stream: per channel 16 int8 weights (taps 3 ky + kx), then per
 * channel bias', s, m, C, mask (int32), then the 3 x 16 phase offsets. */
TD_ARM_AI void td_mve_dw_fill(const int8_t *in, int8_t *ring, int slot, int iy, const int IH,
                              const int IW, const int C, const int NC, const int PU,
                              const int PL, const int IZP)
{
    int c, x;
    if (iy < 0 || iy >= IH) {
        for (c = 0; c < NC; ++c) {
            td_mve_set(ring + (c * 3 + slot) * PU, IZP, PU);
        }
        return;
    }
    {
        /* scatter offsets: channel c0 + i lands at i * 3 * PU */
        const uint16x8_t off = vmulq_n_u16(vidupq_n_u16(0, 1), (uint16_t)(3 * PU));
        const int8_t *src = in + iy * IW * C;
        int8_t *dst = ring + slot * PU + PL;
        for (x = 0; x < IW; ++x) {
#pragma GCC unroll 8
            for (c = 0; c < NC; c += 8) {
                if (NC - c >= 8) {
                    vstrbq_scatter_offset_s16(dst + c * 3 * PU + x, off,
                                              vldrbq_s16(src + x * C + c));
                } else {
                    const mve_pred16_t pr = vctp16q((uint32_t)(NC - c));
                    vstrbq_scatter_offset_p_s16(dst + c * 3 * PU + x, off,
                                                vldrbq_z_s16(src + x * C + c, pr), pr);
                }
            }
        }
    }
}

/* Channels c0 .. c0 + NC - 1 of the layer (see td_mve_dw3x3); w: their
 * weight vectors, kr their constants, offs the gather offsets. */
TD_ARM_AI void td_mve_dw3x3_group(const int8_t *in, int8_t *ring, const int8_t *blob,
                                  const int32_t *kr, const uint8_t *offs, int8_t *out,
                                  const int IH, const int IW, const int C, const int NC,
                                  const int OH, const int OW, const int SV, const int SU,
                                  const int PT, const int PL, const int PU, const int IZP,
                                  const int DIR, TD_ARM_RQ_ARGS)
{
    /* rows loaded in order into rotating slots, as in td_arm_dw3x3_group */
    int nx = DIR >= 0 ? -PT : (OH - 1) * SV - PT + 2;
    int ns = 0, n, c, u;
    (void)RS;
    for (n = 0; n < OH; ++n) {
        const int oy = DIR >= 0 ? n : OH - 1 - n;
        const int iy0 = oy * SV - PT;
        int ph;
        uint8x16_t off;
        if (DIR >= 0) {
            nx = nx < iy0 ? iy0 : nx;
            for (; nx <= iy0 + 2; ++nx, ns = ns == 2 ? 0 : ns + 1) {
                td_mve_dw_fill(in, ring, ns, nx, IH, IW, C, NC, PU, PL, IZP);
            }
            ph = ns;
        } else {
            nx = nx > iy0 + 2 ? iy0 + 2 : nx;
            for (; nx >= iy0; --nx, ns = ns == 0 ? 2 : ns - 1) {
                td_mve_dw_fill(in, ring, ns, nx, IH, IW, C, NC, PU, PL, IZP);
            }
            ph = ns == 2 ? 0 : ns + 1;
        }
        off = vldrbq_u8(offs + 16 * ph);
        if (FIX == 0 && FOLD && !CLAMP && E >= 1 && NC <= 255 && 3 * PU <= 4095 && OW <= 64) {
            /* the whole output row in one loop nest: per channel its weight
             * vector and constants, then per output a gather, VMLADAVA onto
             * the bias, SMMLA + SSAT */
            register int32_t acc __asm__("r0");
            const int8_t *cb = ring, *wp = blob;
            const int32_t *kp = kr;
            int8_t *co = out + oy * OW * C;
            int32_t ch = NC, t, bp, op, bb, sh, m, cc;
            int8x16_t x, w;
            (void)u;
            __asm__ volatile(
                "2:\n\t"
                "vldrb.8 %q[w], [%[wp]], #16\n\t"
                "ldrd %[bb], %[sh], [%[kp]]\n\t"
                "ldrd %[m], %[cc], [%[kp], #8]\n\t"
                "add %[kp], %[kp], #20\n\t"
                "mov %[bp], %[cb]\n\t"
                "mov %[op], %[co]\n\t"
                ".rept %c[ow]\n\t"
                "vldrb.u8 %q[x], [%[bp], %q[off]]\n\t"
                "mov %[acc], %[bb]\n\t"
                "vmladava.s8 %[acc], %q[x], %q[w]\n\t"
                "add %[bp], %[bp], %[su]\n\t"
                "lsl %[t], %[acc], %[sh]\n\t"
                "smmla %[t], %[t], %[m], %[cc]\n\t"
                "ssat %[t], #8, %[t], asr %[e]\n\t"
                "strb %[t], [%[op]], %[oc]\n\t"
                ".endr\n\t"
                "add %[cb], %[cb], %[cs]\n\t"
                "add %[co], %[co], #1\n\t"
                "subs %[ch], %[ch], #1\n\t"
                "bne 2b"
                : [acc] "=&r"(acc), [t] "=&r"(t), [bp] "=&r"(bp), [op] "=&r"(op),
                  [bb] "=&r"(bb), [sh] "=&r"(sh), [m] "=&r"(m),
                  [cc] "=&r"(cc), [cb] "+r"(cb), [co] "+r"(co), [ch] "+r"(ch),
                  [kp] "+r"(kp), [wp] "+r"(wp), [x] "=&w"(x), [w] "=&w"(w)
                : [off] "w"(off), [su] "i"(SU), [e] "i"(E), [oc] "i"(C), [ow] "i"(OW),
                  [cs] "i"(3 * PU)
                : "memory", "cc");
            continue;
        }
        for (c = 0; c < NC; ++c) {
            const int8x16_t w = vldrbq_s8(blob + 16 * c);
            const int32_t *q = kr + 5 * c;
            const int32_t b = q[0], sh = q[1];
            td_arm_rec rec;
            const int8_t *base = ring + c * 3 * PU;
            int8_t *o = out + oy * OW * C + c;
            rec.r[0] = q[2];
            rec.r[1] = q[3];
            rec.r[2] = 0;
            rec.r[3] = q[4];
            for (u = 0; u < OW; ++u) {
                const int32_t acc = vmladavaq_s8(b, vldrbq_gather_offset_s8(base, off), w);
                *o = (int8_t)TD_ARM_RQ((int32_t)((uint32_t)acc << sh), rec.r);
                base += SU;
                o += C;
            }
        }
    }
}

/* The layer (input IH x IW x C, depth multiplier 1): channels in groups of
 * CG, whose ring holds 3 x CG x PU int8 ([channel][slot][PU]); see
 * td_arm_dw3x3 for the order and in-place safety.  Blob: [C][16] weights,
 * [C][5] constants, [3][16] gather offsets. */
TD_ARM_AI void td_mve_dw3x3(const int8_t *in, int8_t *ring, const int8_t *blob, int8_t *out,
                            const int IH, const int IW, const int C, const int CG, const int OH,
                            const int OW, const int SV, const int SU, const int PT,
                            const int PL, const int PU, const int IZP, const int DIR,
                            TD_ARM_RQ_ARGS)
{
    const int32_t *kr = (const int32_t *)(const void *)(blob + C * 16);
    const uint8_t *offs = (const uint8_t *)(const void *)(kr + 5 * C);
    int c0;
    td_mve_set(ring, IZP, 3 * PU * CG);
    for (c0 = 0; c0 + CG <= C; c0 += CG) {
        td_mve_dw3x3_group(in + c0, ring, blob + 16 * c0, kr + 5 * c0, offs, out + c0, IH, IW, C,
                           CG, OH, OW, SV, SU, PT, PL, PU, IZP, DIR, TD_ARM_RQ_PASS);
    }
    if (C % CG) {
        td_mve_dw3x3_group(in + c0, ring, blob + 16 * c0, kr + 5 * c0, offs, out + c0, IH, IW, C,
                           C % CG, OH, OW, SV, SU, PT, PL, PU, IZP, DIR, TD_ARM_RQ_PASS);
    }
}
#endif /* __ARM_FEATURE_MVE */

#if defined(__ARM_FEATURE_DSP) && defined(__ARM_FP) && (__ARM_FP & 4)
/* ---------------------------------------------------------------------- */
/* float32 (FPU): convolution as a GEMM, depthwise 3x3                      */
/* ---------------------------------------------------------------------- */
/* Blocks of M (<= 4) output channels x N (<= 5) pixels: twenty VFMA
 * accumulators in the 32 single-precision registers, per K step N + M
 * loads.  The windows of N pixels are copied ([K][N], zero padding) into
 * scratch first.  Stream per block: bias[M], then K steps of [M] weights. */
TD_ARM_AI void td_f32_block(const float *x, const float **wpp, float *o, const int M,
                            const int N, const int K, const int OC, const float LO,
                            const float HI, const int XS)
{
    /* XS: 0 for an im2col block [K][N], else the input row stride (pixel n's
     * K values at x + n * XS: a pointwise convolution reads in place) */
    const float *w = *wpp;
    float acc[4][5];
    int m, n, k;
#pragma GCC unroll 4
    for (m = 0; m < M; ++m) {
#pragma GCC unroll 5
        for (n = 0; n < N; ++n) {
            acc[m][n] = w[m];
        }
    }
    w += M;
#pragma GCC unroll 4
    for (k = 0; k < K; ++k) {
        float xv[5], wv[4];
#pragma GCC unroll 5
        for (n = 0; n < N; ++n) {
            xv[n] = XS ? x[n * XS] : x[n];
        }
#pragma GCC unroll 4
        for (m = 0; m < M; ++m) {
            wv[m] = w[m];
        }
        x += XS ? 1 : N;
        w += M;
#pragma GCC unroll 4
        for (m = 0; m < M; ++m) {
#pragma GCC unroll 5
            for (n = 0; n < N; ++n) {
                acc[m][n] += wv[m] * xv[n];
            }
        }
    }
    *wpp = w;
#pragma GCC unroll 4
    for (m = 0; m < M; ++m) {
#pragma GCC unroll 5
        for (n = 0; n < N; ++n) {
            float v = acc[m][n];
            v = v < LO ? LO : v;
            o[n * OC + m] = v > HI ? HI : v;
        }
    }
}

TD_ARM_AI void td_f32_pixels(const float *x, const float *w, float *o, const int N,
                             const int K, const int OC, const float LO, const float HI,
                             const int XS)
{
    const float *wp = w;
    int c;
    for (c = 0; c + 4 <= OC; c += 4) {
        td_f32_block(x, &wp, o + c, 4, N, K, OC, LO, HI, XS);
    }
    if (OC % 4 == 3) {
        td_f32_block(x, &wp, o + c, 3, N, K, OC, LO, HI, XS);
    } else if (OC % 4 == 2) {
        td_f32_block(x, &wp, o + c, 2, N, K, OC, LO, HI, XS);
    } else if (OC % 4 == 1) {
        td_f32_block(x, &wp, o + c, 1, N, K, OC, LO, HI, XS);
    }
}

/* The windows of N output pixels from p, [K][N] with zeros outside. */
TD_ARM_AI void td_f32_im2col(const float *in, float *blk, int p, const int N, TD_ARM_WIN_ARGS)
{
    const int SEG = KW * C, K = KH * SEG;
    int n, r, j;
    int oy = p / OW, ox = p - (p / OW) * OW;
    (void)IZP;
    (void)K;
    (void)OH;
    for (n = 0; n < N; ++n) {
        const int iy0 = oy * SH - PT, ix0 = ox * SW - PL;
        const int full_x = ix0 >= 0 && ix0 + KW <= IW;
        for (r = 0; r < KH; ++r) {
            const int iy = iy0 + r;
            float *d = blk + r * SEG * N + n;
            if (iy < 0 || iy >= IH) {
                for (j = 0; j < SEG; ++j) {
                    d[j * N] = 0.0f;
                }
            } else if (full_x) {
                const float *src = in + (iy * IW + ix0) * C;
#pragma GCC unroll 8
                for (j = 0; j < SEG; ++j) {
                    d[j * N] = src[j];
                }
            } else {
                for (j = 0; j < SEG; ++j) {
                    const int ix = ix0 + j / C;
                    d[j * N] = ix >= 0 && ix < IW ? in[(iy * IW + ix) * C + j % C] : 0.0f;
                }
            }
        }
        if (++ox == OW) {
            ox = 0;
            ++oy;
        }
    }
}

TD_ARM_AI void td_f32_conv(const float *in, float *blk, const float *w, float *out, const int P,
                           const int OC, const float LO, const float HI, TD_ARM_WIN_ARGS)
{
    const int K = KH * KW * C;
    /* pointwise, stride 1, no padding: read the pixels in place */
    const int PW1 = KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 && PL == 0;
    int p;
#define TD_F32_STEP_(NN)                                                         \
    do {                                                                         \
        if (PW1) {                                                               \
            td_f32_pixels(in + p * C, w, out + p * OC, NN, K, OC, LO, HI, C);    \
        } else {                                                                 \
            td_f32_im2col(in, blk, p, NN, TD_ARM_WIN_PASS);                      \
            td_f32_pixels(blk, w, out + p * OC, NN, K, OC, LO, HI, 0);           \
        }                                                                        \
    } while (0)
    for (p = 0; p + 5 <= P; p += 5) {
        TD_F32_STEP_(5);
    }
    if (P % 5 == 4) {
        TD_F32_STEP_(4);
    } else if (P % 5 == 3) {
        TD_F32_STEP_(3);
    } else if (P % 5 == 2) {
        TD_F32_STEP_(2);
    } else if (P % 5 == 1) {
        TD_F32_STEP_(1);
    }
#undef TD_F32_STEP_
}

/* Depthwise 3x3: a ring of three channel-major rows ring[c][3][PU] (zeros
 * around the image); per channel the nine weights stay in registers and
 * the window slides along the row (three new loads per output at stride
 * 1).  Stream per channel: bias, w[3][3]. */
TD_ARM_AI void td_f32_dw_fill(const float *in, float *ring, int slot, int iy, const int IH,
                              const int IW, const int C, const int PU, const int PL)
{
    int c, x;
    if (iy < 0 || iy >= IH) {
        for (c = 0; c < C; ++c) {
            float *d = ring + (c * 3 + slot) * PU;
            for (x = 0; x < PU; ++x) {
                d[x] = 0.0f;
            }
        }
        return;
    }
    for (x = 0; x < IW; ++x) {
        const float *src = in + (iy * IW + x) * C;
        float *d = ring + slot * PU + PL + x;
#pragma GCC unroll 8
        for (c = 0; c < C; ++c) {
            d[c * 3 * PU] = src[c];
        }
    }
}

TD_ARM_AI void td_f32_dw3x3(const float *in, float *ring, const float *st, float *out,
                            const int IH, const int IW, const int C, const int OH,
                            const int OW, const int SV, const int SU, const int PT,
                            const int PL, const int PU, const int DIR, const float LO,
                            const float HI)
{
    int have[3] = {-1000, -1000, -1000};
    int n, k, c, u;
    for (k = 0; k < 3 * C * PU; ++k) {
        ring[k] = 0.0f;
    }
    for (n = 0; n < OH; ++n) {
        const int oy = DIR >= 0 ? n : OH - 1 - n;
        const int iy0 = oy * SV - PT;
        int sl[3];
        for (k = 0; k < 3; ++k) {
            const int iy = iy0 + (DIR >= 0 ? k : 2 - k);
            const int s = ((iy % 3) + 3) % 3;
            if (have[s] != iy) {
                td_f32_dw_fill(in, ring, s, iy, IH, IW, C, PU, PL);
                have[s] = iy;
            }
        }
        for (k = 0; k < 3; ++k) {
            sl[k] = (((iy0 + k) % 3) + 3) % 3;
        }
        for (c = 0; c < C; ++c) {
            const float *q = st + 10 * c;
            const float b = q[0], w0 = q[1], w1 = q[2], w2 = q[3], w3 = q[4], w4 = q[5];
            const float w5 = q[6], w6 = q[7], w7 = q[8], w8 = q[9];
            const float *r0 = ring + (c * 3 + sl[0]) * PU;
            const float *r1 = ring + (c * 3 + sl[1]) * PU;
            const float *r2 = ring + (c * 3 + sl[2]) * PU;
            float *o = out + oy * OW * C + c;
            if (SU == 1) {
                float a0 = r0[0], a1 = r0[1], b0 = r1[0], b1 = r1[1], c0 = r2[0], c1 = r2[1];
                for (u = 0; u < OW; ++u) {
                    const float a2 = r0[u + 2], b2 = r1[u + 2], c2 = r2[u + 2];
                    float v = b + w0 * a0 + w1 * a1 + w2 * a2 + w3 * b0 + w4 * b1 + w5 * b2 +
                              w6 * c0 + w7 * c1 + w8 * c2;
                    v = v < LO ? LO : v;
                    o[u * C] = v > HI ? HI : v;
                    a0 = a1;
                    a1 = a2;
                    b0 = b1;
                    b1 = b2;
                    c0 = c1;
                    c1 = c2;
                }
            } else {
                for (u = 0; u < OW; ++u) {
                    const float *x0 = r0 + u * SU, *x1 = r1 + u * SU, *x2 = r2 + u * SU;
                    float v = b + w0 * x0[0] + w1 * x0[1] + w2 * x0[2] + w3 * x1[0] + w4 * x1[1] +
                              w5 * x1[2] + w6 * x2[0] + w7 * x2[1] + w8 * x2[2];
                    v = v < LO ? LO : v;
                    o[u * C] = v > HI ? HI : v;
                }
            }
        }
    }
}
/* Depthwise 3x3, stride 1 along x, without scratch: reads the NHWC input
 * directly (nine weights in registers, the window slides along the row);
 * a kernel row outside the image gets zero weights (and reads a valid row),
 * a column outside the image reads as zero. */
TD_ARM_AI void td_f32_dw3x3_direct(const float *in, const float *st, float *out, const int IH,
                                   const int IW, const int C, const int OH, const int OW,
                                   const int SV, const int PT, const int PL, const float LO,
                                   const float HI)
{
    /* outputs u < UIN read columns u - PL .. u - PL + 2 all inside the image */
    const int UIN = IW - 2 + PL < OW ? IW - 2 + PL : OW;
    int oy, c, u, r;
    for (oy = 0; oy < OH; ++oy) {
        const int iy0 = oy * SV - PT;
        const float *rows[3];
        float on[3];
        for (r = 0; r < 3; ++r) {
            const int iy = iy0 + r;
            const int ok = iy >= 0 && iy < IH;
            rows[r] = in + (ok ? iy : (iy0 + 1 >= 0 && iy0 + 1 < IH ? iy0 + 1 : 0)) * IW * C;
            on[r] = ok ? 1.0f : 0.0f;
        }
        for (c = 0; c < C; ++c) {
            const float *q = st + 10 * c;
            const float b = q[0];
            const float w0 = q[1] * on[0], w1 = q[2] * on[0], w2 = q[3] * on[0];
            const float w3 = q[4] * on[1], w4 = q[5] * on[1], w5 = q[6] * on[1];
            const float w6 = q[7] * on[2], w7 = q[8] * on[2], w8 = q[9] * on[2];
            const float *r0 = rows[0] + c, *r1 = rows[1] + c, *r2 = rows[2] + c;
            float *o = out + oy * OW * C + c;
            float a0 = PL ? 0.0f : r0[0], a1 = PL ? r0[0] : r0[C];
            float b0 = PL ? 0.0f : r1[0], b1 = PL ? r1[0] : r1[C];
            float c0 = PL ? 0.0f : r2[0], c1 = PL ? r2[0] : r2[C];
            r0 += (2 - PL) * C;
            r1 += (2 - PL) * C;
            r2 += (2 - PL) * C;
            for (u = 0; u < OW; ++u) {
                float a2 = 0.0f, b2 = 0.0f, c2 = 0.0f, v;
                if (u < UIN) {
                    a2 = *r0;
                    b2 = *r1;
                    c2 = *r2;
                    r0 += C;
                    r1 += C;
                    r2 += C;
                }
                v = b + w0 * a0 + w1 * a1 + w2 * a2 + w3 * b0 + w4 * b1 + w5 * b2 + w6 * c0 +
                    w7 * c1 + w8 * c2;
                v = v < LO ? LO : v;
                o[u * C] = v > HI ? HI : v;
                a0 = a1;
                a1 = a2;
                b0 = b1;
                b1 = b2;
                c0 = c1;
                c1 = c2;
            }
        }
    }
}
#endif /* __ARM_FP */

#ifdef __cplusplus
}
#endif
#endif
