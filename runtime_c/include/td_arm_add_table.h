/* tinydeploy runtime: an int8 Add operand's rescale table built at run time
 * (arm/dsp_add_table.c), for --optimize size: the fused residual add of a
 * convolution (td_arm_epi) reads the same 256 entries the generator would
 * otherwise store in flash, from the layer's scratch in RAM.
 * td-requires: arm/dsp_add_table.c (td_arm_add_table) */
#ifndef TD_ARM_ADD_TABLE_H
#define TD_ARM_ADD_TABLE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One operand of TFLite's Add: value v rescales to
 * MultiplyByQuantizedMultiplier((v + offset) << left_shift, multiplier, shift),
 * stored << scale_bits (the scaling td_arm_epi_add's SMMLA expects). */
typedef struct {
    int32_t offset;     /* minus the operand's zero point */
    int32_t left_shift; /* the Add's left shift */
    int32_t multiplier; /* the operand's rescale */
    int32_t shift;
    int32_t scale_bits;
} td_arm_add_rescale;

/* t[0 .. 255]: the rescaled value of v = -128 .. 127. */
void td_arm_add_table(int32_t *t, const td_arm_add_rescale *r);

#ifdef __cplusplus
}
#endif
#endif
