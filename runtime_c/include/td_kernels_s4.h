/* tinydeploy runtime: kernels with int4 weights (portable C99).
 *
 * The arithmetic is the int8 kernels' (td_kernels_s8.h) with weights in
 * [-8, 7]: the results equal td_conv2d_s8 / td_depthwise_conv2d_s8 /
 * td_fully_connected_s8 on the same weights widened to int8, and the
 * golden model computes them so.  Only the storage differs: the weights are
 * packed two per byte in the int8 kernel's element order (element i in byte
 * i / 2, the low nibble for even i, two's complement), so a layer's weights
 * take half the flash.  The parameter structs are the int8 kernels'.
 *
 * Source file: runtime_c/src/s4/weights_s4.c. */
#ifndef TD_KERNELS_S4_H
#define TD_KERNELS_S4_H

#include "td_kernels_s8.h"

/* Weights [out_c][k_h][k_w][in_c / groups], packed. */
void td_conv2d_s4(const td_conv_s8_params *p, const int8_t *input,
                  const uint8_t *weights, const int32_t *bias, int8_t *output);

/* Weights [k_h][k_w][out_c] (TFLite's depthwise layout), packed. */
void td_depthwise_conv2d_s4(const td_conv_s8_params *p, const int8_t *input,
                            const uint8_t *weights, const int32_t *bias,
                            int8_t *output);

/* Weights [out_features][in_features], packed. */
void td_fully_connected_s4(const td_fc_s8_params *p, const int8_t *input,
                           const uint8_t *weights, const int32_t *bias,
                           int8_t *output);

#endif /* TD_KERNELS_S4_H */
