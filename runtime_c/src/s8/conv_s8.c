/* int8 convolutions (TFLite ConvPerChannel / DepthwiseConvPerChannel).
 *
 * Loop order is weight-stationary (output channel outermost) so that the sum
 * of a channel's weights is computed once: for interior output pixels, where
 * every tap is inside the image, acc = bias + input_offset * wsum +
 * sum(w * x) and the inner loop is a pure multiply-accumulate.  Border pixels
 * add the offset only over their valid taps, whose ranges are computed once
 * per row/column instead of testing every tap. */
#include "td_kernels_s8.h"

/* One output channel's window: taps ky in [ky0, ky1), kx in [kx0, kx1). */
typedef struct {
    int iy0, ix0, ky0, ky1, kx0, kx1;
} window;

static int is_full(const window *wd, const td_conv_s8_params *p)
{
    return wd->ky0 == 0 && wd->ky1 == p->k_h && wd->kx0 == 0 && wd->kx1 == p->k_w;
}

/* Grouped conv: sum over valid taps of w * (x + offset); the offset term is
 * added separately: off * wsum for full windows, per valid tap otherwise. */
static int32_t conv_window(const td_conv_s8_params *p, const int8_t *in_g,
                           const int8_t *w, int cg, const window *wd,
                           int32_t off_wsum)
{
    const int in_w = p->in_w, in_c = p->in_c;
    int32_t acc = 0, wsum = 0;
    int ky, kx, c;
    for (ky = wd->ky0; ky < wd->ky1; ++ky) {
        const int iy = wd->iy0 + ky * p->dil_h;
        for (kx = wd->kx0; kx < wd->kx1; ++kx) {
            const int ix = wd->ix0 + kx * p->dil_w;
            const int8_t *xp = in_g + (iy * in_w + ix) * in_c;
            const int8_t *wp = w + (ky * p->k_w + kx) * cg;
            for (c = 0; c < cg; ++c) {
                acc += wp[c] * xp[c];
            }
        }
    }
    if (is_full(wd, p)) {
        return acc + off_wsum;
    }
    for (ky = wd->ky0; ky < wd->ky1; ++ky) {
        for (kx = wd->kx0; kx < wd->kx1; ++kx) {
            const int8_t *wp = w + (ky * p->k_w + kx) * cg;
            for (c = 0; c < cg; ++c) {
                wsum += wp[c];
            }
        }
    }
    return acc + p->input_offset * wsum;
}

void td_conv2d_s8(const td_conv_s8_params *p, const int8_t *input,
                  const int8_t *weights, const int32_t *bias, int8_t *output)
{
    const int out_c = p->out_c, cg = p->in_c / p->groups;
    const int ocg = out_c / p->groups, k_len = p->k_h * p->k_w * cg;
    int oc, oy, ox, i;
    for (oc = 0; oc < out_c; ++oc) {
        const int8_t *w = weights + oc * k_len;
        const int8_t *in_g = input + (oc / ocg) * cg;
        const int32_t b = bias ? bias[oc] : 0;
        int32_t wsum = 0;
        window wd;
        for (i = 0; i < k_len; ++i) {
            wsum += w[i];
        }
        wsum *= p->input_offset;
        for (oy = 0; oy < p->out_h; ++oy) {
            wd.iy0 = oy * p->stride_h - p->pad_top;
            td_valid_taps(wd.iy0, p->dil_h, p->k_h, p->in_h, &wd.ky0, &wd.ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                wd.ix0 = ox * p->stride_w - p->pad_left;
                td_valid_taps(wd.ix0, p->dil_w, p->k_w, p->in_w, &wd.kx0, &wd.kx1);
                output[(oy * p->out_w + ox) * out_c + oc] =
                    td_conv_requant(p, b + conv_window(p, in_g, w, cg, &wd, wsum), oc);
            }
        }
    }
}

/* Depthwise window of output channel oc (input channel c), weights
 * [k_h][k_w][out_c]. */
static int32_t dw_window(const td_conv_s8_params *p, const int8_t *in_ch,
                         const int8_t *w_ch, const window *wd, int32_t off_wsum)
{
    const int row = p->in_w * p->in_c, in_c = p->in_c, out_c = p->out_c;
    int32_t acc = 0, wsum = 0;
    int ky, kx;
    for (ky = wd->ky0; ky < wd->ky1; ++ky) {
        const int8_t *xr = in_ch + (wd->iy0 + ky * p->dil_h) * row;
        const int8_t *wr = w_ch + ky * p->k_w * out_c;
        for (kx = wd->kx0; kx < wd->kx1; ++kx) {
            acc += wr[kx * out_c] * xr[(wd->ix0 + kx * p->dil_w) * in_c];
        }
    }
    if (is_full(wd, p)) {
        return acc + off_wsum;
    }
    for (ky = wd->ky0; ky < wd->ky1; ++ky) {
        for (kx = wd->kx0; kx < wd->kx1; ++kx) {
            wsum += w_ch[(ky * p->k_w + kx) * out_c];
        }
    }
    return acc + p->input_offset * wsum;
}

void td_depthwise_conv2d_s8(const td_conv_s8_params *p, const int8_t *input,
                            const int8_t *weights, const int32_t *bias,
                            int8_t *output)
{
    const int out_c = p->out_c, mult = p->out_c / p->in_c;
    const int taps = p->k_h * p->k_w;
    int oc, oy, ox, t;
    for (oc = 0; oc < out_c; ++oc) {
        const int8_t *w_ch = weights + oc;
        const int8_t *in_ch = input + oc / mult;
        const int32_t b = bias ? bias[oc] : 0;
        int32_t wsum = 0;
        window wd;
        for (t = 0; t < taps; ++t) {
            wsum += w_ch[t * out_c];
        }
        wsum *= p->input_offset;
        for (oy = 0; oy < p->out_h; ++oy) {
            wd.iy0 = oy * p->stride_h - p->pad_top;
            td_valid_taps(wd.iy0, p->dil_h, p->k_h, p->in_h, &wd.ky0, &wd.ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                wd.ix0 = ox * p->stride_w - p->pad_left;
                td_valid_taps(wd.ix0, p->dil_w, p->k_w, p->in_w, &wd.kx0, &wd.kx1);
                output[(oy * p->out_w + ox) * out_c + oc] =
                    td_conv_requant(p, b + dw_window(p, in_ch, w_ch, &wd, wsum), oc);
            }
        }
    }
}
