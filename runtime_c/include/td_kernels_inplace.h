/* tinydeploy runtime: int8 kernels whose output may overlap their input.
 *
 * The memory planner (tinydeploy/planner.py, tinydeploy/inplace.py) lets an
 * op's output share bytes with an input that dies at that op.  These
 * kernels compute exactly what the portable kernels of td_kernels_s8.h
 * compute (same fixed-point helpers, bit for bit); what they add is a fixed,
 * documented access order, which the planner models to know how far the
 * buffers may overlap:
 *
 *   backward = 0: output pixels in increasing order (row-major), each
 *                 pixel's output channels in increasing order;
 *   backward = 1: the exact reverse (last pixel, last channel first).
 *
 * Every output value is written right after the input values it depends
 * on have been read, and nothing is read again afterwards.  So with the
 * output starting F bytes below the input (backward = 0) or B bytes above
 * it (backward = 1) no input byte is overwritten before its last use, for
 * the F and B that tinydeploy.inplace.deltas() computes from this order.
 * Non-overlapping buffers are of course fine too.
 *
 * Source: runtime_c/src/s8/inplace_s8.c (needs td_kernels_s8.h only).
 */
#ifndef TD_KERNELS_INPLACE_H
#define TD_KERNELS_INPLACE_H

#include <stdint.h>

#include "td_kernels_s8.h"

#ifdef __cplusplus
extern "C" {
#endif

/* td_conv2d_s8 (grouped conv, weights [out_c][k_h][k_w][in_c / groups]) and
 * td_depthwise_conv2d_s8 (weights [k_h][k_w][out_c]) in the order above;
 * `output` may overlap `input` as described. */
void td_conv2d_s8_overlap(const td_conv_s8_params *p, const int8_t *input,
                          const int8_t *weights, const int32_t *bias,
                          int8_t *output, int32_t backward);
void td_depthwise_conv2d_s8_overlap(const td_conv_s8_params *p,
                                    const int8_t *input,
                                    const int8_t *weights,
                                    const int32_t *bias, int8_t *output,
                                    int32_t backward);

/* A convolution fused with the element-wise add that consumes it (a
 * residual connection): for every output element i (order as above)
 *   c = td_conv2d_s8 result i (int8, clamped to conv->act_min/act_max),
 *   output[i] = td_add_s8(c, residual[i]) (or (residual[i], c) when
 *               conv_is_input1 = 0) with the add fields below.
 * The conv's int8 result is never stored.  residual[i] is read right before
 * output[i] is written, so output may equal residual; output may overlap
 * input as for td_conv2d_s8_overlap.  The add fields mean what they mean in
 * td_add_s8_params (no broadcasting: residual has the output's shape). */
typedef struct {
    const td_conv_s8_params *conv;
    int32_t input1_offset, input2_offset, output_offset;
    int32_t left_shift;
    int32_t input1_multiplier, input1_shift;
    int32_t input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
    int32_t conv_is_input1;
} td_conv_add_s8_params;

void td_conv2d_add_s8(const td_conv_add_s8_params *p, const int8_t *input,
                      const int8_t *weights, const int32_t *bias,
                      const int8_t *residual, int8_t *output,
                      int32_t backward);

#ifdef __cplusplus
}
#endif
#endif
