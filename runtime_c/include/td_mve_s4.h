/* tinydeploy runtime: fully connected with int4 weights on Helium (Cortex-M55, M85),
 * bit-exact with td_fully_connected_s4 (arm/mve_fc_s4.c).
 *
 * The weights are packed as for td_rvv_fc_s4 (td_rvv_s4.h): a feature's 2H weights
 * in halves, byte j holding weight j in its low nibble and weight H + j in its high
 * nibble.  Per 16 bytes: VLDRB, VSHL + VSHR (signed) by 4 for the low nibbles, VSHR
 * by 4 for the high ones, two VLDRB of inputs and two VMLADAVA: 32 multiply-
 * accumulates; the last strip predicated (zeroed lanes add nothing).  The starting
 * accumulator (bias + input_offset * the feature's weight sum) is computed at compile
 * time; the requantization is td_mbqm, as the portable kernel's.  in_features must
 * be even. */
#ifndef TD_MVE_S4_H
#define TD_MVE_S4_H

#include "td_kernels_s8.h"

#ifdef __cplusplus
extern "C" {
#endif

void td_mve_fc_s4(const td_fc_s8_params *p, const int8_t *input, const int32_t *start,
                  const uint8_t *weights, int8_t *output);

/* Convolution with int4 weights (groups 1, no dilation; arm/mve_conv_s4.c): blocks of up
 * to TD_MVE_S4_PIXELS output pixels, their windows copied by td_mve_im2col into int8 rows
 * of kc * 16 bytes (kc even, the zero point in the padding, a zero tail); per output
 * channel its row of kc * 16 weights packed in halves (byte j: weight j low, weight
 * kc * 8 + j high), each 16-byte strip unpacked once for all the block's pixels (two
 * VMLADAVA per pixel).  start: the bias with the input offset folded in over the whole
 * window; the requantization is td_mbqm.  blk: scratch of TD_MVE_S4_PIXELS * kc * 16. */
#define TD_MVE_S4_PIXELS 4
void td_mve_conv_s4(const td_conv_s8_params *p, const int8_t *input, const int32_t *start,
                    const uint8_t *weights, int8_t *output, int8_t *blk, int32_t kc);

/* Depthwise convolution with int4 weights (depth multiplier 1, channels a multiple of 16,
 * at most 31 taps; arm/mve_dw_s4.c), channels in lanes: per block of 16 channels and
 * window tap 8 bytes of weights (byte j: channel j low, channel 8 + j high), unpacked to
 * int16 lanes and multiplied with the inputs (the zero point for padding taps) into int16
 * lanes: with int4 weights |w * x| <= 1024, so 31 taps cannot overflow them.  Then the
 * sums widen to int32 in the order of VMOVLB / VMOVLT (channels 0 2 4 6, 1 3 5 7, 8 10
 * 12 14, 9 11 13 15 of the block), the order in which `rq` holds each channel's starting
 * accumulator (the bias with the input offset folded in over the whole window),
 * multiplier, left shift and right shift (as a negative number), four arrays of C. */
void td_mve_dw_s4(const td_conv_s8_params *p, const int8_t *input, const int32_t *rq,
                  const uint8_t *weights, int8_t *output);

#ifdef __cplusplus
}
#endif
#endif
