/* int8 fused attention: softmax(scale * q @ k^T) @ v one query row at a time,
 * with the integer steps of the unfused layers (batch_matmul_s8, mul_s8 by
 * a scalar, softmax_s8, batch_matmul_s8), so only one row of int8 scores
 * (n bytes of scratch) exists at a time instead of n x n per head.
 * td-requires: s8/softmax_s8.c (td_softmax_s8, on the row in place) */
#include "td_kernels_s8.h"

/* One query row: its n int8 scores (requantized and scaled) into row. */
static void score_row(const td_attention_s8_params *p, const int8_t *qr,
                      const int8_t *kb, int8_t *row)
{
    const int32_t kd = p->k, n = p->n;
    const int32_t qk = p->q_k_stride, kk = p->k_k_stride, kn = p->k_n_stride;
    const int32_t q_off = p->q_offset, k_off = p->k_offset;
    int32_t c, i;
    for (c = 0; c < n; ++c) {
        const int8_t *kc = kb + c * kn;
        int32_t acc = 0, s;
        for (i = 0; i < kd; ++i) {
            acc += (qr[i * qk] + q_off) * (kc[i * kk] + k_off);
        }
        s = td_mbqm(acc, p->score_multiplier, p->score_shift) + p->score_offset;
        s = td_clamp_s32(s, p->score_min, p->score_max);
        if (p->has_scale) {
            const int32_t prod = (s + p->scale_input_offset) * p->scale_factor;
            s = td_mbqm(prod, p->scale_multiplier, p->scale_shift) + p->scale_offset;
            s = td_clamp_s32(s, p->scale_min, p->scale_max);
        }
        row[c] = (int8_t)s;
    }
}

/* The row of probabilities times v into out [d]. */
static void value_row(const td_attention_s8_params *p, const int8_t *row,
                      const int8_t *vb, int8_t *out)
{
    const int32_t n = p->n, d = p->d;
    const int32_t vk = p->v_k_stride, vn = p->v_n_stride;
    const int32_t p_off = p->p_offset, v_off = p->v_offset;
    int32_t c, j;
    for (c = 0; c < d; ++c) {
        const int8_t *vc = vb + c * vn;
        int32_t acc = 0;
        for (j = 0; j < n; ++j) {
            acc += (row[j] + p_off) * (vc[j * vk] + v_off);
        }
        acc = td_mbqm(acc, p->multiplier, p->shift) + p->output_offset;
        out[c] = (int8_t)td_clamp_s32(acc, p->act_min, p->act_max);
    }
}

void td_attention_s8(const td_attention_s8_params *p, const int8_t *q,
                     const int8_t *k, const int8_t *v, int8_t *output,
                     int8_t *scratch)
{
    const int32_t *shape = p->batch_shape;
    const int32_t *sq = p->q_batch_strides, *sk = p->k_batch_strides;
    const int32_t *sv = p->v_batch_strides;
    td_softmax_s8_params sm;
    int32_t i0, i1, i2, i3, r;
    sm.outer = 1;
    sm.depth = p->n;
    sm.input_multiplier = p->softmax_multiplier;
    sm.input_left_shift = p->softmax_left_shift;
    sm.diff_min = p->softmax_diff_min;
    for (i0 = 0; i0 < shape[0]; ++i0) {
        for (i1 = 0; i1 < shape[1]; ++i1) {
            for (i2 = 0; i2 < shape[2]; ++i2) {
                for (i3 = 0; i3 < shape[3]; ++i3) {
                    const int8_t *qb = q + i0 * sq[0] + i1 * sq[1] + i2 * sq[2] + i3 * sq[3];
                    const int8_t *kb = k + i0 * sk[0] + i1 * sk[1] + i2 * sk[2] + i3 * sk[3];
                    const int8_t *vb = v + i0 * sv[0] + i1 * sv[1] + i2 * sv[2] + i3 * sv[3];
                    for (r = 0; r < p->m; ++r) {
                        score_row(p, qb + r * p->q_m_stride, kb, scratch);
                        td_softmax_s8(&sm, scratch, scratch);
                        value_row(p, scratch, vb, output);
                        output += p->d;
                    }
                }
            }
        }
    }
}
