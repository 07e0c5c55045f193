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
    const int32_t *shape = p->batch_shape;
    const int32_t *sa = p->a_batch_strides, *sb = p->b_batch_strides;
    const int32_t block = p->m * p->n;
    int32_t i0, i1, i2, i3;
    for (i0 = 0; i0 < shape[0]; ++i0) {
        for (i1 = 0; i1 < shape[1]; ++i1) {
            for (i2 = 0; i2 < shape[2]; ++i2) {
                for (i3 = 0; i3 < shape[3]; ++i3) {
                    const int32_t oa = i0 * sa[0] + i1 * sa[1] + i2 * sa[2] + i3 * sa[3];
                    const int32_t ob = i0 * sb[0] + i1 * sb[1] + i2 * sb[2] + i3 * sb[3];
                    bmm_block_s8(p, a + oa, b + ob, output);
                    output += block;
                }
            }
        }
    }
}
