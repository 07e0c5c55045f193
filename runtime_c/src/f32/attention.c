/* float32 fused attention: softmax(scale * q @ k^T) @ v one query row at a
 * time (one row of n float scores as scratch instead of n x n per head).
 * Each score and each output sums in the order td_batch_matmul_f32 does,
 * the scale and the softmax are td_binary_f32's and td_softmax_f32's, so
 * the results equal the unfused layers'.
 * td-requires: f32/softmax.c (td_softmax_f32, on the row in place) */
#include "td_f32_internal.h"

static void score_row(const td_attention_f32_params *p, const float *qr,
                      const float *kb, float *row)
{
    const int32_t kd = p->k, n = p->n;
    const int32_t qk = p->q_k_stride, kk = p->k_k_stride, kn = p->k_n_stride;
    int32_t c, i;
    for (c = 0; c < n; ++c) {
        const float *kc = kb + c * kn;
        float acc = 0.0f;
        for (i = 0; i < kd; ++i) {
            acc = TD_MAC(acc, qr[i * qk], kc[i * kk]);
        }
        if (p->scale_kind == 1) {
            acc = acc * p->scale;
        } else if (p->scale_kind == 2) {
            acc = acc / p->scale;
        }
        row[c] = acc;
    }
}

static void value_row(const td_attention_f32_params *p, const float *row,
                      const float *vb, float *out)
{
    const int32_t n = p->n, d = p->d;
    const int32_t vk = p->v_k_stride, vn = p->v_n_stride;
    int32_t c, j;
    if (vn == 1) { /* v's rows are contiguous: add row[j] * v[j][:] to out */
        for (c = 0; c < d; ++c) {
            out[c] = 0.0f;
        }
        for (j = 0; j < n; ++j) {
            const float w = row[j];
            const float *vr = vb + j * vk;
            for (c = 0; c < d; ++c) {
                out[c] = TD_MAC(out[c], w, vr[c]);
            }
        }
        return;
    }
    for (c = 0; c < d; ++c) {
        const float *vc = vb + c * vn;
        float acc = 0.0f;
        for (j = 0; j < n; ++j) {
            acc = TD_MAC(acc, row[j], vc[j * vk]);
        }
        out[c] = acc;
    }
}

void td_attention_f32(const td_attention_f32_params *p, const float *q,
                      const float *k, const float *v, float *output,
                      float *scratch)
{
    const int32_t *shape = p->batch_shape;
    const int32_t *sq = p->q_batch_strides, *sk = p->k_batch_strides;
    const int32_t *sv = p->v_batch_strides;
    int32_t i0, i1, i2, i3, r;
    for (i0 = 0; i0 < shape[0]; ++i0) {
        for (i1 = 0; i1 < shape[1]; ++i1) {
            for (i2 = 0; i2 < shape[2]; ++i2) {
                for (i3 = 0; i3 < shape[3]; ++i3) {
                    const float *qb = q + i0 * sq[0] + i1 * sq[1] + i2 * sq[2] + i3 * sq[3];
                    const float *kb = k + i0 * sk[0] + i1 * sk[1] + i2 * sk[2] + i3 * sk[3];
                    const float *vb = v + i0 * sv[0] + i1 * sv[1] + i2 * sv[2] + i3 * sv[3];
                    for (r = 0; r < p->m; ++r) {
                        score_row(p, qb + r * p->q_m_stride, kb, scratch);
                        td_softmax_f32(1, p->n, scratch, scratch);
                        value_row(p, scratch, vb, output);
                        output += p->d;
                    }
                }
            }
        }
    }
}
