/* int8 fused attention for Cortex-M with Helium (MVE): the portable
 * kernel's body (td_attention_s8_body.h) with its row products in vector
 * instructions: VMLADAVA (16 int8 pairs, tail predicated) per column when x
 * and the columns are contiguous along the sum (q @ k^T with k read in
 * place), else, when the matrix's rows are contiguous along the columns
 * (p @ v), lanes over 16 columns (four int32x4 accumulators, VMLA by the
 * scalar x element), the last ones 8 at a time (predicated).  Other layouts run the
 * portable loops.  The requantization of four scores (and of the scale) or
 * outputs at a time is in vector lanes too (td_mve_mbqm4, bit-exact with
 * td_mbqm); the table softmax is the Helium one (arm/mve_softmax_table_s8.c,
 * the same results).  The int32 sums are exact, so the results equal
 * td_attention_s8's bit for bit.
 * td-requires: s8/softmax_s8.c (td_softmax_s8, on the row in place)
 * td-requires: arm/mve_softmax_table_s8.c (td_mve_softmax_table_s8, when p->softmax_table) */
#include "td_arm_attention.h"

#if defined(__ARM_FEATURE_MVE)

#include "td_arm_common.h"

static void td_attn_row_c(int32_t len, const int8_t *x, int32_t xs, const int8_t *m,
                          int32_t is, int32_t cs, int32_t cols, int32_t *acc);

static void td_attn_row_mve(int32_t len, const int8_t *x, int32_t xs, const int8_t *m,
                            int32_t is, int32_t cs, int32_t cols, int32_t *acc)
{
    int32_t c, i;
    if (xs == 1 && is == 1) {
        for (c = 0; c < cols; ++c) {
            const int8_t *mc = m + c * cs, *xp = x;
            int32_t a = acc[c], left = len;
            while (left > 0) {
                const mve_pred16_t pr = vctp8q((uint32_t)left);
                a = vmladavaq_s8(a, vldrbq_z_s8(xp, pr), vldrbq_z_s8(mc, pr));
                xp += 16;
                mc += 16;
                left -= 16;
            }
            acc[c] = a;
        }
    } else if (cs == 1) {
        /* 16 columns a pass while they last (each x element loaded once for 16) */
        for (c = 0; c + 16 <= cols; c += 16) {
            int32x4_t a0 = vldrwq_s32(acc + c), a1 = vldrwq_s32(acc + c + 4);
            int32x4_t a2 = vldrwq_s32(acc + c + 8), a3 = vldrwq_s32(acc + c + 12);
            const int8_t *mp = m + c, *xp = x;
            for (i = 0; i < len; ++i) {
                const int32_t xv = *xp;
                a0 = vmlaq_n_s32(a0, vldrbq_s32(mp), xv);
                a1 = vmlaq_n_s32(a1, vldrbq_s32(mp + 4), xv);
                a2 = vmlaq_n_s32(a2, vldrbq_s32(mp + 8), xv);
                a3 = vmlaq_n_s32(a3, vldrbq_s32(mp + 12), xv);
                mp += is;
                xp += xs;
            }
            vst1q_s32(acc + c, a0);
            vst1q_s32(acc + c + 4, a1);
            vst1q_s32(acc + c + 8, a2);
            vst1q_s32(acc + c + 12, a3);
        }
        for (; c < cols; c += 8) {
            const mve_pred16_t p0 = vctp32q((uint32_t)(cols - c));
            const mve_pred16_t p1 = vctp32q((uint32_t)(cols - c > 4 ? cols - c - 4 : 0));
            int32x4_t a0 = vldrwq_z_s32(acc + c, p0), a1 = vldrwq_z_s32(acc + c + 4, p1);
            const int8_t *mp = m + c, *xp = x;
            for (i = 0; i < len; ++i) {
                const int32_t xv = *xp;
                a0 = vmlaq_n_s32(a0, vldrbq_z_s32(mp, p0), xv);
                a1 = vmlaq_n_s32(a1, vldrbq_z_s32(mp + 4, p1), xv);
                mp += is;
                xp += xs;
            }
            vstrwq_p_s32(acc + c, a0, p0);
            vstrwq_p_s32(acc + c + 4, a1, p1);
        }
    } else {
        td_attn_row_c(len, x, xs, m, is, cs, cols, acc);
    }
}

static void td_attn_score_codes_mve(const td_attention_s8_params *p, const int32_t *acc,
                                    int32_t w, int8_t *out)
{
    int32_t c;
    for (c = 0; c < w; c += 4) {
        const mve_pred16_t pr = vctp32q((uint32_t)(w - c));
        int32x4_t v = td_mve_mbqm4(vldrwq_z_s32(acc + c, pr), p->score_multiplier, p->score_shift);
        v = td_mve_clamp4(vaddq_n_s32(v, p->score_offset), p->score_min, p->score_max);
        if (p->has_scale) {
            v = vmulq_n_s32(vaddq_n_s32(v, p->scale_input_offset), p->scale_factor);
            v = td_mve_mbqm4(v, p->scale_multiplier, p->scale_shift);
            v = td_mve_clamp4(vaddq_n_s32(v, p->scale_offset), p->scale_min, p->scale_max);
        }
        vstrbq_p_s32(out + c, v, pr);
    }
}

static void td_attn_output_codes_mve(const td_attention_s8_params *p, const int32_t *acc,
                                     int32_t w, int8_t *out)
{
    int32_t c;
    for (c = 0; c < w; c += 4) {
        const mve_pred16_t pr = vctp32q((uint32_t)(w - c));
        int32x4_t v = td_mve_mbqm4(vldrwq_z_s32(acc + c, pr), p->multiplier, p->shift);
        v = td_mve_clamp4(vaddq_n_s32(v, p->output_offset), p->act_min, p->act_max);
        vstrbq_p_s32(out + c, v, pr);
    }
}

#define TD_ATTN_SCORE_CODES td_attn_score_codes_mve
#define TD_ATTN_OUTPUT_CODES td_attn_output_codes_mve
#define TD_ATTN_FN td_attention_s8_mve
#define TD_ATTN_ROW td_attn_row_mve
#define TD_ATTN_SOFTMAX_TABLE td_mve_softmax_table_s8
#include "td_attention_s8_body.h"

#endif
