/* Transposed convolution (ONNX ConvTranspose) over NHWC float32 activations,
 * as a gather: output pixel (oy, ox) sums the taps whose input position is a
 * whole input pixel, found once per output row and column
 * (td_conv_transpose_taps.h). */
#include "td_conv_transpose_taps.h"
#include "td_f32_internal.h"

void td_conv_transpose_f32(const td_conv_transpose_f32_params *p,
                           const float *input, const float *weights,
                           const float *bias, float *output)
{
    const int32_t in_c = p->in_c, out_c = p->out_c, k_w = p->k_w;
    const int32_t cg = in_c / p->groups, ocg = out_c / p->groups;
    const int32_t k_len = p->k_h * k_w * cg;
    const int step_h = td_tconv_step(p->stride_h, p->dil_h);
    const int step_w = td_tconv_step(p->stride_w, p->dil_w);
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        td_tconv_taps ty;
        td_tconv_find_taps(oy, p->pad_top, p->dil_h, p->stride_h, step_h,
                           p->k_h, p->in_h, &ty);
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            td_tconv_taps tx;
            float *out = output + (oy * p->out_w + ox) * out_c;
            td_tconv_find_taps(ox, p->pad_left, p->dil_w, p->stride_w, step_w,
                               k_w, p->in_w, &tx);
            for (int32_t oc = 0; oc < out_c; ++oc) {
                const float *x_g = input + (oc / ocg) * cg;
                const float *w_oc = weights + oc * k_len;
                float acc = bias ? bias[oc] : 0.0f;
                for (int my = 0; my < ty.n; ++my) {
                    const int ky = ty.k0 + my * step_h;
                    const float *x_row = x_g + (ty.i0 - my * ty.di) * p->in_w * in_c;
                    for (int mx = 0; mx < tx.n; ++mx) {
                        const int kx = tx.k0 + mx * step_w;
                        const float *xp = x_row + (tx.i0 - mx * tx.di) * in_c;
                        const float *wp = w_oc + (ky * k_w + kx) * cg;
                        for (int32_t c = 0; c < cg; ++c) {
                            acc = TD_MAC(acc, xp[c], wp[c]);
                        }
                    }
                }
                out[oc] = td_clampf(acc, p->act_min, p->act_max);
            }
        }
    }
}
