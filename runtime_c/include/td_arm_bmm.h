/* tinydeploy runtime: the Armv7E-M DSP-extension and Helium variants of the
 * int8 MatMul of two activations (arm/dsp_batch_matmul_s8.c,
 * arm/mve_batch_matmul_s8.c).  Same parameters and the same results, bit for
 * bit, as td_batch_matmul_s8 (td_kernels_s8.h): the int32 sums are exact,
 * only their order differs.  Chosen by tinydeploy/backends/arm.py for targets
 * with the DSP extension (Helium ones: td_mve_batch_matmul_s8). */
#ifndef TD_ARM_BMM_H
#define TD_ARM_BMM_H

#include "td_kernels_s8.h"

#ifdef __cplusplus
extern "C" {
#endif

void td_arm_batch_matmul_s8(const td_batch_matmul_s8_params *p, const int8_t *a,
                            const int8_t *b, int8_t *output);
void td_mve_batch_matmul_s8(const td_batch_matmul_s8_params *p, const int8_t *a,
                            const int8_t *b, int8_t *output);

#ifdef __cplusplus
}
#endif
#endif
