/* tinydeploy runtime: Arm DSP-extension convolution as a GEMM over im2col
 * blocks, and fully connected (int8, SMLAD).
 * td-requires: arm/dsp_gemm.c (td_arm_win_row)
 *
 * The inner loops are short inline-assembly blocks (LDRD + SMLAD): the only
 * way to make GCC keep six accumulators, four weight words and two
 * activation words in the fourteen allocatable registers without spilling.
 * Everything around them is C with the ACLE intrinsics of <arm_acle.h>.
 */
#ifndef TD_ARM_GEMM_H
#define TD_ARM_GEMM_H

#include "td_arm_requant.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__ARM_FEATURE_DSP)

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
/* int8 weights ("W8", --optimize size/balanced): one word per channel and
 * 4-step in natural byte order; SXTB16 and SXTB16 ROR 8 give the halfword
 * pairs (w0, w2) and (w1, w3) that meet the block's (x0, x2) and (x1, x3). */
#define TD_B2_4_ "ldrd %[w0], %[w2], [%[wp]], #8\n\tsxtb16 %[w1], %[w0], ror #8\n\t" \
    "sxtb16 %[w0], %[w0]\n\tsxtb16 %[w3], %[w2], ror #8\n\tsxtb16 %[w2], %[w2]\n\t"
#define TD_B1_4_ "ldr %[w0], [%[wp]], #4\n\tsxtb16 %[w1], %[w0], ror #8\n\tsxtb16 %[w0], %[w0]\n\t"
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

#if !TD_ARM_GCC
/* clang (see td_arm_common.h): one K step in C.  W words (int16 pairs) per
 * channel and pixel; weights [m][W] from wp, pixel n's W words at byte
 * offset n * PX from xp; the same SMLADs as the assembly. */
TD_ARM_AI int32_t td_arm_dot_w(int32_t acc, const uint8_t *x, const td_u32a *w, const int W)
{
    const td_u32a *xw = (const td_u32a *)(const void *)x;
    acc = __smlad((int16x2_t)xw[0], (int16x2_t)w[0], acc);
    if (W == 2) {
        acc = __smlad((int16x2_t)xw[1], (int16x2_t)w[1], acc);
    }
    return acc;
}

TD_ARM_AI void td_arm_kstep_c(td_arm_acc6 *a, const int16_t **xpp, const int16_t **wpp,
                              const int M, const int N, const int PX, const int XS, const int W)
{
    const uint8_t *xb = (const uint8_t *)(const void *)*xpp;
    const td_u32a *w = (const td_u32a *)(const void *)*wpp;
    a->a00 = td_arm_dot_w(a->a00, xb, w, W);
    if (N > 1) {
        a->a01 = td_arm_dot_w(a->a01, xb + PX, w, W);
    }
    if (N > 2) {
        a->a02 = td_arm_dot_w(a->a02, xb + 2 * PX, w, W);
    }
    if (M == 2) {
        a->a10 = td_arm_dot_w(a->a10, xb, w + W, W);
        if (N > 1) {
            a->a11 = td_arm_dot_w(a->a11, xb + PX, w + W, W);
        }
        if (N > 2) {
            a->a12 = td_arm_dot_w(a->a12, xb + 2 * PX, w + W, W);
        }
    }
    *xpp = (const int16_t *)(const void *)(xb + XS);
    *wpp += 2 * W * M;
}

/* The same 4-step on int8 weights (one word per channel, see TD_B2_4_). */
TD_ARM_AI void td_arm_kstep_c8(td_arm_acc6 *a, const int16_t **xpp, const int16_t **wpp,
                               const int M, const int N, const int PX, const int XS)
{
    const td_u32a *wb = (const td_u32a *)(const void *)*wpp;
    td_u32a w[4];
    w[0] = (uint32_t)__sxtb16((int8x4_t)wb[0]);
    w[1] = td_arm_sxtb16_ror8(wb[0]);
    if (M == 2) {
        w[2] = (uint32_t)__sxtb16((int8x4_t)wb[1]);
        w[3] = td_arm_sxtb16_ror8(wb[1]);
    }
    {
        const int16_t *wide = (const int16_t *)(const void *)w;
        td_arm_kstep_c(a, xpp, &wide, M, N, PX, XS, 2);
    }
    *wpp += 2 * M;
}
#endif

/* One 4-step of the block: WL2 / WL1 load (and widen) the weights of two /
 * one channels. */
#define TD_ARM_K4_ASM(WL2, WL1)                                                           \
    if (M == 2 && N == 3) {                                                               \
        __asm__ volatile(WL2 TD_X4_("p1") TD_SM4_("a01", "a11") TD_X4_("p2")              \
                         TD_SM4_("a02", "a12") TD_X4P_ TD_SM4_("a00", "a10")              \
                         : [a00] "+r"(a->a00), [a01] "+r"(a->a01), [a02] "+r"(a->a02),    \
                           [a10] "+r"(a->a10), [a11] "+r"(a->a11), [a12] "+r"(a->a12),    \
                           [xp] "+r"(xp), [wp] "+r"(wp), TD_TMP4_                        \
                         : TD_PXI_ : "memory");                                           \
    } else if (M == 2 && N == 2) {                                                        \
        __asm__ volatile(WL2 TD_X4_("p1") TD_SM4_("a01", "a11") TD_X4P_                   \
                         TD_SM4_("a00", "a10")                                            \
                         : [a00] "+r"(a->a00), [a01] "+r"(a->a01), [a10] "+r"(a->a10),    \
                           [a11] "+r"(a->a11), [xp] "+r"(xp), [wp] "+r"(wp), TD_TMP4_     \
                         : TD_PXI_ : "memory");                                           \
    } else if (M == 2 && N == 1) {                                                        \
        __asm__ volatile(WL2 TD_X4P_ TD_SM4_("a00", "a10")                                \
                         : [a00] "+r"(a->a00), [a10] "+r"(a->a10), [xp] "+r"(xp),         \
                           [wp] "+r"(wp), TD_TMP4_                                        \
                         : TD_PXI_ : "memory");                                           \
    } else if (M == 1 && N == 3) {                                                        \
        __asm__ volatile(WL1 TD_X4_("p1") TD_SM_("a01", "x0", "w0")                       \
                         TD_SM_("a01", "x1", "w1") TD_X4_("p2") TD_SM_("a02", "x0", "w0") \
                         TD_SM_("a02", "x1", "w1") TD_X4P_ TD_SM_("a00", "x0", "w0")      \
                         TD_SM_("a00", "x1", "w1")                                        \
                         : [a00] "+r"(a->a00), [a01] "+r"(a->a01), [a02] "+r"(a->a02),    \
                           [xp] "+r"(xp), [wp] "+r"(wp), TD_TMP14_                        \
                         : TD_PXI_ : "memory");                                           \
    } else if (M == 1 && N == 2) {                                                        \
        __asm__ volatile(WL1 TD_X4_("p1") TD_SM_("a01", "x0", "w0")                       \
                         TD_SM_("a01", "x1", "w1") TD_X4P_ TD_SM_("a00", "x0", "w0")      \
                         TD_SM_("a00", "x1", "w1")                                        \
                         : [a00] "+r"(a->a00), [a01] "+r"(a->a01), [xp] "+r"(xp),         \
                           [wp] "+r"(wp), TD_TMP14_                                       \
                         : TD_PXI_ : "memory");                                           \
    } else {                                                                              \
        __asm__ volatile(WL1 TD_X4P_ TD_SM_("a00", "x0", "w0")                            \
                         TD_SM_("a00", "x1", "w1")                                        \
                         : [a00] "+r"(a->a00), [xp] "+r"(xp), [wp] "+r"(wp), TD_TMP14_    \
                         : TD_PXI_ : "memory");                                           \
    }

/* W8: int8 weights (TD_B2_4_), else int16. */
TD_ARM_AI void td_arm_k4(td_arm_acc6 *a, const int16_t **xpp, const int16_t **wpp,
                         const int M, const int N, const int PX, const int XS, const int W8)
{
#if TD_ARM_GCC
    const int16_t *xp = *xpp, *wp = *wpp;
    uint32_t w0, w1, w2, w3, x0, x1;
    if (W8) {
        TD_ARM_K4_ASM(TD_B2_4_, TD_B1_4_)
    } else {
        TD_ARM_K4_ASM(TD_W2_4_, TD_W1_4_)
    }
    *xpp = xp;
    *wpp = wp;
#else
    if (W8) {
        td_arm_kstep_c8(a, xpp, wpp, M, N, PX, XS);
    } else {
        td_arm_kstep_c(a, xpp, wpp, M, N, PX, XS, 2);
    }
#endif
}
#undef TD_ARM_K4_ASM

/* The same for a 2-element K step (an odd number of int16 pairs). */
TD_ARM_AI void td_arm_k2(td_arm_acc6 *a, const int16_t **xpp, const int16_t **wpp,
                         const int M, const int N, const int PX, const int XS)
{
#if TD_ARM_GCC
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
#else
    td_arm_kstep_c(a, xpp, wpp, M, N, PX, XS, 1);
#endif
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
 * channels: M int32 biases, the weights in K-step order, then M
 * requantization records of RS int32 (see td_arm_rq).  ASH == 0: int16
 * weights and biases scaled by 2^scale_bits (speed); ASH > 0: int8 weights
 * and plain biases, the accumulator is shifted left by ASH before the
 * requantization, which gives the same acc2 (flash). */
/* The K loop of a run-time K4 (td_arm_gemm_block, UNROLL < 0): STEP four times a
 * round until wp reaches %[end]; TBB enters the first round at step 4 - %[entry]
 * (%[entry] in 0..3, 0: at the test). */
#define TD_RT_K_LOOP_(STEP)                                                                 \
    "ldr %[w0], %[entry]\n\ttbb [pc, %[w0]]\n9:\n\t"                                        \
    ".byte (5f - 9b) / 2, (4f - 9b) / 2, (3f - 9b) / 2, (2f - 9b) / 2\n"                     \
    "1:\n\t" STEP "2:\n\t" STEP "3:\n\t" STEP "4:\n\t" STEP                                 \
    "5:\n\tldr %[w0], %[end]\n\tcmp %[wp], %[w0]\n\tbne 1b\n\t"

/* TW (a tile, td_arm_gemm_tile): the K steps read the block's int8 weights widened
 * to int16 at ws (td_arm_widen_w: two words per stream word), the biases and records
 * from the stream; unrolled up to TD_ARM_TILE_UNROLL steps (the loop would cost about
 * 5% of a 128-deep block). */
#define TD_ARM_TILE_UNROLL 32
TD_ARM_AI void td_arm_gemm_block(const int16_t *x, const int16_t **wpp, const int16_t *ws,
                                 int8_t *o, int8_t *y0, const td_arm_epi *ep, const int M,
                                 const int N, const int OC, const int K4, const int KH2,
                                 const int UNROLL, const int ASH, const int TW, TD_ARM_RQ_ARGS,
                                 TD_ARM_EPI_ARGS)
{
    td_arm_acc6 a;
    const int16_t *xp = x;
    const int16_t *wp = *wpp;
    /* packed records: each channel's shift in its bias word, at the block's start */
    const int32_t *bw = (const int32_t *)(const void *)wp;
    /* TW: where the records follow the stream's int8 weights */
    const int16_t *const rec = wp + 2 * M + 2 * M * K4;
    const int32_t *r;
    int i;
#if TD_ARM_GCC
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
/* One 4-step: WL loads the two channels' weights, SM the first pixel pair's
 * SMLADs (TD_SM4F_ on the first step, from the biases), O the constraint of the
 * accumulators it starts there: "=&r" on the first step (written before they are
 * read: no zeroing beforehand), else "+r". */
#define TD_PIN_STEP_(WL, SM, O)                                                              \
        if (N == 3) {                                                                        \
            __asm__ volatile(WL TD_X4_("p1") SM("a01", "a11") TD_X4_("p2")                    \
                             SM("a02", "a12") TD_X4P_ TD_SM4_("a00", "a10")                  \
                             : [a00] "+r"(p00), [a01] O(p01), [a02] O(p02),                  \
                               [a10] "+r"(p10), [a11] O(p11), [a12] O(p12),                  \
                               [xp] "+r"(pxp), [wp] "+r"(pwp), TD_PIN_TMP_ TD_PIN_IN_);      \
        } else {                                                                             \
            __asm__ volatile(WL TD_X4_("p1") SM("a01", "a11") TD_X4P_                         \
                             TD_SM4_("a00", "a10")                                           \
                             : [a00] "+r"(p00), [a01] O(p01), [a10] "+r"(p10),               \
                               [a11] O(p11), [xp] "+r"(pxp), [wp] "+r"(pwp), TD_PIN_TMP_     \
                               TD_PIN_IN_);                                                  \
        }
        if (N < 3) {
            p02 = p12 = 0; /* unused */
        }
        __asm__ volatile("ldrd %[a00], %[a10], [%[wp]], #8"
                         : [a00] "=r"(p00), [a10] "=r"(p10), [wp] "+r"(pwp) : : "memory");
        if (E == TD_ARM_RQ_PACKED) { /* the bias above its record's shift */
            p00 >>= TD_ARM_PACK_BITS;
            p10 >>= TD_ARM_PACK_BITS;
        }
/* The K loop from the first step (TD_SM4F_: from the biases) on, WL loading the
 * weights: unrolled, or in rounds of 8 steps with the rest unrolled (less code). */
#define TD_PIN_UNROLLED_(WL)                                                                \
        TD_PIN_STEP_(WL, TD_SM4F_, "=&r")                                                   \
        _Pragma("GCC unroll 128") for (i = 1; i < K4; ++i) {                                \
            TD_PIN_STEP_(WL, TD_SM4_, "+r")                                                 \
        }
#define TD_PIN_ROUNDS8_(WL)                                                                 \
        TD_PIN_STEP_(WL, TD_SM4F_, "=&r")                                                   \
        for (i = 1; i + 8 <= K4; i += 8) {                                                  \
            int j;                                                                          \
            _Pragma("GCC unroll 8") for (j = 0; j < 8; ++j) {                               \
                TD_PIN_STEP_(WL, TD_SM4_, "+r")                                             \
            }                                                                               \
        }                                                                                   \
        _Pragma("GCC unroll 8") for (i = 0; i < (K4 - 1) % 8; ++i) {                        \
            TD_PIN_STEP_(WL, TD_SM4_, "+r")                                                 \
        }
        if (TW) {
            /* the weights widened once for the tile: the int16 steps */
            pwp = ws;
            if (K4 <= TD_ARM_TILE_UNROLL) {
                TD_PIN_UNROLLED_(TD_W2_4_)
            } else {
                TD_PIN_ROUNDS8_(TD_W2_4_)
            }
        } else if (ASH && UNROLL < 0) {
            /* K4 run-time data (a shared function): after the first step, the other
             * K4 - 1 in one loop of four steps a round, entered by a table branch at the
             * step that leaves whole rounds ((K4 - 1) % 4 steps before the first test).
             * Every register is taken: the entry and the end pointer are read from
             * memory operands into a weight register that is free between steps. */
            const int16_t *wend;
            uint32_t entry;
            TD_PIN_STEP_(TD_B2_4_, TD_SM4F_, "=&r")
            wend = pwp + 4 * (K4 - 1);
            entry = (uint32_t)(K4 - 1) & 3u;
            if (N == 3) {
                __asm__ volatile(TD_RT_K_LOOP_(TD_B2_4_ TD_X4_("p1") TD_SM4_("a01", "a11")
                                               TD_X4_("p2") TD_SM4_("a02", "a12") TD_X4P_
                                               TD_SM4_("a00", "a10"))
                                 : [a00] "+r"(p00), [a01] "+r"(p01), [a02] "+r"(p02),
                                   [a10] "+r"(p10), [a11] "+r"(p11), [a12] "+r"(p12),
                                   [xp] "+r"(pxp), [wp] "+r"(pwp), TD_PIN_TMP_
                                 : [p1] "i"(8), [p2] "i"(16), [xs] "i"(8 * N),
                                   [entry] "m"(entry), [end] "m"(wend) : "cc", "memory");
            } else {
                __asm__ volatile(TD_RT_K_LOOP_(TD_B2_4_ TD_X4_("p1") TD_SM4_("a01", "a11")
                                               TD_X4P_ TD_SM4_("a00", "a10"))
                                 : [a00] "+r"(p00), [a01] "+r"(p01), [a10] "+r"(p10),
                                   [a11] "+r"(p11), [xp] "+r"(pxp), [wp] "+r"(pwp),
                                   TD_PIN_TMP_
                                 : [p1] "i"(8), [p2] "i"(16), [xs] "i"(8 * N),
                                   [entry] "m"(entry), [end] "m"(wend) : "cc", "memory");
            }
        } else if (ASH && !UNROLL) {
            TD_PIN_ROUNDS8_(TD_B2_4_)
        } else if (ASH) {
            TD_PIN_UNROLLED_(TD_B2_4_)
        } else {
            TD_PIN_UNROLLED_(TD_W2_4_)
        }
#undef TD_PIN_UNROLLED_
#undef TD_PIN_ROUNDS8_
#undef TD_PIN_STEP_
#undef TD_PIN_TMP_
#undef TD_PIN_IN_
        a.a00 = p00;
        a.a01 = p01;
        a.a02 = p02;
        a.a10 = p10;
        a.a11 = p11;
        a.a12 = p12;
        xp = pxp;
        wp = TW ? rec : pwp;
    } else
#endif
    {
    td_arm_bias(&a, &wp, M, N);
    if (TW) {
        wp = ws;
    }
    if (E == TD_ARM_RQ_PACKED) { /* the bias above its record's shift */
        a.a00 >>= TD_ARM_PACK_BITS;
        a.a01 = N > 1 ? a.a01 >> TD_ARM_PACK_BITS : 0;
        a.a02 = N > 2 ? a.a02 >> TD_ARM_PACK_BITS : 0;
        a.a10 = M > 1 ? a.a10 >> TD_ARM_PACK_BITS : 0;
        a.a11 = M > 1 && N > 1 ? a.a11 >> TD_ARM_PACK_BITS : 0;
        a.a12 = M > 1 && N > 2 ? a.a12 >> TD_ARM_PACK_BITS : 0;
    }
    if (UNROLL > 0) {
#pragma GCC unroll 128
        for (i = 0; i < K4; ++i) {
            td_arm_k4(&a, &xp, &wp, M, N, 8, 8 * N, ASH > 0 && !TW);
        }
    } else {
        for (i = 0; i + 8 <= K4; i += 8) {
            int j;
#pragma GCC unroll 8
            for (j = 0; j < 8; ++j) {
                td_arm_k4(&a, &xp, &wp, M, N, 8, 8 * N, ASH > 0 && !TW);
            }
        }
#pragma GCC unroll 8
        for (i = 0; i < K4 % 8; ++i) {
            td_arm_k4(&a, &xp, &wp, M, N, 8, 8 * N, ASH > 0 && !TW);
        }
    }
    if (TW) {
        wp = rec;
    }
    }
    if (KH2) {
        td_arm_k2(&a, &xp, &wp, M, N, 4, 4 * N);
    }
    if (ASH) {
        /* int8 weights: the scale the int16 weights carry (no overflow: see requant_plan) */
        a.a00 = td_arm_lsl(a.a00, ASH);
        if (N > 1) {
            a.a01 = td_arm_lsl(a.a01, ASH);
        }
        if (N > 2) {
            a.a02 = td_arm_lsl(a.a02, ASH);
        }
        if (M > 1) {
            a.a10 = td_arm_lsl(a.a10, ASH);
            if (N > 1) {
                a.a11 = td_arm_lsl(a.a11, ASH);
            }
            if (N > 2) {
                a.a12 = td_arm_lsl(a.a12, ASH);
            }
        }
    }
    r = (const int32_t *)(const void *)wp;
    *wpp = wp + 2 * M * RS;
    {
        const td_arm_rec k0 = E == TD_ARM_RQ_PACKED
            ? td_arm_rec_load_packed(r, bw[0], RS, FIX, FOLD, ZP)
            : td_arm_rec_load(r, RS, E, FIX, FOLD, ZP);
        const td_arm_rec k1 = E == TD_ARM_RQ_PACKED
            ? td_arm_rec_load_packed(r + (M > 1 ? RS : 0), bw[M > 1 ? 1 : 0], RS, FIX, FOLD, ZP)
            : td_arm_rec_load(r + (M > 1 ? RS : 0), RS, E, FIX, FOLD, ZP);
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
                                  const td_arm_epi *ep, const int N, const int OC,
                                  const int ODD, const int K4,
                                  const int KH2, const int UNROLL, const int ASH,
                                  TD_ARM_RQ_ARGS, TD_ARM_EPI_ARGS)
{
    const int16_t *wp = w;
    int8_t *oc = o;
    int8_t *const oend = o + (OC & ~1);
    while (oc != oend) {
        td_arm_gemm_block(x, &wp, NULL, oc, y0, ep, 2, N, OC, K4, KH2, UNROLL, ASH, 0,
                          TD_ARM_RQ_PASS, TD_ARM_EPI_PASS);
        oc += 2;
    }
    if (ODD) { /* OC & 1, as a compile-time constant */
        td_arm_gemm_block(x, &wp, NULL, oc, y0, ep, 1, N, OC, K4, KH2, UNROLL, ASH, 0,
                          TD_ARM_RQ_PASS, TD_ARM_EPI_PASS);
    }
}

/* int8 weight words (n of them, even) widened for td_arm_gemm_block's TW steps: word v
 * to the int16 pairs SXTB16(v), SXTB16(v ROR 8), the registers TD_B2_4_ loads. */
TD_ARM_AI void td_arm_widen_w(int16_t *ws, const int16_t *src, const int n)
{
    const td_u32a *s = (const td_u32a *)(const void *)src;
    td_u32a *d = (td_u32a *)(void *)ws;
    const td_u32a *const end = s + n;
#if TD_ARM_GCC
    uint32_t v0, v1, a, b;
    /* (GCC stores the four words one by one) */
    __asm__ volatile("1:\n\tldrd %[v0], %[v1], [%[s]], #8\n\tsxtb16 %[a], %[v0]\n\t"
                     "sxtb16 %[b], %[v0], ror #8\n\tsxtb16 %[v0], %[v1]\n\t"
                     "sxtb16 %[v1], %[v1], ror #8\n\tstrd %[a], %[b], [%[d]], #16\n\t"
                     "strd %[v0], %[v1], [%[d], #-8]\n\tcmp %[s], %[e]\n\tbne 1b"
                     : [s] "+r"(s), [d] "+r"(d), [v0] "=&r"(v0), [v1] "=&r"(v1), [a] "=&r"(a),
                       [b] "=&r"(b)
                     : [e] "r"(end) : "cc", "memory");
#else
    while (s != end) {
        const uint32_t v0 = s[0], v1 = s[1];
        d[0] = (uint32_t)__sxtb16((int8x4_t)v0);
        d[1] = td_arm_sxtb16_ror8(v0);
        d[2] = (uint32_t)__sxtb16((int8x4_t)v1);
        d[3] = td_arm_sxtb16_ror8(v1);
        s += 2;
        d += 4;
    }
#endif
}

/* All output channels of nb blocks of three pixels (block b at x + b * 12 * K4, its
 * outputs at o + 3 * b * OC): each channel pair's int8 weights are widened once into
 * ws (16 * K4 bytes) for the nb blocks, which then run the int16-weight steps (17
 * instructions a step of 24 MACs instead of 20). */
TD_ARM_AI void td_arm_gemm_tile(const int16_t *x, const int16_t *w, int16_t *ws, int8_t *o,
                                int8_t *y0, const td_arm_epi *ep, const int nb, const int OC,
                                const int ODD, const int K4, const int ASH, TD_ARM_RQ_ARGS,
                                TD_ARM_EPI_ARGS)
{
    const int16_t *wp = w;
    int8_t *oc = o;
    int8_t *const oend = o + (OC & ~1);
    int b;
    while (oc != oend) {
        const int16_t *sp = wp;
        td_arm_widen_w(ws, wp + 4, 2 * K4);
        for (b = 0; b < nb; ++b) {
            sp = wp;
            td_arm_gemm_block(x + b * 12 * K4, &sp, ws, oc + b * 3 * OC, y0, ep, 2, 3, OC, K4,
                              0, 0, ASH, 1, TD_ARM_RQ_PASS, TD_ARM_EPI_PASS);
        }
        wp = sp;
        oc += 2;
    }
    if (ODD) {
        /* the last channel: too few blocks share its weights to widen them */
        for (b = 0; b < nb; ++b) {
            const int16_t *sp = wp;
            td_arm_gemm_block(x + b * 12 * K4, &sp, NULL, oc + b * 3 * OC, y0, ep, 1, 3, OC, K4,
                              0, 0, ASH, 0, TD_ARM_RQ_PASS, TD_ARM_EPI_PASS);
        }
    }
}

/* Four int8 -> four int16 at d (8-byte slot) in SXTB16 order (x0, x2, x1, x3). */
TD_ARM_AI void td_arm_widen4(int16_t *d, uint32_t v)
{
    const uint32_t lo = (uint32_t)__sxtb16((int8x4_t)v), hi = td_arm_sxtb16_ror8(v);
    __asm__ volatile("strd %1, %2, [%0]" : : "r"(d), "r"(lo), "r"(hi) : "memory");
}

/* The same at base + OFF bytes (an STRD immediate when OFF <= 1020). */
TD_ARM_AI void td_arm_widen4_at(int16_t *base, const int OFF, uint32_t v)
{
#if TD_ARM_IMM
    if (__builtin_constant_p(OFF) && OFF <= 1020) {
        const uint32_t lo = (uint32_t)__sxtb16((int8x4_t)v), hi = td_arm_sxtb16_ror8(v);
        __asm__ volatile("strd %1, %2, [%0, %3]"
                         : : "r"(base), "r"(lo), "r"(hi), "i"(OFF) : "memory");
    } else {
        td_arm_widen4(base + OFF / 2, v);
    }
#else
    td_arm_widen4(base + OFF / 2, v);
#endif
}

TD_ARM_AI void td_arm_fill4(int16_t *d, uint32_t zz)
{
    __asm__ volatile("strd %1, %1, [%0]" : : "r"(d), "r"(zz) : "memory");
}

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
            /* window rows three at a time: a 3-row window unrolled, a taller one
             * (an audio front end's 10 x 4) in a loop of a third of its code */
#pragma GCC unroll 3
            for (r = 0; r < KH; ++r) {
                const int iy = iy0 + r;
                int16_t *d = dn + r * G * N4;
                const int8_t *src = td_arm_row_at(in, (iy * IW + ix0) * C);
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

/* td_arm_im2col with run-time shapes: arm/dsp_im2col.c, which the int8-weight
 * layers' calls name as their source. */
void td_arm_im2col_rt(const int8_t *in, int16_t *blk, int p, int n, const td_arm_win *w);

/* A layer's arguments from its enum constants PREFIX_field (see
 * TD_ARM_WIN_PARAMS): pixels = P (out_h * out_w), out_c = OC, k4 = K4
 * (im2col window length / 4), unroll = UNROLL, block = NMAX, dir = DIR, then
 * ASH (0: int16 weights), the td_arm_win and td_arm_rq_cfg fields; _ADD_:
 * with the fused add; _W8_: td_arm_conv_w8's (int8 weights, acc_shift = ASH). */
#define TD_ARM_CONV_HEAD_(L) L##_pixels, L##_out_c, L##_k4, L##_unroll, L##_block, L##_dir
#define TD_ARM_CONV_PARAMS(L) TD_ARM_CONV_HEAD_(L), 0, TD_ARM_WIN_PARAMS(L), \
    TD_ARM_RQ_PARAMS(L), TD_ARM_EPI_PASS_NONE
#define TD_ARM_CONV_ADD_PARAMS(L) TD_ARM_CONV_HEAD_(L), 0, TD_ARM_WIN_PARAMS(L), \
    TD_ARM_RQ_PARAMS(L), TD_ARM_EPI_PARAMS(L)
/* td_arm_conv_w8's: the block order D is the wrapper's run-time argument. */
#define TD_ARM_CONV_W8_HEAD_(L, D) L##_pixels, L##_out_c, L##_k4, L##_unroll, L##_block, \
    L##_pixels % L##_block, L##_out_c & 1, D, L##_acc_shift
#define TD_ARM_CONV_W8_PARAMS(L, D) TD_ARM_CONV_W8_HEAD_(L, D), TD_ARM_WIN_PARAMS(L), \
    TD_ARM_RQ_PARAMS(L), TD_ARM_EPI_PASS_NONE
#define TD_ARM_CONV_ADD_W8_PARAMS(L, D) TD_ARM_CONV_W8_HEAD_(L, D), TD_ARM_WIN_PARAMS(L), \
    TD_ARM_RQ_PARAMS(L), TD_ARM_EPI_PARAMS(L)
/* The same with the output zero point Z a run-time argument of the wrapper. */
#define TD_ARM_CONV_W8_ZP_PARAMS(L, D, Z) TD_ARM_CONV_W8_HEAD_(L, D), TD_ARM_WIN_PARAMS(L), \
    TD_ARM_RQ_PARAMS_ZP(L, Z), TD_ARM_EPI_PASS_NONE
#define TD_ARM_CONV_ADD_W8_ZP_PARAMS(L, D, Z) TD_ARM_CONV_W8_HEAD_(L, D), \
    TD_ARM_WIN_PARAMS(L), TD_ARM_RQ_PARAMS_ZP(L, Z), TD_ARM_EPI_PARAMS(L)
/* td_arm_conv_w8t's: tile = NT (blocks of three pixels a tile). */
#define TD_ARM_CONV_W8T_HEAD_(L, D) L##_pixels, L##_out_c, L##_k4, L##_tile, D, L##_acc_shift
#define TD_ARM_CONV_W8T_ZP_PARAMS(L, D, Z) TD_ARM_CONV_W8T_HEAD_(L, D), TD_ARM_WIN_PARAMS(L), \
    TD_ARM_RQ_PARAMS_ZP(L, Z), TD_ARM_EPI_PASS_NONE
#define TD_ARM_CONV_ADD_W8T_ZP_PARAMS(L, D, Z) TD_ARM_CONV_W8T_HEAD_(L, D), \
    TD_ARM_WIN_PARAMS(L), TD_ARM_RQ_PARAMS_ZP(L, Z), TD_ARM_EPI_PARAMS(L)

/* The same with the shape from a td_arm_conv_shape S (run-time values; the layer's
 * enum constants give the block size, the short block's pixels (pixels % block) and
 * whether out_c is odd, unroll -1 (the K loop for a run-time k4), the accumulator
 * shift and the requantization). */
#define TD_ARM_CONV_W8_RT_HEAD_(L, S, D, Z) (S)->pixels, (S)->out_c, (S)->k4, L##_unroll, \
    L##_block, L##_short_block, L##_odd_out_c, D, L##_acc_shift, (S)->in_h, (S)->in_w, \
    (S)->in_c, (S)->out_h, (S)->out_w, (S)->k_h, (S)->k_w, (S)->stride_h, (S)->stride_w, \
    (S)->pad_top, (S)->pad_left, (S)->in_zero_point, TD_ARM_RQ_PARAMS_ZP(L, Z)
#define TD_ARM_CONV_W8_RT_PARAMS(L, S, D, Z) TD_ARM_CONV_W8_RT_HEAD_(L, S, D, Z), \
    TD_ARM_EPI_PASS_NONE
/* ... with the fused add, its requantization from a td_arm_epi_rq Q (its shift and
 * whether it clamps: the enum constants) */
#define TD_ARM_CONV_ADD_W8_RT_PARAMS(L, S, Q, D, Z) TD_ARM_CONV_W8_RT_HEAD_(L, S, D, Z), \
    1, (Q)->add_mult, (Q)->add_c, (Q)->add_fix_mask, L##_add_shift, L##_add_clamp, \
    (Q)->add_min, (Q)->add_max

/* A whole convolution: P output pixels, NMAX (<= 3) per block.  DIR < 0:
 * blocks in decreasing order (in-place "backward").  ep: the fused
 * residual add when ADD. */
TD_ARM_AI void td_arm_conv(const int8_t *in, int16_t *blk,
                           const int16_t *w, int8_t *out, const td_arm_epi *ep, const int P,
                           const int OC, const int K4, const int UNROLL, const int NMAX,
                           const int DIR, const int ASH, TD_ARM_WIN_ARGS, TD_ARM_RQ_ARGS,
                           TD_ARM_EPI_ARGS)
{
    const int REM = P % NMAX;
    int p;
#define TD_ARM_CONV_STEP(NN)                                                          \
    td_arm_im2col(in, blk, p, NN, TD_ARM_WIN_PASS);                                   \
    td_arm_gemm_pixels(blk, w, out + p * OC, out, ep, NN, OC, OC & 1, K4, 0, UNROLL, ASH, \
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

/* The convolution on int8 weights (--optimize size/balanced; ASH > 0): as
 * td_arm_conv, with the window copy out of line (one copy of its code for all
 * layers) and the block order `dir` a run-time argument, so that layers which
 * differ only in it (in place forward / backward) share one function.  One
 * call site per block size: b runs over the blocks in increasing pixel order
 * (dir >= 0) or decreasing, the short block (REM = P % NMAX pixels) last or first.
 * REM and ODD (OC & 1) are compile-time constants also where P and OC are run-time
 * data (TD_ARM_CONV_W8_RT_PARAMS), so that the function has only the blocks it runs. */
TD_ARM_AI void td_arm_conv_w8(const int8_t *in, int16_t *blk, const int16_t *w, int8_t *out,
                              const td_arm_epi *ep, const int P, const int OC, const int K4,
                              const int UNROLL, const int NMAX, const int REM, const int ODD,
                              const int dir, const int ASH, TD_ARM_WIN_ARGS, TD_ARM_RQ_ARGS,
                              TD_ARM_EPI_ARGS)
{
    const int FULL = P / NMAX, LAST = REM ? FULL : FULL - 1;
    const td_arm_win win = {TD_ARM_WIN_PASS};
    int i;
    for (i = 0; i <= LAST; ++i) {
        const int b = dir >= 0 ? i : LAST - i, p = b * NMAX;
        if (b < FULL) {
            td_arm_im2col_rt(in, blk, p, NMAX, &win);
            td_arm_gemm_pixels(blk, w, out + p * OC, out, ep, NMAX, OC, ODD, K4, 0, UNROLL, ASH,
                               TD_ARM_RQ_PASS, TD_ARM_EPI_PASS);
        } else {
            /* the short block: its pixel count a compile-time constant for the kernel
             * (REM, when the shape is run-time data, is 1 or 2) */
            td_arm_im2col_rt(in, blk, p, REM, &win);
            if (REM == 1) {
                td_arm_gemm_pixels(blk, w, out + p * OC, out, ep, 1, OC, ODD, K4, 0, UNROLL, ASH,
                                   TD_ARM_RQ_PASS, TD_ARM_EPI_PASS);
            } else {
                td_arm_gemm_pixels(blk, w, out + p * OC, out, ep, 2, OC, ODD, K4, 0, UNROLL, ASH,
                                   TD_ARM_RQ_PASS, TD_ARM_EPI_PASS);
            }
        }
    }
}

/* td_arm_conv_w8 in tiles of NT blocks of three pixels (compile-time shapes; P >= 3,
 * OC even or odd): the windows of a tile's pixels are copied first, then
 * td_arm_gemm_tile widens each channel pair's weights once for all of them.  blk:
 * 16 * K4 bytes for the widened weights, then NT blocks of 24 * K4 bytes.  Tiles go in
 * increasing pixel order (dir >= 0; the short block of P % 3 pixels last) or
 * decreasing; a tile's inputs are all read before its outputs are written. */
TD_ARM_AI void td_arm_conv_w8t(const int8_t *in, int16_t *blk, const int16_t *w, int8_t *out,
                               const td_arm_epi *ep, const int P, const int OC, const int K4,
                               const int NT, const int dir, const int ASH, TD_ARM_WIN_ARGS,
                               TD_ARM_RQ_ARGS, TD_ARM_EPI_ARGS)
{
    const int BL = P / 3, REM = P % 3, TILES = (BL + NT - 1) / NT;
    const td_arm_win win = {TD_ARM_WIN_PASS};
    int16_t *const x = blk + 8 * K4;
    int i;
    if (REM && dir < 0) {
        td_arm_im2col_rt(in, x, 3 * BL, REM, &win);
        td_arm_gemm_pixels(x, w, out + 3 * BL * OC, out, ep, REM, OC, OC & 1, K4, 0, 0, ASH,
                           TD_ARM_RQ_PASS, TD_ARM_EPI_PASS);
    }
    for (i = 0; i < TILES; ++i) {
        const int t = dir >= 0 ? i : TILES - 1 - i;
        const int b0 = t * NT, nb = BL - b0 < NT ? BL - b0 : NT;
        int b;
        for (b = 0; b < nb; ++b) {
            td_arm_im2col_rt(in, x + b * 12 * K4, 3 * (b0 + b), 3, &win);
        }
        td_arm_gemm_tile(x, w, blk, out + 3 * b0 * OC, out, ep, nb, OC, OC & 1, K4, ASH,
                         TD_ARM_RQ_PASS, TD_ARM_EPI_PASS);
    }
    if (REM && dir >= 0) {
        td_arm_im2col_rt(in, x, 3 * BL, REM, &win);
        td_arm_gemm_pixels(x, w, out + 3 * BL * OC, out, ep, REM, OC, OC & 1, K4, 0, 0, ASH,
                           TD_ARM_RQ_PASS, TD_ARM_EPI_PASS);
    }
}

/* ---------------------------------------------------------------------- */
/* Fully connected without scratch: activations read as int8              */
/* ---------------------------------------------------------------------- */
/* Four output features at a time; per four inputs one LDR + two SXTB16 of
 * the activations (SXTB16 order, as the weights), then per feature one
 * LDRD of int16 weights and two SMLADs.  Stream per block of M (4, 2, 1)
 * features: biases, K/4 steps of [m][4] int16, records (see td_arm_rq).
 * ASH > 0: int8 weights, K/4 steps of [m][4] bytes in natural order, loaded
 * two features per LDRD and widened by SXTB16 (see td_arm_gemm_block). */
#define TD_FX_X_ "ldr %[x1], [%[xp]], #4\n\tsxtb16 %[x0], %[x1]\n\tsxtb16 %[x1], %[x1], ror #8\n\t"
#define TD_FX_M_(a) "ldrd %[w0], %[w1], [%[wp]], #8\n\t" TD_SM_(a, "x0", "w0") TD_SM_(a, "x1", "w1")
#define TD_FB_(a, w) "sxtb16 %[t], %[" w "]\n\t" TD_SM_(a, "x0", "t") \
    "sxtb16 %[t], %[" w "], ror #8\n\t" TD_SM_(a, "x1", "t")
#define TD_FB2_(a, b) "ldrd %[w0], %[w1], [%[wp]], #8\n\t" TD_FB_(a, "w0") TD_FB_(b, "w1")
#define TD_FB_OUT_ [xp] "+r"(xp), [wp] "+r"(wp), [x0] "=&r"(x0), [x1] "=&r"(x1), \
    [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t)
TD_ARM_AI void td_arm_fc_block(const int8_t *x, const int16_t **wpp, int8_t *o, const int M,
                               const int K4, const int ASH, TD_ARM_RQ_ARGS)
{
    const int16_t *wp = *wpp;
    const int8_t *xp = x;
    const int32_t *bp = (const int32_t *)(const void *)wp;
    int32_t a0 = bp[0], a1 = M > 1 ? bp[1] : 0, a2 = M > 2 ? bp[2] : 0, a3 = M > 3 ? bp[3] : 0;
    uint32_t x0, x1, w0, w1, t;
    int i;
    wp += 2 * M;
#pragma GCC unroll 8
    for (i = 0; i < K4; ++i) {
        if (ASH && M == 4) {
            __asm__ volatile(TD_FX_X_ TD_FB2_("a0", "a1") TD_FB2_("a2", "a3")
                             : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                               TD_FB_OUT_ : : "memory");
        } else if (ASH && M == 2) {
            __asm__ volatile(TD_FX_X_ TD_FB2_("a0", "a1")
                             : [a0] "+r"(a0), [a1] "+r"(a1), TD_FB_OUT_ : : "memory");
        } else if (ASH) {
            __asm__ volatile(TD_FX_X_ "ldr %[w0], [%[wp]], #4\n\t" TD_FB_("a0", "w0")
                             : [a0] "+r"(a0), TD_FB_OUT_ : : "memory");
        } else if (M == 4) {
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
    if (ASH) { /* int8 weights: the scale the int16 weights carry */
        a0 = td_arm_lsl(a0, ASH);
        a1 = td_arm_lsl(a1, ASH);
        a2 = td_arm_lsl(a2, ASH);
        a3 = td_arm_lsl(a3, ASH);
    }
    {
        const int32_t *r = (const int32_t *)(const void *)wp;
        const td_arm_rec k0 = td_arm_rec_load(r, RS, E, FIX, FOLD, ZP);
        const td_arm_rec k1 = td_arm_rec_load(r + (M > 1 ? RS : 0), RS, E, FIX, FOLD, ZP);
        const td_arm_rec k2 = td_arm_rec_load(r + (M > 2 ? 2 * RS : 0), RS, E, FIX, FOLD, ZP);
        const td_arm_rec k3 = td_arm_rec_load(r + (M > 3 ? 3 * RS : 0), RS, E, FIX, FOLD, ZP);
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
#undef TD_FB_OUT_

TD_ARM_AI void td_arm_fc(const int8_t *in, const int16_t *w, int8_t *out,
                         const td_arm_fc_cfg *cfg)
{
    TD_ARM_RQ_LOCALS(&cfg->rq);
    const int ROWS = cfg->rows, K = cfg->in_features, OC = cfg->out_c, ASH = cfg->acc_shift;
    int row, c;
    for (row = 0; row < ROWS; ++row) {
        const int16_t *wp = w;
        for (c = 0; c + 4 <= OC; c += 4) {
            td_arm_fc_block(in + row * K, &wp, out + row * OC + c, 4, K / 4, ASH, TD_ARM_RQ_PASS);
        }
        if (OC & 2) {
            td_arm_fc_block(in + row * K, &wp, out + row * OC + c, 2, K / 4, ASH, TD_ARM_RQ_PASS);
            c += 2;
        }
        if (OC & 1) {
            td_arm_fc_block(in + row * K, &wp, out + row * OC + c, 1, K / 4, ASH, TD_ARM_RQ_PASS);
        }
    }
}

#endif /* __ARM_FEATURE_DSP */

#ifdef __cplusplus
}
#endif

#endif
