/* Depthwise convolution with int4 weights, Helium: see td_mve_s4.h. */
#include <arm_mve.h>

#include "td_mve_s4.h"

#if !defined(__ARM_FEATURE_MVE)
#error "mve_dw_s4.c needs a Helium (MVE) target"
#endif

/* Four channels' sums (int32 lanes, in the order of the block's rq arrays at r, four
 * arrays of c apart) -> int8 at out + offsets.  As td_mbqm: VQRDMULH after the left
 * shift; negative values lowered by one where the shift is right, then VRSHL (round
 * half away from zero, as TFLite's divide by a power of two). */
static void requant4(int32x4_t v, const int32_t *r, int32_t c, const td_conv_s8_params *p,
                     int8_t *out, uint32x4_t offsets)
{
    const int32x4_t right = vldrwq_s32(r + 3 * c);
    v = vaddq_s32(v, vldrwq_s32(r));
    v = vshlq_s32(v, vldrwq_s32(r + 2 * c));
    v = vqrdmulhq_s32(v, vldrwq_s32(r + c));
    /* -1 for negative values where the shift is right (right < 0), else 0 */
    v = vqaddq_s32(v, vandq_s32(vshrq_n_s32(v, 31), vshrq_n_s32(right, 31)));
    v = vrshlq_s32(v, right);
    v = vaddq_n_s32(v, p->output_offset);
    v = vmaxq_s32(v, vdupq_n_s32(p->act_min));
    v = vminq_s32(v, vdupq_n_s32(p->act_max));
    vstrbq_scatter_offset_s32(out, offsets, v);
}

void td_mve_dw_s4(const td_conv_s8_params *p, const int8_t *input, const int32_t *rq,
                  const uint8_t *weights, int8_t *output)
{
    const int32_t c = p->in_c, k_h = p->k_h, k_w = p->k_w, taps = k_h * k_w;
    const int16_t zp = (int16_t)-p->input_offset;
    const uint32x4_t even = vidupq_n_u32(0, 2), odd = vidupq_n_u32(1, 2);
    int32_t oy, ox, b, ky, kx;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            int8_t *out = output + (oy * p->out_w + ox) * c;
            for (b = 0; b < c; b += 16) {
                const uint8_t *w = weights + b / 16 * taps * 8;
                int16x8_t acc_lo = vdupq_n_s16(0), acc_hi = vdupq_n_s16(0);
                for (ky = 0; ky < k_h; ++ky) {
                    const int32_t iy = iy0 + ky;
                    for (kx = 0; kx < k_w; ++kx, w += 8) {
                        const int32_t ix = ix0 + kx;
                        const int16x8_t wv = vreinterpretq_s16_u16(vldrbq_u16(w));
                        const int16x8_t lo = vshrq_n_s16(vshlq_n_s16(wv, 12), 12);
                        const int16x8_t hi = vshrq_n_s16(vshlq_n_s16(wv, 8), 12);
                        if (iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w) {
                            const int8_t *x = input + ((iy * p->in_w + ix) * c + b);
                            acc_lo = vaddq_s16(acc_lo, vmulq_s16(lo, vldrbq_s16(x)));
                            acc_hi = vaddq_s16(acc_hi, vmulq_s16(hi, vldrbq_s16(x + 8)));
                        } else {
                            acc_lo = vmlaq_n_s16(acc_lo, lo, zp);
                            acc_hi = vmlaq_n_s16(acc_hi, hi, zp);
                        }
                    }
                }
                requant4(vmovlbq_s16(acc_lo), rq + b, c, p, out + b, even);
                requant4(vmovltq_s16(acc_lo), rq + b + 4, c, p, out + b, odd);
                requant4(vmovlbq_s16(acc_hi), rq + b + 8, c, p, out + b + 8, even);
                requant4(vmovltq_s16(acc_hi), rq + b + 12, c, p, out + b + 8, odd);
            }
        }
    }
}
