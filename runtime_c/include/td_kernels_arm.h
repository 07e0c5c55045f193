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
 * block is at byte offset n * PX from xp; xp post-increments along K. */

#define TD_SM_(a, x, w) "smlad %[" a "], %[" x "], %[" w "], %[" a "]\n\t"
#define TD_SM4_(a0, a1) TD_SM_(a0, "x0", "w0") TD_SM_(a0, "x1", "w1") \
    TD_SM_(a1, "x0", "w2") TD_SM_(a1, "x1", "w3")
#define TD_SM2_(a0, a1) TD_SM_(a0, "x0", "w0") TD_SM_(a1, "x0", "w2")

#define TD_W2_4_ "ldrd %[w0], %[w1], [%[wp]], #16\n\tldrd %[w2], %[w3], [%[wp], #-8]\n\t"
#define TD_W2_2_ "ldr %[w0], [%[wp]], #8\n\tldr %[w2], [%[wp], #-4]\n\t"
#define TD_W1_4_ "ldrd %[w0], %[w1], [%[wp]], #8\n\t"
#define TD_W1_2_ "ldr %[w0], [%[wp]], #4\n\t"
#define TD_X4_(off) "ldrd %[x0], %[x1], [%[xp], %[" off "]]\n\t"
#define TD_X4P_ "ldrd %[x0], %[x1], [%[xp]], #8\n\t"
#define TD_X2_(off) "ldr %[x0], [%[xp], %[" off "]]\n\t"
#define TD_X2P_ "ldr %[x0], [%[xp]], #4\n\t"

#define TD_TMP4_ [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3), \
    [x0] "=&r"(x0), [x1] "=&r"(x1)
#define TD_TMP2_ [w0] "=&r"(w0), [w2] "=&r"(w2), [x0] "=&r"(x0)
#define TD_TMP14_ [w0] "=&r"(w0), [w1] "=&r"(w1), [x0] "=&r"(x0), [x1] "=&r"(x1)
#define TD_TMP12_ [w0] "=&r"(w0), [x0] "=&r"(x0)
#define TD_PXI_ [p1] "i"(PX), [p2] "i"(2 * PX)

/* Accumulator block: a<m><n>. */
typedef struct {
    int32_t a00, a01, a02, a10, a11, a12;
} td_arm_acc6;

TD_ARM_AI void td_arm_k4(td_arm_acc6 *a, const int16_t **xpp, const int16_t **wpp,
                         const int M, const int N, const int PX)
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
                         const int M, const int N, const int PX)
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
/* Convolution / fully connected as a GEMM over direct windows             */
/* ---------------------------------------------------------------------- */
/* The input has been expanded to int16 with its zero-point border
 * (td_arm_pad_s16), so every window is inside the buffer: a window is KH
 * rows of L = k_w * C' contiguous int16 (L4 4-steps, LH 2-steps) starting
 * PX bytes apart for neighbouring output pixels, SKIP bytes from the end of
 * one window row to the start of the next.  UNROLL: the K loop is fully
 * unrolled, else the rows are a loop.
 *
 * The constant stream has, for each block of M (2, the last one 1) output
 * channels: M int32 biases, the int16 weights in K-step order, then M
 * requantization records of RS int32. */
TD_ARM_AI void td_arm_gemm_block(const int16_t *x, const int16_t **wpp, int8_t *o,
                                 const int M, const int N, const int OC, const int KH,
                                 const int L4, const int LH, const int PX, const int SKIP,
                                 const int UNROLL, TD_ARM_RQ_ARGS)
{
    td_arm_acc6 a;
    const int16_t *xp = x;
    const int16_t *wp = *wpp;
    const int32_t *r;
    int rr, i;
    td_arm_bias(&a, &wp, M, N);
    if (UNROLL) {
#pragma GCC unroll 128
        for (rr = 0; rr < KH; ++rr) {
#pragma GCC unroll 128
            for (i = 0; i < L4; ++i) {
                td_arm_k4(&a, &xp, &wp, M, N, PX);
            }
            if (LH) {
                td_arm_k2(&a, &xp, &wp, M, N, PX);
            }
            xp = (const int16_t *)(const void *)((const char *)xp + SKIP);
        }
    } else {
        for (rr = 0; rr < KH; ++rr) {
#pragma GCC unroll 128
            for (i = 0; i < L4; ++i) {
                td_arm_k4(&a, &xp, &wp, M, N, PX);
            }
            if (LH) {
                td_arm_k2(&a, &xp, &wp, M, N, PX);
            }
            xp = (const int16_t *)(const void *)((const char *)xp + SKIP);
        }
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
        o[0] = (int8_t)v00;
        if (N > 1) {
            o[OC] = (int8_t)v01;
        }
        if (N > 2) {
            o[2 * OC] = (int8_t)v02;
        }
        if (M > 1) {
            o[1] = (int8_t)v10;
            if (N > 1) {
                o[OC + 1] = (int8_t)v11;
            }
            if (N > 2) {
                o[2 * OC + 1] = (int8_t)v12;
            }
        }
    }
}

/* N output pixels (PX bytes apart in the int16 input) times every output
 * channel, two at a time. */
TD_ARM_AI void td_arm_gemm_pixels(const int16_t *x, const int16_t *w, int8_t *o,
                                  const int N, const int OC, const int KH, const int L4,
                                  const int LH, const int PX, const int SKIP,
                                  const int UNROLL, TD_ARM_RQ_ARGS)
{
    const int16_t *wp = w;
    int8_t *oc = o;
    int8_t *const oend = o + (OC & ~1);
    while (oc != oend) {
        td_arm_gemm_block(x, &wp, oc, 2, N, OC, KH, L4, LH, PX, SKIP, UNROLL,
                          TD_ARM_RQ_PASS);
        oc += 2;
    }
    if (OC & 1) {
        td_arm_gemm_block(x, &wp, oc, 1, N, OC, KH, L4, LH, PX, SKIP, UNROLL,
                          TD_ARM_RQ_PASS);
    }
}

/* A whole convolution: OH rows of OW output pixels; output row oy starts at
 * ROWB bytes * oy in the int16 input.  Pixels go NMAX (<= 3) at a time. */
TD_ARM_AI void td_arm_conv_gemm(const int16_t *xs, const int16_t *w, int8_t *out, const int OH, const int OW, const int OC,
                                const int KH, const int L4, const int LH, const int PX,
                                const int ROWB, const int SKIP, const int UNROLL,
                                const int NMAX, TD_ARM_RQ_ARGS)
{
    int oy, ox;
    for (oy = 0; oy < OH; ++oy) {
        const char *xr = (const char *)(const void *)xs + oy * ROWB;
        int8_t *orow = out + oy * OW * OC;
        for (ox = 0; ox + NMAX <= OW; ox += NMAX) {
            td_arm_gemm_pixels((const int16_t *)(const void *)(xr + ox * PX), w,
                               orow + ox * OC, NMAX, OC, KH, L4, LH, PX, SKIP, UNROLL,
                               TD_ARM_RQ_PASS);
        }
        if (OW % NMAX == 2) {
            td_arm_gemm_pixels((const int16_t *)(const void *)(xr + ox * PX), w,
                               orow + ox * OC, 2, OC, KH, L4, LH, PX, SKIP, UNROLL,
                               TD_ARM_RQ_PASS);
        } else if (OW % NMAX == 1) {
            td_arm_gemm_pixels((const int16_t *)(const void *)(xr + ox * PX), w,
                               orow + ox * OC, 1, OC, KH, L4, LH, PX, SKIP, UNROLL,
                               TD_ARM_RQ_PASS);
        }
    }
}

/* Expand int8 NHWC [ih][iw][c] into int16 [ph][pw][cp] with the zero point
 * in the border (pt rows on top, pl columns on the left, the rest at the
 * bottom/right) and in channels c..cp-1.  perm: store every group of four
 * channels as (x0, x2, x1, x3), the order SXTB16 produces (needs c == cp,
 * c % 4 == 0); the weights are permuted the same way. */
void td_arm_pad_s16(const int8_t *in, int16_t *xs, int ih, int iw, int c, int cp,
                    int pt, int pl, int ph, int pw, int zp, int perm);

#endif /* __ARM_FEATURE_DSP */

#ifdef __cplusplus
}
#endif
#endif
