/* tinydeploy runtime: the int8 layer normalization in Helium lanes
 * (arm/mve_layer_norm_s8.c): td_layer_norm_s8's arithmetic, bit for bit (the
 * parameters and the lane arithmetic: td_layer_norm_row.h).  Chosen by
 * tinydeploy/backends/arm.py for Helium cores.  Output may equal input. */
#ifndef TD_ARM_LAYER_NORM_H
#define TD_ARM_LAYER_NORM_H

#include "td_layer_norm_row.h"

#ifdef __cplusplus
extern "C" {
#endif

void td_mve_layer_norm_s8(const td_layer_norm_lanes_params *p, const int8_t *input,
                          int8_t *output);

#ifdef __cplusplus
}
#endif
#endif
