/* int8 fused attention: softmax(scale * q @ k^T) @ v one query row at a time,
 * with the integer steps of the unfused layers (batch_matmul_s8, mul_s8 by
 * a scalar, softmax_s8, batch_matmul_s8), so only one row of int8 scores
 * (n bytes of scratch, beside n + d int32 operand sums) exists at a time
 * instead of n x n per head.
 * td-requires: s8/softmax_s8.c (td_softmax_s8, on the row in place)
 * td-requires: s8/softmax_table_s8.c (td_softmax_table_s8, when p->softmax_table) */
#include "td_kernels_s8.h"
#include "td_softmax_table_s8.h"

/* Sums of (a + a_off)(b + b_off) are computed as
 *   sum a b + a_off sum b + b_off sum a + count a_off b_off
 * (the same integer), with the sums over each key and each value column
 * taken once per batch entry: the inner loops are plain int8 products. */

/* acc + sum a[i sa] b[i sb] over i < len (contiguous operands: two at a time). */
static int32_t dot_s8(const int8_t *a, int32_t sa, const int8_t *b, int32_t sb,
                      int32_t len, int32_t acc)
{
    int32_t i;
    if (sa == 1 && sb == 1) {
        for (i = 0; i + 1 < len; i += 2) {
            acc += a[i] * b[i] + a[i + 1] * b[i + 1];
        }
        if (i < len) {
            acc += a[i] * b[i];
        }
        return acc;
    }
    for (i = 0; i < len; ++i) {
        acc += *a * *b;
        a += sa;
        b += sb;
    }
    return acc;
}

/* Per key c: the sum of its k elements; per value column c: of its n. */
static void operand_sums(const td_attention_s8_params *p, const int8_t *kb,
                         const int8_t *vb, int32_t *key_sums,
                         int32_t *value_sums)
{
    int32_t c, i;
    for (c = 0; c < p->n; ++c) {
        const int8_t *kc = kb + c * p->k_n_stride;
        int32_t s = 0;
        for (i = 0; i < p->k; ++i) {
            s += kc[i * p->k_k_stride];
        }
        key_sums[c] = s;
    }
    for (c = 0; c < p->d; ++c) {
        const int8_t *vc = vb + c * p->v_n_stride;
        int32_t s = 0;
        for (i = 0; i < p->n; ++i) {
            s += vc[i * p->v_k_stride];
        }
        value_sums[c] = s;
    }
}

/* A score's int32 sum -> its int8 code, requantized and scaled. */
static int8_t score_code(const td_attention_s8_params *p, int32_t acc)
{
    int32_t s = td_mbqm(acc, p->score_multiplier, p->score_shift) + p->score_offset;
    s = td_clamp_s32(s, p->score_min, p->score_max);
    if (p->has_scale) {
        const int32_t prod = (s + p->scale_input_offset) * p->scale_factor;
        s = td_mbqm(prod, p->scale_multiplier, p->scale_shift) + p->scale_offset;
        s = td_clamp_s32(s, p->scale_min, p->scale_max);
    }
    return (int8_t)s;
}

/* One query row: its n int8 scores into row.  Four keys at a time when the
 * query row is contiguous (each q element is loaded once for four products). */
static void score_row(const td_attention_s8_params *p, const int8_t *qr,
                      const int8_t *kb, const int32_t *key_sums, int8_t *row)
{
    const int32_t kd = p->k, n = p->n;
    const int32_t qk = p->q_k_stride, kk = p->k_k_stride, kn = p->k_n_stride;
    const int32_t q_off = p->q_offset, k_off = p->k_offset;
    int32_t c = 0, i, q_sum = 0, base;
    for (i = 0; i < kd; ++i) {
        q_sum += qr[i * qk];
    }
    base = k_off * q_sum + kd * q_off * k_off;
    if (qk == 1) {
        for (; c + 4 <= n; c += 4) {
            const int8_t *k0 = kb + c * kn;
            const int8_t *k1 = k0 + kn, *k2 = k1 + kn, *k3 = k2 + kn;
            int32_t a0 = base + q_off * key_sums[c];
            int32_t a1 = base + q_off * key_sums[c + 1];
            int32_t a2 = base + q_off * key_sums[c + 2];
            int32_t a3 = base + q_off * key_sums[c + 3];
            for (i = 0; i < kd; ++i) {
                const int32_t x = qr[i];
                a0 += x * *k0;
                a1 += x * *k1;
                a2 += x * *k2;
                a3 += x * *k3;
                k0 += kk;
                k1 += kk;
                k2 += kk;
                k3 += kk;
            }
            row[c] = score_code(p, a0);
            row[c + 1] = score_code(p, a1);
            row[c + 2] = score_code(p, a2);
            row[c + 3] = score_code(p, a3);
        }
    }
    for (; c < n; ++c) {
        row[c] = score_code(p, dot_s8(qr, qk, kb + c * kn, kk, kd, base + q_off * key_sums[c]));
    }
}

static int8_t output_code(const td_attention_s8_params *p, int32_t acc)
{
    acc = td_mbqm(acc, p->multiplier, p->shift) + p->output_offset;
    return (int8_t)td_clamp_s32(acc, p->act_min, p->act_max);
}

/* The row of probabilities times v into out [d].  Four columns at a time
 * when v's rows are contiguous (each probability loaded once for four). */
static void value_row(const td_attention_s8_params *p, const int8_t *row,
                      const int8_t *vb, const int32_t *value_sums, int8_t *out)
{
    const int32_t n = p->n, d = p->d;
    const int32_t vk = p->v_k_stride, vn = p->v_n_stride;
    const int32_t p_off = p->p_offset, v_off = p->v_offset;
    int32_t c = 0, j, p_sum = 0, base;
    for (j = 0; j < n; ++j) {
        p_sum += row[j];
    }
    base = v_off * p_sum + n * p_off * v_off;
    if (vn == 1) {
        for (; c + 4 <= d; c += 4) {
            const int8_t *vp = vb + c;
            int32_t a0 = base + p_off * value_sums[c];
            int32_t a1 = base + p_off * value_sums[c + 1];
            int32_t a2 = base + p_off * value_sums[c + 2];
            int32_t a3 = base + p_off * value_sums[c + 3];
            for (j = 0; j < n; ++j) {
                const int32_t x = row[j];
                a0 += x * vp[0];
                a1 += x * vp[1];
                a2 += x * vp[2];
                a3 += x * vp[3];
                vp += vk;
            }
            out[c] = output_code(p, a0);
            out[c + 1] = output_code(p, a1);
            out[c + 2] = output_code(p, a2);
            out[c + 3] = output_code(p, a3);
        }
    }
    for (; c < d; ++c) {
        out[c] = output_code(p, dot_s8(row, 1, vb + c * vn, vk, n, base + p_off * value_sums[c]));
    }
}

void td_attention_s8(const td_attention_s8_params *p, const int8_t *q,
                     const int8_t *k, const int8_t *v, int8_t *output,
                     int8_t *scratch)
{
    const int32_t *shape = p->batch_shape;
    const int32_t *sq = p->q_batch_strides, *sk = p->k_batch_strides;
    const int32_t *sv = p->v_batch_strides;
    /* scratch: n + d int32 sums (4-byte aligned: the planner aligns to 16),
     * then the row of n int8 scores */
    int32_t *key_sums = (int32_t *)(void *)scratch;
    int32_t *value_sums = key_sums + p->n;
    int8_t *row = (int8_t *)(void *)(value_sums + p->d);
    td_softmax_s8_params sm = {0}; /* every other field zero */
    td_softmax_table_s8_params smt;
    int32_t i0, i1, i2, i3, r;
    sm.outer = 1;
    sm.depth = p->n;
    sm.input_multiplier = p->softmax_multiplier;
    sm.input_left_shift = p->softmax_left_shift;
    sm.diff_min = p->softmax_diff_min;
    smt.outer = 1;
    smt.depth = p->n;
    smt.table_last = p->softmax_table_last;
    smt.table = p->softmax_table;
    for (i0 = 0; i0 < shape[0]; ++i0) {
        for (i1 = 0; i1 < shape[1]; ++i1) {
            for (i2 = 0; i2 < shape[2]; ++i2) {
                for (i3 = 0; i3 < shape[3]; ++i3) {
                    const int8_t *qb = q + i0 * sq[0] + i1 * sq[1] + i2 * sq[2] + i3 * sq[3];
                    const int8_t *kb = k + i0 * sk[0] + i1 * sk[1] + i2 * sk[2] + i3 * sk[3];
                    const int8_t *vb = v + i0 * sv[0] + i1 * sv[1] + i2 * sv[2] + i3 * sv[3];
                    operand_sums(p, kb, vb, key_sums, value_sums);
                    for (r = 0; r < p->m; ++r) {
                        score_row(p, qb + r * p->q_m_stride, kb, key_sums, row);
                        if (p->softmax_table)
                            td_softmax_table_s8(&smt, row, row);
                        else
                            td_softmax_s8(&sm, row, row);
                        value_row(p, row, vb, value_sums, output);
                        output += p->d;
                    }
                }
            }
        }
    }
}
