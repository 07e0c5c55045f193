/* tinydeploy runtime: the int8 Add of two same-shape tensors on Arm cores with
 * the DSP extension (arm/dsp_add_s8.c).  TFLite's Add arithmetic, bit for bit
 * with td_add_s8: each operand's rescaled value ((x + offset) << left_shift,
 * then MultiplyByQuantizedMultiplier) comes from a 256-entry table, their sum
 * is requantized as the fused residual add of the convolutions does it
 * (td_arm_epi_add: SMMLA with a folded rounding constant, one shift).
 * tinydeploy/backends/arm.py makes the tables and proves the ranges; other
 * adds keep the portable kernel. */
#ifndef TD_ARM_ADD_H
#define TD_ARM_ADD_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t size;       /* elements */
    const int32_t *t1;  /* input 1 value -> rescaled (points at entry 128 = value 0) */
    const int32_t *t2;  /* input 2 value -> rescaled */
    int32_t add_mult, add_c, add_fix_mask, add_shift;  /* the sum's requantization */
    int32_t add_clamp, add_min, add_max;               /* clamp (act_min/act_max) when add_clamp */
} td_arm_add_params;

void td_arm_add_s8(const td_arm_add_params *p, const int8_t *a, const int8_t *b,
                   int8_t *output);

#ifdef __cplusplus
}
#endif
#endif
