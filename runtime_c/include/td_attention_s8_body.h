/* tinydeploy runtime: the body of the int8 fused attention kernel
 * softmax(scale * q @ k^T) @ v (tinydeploy/ops/attention.py), shared by the
 * portable kernel (s8/attention_s8.c) and its SIMD variants (arm/attention_dsp.c,
 * arm/attention_mve.c, riscv/attention_rvv.c).  The including source defines
 *   TD_ATTN_FN             the kernel's name (td_attention_s8's arguments);
 *   TD_ATTN_ROW(len, x, xs, m, is, cs, cols, acc)
 *                          acc[c] += sum over i < len of x[i xs] * m[c cs + i is]
 *                          for c < cols (cols <= TD_ATTN_CHUNK), exactly (int32);
 *   TD_ATTN_SOFTMAX_TABLE  the table softmax (td_softmax_table_s8 or a twin with
 *                          the same results);
 * and optionally
 *   TD_ATTN_SCORE_CODES(p, acc, w, out), TD_ATTN_OUTPUT_CODES(p, acc, w, out)
 *                          out[c] = td_attn_score_code(p, acc[c]) (resp.
 *                          td_attn_output_code) for c < w, the same integers (by
 *                          default these loops);
 * without the first three this header is empty.  td_attn_row_c, the portable TD_ATTN_ROW
 * (a variant's fallback for the layouts it does not cover), is left out when the
 * source defines TD_ATTN_NO_PORTABLE_ROW.
 *
 * One query row at a time: its n scores (q row times each key), requantized as
 * batch_matmul_s8 does, scaled as mul_s8 by a scalar does, their softmax_s8 in
 * place, then the row of probabilities times v, requantized to the output.  Sums
 * of (a + a_off)(b + b_off) are computed as
 *   sum a b + a_off sum b + b_off sum a + count a_off b_off
 * (the same integer), with the sums over each key and each value column taken
 * once per batch entry: TD_ATTN_ROW adds plain int8 products.  The columns of a
 * row are done TD_ATTN_CHUNK at a time in int32 accumulators on the stack, so the
 * scratch stays 4 (n + d) + n bytes.  Every variant adds the same exact integers
 * (tinydeploy's overflow check bounds the sums), so all equal the golden model bit
 * for bit. */
#ifndef TD_ATTENTION_S8_BODY_H
#define TD_ATTENTION_S8_BODY_H

#if defined(TD_ATTN_FN) && defined(TD_ATTN_ROW) && defined(TD_ATTN_SOFTMAX_TABLE)

#include "td_kernels_s8.h"
#include "td_softmax_table_s8.h"

#define TD_ATTN_CHUNK 16

#if !defined(TD_ATTN_NO_PORTABLE_ROW)
/* acc + sum a[i sa] b[i sb] over i < len (contiguous operands: two at a time). */
static int32_t td_attn_dot(const int8_t *a, int32_t sa, const int8_t *b, int32_t sb,
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

/* The portable TD_ATTN_ROW (and the SIMD variants' fallback for the layouts
 * they do not cover): four columns at a time when x is contiguous (each x
 * element loaded once for four products). */
static void td_attn_row_c(int32_t len, const int8_t *x, int32_t xs, const int8_t *m,
                          int32_t is, int32_t cs, int32_t cols, int32_t *acc)
{
    int32_t c = 0;
    if (xs == 1) {
        for (; c + 4 <= cols; c += 4) {
            const int8_t *m0 = m + c * cs;
            const int8_t *m1 = m0 + cs, *m2 = m1 + cs, *m3 = m2 + cs;
            int32_t a0 = acc[c], a1 = acc[c + 1], a2 = acc[c + 2], a3 = acc[c + 3];
            int32_t i;
            for (i = 0; i < len; ++i) {
                const int32_t v = x[i];
                a0 += v * *m0;
                a1 += v * *m1;
                a2 += v * *m2;
                a3 += v * *m3;
                m0 += is;
                m1 += is;
                m2 += is;
                m3 += is;
            }
            acc[c] = a0;
            acc[c + 1] = a1;
            acc[c + 2] = a2;
            acc[c + 3] = a3;
        }
    }
    for (; c < cols; ++c) {
        acc[c] = td_attn_dot(x, xs, m + c * cs, is, len, acc[c]);
    }
}
#endif

/* Per key c: the sum of its k elements; per value column c: of its n. */
static void td_attn_operand_sums(const td_attention_s8_params *p, const int8_t *kb,
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

#if !defined(TD_ATTN_SCORE_CODES)
/* A score's int32 sum -> its int8 code, requantized and scaled. */
static int8_t td_attn_score_code(const td_attention_s8_params *p, int32_t acc)
{
    int32_t s = td_mbqm(acc, p->score_multiplier, p->score_shift) + p->score_offset;
    s = td_clamp_s32(s, p->score_min, p->score_max);
    if (p->scale_table != 0) {
        s = p->scale_table[s + 128];
    } else if (p->has_scale) {
        const int32_t prod = (s + p->scale_input_offset) * p->scale_factor;
        s = td_mbqm(prod, p->scale_multiplier, p->scale_shift) + p->scale_offset;
        s = td_clamp_s32(s, p->scale_min, p->scale_max);
    }
    return (int8_t)s;
}

static void td_attn_score_codes(const td_attention_s8_params *p, const int32_t *acc,
                                int32_t w, int8_t *out)
{
    int32_t c;
    for (c = 0; c < w; ++c) {
        out[c] = td_attn_score_code(p, acc[c]);
    }
}
#define TD_ATTN_SCORE_CODES td_attn_score_codes
#endif

#if !defined(TD_ATTN_OUTPUT_CODES)
static int8_t td_attn_output_code(const td_attention_s8_params *p, int32_t acc)
{
    acc = td_mbqm(acc, p->multiplier, p->shift) + p->output_offset;
    return (int8_t)td_clamp_s32(acc, p->act_min, p->act_max);
}

static void td_attn_output_codes(const td_attention_s8_params *p, const int32_t *acc,
                                 int32_t w, int8_t *out)
{
    int32_t c;
    for (c = 0; c < w; ++c) {
        out[c] = td_attn_output_code(p, acc[c]);
    }
}
#define TD_ATTN_OUTPUT_CODES td_attn_output_codes
#endif

/* One query row qr: its n int8 scores into row. */
static void td_attn_scores(const td_attention_s8_params *p, const int8_t *qr,
                           const int8_t *kb, const int32_t *key_sums, int8_t *row)
{
    const int32_t kd = p->k, n = p->n, qk = p->q_k_stride, kn = p->k_n_stride;
    const int32_t q_off = p->q_offset, k_off = p->k_offset;
    int32_t acc[TD_ATTN_CHUNK];
    int32_t c0, c, i, q_sum = 0, base;
    for (i = 0; i < kd; ++i) {
        q_sum += qr[i * qk];
    }
    base = k_off * q_sum + kd * q_off * k_off;
    for (c0 = 0; c0 < n; c0 += TD_ATTN_CHUNK) {
        const int32_t w = n - c0 < TD_ATTN_CHUNK ? n - c0 : TD_ATTN_CHUNK;
        for (c = 0; c < w; ++c) {
            acc[c] = base + q_off * key_sums[c0 + c];
        }
        TD_ATTN_ROW(kd, qr, qk, kb + c0 * kn, p->k_k_stride, kn, w, acc);
        TD_ATTN_SCORE_CODES(p, acc, w, row + c0);
    }
}

/* The row of probabilities times v into out [d]. */
static void td_attn_values(const td_attention_s8_params *p, const int8_t *row,
                           const int8_t *vb, const int32_t *value_sums, int8_t *out)
{
    const int32_t n = p->n, d = p->d, vn = p->v_n_stride;
    const int32_t p_off = p->p_offset, v_off = p->v_offset;
    int32_t acc[TD_ATTN_CHUNK];
    int32_t c0, c, j, p_sum = 0, base;
    for (j = 0; j < n; ++j) {
        p_sum += row[j];
    }
    base = v_off * p_sum + n * p_off * v_off;
    for (c0 = 0; c0 < d; c0 += TD_ATTN_CHUNK) {
        const int32_t w = d - c0 < TD_ATTN_CHUNK ? d - c0 : TD_ATTN_CHUNK;
        for (c = 0; c < w; ++c) {
            acc[c] = base + p_off * value_sums[c0 + c];
        }
        TD_ATTN_ROW(n, row, 1, vb + c0 * vn, p->v_k_stride, vn, w, acc);
        TD_ATTN_OUTPUT_CODES(p, acc, w, out + c0);
    }
}

void TD_ATTN_FN(const td_attention_s8_params *p, const int8_t *q, const int8_t *k,
                const int8_t *v, int8_t *output, int8_t *scratch)
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
                    td_attn_operand_sums(p, kb, vb, key_sums, value_sums);
                    for (r = 0; r < p->m; ++r) {
                        td_attn_scores(p, qb + r * p->q_m_stride, kb, key_sums, row);
                        if (p->softmax_table)
                            TD_ATTN_SOFTMAX_TABLE(&smt, row, row);
                        else
                            td_softmax_s8(&sm, row, row);
                        td_attn_values(p, row, vb, value_sums, output);
                        output += p->d;
                    }
                }
            }
        }
    }
}

#endif

#endif
