/* Depthwise convolution with int4 weights, Armv7E-M DSP: see td_arm_s4.h. */
#include "td_arm_s4.h"
#include "td_arm_common.h"

#if defined(__ARM_FEATURE_DSP)

/* One tap for 8 channels: weights word w, the inputs at xp (channels 0-3 in its first
 * word, 4-7 in its second; the zero point for a padding tap), into the accumulators
 * a0..a7 (scalars: kept in registers). */
#define TD_DW_S4_TAP(w, xp)                                                            \
    do {                                                                               \
        const td_u32u *xw_ = (const td_u32u *)(const void *)(xp);                     \
        const uint32_t x0 = xw_[0], x1 = xw_[1];                                       \
        const uint32_t t_ = ((w) << 4) & 0xF0F0F0F0u, u_ = (w) & 0xF0F0F0F0u;         \
        int16x2_t s_ = __sxtb16((int8x4_t)t_), x_ = __sxtb16((int8x4_t)(x0));          \
        a0 = __smlabb(x_, s_, a0);                                                     \
        a2 = __smlatt(x_, s_, a2);                                                     \
        s_ = __sxtb16((int8x4_t)u_);                                                   \
        x_ = (int16x2_t)td_arm_sxtb16_ror8(x0);                                        \
        a1 = __smlabb(x_, s_, a1);                                                     \
        a3 = __smlatt(x_, s_, a3);                                                     \
        s_ = (int16x2_t)td_arm_sxtb16_ror8(t_);                                        \
        x_ = __sxtb16((int8x4_t)(x1));                                                 \
        a4 = __smlabb(x_, s_, a4);                                                     \
        a6 = __smlatt(x_, s_, a6);                                                     \
        s_ = (int16x2_t)td_arm_sxtb16_ror8(u_);                                        \
        x_ = (int16x2_t)td_arm_sxtb16_ror8(x1);                                        \
        a5 = __smlabb(x_, s_, a5);                                                     \
        a7 = __smlatt(x_, s_, a7);                                                     \
    } while (0)

/* 16 times a channel's sum -> its int8 output (the portable requantization). */
static inline int8_t requant(const td_conv_s8_params *p, int32_t acc16, int32_t ch)
{
    const int32_t mi = p->per_channel ? ch : 0;
    const int32_t v = td_mbqm(acc16 >> 4, p->multiplier[mi], p->shift[mi]) + p->output_offset;
    return (int8_t)td_clamp_s32(v, p->act_min, p->act_max);
}

/* The inputs of tap (iy, ix) from channel c0 on, or the zero point (zbuf) for a
 * padding tap. */
static inline const int8_t *tap_input(const td_conv_s8_params *p, const int8_t *input,
                                      int32_t iy, int32_t ix, int32_t c, int32_t c0,
                                      const uint32_t *zbuf)
{
    return iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w
        ? input + ((iy * p->in_w + ix) * c + c0)
        : (const int8_t *)(const void *)zbuf;
}

/* Channel j's weight (16 times it) in a tap's word: the nibble TD_DW_S4_TAP gives it. */
static inline int32_t tail_weight16(uint32_t w, int32_t j)
{
    static const uint8_t nibble[8] = {0, 1, 4, 5, 2, 3, 6, 7};
    return (int32_t)(int8_t)(uint8_t)((w >> (4u * nibble[j])) << 4);
}

void td_arm_dw_s4(const td_conv_s8_params *p, const int8_t *input, const int32_t *start,
                  const int32_t *weights, int8_t *output)
{
    /* per tap `words` weight words: `groups` of 8 channels, then one for the last
     * c % 8 channels (taken one by one) */
    const int32_t c = p->in_c, k_h = p->k_h, k_w = p->k_w, groups = c / 8, rest = c % 8;
    const int32_t words = groups + (rest > 0);
    const uint32_t zz = ((uint32_t)(-p->input_offset) & 0xffu) * 0x01010101u;
    const uint32_t zbuf[2] = {zz, zz};
    int32_t oy, ox, g, ky, kx;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            int8_t *out = output + (oy * p->out_w + ox) * c;
            for (g = 0; g < groups; ++g) {
                const int32_t *w = weights + g, *st = start + 8 * g;
                int32_t a0 = st[0], a1 = st[1], a2 = st[2], a3 = st[3];
                int32_t a4 = st[4], a5 = st[5], a6 = st[6], a7 = st[7];
                int8_t *o = out + 8 * g;
                for (ky = 0; ky < k_h; ++ky) {
                    const int32_t iy = iy0 + ky;
                    for (kx = 0; kx < k_w; ++kx, w += words) {
                        const int8_t *xp = tap_input(p, input, iy, ix0 + kx, c, 8 * g, zbuf);
                        TD_DW_S4_TAP((uint32_t)*w, xp);
                    }
                }
                o[0] = requant(p, a0, 8 * g);
                o[1] = requant(p, a1, 8 * g + 1);
                o[2] = requant(p, a2, 8 * g + 2);
                o[3] = requant(p, a3, 8 * g + 3);
                o[4] = requant(p, a4, 8 * g + 4);
                o[5] = requant(p, a5, 8 * g + 5);
                o[6] = requant(p, a6, 8 * g + 6);
                o[7] = requant(p, a7, 8 * g + 7);
            }
            if (rest) {
                const int32_t *w = weights + groups, *st = start + 8 * groups;
                int32_t acc[8], j;
                for (j = 0; j < rest; ++j) {
                    acc[j] = st[j];
                }
                for (ky = 0; ky < k_h; ++ky) {
                    const int32_t iy = iy0 + ky;
                    for (kx = 0; kx < k_w; ++kx, w += words) {
                        const int8_t *xp = tap_input(p, input, iy, ix0 + kx, c, 8 * groups, zbuf);
                        for (j = 0; j < rest; ++j) {
                            acc[j] += xp[j] * tail_weight16((uint32_t)*w, j);
                        }
                    }
                }
                for (j = 0; j < rest; ++j) {
                    out[8 * groups + j] = requant(p, acc[j], 8 * groups + j);
                }
            }
        }
    }
}

#endif /* __ARM_FEATURE_DSP */
