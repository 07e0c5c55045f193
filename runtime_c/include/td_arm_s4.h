/* tinydeploy runtime: fully connected with int4 weights on Armv7E-M / Armv8-M DSP
 * (Cortex-M4, M7, M33, M55), bit-exact with td_fully_connected_s4.
 *
 * The weights stay packed in flash and are widened in registers.  A feature's
 * eight weights w0..w7 for eight inputs sit in one word as nibbles
 * n0..n7 = w0 w4 w1 w5 w2 w6 w3 w7 (reordered at compile time).  One AND of
 * the word shifted left by 4 and one AND of the word itself with 0xF0F0F0F0
 * put the even and the odd nibbles at the top of each byte: the weights times
 * 16, which SXTB16 and SXTB16 ROR 8 widen to the int16 pairs (w0, w2),
 * (w1, w3), (w4, w6), (w5, w7), the SXTB16 pairs of the eight activations.
 * The accumulator is therefore 16 times the sum: its start, the bias with the
 * input offset folded in (bias + input_offset * sum of the feature's weights),
 * is stored times 16, and the 16 is divided out exactly before the portable
 * requantization (multiplier, shift, offset and clamp of td_fc_s8_params).
 * Per eight multiply-accumulates and feature: one LDR, two ANDs, four SXTB16,
 * four SMLAD; the activations' two LDR and four SXTB16 serve two features.
 *
 * stream, per block of two features (the last block of an odd count has
 * one): the block's starting accumulators, then in_features / 8 steps of one
 * word per feature.  in_features must be a multiple of 8.
 *
 * Source file: runtime_c/src/arm/dsp_fc_s4.c (the depthwise: td_arm_dw_s4.h). */
#ifndef TD_ARM_S4_H
#define TD_ARM_S4_H

#include "td_kernels_s8.h"

#ifdef __cplusplus
extern "C" {
#endif

void td_arm_fc_s4(const td_fc_s8_params *p, const int8_t *input, const int32_t *stream,
                  int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* TD_ARM_S4_H */
