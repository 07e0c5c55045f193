/* tinydeploy runtime: int8 softmax with a compile-time exponential table
 * (s8/softmax_table_s8.c).
 *
 * The same function as td_softmax_s8 (TFLite int8 softmax, output scale
 * 1/256, zero point -128), bit for bit: the int8 difference of an element to
 * its row maximum takes one of 256 values, so the fixed-point exponential of
 * every difference is computed at compile time (tinydeploy/ops/softmax.py,
 * with the golden model's integer functions) into a table indexed by
 * max - x.  A difference below diff_min has the entry 0, which gives the
 * same output as the reference's "below diff_min" case (code -128, nothing
 * added to the sum).  The table stops after its last non-zero entry plus
 * one 0: indices from table_last on read table[table_last] (= 0); with
 * table_last = 256 no index reaches it and the table has 256 entries.
 *
 * Declared apart from td_kernels_s8.h so that models which do not use this
 * kernel keep their generated files unchanged. */
#ifndef TD_SOFTMAX_TABLE_S8_H
#define TD_SOFTMAX_TABLE_S8_H

#include <stdint.h>

#include "td_kernels_s8.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Softmax over the innermost axis of [outer][depth].  table: Q0.31
 * exp(input scale * (x - max)) for max - x = 0 .. table_last - 1, then
 * table[table_last] == 0 if table_last < 256 (table_last in [1, 256]).
 * Reads every element of a row before writing it, so output == input is
 * allowed. */
typedef struct {
    int32_t outer, depth;
    int32_t table_last;
    const int32_t *table;
} td_softmax_table_s8_params;

void td_softmax_table_s8(const td_softmax_table_s8_params *p,
                         const int8_t *input, int8_t *output);

/* The same with Helium (arm/mve_softmax_table_s8.c; Cortex-M55/M85 builds)
 * and with the RISC-V vector extension (riscv/rvv_softmax_table_s8.c). */
void td_mve_softmax_table_s8(const td_softmax_table_s8_params *p,
                             const int8_t *input, int8_t *output);
void td_rvv_softmax_table_s8(const td_softmax_table_s8_params *p,
                             const int8_t *input, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif
