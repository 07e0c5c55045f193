/* Convolution with int4 weights, Helium: see td_mve_s4.h.  The windows are copied by
 * td_mve_im2col (arm/mve_s8.c, declared in td_arm_mve.h). */
#include <arm_mve.h>

#include "td_arm_mve.h"
#include "td_mve_s4.h"

#if !defined(__ARM_FEATURE_MVE)
#error "mve_conv_s4.c needs a Helium (MVE) target"
#endif

/* The accumulators of n (1..TD_MVE_S4_PIXELS) pixels' rows x (stride kc * 16) with one
 * channel's packed row w (kc * 8 bytes), from start. */
static void dot_pixels(const int8_t *x, const uint8_t *w, int32_t kc, int n, int32_t start,
                       int32_t *acc)
{
    const int32_t half = kc * 8, row = kc * 16;
    int32_t a0 = start, a1 = start, a2 = start, a3 = start, j;
    for (j = 0; j < half; j += 16) {
        const int8x16_t b = vreinterpretq_s8_u8(vldrbq_u8(w + j));
        const int8x16_t lo = vshrq_n_s8(vshlq_n_s8(b, 4), 4);
        const int8x16_t hi = vshrq_n_s8(b, 4);
        a0 = vmladavaq_s8(a0, lo, vldrbq_s8(x + j));
        a0 = vmladavaq_s8(a0, hi, vldrbq_s8(x + half + j));
        if (n > 1) {
            a1 = vmladavaq_s8(a1, lo, vldrbq_s8(x + row + j));
            a1 = vmladavaq_s8(a1, hi, vldrbq_s8(x + row + half + j));
        }
        if (n > 2) {
            a2 = vmladavaq_s8(a2, lo, vldrbq_s8(x + 2 * row + j));
            a2 = vmladavaq_s8(a2, hi, vldrbq_s8(x + 2 * row + half + j));
        }
        if (n > 3) {
            a3 = vmladavaq_s8(a3, lo, vldrbq_s8(x + 3 * row + j));
            a3 = vmladavaq_s8(a3, hi, vldrbq_s8(x + 3 * row + half + j));
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* td_mbqm of four accumulators (td_mve_mbqm4), then the offset, the clamp and a byte
 * store every out_c bytes (lanes in pr). */
static void requant4(int32x4_t acc, int32_t mult, int32_t shift, int32_t offset, int32_t lo,
                     int32_t hi, int8_t *out, uint32x4_t offsets, mve_pred16_t pr)
{
    int32x4_t v = vaddq_n_s32(td_mve_mbqm4(acc, mult, shift), offset);
    v = td_mve_clamp4(v, lo, hi);
    vstrbq_scatter_offset_p_s32(out, offsets, v, pr);
}

void td_mve_conv_s4(const td_conv_s8_params *p, const int8_t *input, const int32_t *start,
                    const uint8_t *weights, int8_t *output, int8_t *blk, int32_t kc)
{
    const int32_t pixels = p->out_h * p->out_w, out_c = p->out_c, half = kc * 8;
    /* in locals: the byte stores below may alias anything p points to */
    const int32_t *mult = p->multiplier, offset = p->output_offset;
    const int32_t lo = p->act_min, hi = p->act_max;
    const int8_t *shift = p->shift;
    /* the byte offsets of the block's pixels in the output: 0, out_c, 2 out_c, 3 out_c */
    const uint32x4_t offsets = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)out_c);
    int32_t px, c;
    for (px = 0; px < pixels; px += TD_MVE_S4_PIXELS) {
        const int n = pixels - px < TD_MVE_S4_PIXELS ? (int)(pixels - px) : TD_MVE_S4_PIXELS;
        td_mve_im2col(input, blk, (int)px, n, p->in_h, p->in_w, p->in_c, p->out_w, p->k_h,
                      p->k_w, p->stride_h, p->stride_w, p->pad_top, p->pad_left, (int)kc,
                      -p->input_offset);
        for (c = 0; c < out_c; ++c) {
            const int32_t mi = p->per_channel ? c : 0;
            int32_t acc[TD_MVE_S4_PIXELS];
            dot_pixels(blk, weights + c * half, kc, n, start[c], acc);
            requant4(vldrwq_s32(acc), mult[mi], shift[mi], offset, lo, hi,
                     output + px * out_c + c, offsets, vctp32q((uint32_t)n));
        }
    }
}
