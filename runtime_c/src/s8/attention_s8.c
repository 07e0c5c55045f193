/* int8 fused attention: softmax(scale * q @ k^T) @ v one query row at a time,
 * with the integer steps of the unfused layers (batch_matmul_s8, mul_s8 by
 * a scalar, softmax_s8, batch_matmul_s8), so only one row of int8 scores
 * (n bytes of scratch, beside n + d int32 operand sums) exists at a time
 * instead of n x n per head.  The kernel's body is td_attention_s8_body.h,
 * shared with the SIMD variants (arm/attention_dsp.c, arm/attention_mve.c,
 * riscv/attention_rvv.c); here with the portable row products.
 * td-requires: s8/softmax_s8.c (td_softmax_s8, on the row in place)
 * td-requires: s8/softmax_table_s8.c (td_softmax_table_s8, when p->softmax_table) */
#include "td_kernels_s8.h"

#define TD_ATTN_FN td_attention_s8
#define TD_ATTN_ROW td_attn_row_c
#define TD_ATTN_SOFTMAX_TABLE td_softmax_table_s8
#include "td_attention_s8_body.h"
