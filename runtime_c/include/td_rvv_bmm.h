/* tinydeploy runtime: the RISC-V vector (Zve32x / V) variant of the int8
 * MatMul of two activations (riscv/rvv_batch_matmul_s8.c).  Same parameters
 * and the same results, bit for bit, as td_batch_matmul_s8 (td_kernels_s8.h).
 * Chosen by tinydeploy/backends/riscv.py for targets with the vector
 * extension. */
#ifndef TD_RVV_BMM_H
#define TD_RVV_BMM_H

#include "td_kernels_s8.h"

#ifdef __cplusplus
extern "C" {
#endif

void td_rvv_batch_matmul_s8(const td_batch_matmul_s8_params *p, const int8_t *a,
                            const int8_t *b, int8_t *output);

#ifdef __cplusplus
}
#endif
#endif
