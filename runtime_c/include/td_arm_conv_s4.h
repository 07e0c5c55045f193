/* tinydeploy runtime: convolution with int4 weights on Armv7E-M / Armv8-M DSP
 * (Cortex-M4, M7, M33, M55), bit-exact with td_conv2d_s4.
 * td-requires: arm/dsp_conv_s4.c (td_arm_conv_s4)
 * td-requires: arm/dsp_im2col.c (td_arm_im2col_rt)
 *
 * The output pixels go in blocks of three: their windows are copied to the
 * int16 block of td_arm_im2col_rt ([K/4][n][4] in SXTB16 lane order), then every
 * output channel runs over the block.  The weights stay packed in flash, eight
 * to a word per channel and 8-step of the block's K positions f0..f7 (two
 * groups of four), nibble j holding f[TD_S4_CONV_NIBBLES[j]] = f0 f4 f2 f6 f1 f5 f3
 * f7.  One AND of the word shifted left by 4 and one AND of the word with
 * 0xF0F0F0F0 put the even and the odd nibbles at the top of each byte (the
 * weights times 16), and SXTB16 / SXTB16 ROR 8 widen them to the halfword pairs
 * (f0, f1), (f2, f3), (f4, f5), (f6, f7) that meet the block's words.  Per
 * 8-step, channel and three pixels: LDR, 2 AND, 4 SXTB16, 6 LDRD, 12 SMLAD.
 *
 * The accumulator is 16 times the sum; the stream's starting accumulator, the
 * bias with the input offset folded in, is stored times 16.  The 16 is then
 * traded for the layer's acc_shift (a shift left or an exact shift right) and
 * the requantization is the Arm kernels' (td_arm_rq with the channel's record).
 *
 * stream, per output channel: the starting accumulator, k8 words of weights (a
 * window length not a multiple of 8 is padded with zero weights: the block's
 * scratch has room for the padding), the requantization record (rq.rec_words). */
#ifndef TD_ARM_CONV_S4_H
#define TD_ARM_CONV_S4_H

#include "td_arm_gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__ARM_FEATURE_DSP)

typedef struct {
    td_arm_win win;     /* the window geometry (td_arm_im2col_rt) */
    td_arm_rq_cfg rq;   /* the requantization (td_arm_rq) */
    int pixels;         /* out_h * out_w */
    int out_c;
    int k8;             /* 8-steps per window (window length / 8, rounded up) */
    int acc_shift;      /* the accumulator's shift before td_arm_rq (see requant_plan) */
} td_arm_conv_s4_cfg;

/* blk: scratch of 3 * 8 * k8 int16. */
void td_arm_conv_s4(const int8_t *in, int16_t *blk, const int32_t *stream, int8_t *out,
                    const td_arm_conv_s4_cfg *cfg);

#endif /* __ARM_FEATURE_DSP */

#ifdef __cplusplus
}
#endif

#endif /* TD_ARM_CONV_S4_H */
