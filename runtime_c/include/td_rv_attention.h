/* tinydeploy runtime: the int8 fused attention for RISC-V vector cores
 * (riscv/attention_rvv.c): td_attention_s8 (td_kernels_s8.h) with the row
 * products in vector lanes over the output columns, same arguments, same
 * results bit for bit.  Chosen by tinydeploy/backends/riscv.py. */
#ifndef TD_RV_ATTENTION_H
#define TD_RV_ATTENTION_H

#include "td_kernels_s8.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__riscv_vector)
void td_attention_s8_rvv(const td_attention_s8_params *p, const int8_t *q,
                         const int8_t *k, const int8_t *v, int8_t *output,
                         int8_t *scratch);
#endif

#ifdef __cplusplus
}
#endif
#endif
