/* tinydeploy runtime: fully connected with int4 weights on RISC-V vector (Zve32x / V),
 * bit-exact with td_fully_connected_s4 (riscv/rvv_fc_s4.c).  Chosen by
 * tinydeploy/backends/riscv.py for targets with the vector extension.
 *
 * A feature's 2H weights are packed two per byte in halves: byte j (j < H) holds
 * weight j in its low nibble and weight H + j in its high nibble, so one strip of
 * bytes gives two runs of weights that meet two contiguous runs of inputs (no
 * interleaving in registers).  Per strip: vle8 of the bytes, vsll.vi + vsra.vi 4
 * (the low nibbles) and vsra.vi 4 (the high ones) sign-extend them to int8;
 * vwmul.vv and vwmacc.vv give int16 sums of two products (|s| <= 2 * 8 * 128),
 * which vwadd.wv adds to int32 lanes; one vredsum at the end.  The starting
 * accumulator (bias + input_offset * the feature's weight sum, int32 per feature)
 * is computed at compile time; the requantization is td_mbqm, as the portable
 * kernel's.  in_features must be even. */
#ifndef TD_RVV_S4_H
#define TD_RVV_S4_H

#include "td_kernels_s8.h"

#ifdef __cplusplus
extern "C" {
#endif

void td_rvv_fc_s4(const td_fc_s8_params *p, const int8_t *input, const int32_t *start,
                  const uint8_t *weights, int8_t *output);

#ifdef __cplusplus
}
#endif
#endif
