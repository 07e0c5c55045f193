/* int8 MatMul of two activations (TFLite BATCH_MATMUL): int32 sums of
 * (a + a_offset) * (b + b_offset) over K, requantized to the output.  Each
 * operand is read through strides (batch axes broadcast with stride 0), so a
 * transposed operand needs no copy. */
#include "td_kernels_s8.h"

static void bmm_block_s8(const td_batch_matmul_s8_params *p, const int8_t *a,
                         const int8_t *b, int8_t *out)
{
    const int32_t m = p->m, k = p->k, n = p->n;
    const int32_t am = p->a_m_stride, ak = p->a_k_stride;
    const int32_t bk = p->b_k_stride, bn = p->b_n_stride;
    const int32_t a_off = p->a_offset, b_off = p->b_offset;
    int32_t r, c, i;
    for (r = 0; r < m; ++r) {
        const int8_t *ar = a + r * am;
        for (c = 0; c < n; ++c) {
            const int8_t *bc = b + c * bn;
            int32_t acc = 0;
            for (i = 0; i < k; ++i) {
                acc += (ar[i * ak] + a_off) * (bc[i * bk] + b_off);
            }
            acc = td_mbqm(acc, p->multiplier, p->shift) + p->output_offset;
            out[r * n + c] = (int8_t)td_clamp_s32(acc, p->act_min, p->act_max);
        }
    }
}

void td_batch_matmul_s8(const td_batch_matmul_s8_params *p, const int8_t *a,
                        const int8_t *b, int8_t *output)
{
    td_bmm_each_batch(p, a, b, output, bmm_block_s8);
}
