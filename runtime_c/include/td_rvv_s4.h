/* tinydeploy runtime: fully connected with int4 weights on RISC-V vector (Zve32x / V),
 * bit-exact with td_fully_connected_s4 (riscv/rvv_fc_s4.c).  Chosen by
 * tinydeploy/backends/riscv.py for targets with the vector extension.
 *
 * A feature's 2H weights are packed two per byte in halves: byte j (j < H) holds
 * weight j in its low nibble and weight H + j in its high nibble, so one strip of
 * bytes gives two runs of weights that meet two contiguous runs of inputs (no
 * interleaving in registers).  Per strip: vle8 of the bytes, vsll.vi + vsra.vi 4
 * (the low nibbles) and vsra.vi 4 (the high ones) sign-extend them to int8;
 * vwmul.vv and vwmacc.vv give int16 sums of two products (|s| <= 2 * 8 * 128),
 * which vwadd.wv adds to int32 lanes; one vredsum at the end.  The starting
 * accumulator (bias + input_offset * the feature's weight sum, int32 per feature)
 * is computed at compile time; the requantization is td_mbqm, as the portable
 * kernel's.  in_features must be even.
 * Source files: riscv/rvv_fc_s4.c, riscv/rvv_conv_s4.c. */
#ifndef TD_RVV_S4_H
#define TD_RVV_S4_H

#include "td_kernels_s8.h"

#ifdef __cplusplus
extern "C" {
#endif

void td_rvv_fc_s4(const td_fc_s8_params *p, const int8_t *input, const int32_t *start,
                  const uint8_t *weights, int8_t *output);

/* Convolution with int4 weights (groups 1, no dilation; riscv/rvv_conv_s4.c), lanes
 * over output channels: the out_c channels (rounded up to 2H) of each window tap k
 * are a row of H bytes, byte j holding channel j in its low nibble and channel H + j
 * in its high one, so one strip of bytes feeds two blocks of channels.  Per tap and
 * strip: vle8, vsext.vf2, vsll.vi + vsra.vi 12 (low nibbles), vsra.vi 4 (high), one
 * scalar input and two vwmacc.vx into int32 lanes.  Output pixel after output
 * pixel; padding taps multiply the zero point (the bias has the input offset
 * folded in over the whole window, as td_rvv_conv_s8's); the requantization is
 * td_rvv_conv_s8's (vsmul, rounding shift), bit-exact with td_mbqm. */
typedef struct {
    int16_t in_h, in_w, in_c;
    int16_t out_h, out_w, out_c;
    int16_t k_h, k_w;
    int16_t stride_h, stride_w;
    int16_t pad_top, pad_left;
    int16_t half;         /* H: bytes per tap row */
    int32_t input_zero_point, output_offset, act_min, act_max;
    const int32_t *bias;  /* folded, [2H] */
    const int32_t *mult;  /* [2H] */
    const int32_t *left;  /* [2H] */
    const int32_t *right; /* [2H] */
} td_rvv_conv_s4_params;

void td_rvv_conv_s4(const td_rvv_conv_s4_params *p, const int8_t *input,
                    const uint8_t *weights, int8_t *output);

/* Depthwise convolution with int4 weights, depth multiplier 1 (in_c == out_c, even), the
 * same parameters and weight rows (one per window tap, the channels in halves): per tap the
 * two channel blocks' inputs are vectors (vwmacc.vv). */
void td_rvv_dw_s4(const td_rvv_conv_s4_params *p, const int8_t *input,
                  const uint8_t *weights, int8_t *output);

#ifdef __cplusplus
}
#endif
#endif
