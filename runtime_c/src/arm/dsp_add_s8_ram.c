/* The int8 Add of the Arm DSP kernels with its two rescale tables built in RAM first
 * (--optimize size): td_arm_add_s8 on tables td_arm_add_tables makes in the layer's
 * scratch.
 * td-requires: arm/dsp_add_s8.c (td_arm_add_s8)
 * td-requires: arm/dsp_add_table.c (td_arm_add_tables) */
#include "td_arm_add.h"
#include "td_arm_add_table.h"

#if defined(__ARM_FEATURE_DSP)

void td_arm_add_s8_in_ram(const td_arm_add_params *p, const td_arm_add_rescale *rescale,
                          int32_t *scratch, const int8_t *a, const int8_t *b, int8_t *output)
{
    td_arm_add_params q = *p;
    td_arm_add_tables(scratch, rescale);
    q.t1 = scratch + 128;
    q.t2 = scratch + 384;
    td_arm_add_s8(&q, a, b, output);
}

#endif /* __ARM_FEATURE_DSP */
