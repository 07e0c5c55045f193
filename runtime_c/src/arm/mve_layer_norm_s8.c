/* int8 layer normalization with Helium (MVE): td_layer_norm_s8's integer
 * steps, bit for bit, four elements per vector.  Row sums by VADDVA and
 * VMLADAVA over 16 codes; the row's reciprocal square root by the shared
 * scalar code; the two 64-bit roundings on magnitudes as (VMUL, VMULH.U32)
 * word pairs without carries (td_layer_norm_row.h), the sign restored; the
 * last rounding (by 2^8, ties away from zero) on |v|. */
#include "td_arm_layer_norm.h"

#if defined(__ARM_FEATURE_MVE)

#include "td_arm_common.h"

static void ln_sums(const int8_t *x, int32_t n, int32_t *sum, int32_t *sum_sq)
{
    int32_t s = 0, q = 0, i;
    for (i = 0; i < n; i += 16) {
        const int8x16_t v = vldrbq_z_s8(x + i, vctp8q((uint32_t)(n - i)));
        s = vaddvaq_s8(s, v);
        q = vmladavaq_s8(q, v, v);
    }
    *sum = s;
    *sum_sq = q;
}

void td_mve_layer_norm_s8(const td_layer_norm_lanes_params *p, const int8_t *input,
                          int8_t *output)
{
    const int32_t n = p->size, zp = p->output_offset;
    const int64_t eps = ((int64_t)p->eps_hi << 31) + (int64_t)p->eps_lo;
    int32_t r, i;
    for (r = 0; r < p->outer; ++r) {
        const int8_t *x = input + r * n;
        int8_t *out = output + r * n;
        int32_t sum, sum_sq, s, y;
        uint32_t half, mask;
        ln_sums(x, n, &sum, &sum_sq);
        y = td_ln_row_scale(n, sum, sum_sq, eps, &s);
        half = s < 32 ? 1u << (s - 1) : (s > 32 ? 1u << (s - 33) : 0u);
        mask = s < 32 ? (1u << s) - 1u : 0u;
        for (i = 0; i < n; i += 4) {
            const mve_pred16_t pr = vctp32q((uint32_t)(n - i));
            const int32x4_t d = vsubq_n_s32(vmulq_n_s32(vldrbq_z_s32(x + i, pr), n), sum);
            const mve_pred16_t d_neg = vcmpltq_n_s32(d, 0);
            const uint32x4_t ad = vreinterpretq_u32_s32(vabsq_s32(d));
            const uint32x4_t lo = vmulq_n_u32(ad, (uint32_t)y);
            const uint32x4_t hi = vmulhq_u32(ad, vdupq_n_u32((uint32_t)y));
            const int32x4_t m = vldrwq_z_s32(p->multiplier + i, pr);
            const mve_pred16_t neg = (mve_pred16_t)(d_neg ^ vcmpltq_n_s32(m, 0));
            uint32x4_t z;
            int32x4_t v, o;
            mve_pred16_t v_neg;
            if (s < 32) {
                z = vaddq_u32(vshlq_r_u32(hi, 32 - s), vshlq_r_u32(lo, -s));
                z = vaddq_u32(z, vshlq_r_u32(vaddq_n_u32(vandq_u32(lo, vdupq_n_u32(mask)), half), -s));
            } else if (s == 32) {
                z = vaddq_u32(hi, vshrq_n_u32(lo, 31));
            } else {
                z = vshlq_r_u32(vaddq_n_u32(hi, half), 32 - s);
            }
            /* |round(z m / 2^shift)|: the high word plus 2^(shift-33), >> (shift - 32) */
            v = vreinterpretq_s32_u32(vshlq_u32(
                vaddq_u32(vmulhq_u32(z, vreinterpretq_u32_s32(vabsq_s32(m))),
                          vldrwq_z_u32((const uint32_t *)(const void *)(p->half_hi + i), pr)),
                vnegq_s32(vldrwq_z_s32(p->shift32 + i, pr))));
            v = vnegq_m_s32(v, v, neg);
            v = vaddq_s32(v, vldrwq_z_s32(p->bias + i, pr));
            v_neg = vcmpltq_n_s32(v, 0);
            o = vshrq_n_s32(vaddq_n_s32(vabsq_s32(v), 128), 8);
            o = vnegq_m_s32(o, o, v_neg);
            o = vminq_s32(vmaxq_s32(vaddq_n_s32(o, zp), vdupq_n_s32(-128)), vdupq_n_s32(127));
            vstrbq_p_s32(out + i, o, pr);
        }
    }
}

#endif
