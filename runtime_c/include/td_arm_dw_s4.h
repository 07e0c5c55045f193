/* tinydeploy runtime: depthwise convolution with int4 weights on Armv7E-M / Armv8-M
 * DSP (Cortex-M4, M7, M33, M55), bit-exact with td_depthwise_conv2d_s8 on the int4
 * values (depth multiplier 1, no dilation).
 * td-requires: arm/dsp_dw_s4.c (td_arm_dw_s4)
 *
 * Per output pixel the window's taps are listed once (a pointer to the pixel's
 * channel 0, or none for a padding tap, which reads the zero point); then every
 * group of 8 channels runs over them in two halves of 4 channels, so that the four
 * accumulators stay in registers: per tap and half, one word of weights, whose
 * nibbles (c0 c1 c4 c5 c2 c3 c6 c7, low first) one AND of the word shifted left by 4
 * and one AND of the word with 0xF0F0F0F0 put at the top of each byte (the weights
 * times 16; SXTB16 or SXTB16 ROR 8 widen them to the pairs (c0, c2), (c1, c3) or
 * (c4, c6), (c5, c7)), one word of inputs widened the same way, and SMLABB / SMLATT
 * into one accumulator per channel: 16 times the sum.  The last c % 8 channels go one
 * at a time.  The 16 is traded for the layer's acc_shift and the requantization is the
 * Arm kernels' (td_arm_rq's arithmetic with the channel's record, full or compact),
 * or, where it cannot be proven exact, the portable one on the sum.
 *
 * stream: per channel 16 times its starting accumulator (the bias with the input
 * offset folded in); per channel its record (rq.rec_words int32); then per window tap
 * channels / 8 words of weights (one more for the remainder when channels % 8). */
#ifndef TD_ARM_DW_S4_H
#define TD_ARM_DW_S4_H

#include "td_arm_requant.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__ARM_FEATURE_DSP)

typedef struct {
    td_arm_win win;   /* the window geometry; in_c = channels */
    td_arm_rq_cfg rq; /* the requantization (td_arm_rq's records) */
    int acc_shift;    /* the accumulator's shift before the requantization (see requant_plan) */
    int portable;     /* 1: the records are {multiplier, shift}, the portable requantization
                       * (out_zero_point, act_min, act_max of rq; where requant_plan cannot
                       * prove the Arm arithmetic exact) */
} td_arm_dw_s4_cfg;

void td_arm_dw_s4(const int8_t *in, const int32_t *stream, int8_t *out,
                  const td_arm_dw_s4_cfg *cfg);

#endif /* __ARM_FEATURE_DSP */

#ifdef __cplusplus
}
#endif

#endif /* TD_ARM_DW_S4_H */
