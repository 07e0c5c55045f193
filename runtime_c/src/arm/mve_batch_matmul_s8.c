/* int8 MatMul of two activations with Helium (MVE).  A's rows must be
 * contiguous along K (a_k_stride 1); B is read along K (b_k_stride 1: q @ k^T,
 * k read in place) or along N (b_n_stride 1: a @ v); other layouts keep the
 * portable kernel (backends/arm.py does not choose this one for them).
 *
 * The offsets come out of the inner loops: with a' = a + a_offset,
 *   sum_i a'_i (b_i + b_offset) = sum_i a'_i b_i + b_offset sum_i a'_i.
 * Along K, sum_i a'_i b_i = sum_i a_i b_i + a_offset sum_i b_i: VMLADAVA and
 * VADDVA over 16 raw int8 pairs (the tail predicated).  Along N, 16 output
 * columns are 4 vectors of int32 lanes, each accumulating a'_i times 4 of B's
 * row i widened (VLDRB.S32, VMLA).  The terms are added in uint32 (wrapping),
 * so the sum is the exact one whenever it fits int32, which tinydeploy's
 * overflow check proves: the results equal td_batch_matmul_s8 bit for bit. */
#include "td_arm_bmm.h"

#if defined(__ARM_FEATURE_MVE)

#include "td_arm_common.h"

static inline int8_t bmm_out(const td_batch_matmul_s8_params *p, uint32_t acc)
{
    const int32_t v = td_mbqm((int32_t)acc, p->multiplier, p->shift) + p->output_offset;
    return (int8_t)td_clamp_s32(v, p->act_min, p->act_max);
}

/* B's columns contiguous along K: one output element per VMLADAVA chain. */
static void bmm_rows_along_k(const td_batch_matmul_s8_params *p, const int8_t *a,
                             const int8_t *b, int8_t *out)
{
    const int32_t m = p->m, k = p->k, n = p->n, bn = p->b_n_stride;
    const uint32_t ao = (uint32_t)p->a_offset, bo = (uint32_t)p->b_offset;
    int32_t r, c, i;
    for (r = 0; r < m; ++r) {
        const int8_t *ar = a + r * p->a_m_stride;
        int32_t sum_a = 0;
        uint32_t row_term;
        for (i = 0; i < k; i += 16) {
            sum_a = vaddvaq_s8(sum_a, vldrbq_z_s8(ar + i, vctp8q((uint32_t)(k - i))));
        }
        /* b_offset sum_i a'_i */
        row_term = bo * ((uint32_t)sum_a + (uint32_t)k * ao);
        for (c = 0; c < n; ++c) {
            const int8_t *bc = b + c * bn;
            int32_t dot = 0, sum_b = 0;
            for (i = 0; i < k; i += 16) {
                const mve_pred16_t pr = vctp8q((uint32_t)(k - i));
                const int8x16_t vb = vldrbq_z_s8(bc + i, pr);
                dot = vmladavaq_s8(dot, vldrbq_z_s8(ar + i, pr), vb);
                sum_b = vaddvaq_s8(sum_b, vb);
            }
            out[r * n + c] = bmm_out(p, (uint32_t)dot + ao * (uint32_t)sum_b + row_term);
        }
    }
}

/* B's rows contiguous along N: 16 output columns per pass, int32 lanes. */
static void bmm_rows_along_n(const td_batch_matmul_s8_params *p, const int8_t *a,
                             const int8_t *b, int8_t *out)
{
    const int32_t m = p->m, k = p->k, n = p->n, bk = p->b_k_stride;
    const int32_t ao = p->a_offset;
    int32_t r, c, i, j;
    for (r = 0; r < m; ++r) {
        const int8_t *ar = a + r * p->a_m_stride;
        int32_t sum_a = 0;
        for (i = 0; i < k; ++i) {
            sum_a += ar[i] + ao;
        }
        for (c = 0; c < n; c += 16) {
            const int32_t left = n - c;
            const mve_pred16_t p0 = vctp32q((uint32_t)left);
            const mve_pred16_t p1 = vctp32q((uint32_t)(left > 4 ? left - 4 : 0));
            const mve_pred16_t p2 = vctp32q((uint32_t)(left > 8 ? left - 8 : 0));
            const mve_pred16_t p3 = vctp32q((uint32_t)(left > 12 ? left - 12 : 0));
            int32x4_t acc0 = vdupq_n_s32(0), acc1 = acc0, acc2 = acc0, acc3 = acc0;
            const int8_t *bc = b + c;
            int32_t res[16];
            for (i = 0; i < k; ++i) {
                const int32_t x = ar[i] + ao;
                const int8_t *br = bc + i * bk;
                acc0 = vmlaq_n_s32(acc0, vldrbq_z_s32(br, p0), x);
                acc1 = vmlaq_n_s32(acc1, vldrbq_z_s32(br + 4, p1), x);
                acc2 = vmlaq_n_s32(acc2, vldrbq_z_s32(br + 8, p2), x);
                acc3 = vmlaq_n_s32(acc3, vldrbq_z_s32(br + 12, p3), x);
            }
            vst1q_s32(res, acc0);
            vst1q_s32(res + 4, acc1);
            vst1q_s32(res + 8, acc2);
            vst1q_s32(res + 12, acc3);
            for (j = 0; j < 16 && j < left; ++j) {
                out[r * n + c + j] = bmm_out(p, (uint32_t)res[j] + (uint32_t)p->b_offset * (uint32_t)sum_a);
            }
        }
    }
}

static void bmm_block_mve(const td_batch_matmul_s8_params *p, const int8_t *a,
                          const int8_t *b, int8_t *out)
{
    if (p->b_k_stride == 1) {
        bmm_rows_along_k(p, a, b, out);
    } else {
        bmm_rows_along_n(p, a, b, out);
    }
}

void td_mve_batch_matmul_s8(const td_batch_matmul_s8_params *p, const int8_t *a,
                            const int8_t *b, int8_t *output)
{
    td_bmm_each_batch(p, a, b, output, bmm_block_mve);
}

#endif
