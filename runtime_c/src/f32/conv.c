/* 2-D convolution (ONNX Conv) over NHWC float32 activations.
 * td-requires: f32/fully_connected.c (td_f32_matmul_bt, td_f32_dot, td_f32_dot4) */
#include "td_f32_internal.h"

/* Taps [*k0, *k1) of a kernel axis whose input coordinate
 * start + k * dil falls inside [0, in). Computing the range once per output
 * position avoids testing every tap against the padding. */
static void tap_range(int32_t start, int32_t dil, int32_t k, int32_t in,
                      int32_t *k0, int32_t *k1)
{
    int32_t lo = 0;
    int32_t hi = k;
    if (start < 0) {
        lo = (-start + dil - 1) / dil;
    }
    if (start + (k - 1) * dil >= in) {
        hi = start < in ? (in - 1 - start) / dil + 1 : 0;
    }
    *k0 = lo;
    *k1 = hi > lo ? hi : lo;
}

/* The valid part of one output pixel's receptive field, for one group. */
typedef struct {
    const float *x;          /* input + first channel of the group */
    int32_t row_stride;      /* floats per input row (in_w * in_c) */
    int32_t in_c, icg, k_w;
    int32_t w_oc_stride;     /* floats per output channel of weights */
    int32_t iy0, ix0, dil_h, dil_w;
    int32_t ky0, ky1, kx0, kx1;
    int32_t contiguous;      /* see conv_general */
} conv_window;

/* acc[0..nw) += dot over n floats; nw is 4 (four output channels whose
 * weights are w_stride apart) or 1. */
static void seg_dot(int32_t n, const float *x, const float *w,
                    int32_t w_stride, int32_t nw, float acc[4])
{
    if (nw == 4) {
        td_f32_dot4(n, x, w, w_stride, acc);
    } else {
        acc[0] = td_f32_dot(n, x, w, acc[0]);
    }
}

/* Accumulates the window for nw (4 or 1) output channels starting at
 * weights w. */
static void window_dot(const conv_window *cw, const float *w, int32_t nw,
                       float acc[4])
{
    const int32_t icg = cw->icg;
    const int32_t tap_row = cw->k_w * icg;
    for (int32_t ky = cw->ky0; ky < cw->ky1; ++ky) {
        const int32_t iy = cw->iy0 + ky * cw->dil_h;
        const float *xrow = cw->x + iy * cw->row_stride;
        const float *wrow = w + ky * tap_row;
        if (cw->contiguous) {
            const int32_t n = (cw->kx1 - cw->kx0) * icg;
            seg_dot(n, xrow + (cw->ix0 + cw->kx0) * cw->in_c,
                    wrow + cw->kx0 * icg, cw->w_oc_stride, nw, acc);
            continue;
        }
        for (int32_t kx = cw->kx0; kx < cw->kx1; ++kx) {
            const int32_t ix = cw->ix0 + kx * cw->dil_w;
            seg_dot(icg, xrow + ix * cw->in_c, wrow + kx * icg,
                    cw->w_oc_stride, nw, acc);
        }
    }
}

/* Output channels [oc, oc_end) of one pixel, four at a time. */
static void conv_pixel_group(const conv_window *cw, const float *weights,
                             const float *bias, int32_t oc, int32_t oc_end,
                             float act_min, float act_max, float *out)
{
    while (oc < oc_end) {
        const int32_t nw = oc_end - oc >= 4 ? 4 : 1;
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        if (bias) {
            acc[0] = bias[oc];
            if (nw == 4) {
                acc[1] = bias[oc + 1];
                acc[2] = bias[oc + 2];
                acc[3] = bias[oc + 3];
            }
        }
        window_dot(cw, weights + oc * cw->w_oc_stride, nw, acc);
        for (int32_t j = 0; j < nw; ++j) {
            out[oc + j] = td_clampf(acc[j], act_min, act_max);
        }
        oc += nw;
    }
}

static void conv_general(const td_conv_f32_params *p, const float *input,
                         const float *weights, const float *bias,
                         float *output)
{
    const int32_t groups = p->groups;
    const int32_t ocg = p->out_c / groups;
    conv_window cw;
    cw.row_stride = p->in_w * p->in_c;
    cw.in_c = p->in_c;
    cw.icg = p->in_c / groups;
    cw.k_w = p->k_w;
    cw.w_oc_stride = p->k_h * p->k_w * cw.icg;
    cw.dil_h = p->dil_h;
    cw.dil_w = p->dil_w;
    /* With one group and unit width dilation the taps of a kernel row read
     * consecutive input pixels, so (kx, ic) is one contiguous dot product. */
    cw.contiguous = groups == 1 && p->dil_w == 1;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        cw.iy0 = oy * p->stride_h - p->pad_top;
        tap_range(cw.iy0, p->dil_h, p->k_h, p->in_h, &cw.ky0, &cw.ky1);
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            float *out = output + (oy * p->out_w + ox) * p->out_c;
            cw.ix0 = ox * p->stride_w - p->pad_left;
            tap_range(cw.ix0, p->dil_w, p->k_w, p->in_w, &cw.kx0, &cw.kx1);
            for (int32_t g = 0; g < groups; ++g) {
                cw.x = input + g * cw.icg;
                conv_pixel_group(&cw, weights, bias, g * ocg, (g + 1) * ocg,
                                 p->act_min, p->act_max, out);
            }
        }
    }
}

/* Per-convolution constants of the depthwise path. */
typedef struct {
    int32_t in_c, mult, taps, k_w;
    int32_t x_step, y_step;   /* floats between tap columns / rows */
    const float *bias;
    float act_min, act_max;
} dw_params;

/* One depthwise output pixel: the valid taps form a rows x cols block whose
 * first input pixel is x (channel 0); w points at that tap in output
 * channel 0's kernel. */
static TD_NOINLINE void dw_pixel(const dw_params *d, const float *x,
                                 const float *w, int32_t rows, int32_t cols,
                                 float *out)
{
    const int32_t x_step = d->x_step, k_w = d->k_w;
    int32_t oc = 0;
    for (int32_t c = 0; c < d->in_c; ++c, ++x) {
        for (int32_t j = 0; j < d->mult; ++j, ++oc, w += d->taps) {
            float acc = d->bias ? d->bias[oc] : 0.0f;
            const float *xr = x, *wr = w;
            for (int32_t r = 0; r < rows; ++r, xr += d->y_step, wr += k_w) {
                const float *xp = xr;
                for (int32_t k = 0; k < cols; ++k, xp += x_step) {
                    acc = TD_MAC(acc, *xp, wr[k]);
                }
            }
            out[oc] = td_clampf(acc, d->act_min, d->act_max);
        }
    }
}

/* groups == in_c: output channel oc = c * mult + j reads input channel c
 * only. The taps are summed in a register, reading the input with a
 * stride of in_c and the oc's weights contiguously. */
static void conv_depthwise(const td_conv_f32_params *p, const float *input,
                           const float *weights, const float *bias,
                           float *output)
{
    dw_params d;
    d.in_c = p->in_c;
    d.mult = p->out_c / p->in_c;
    d.taps = p->k_h * p->k_w;
    d.k_w = p->k_w;
    d.x_step = p->dil_w * p->in_c;
    d.y_step = p->dil_h * p->in_w * p->in_c;
    d.bias = bias;
    d.act_min = p->act_min;
    d.act_max = p->act_max;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        int32_t ky0, ky1;
        tap_range(iy0, p->dil_h, p->k_h, p->in_h, &ky0, &ky1);
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            int32_t kx0, kx1;
            tap_range(ix0, p->dil_w, p->k_w, p->in_w, &kx0, &kx1);
            const int32_t rows = ky1 - ky0, cols = kx1 - kx0;
            /* Input pixel and kernel tap of the first valid tap (unused,
             * and kept in bounds, when no tap is valid). */
            const int32_t any = rows > 0 && cols > 0;
            const int32_t pixel =
                any ? (iy0 + ky0 * p->dil_h) * p->in_w + ix0 + kx0 * p->dil_w
                    : 0;
            const int32_t tap = any ? ky0 * p->k_w + kx0 : 0;
            dw_pixel(&d, input + pixel * p->in_c, weights + tap, rows, cols,
                     output + (oy * p->out_w + ox) * p->out_c);
        }
    }
}

void td_conv2d_f32(const td_conv_f32_params *p, const float *input,
                   const float *weights, const float *bias, float *output)
{
    const int pointwise = p->k_h == 1 && p->k_w == 1 && p->stride_h == 1 &&
                          p->stride_w == 1 && p->pad_top == 0 &&
                          p->pad_left == 0 && p->out_h == p->in_h &&
                          p->out_w == p->in_w;
    if (p->groups == 1 && pointwise) {
        /* Every output pixel is a matrix-vector product of one input pixel. */
        td_f32_matmul_bt(p->out_h * p->out_w, p->in_c, p->out_c, input,
                         weights, bias, p->act_min, p->act_max, output);
    } else if (p->groups == p->in_c && p->groups > 1) {
        conv_depthwise(p, input, weights, bias, output);
    } else {
        conv_general(p, input, weights, bias, output);
    }
}
