/* tinydeploy runtime: the int8 fused attention for Cortex-M with the DSP
 * extension (arm/attention_dsp.c, SMLAD row products) or Helium
 * (arm/attention_mve.c, VMLADAVA / VMLA row products): td_attention_s8
 * (td_kernels_s8.h), same arguments, same results bit for bit.  Chosen by
 * tinydeploy/backends/arm.py. */
#ifndef TD_ARM_ATTENTION_H
#define TD_ARM_ATTENTION_H

#include "td_kernels_s8.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__ARM_FEATURE_DSP)
void td_attention_s8_dsp(const td_attention_s8_params *p, const int8_t *q,
                         const int8_t *k, const int8_t *v, int8_t *output,
                         int8_t *scratch);
#endif
#if defined(__ARM_FEATURE_MVE)
void td_attention_s8_mve(const td_attention_s8_params *p, const int8_t *q,
                         const int8_t *k, const int8_t *v, int8_t *output,
                         int8_t *scratch);
#endif

#ifdef __cplusplus
}
#endif
#endif
