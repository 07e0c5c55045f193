/* int8 transposed convolution (ONNX ConvTranspose with the arithmetic of
 * TFLite's TRANSPOSE_CONV).
 *
 * Written as a gather: output pixel (oy, ox) sums the taps (ky, kx) whose
 * input row iy = (oy + pad_top - ky * dil_h) / stride_h is a whole number
 * inside the input (likewise ix), found once per output row and column
 * (td_conv_transpose_taps.h).  The int32 sum is the one TFLite's scatter into
 * an int32 scratch buffer produces, without the scratch buffer. */
#include "td_conv_transpose_taps.h"
#include "td_kernels_s8.h"

void td_conv_transpose_s8(const td_conv_transpose_s8_params *p,
                          const int8_t *input, const int8_t *weights,
                          const int32_t *bias, int8_t *output)
{
    const int in_c = p->in_c, out_c = p->out_c, k_w = p->k_w;
    const int cg = in_c / p->groups, ocg = out_c / p->groups;
    const int k_len = p->k_h * k_w * cg;
    const int step_h = td_tconv_step(p->stride_h, p->dil_h);
    const int step_w = td_tconv_step(p->stride_w, p->dil_w);
    const int32_t in_off = p->input_offset;
    int oy, ox, oc, my, mx, c;
    for (oy = 0; oy < p->out_h; ++oy) {
        td_tconv_taps ty;
        td_tconv_find_taps(oy, p->pad_top, p->dil_h, p->stride_h, step_h,
                           p->k_h, p->in_h, &ty);
        for (ox = 0; ox < p->out_w; ++ox) {
            td_tconv_taps tx;
            int8_t *out = output + (oy * p->out_w + ox) * out_c;
            td_tconv_find_taps(ox, p->pad_left, p->dil_w, p->stride_w, step_w,
                               k_w, p->in_w, &tx);
            for (oc = 0; oc < out_c; ++oc) {
                const int8_t *x_g = input + (oc / ocg) * cg;
                const int8_t *w_oc = weights + oc * k_len;
                const int pc = p->per_channel ? oc : 0;
                int32_t acc = bias ? bias[oc] : 0;
                for (my = 0; my < ty.n; ++my) {
                    const int ky = ty.k0 + my * step_h;
                    const int8_t *x_row = x_g + (ty.i0 - my * ty.di) * p->in_w * in_c;
                    for (mx = 0; mx < tx.n; ++mx) {
                        const int kx = tx.k0 + mx * step_w;
                        const int8_t *xp = x_row + (tx.i0 - mx * tx.di) * in_c;
                        const int8_t *wp = w_oc + (ky * k_w + kx) * cg;
                        for (c = 0; c < cg; ++c) {
                            acc += (xp[c] + in_off) * wp[c];
                        }
                    }
                }
                out[oc] = (int8_t)td_clamp_s32(
                    td_mbqm(acc, p->multiplier[pc], p->shift[pc]) +
                        p->output_offset,
                    p->act_min, p->act_max);
            }
        }
    }
}
