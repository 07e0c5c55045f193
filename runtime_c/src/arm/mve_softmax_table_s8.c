/* Helium (MVE) int8 softmax with the compile-time exponential table: the
 * same function as td_softmax_table_s8 (s8/softmax_table_s8.c), bit for bit,
 * four elements per step in 32-bit lanes, tail-predicated (any depth).
 *  - maximum: VMAXV over 16 int8 lanes;
 *  - table entry: VLDRW gather at max - x, with the index limited to
 *    table_last (VMIN);
 *  - RoundingDivideByPOT(e, 12) of e >= 0 = VRSHR #12 (round half up, in
 *    wide precision: 2^31 - 1 gives 2^19 as the reference does), summed with
 *    VADDVA over the active lanes;
 *  - SRDHM(recip, e) with recip, e >= 0 = VQRDMULH (no saturation: recip and
 *    e are never both INT32_MIN), then RoundingDivideByPOT by the row's
 *    exponent (23..31) = VRSHL by -exponent (round half up); -128, at most
 *    127, stored narrowing (VSTRB.32). */
#include "td_softmax_table_s8.h"

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

static int32_t row_max(const int8_t *in, int32_t depth)
{
    int8_t m = INT8_MIN;
    int32_t c;
    for (c = 0; c < depth; c += 16) {
        const mve_pred16_t p = vctp8q((uint32_t)(depth - c));
        m = vmaxvq_p_s8(m, vldrbq_z_s8(in + c, p), p);
    }
    return m;
}

/* the table entries of elements c .. c+3 (lanes active under p) */
static inline int32x4_t entries(const int32_t *table, uint32_t last, int32_t max_v,
                                const int8_t *in, mve_pred16_t p)
{
    const int32x4_t x = vldrbq_z_s32(in, p);
    const uint32x4_t i = vminq_u32(vreinterpretq_u32_s32(vsubq_s32(vdupq_n_s32(max_v), x)),
                                   vdupq_n_u32(last));
    return vldrwq_gather_shifted_offset_z_s32(table, i, p);
}

static void softmax_row(const td_softmax_table_s8_params *prm, const int8_t *in,
                        int8_t *out)
{
    const int32_t depth = prm->depth;
    const uint32_t last = (uint32_t)prm->table_last;
    const int32_t *table = prm->table;
    const int32_t max_v = row_max(in, depth);
    int32_t c, sum = 0, recip;
    int headroom, exponent;
    for (c = 0; c < depth; c += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)(depth - c));
        sum = vaddvaq_p_s32(sum, vrshrq_n_s32(entries(table, last, max_v, in + c, p), 12), p);
    }
    headroom = __builtin_clz((uint32_t)sum);   /* sum >= 2^19 */
    recip = td_fp_one_over_one_plus_x(
        (int32_t)(((uint32_t)sum << headroom) - 0x80000000u));
    exponent = (12 - headroom) + 31 - 8;
    if (exponent >= 32) {   /* every output rounds to 0, as in the portable kernel */
        for (c = 0; c < depth; ++c) {
            out[c] = INT8_MIN;
        }
        return;
    }
    for (c = 0; c < depth; c += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)(depth - c));
        int32x4_t v = vqrdmulhq_n_s32(entries(table, last, max_v, in + c, p), recip);
        v = vrshlq_n_s32(v, -exponent);
        v = vminq_s32(vaddq_n_s32(v, INT8_MIN), vdupq_n_s32(INT8_MAX));
        vstrbq_p_s32(out + c, v, p);
    }
}

void td_mve_softmax_table_s8(const td_softmax_table_s8_params *p,
                             const int8_t *input, int8_t *output)
{
    int32_t r;
    for (r = 0; r < p->outer; ++r) {
        softmax_row(p, input + r * p->depth, output + r * p->depth);
    }
}
#endif
