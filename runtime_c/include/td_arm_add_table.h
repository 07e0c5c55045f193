/* tinydeploy runtime: an int8 Add operand's rescale table built at run time
 * (arm/dsp_add_table.c), for --optimize size: the fused residual add of a
 * convolution (td_arm_epi) and the Add of two tensors (td_arm_add_s8_in_ram) read
 * the same 256 entries the generator would otherwise store in flash, from the
 * layer's scratch in RAM.
 * td-requires: arm/dsp_add_table.c (td_arm_add_tables) */
#ifndef TD_ARM_ADD_TABLE_H
#define TD_ARM_ADD_TABLE_H

#include <stdint.h>

#include "td_arm_add.h"

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

/* Both operands' tables: t[0 .. 255] input 1's (rescale[0]), t[256 .. 511] input 2's
 * (rescale[1]); entry v + 128 the rescaled value of v = -128 .. 127. */
void td_arm_add_tables(int32_t *t, const td_arm_add_rescale *rescale);

/* td_arm_add_s8 with p's two tables (its t1, t2 unused) built first in scratch
 * (td_arm_add_tables; arm/dsp_add_s8_ram.c). */
void td_arm_add_s8_in_ram(const td_arm_add_params *p, const td_arm_add_rescale *rescale,
                          int32_t *scratch, const int8_t *a, const int8_t *b, int8_t *output);

#ifdef __cplusplus
}
#endif
#endif
