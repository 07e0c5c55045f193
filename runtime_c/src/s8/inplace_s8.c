/* int8 convolutions whose output may overlap their input (see
 * td_kernels_inplace.h for the access order the memory planner relies on).
 *
 * Pixel-major: for each output pixel the valid kernel taps are computed once,
 * then each output channel's window sum acc = bias + sum w * (x + offset) is
 * requantized and stored before the next channel is computed.  The sum is
 * over the same valid taps as td_conv2d_s8 / td_depthwise_conv2d_s8, and
 * int32 addition is exact, so the results are bit-identical. */
#include "td_kernels_inplace.h"

/* Kernel taps [*lo, *hi) with 0 <= origin + k * dil < size, k in [0, k_n). */
static void taps(int origin, int dil, int k_n, int size, int *lo, int *hi)
{
    int a = 0, b = k_n;
    if (origin < 0) {
        a = (-origin + dil - 1) / dil;
    }
    if (origin + (k_n - 1) * dil >= size) {
        b = size - origin > 0 ? (size - origin + dil - 1) / dil : 0;
    }
    *lo = a;
    *hi = b > a ? b : a;
}

static int8_t requant(const td_conv_s8_params *p, int32_t acc, int oc)
{
    const int i = p->per_channel ? oc : 0;
    const int32_t v = td_mbqm(acc, p->multiplier[i], p->shift[i]) + p->output_offset;
    return (int8_t)td_clamp_s32(v, p->act_min, p->act_max);
}

/* One output pixel's window: rows iy0 + ky * dil_h for ky in [ky0, ky1),
 * columns ix0 + kx * dil_w for kx in [kx0, kx1). */
typedef struct {
    int iy0, ix0, ky0, ky1, kx0, kx1;
} window;

static void pixel_window(const td_conv_s8_params *p, int j, window *wd)
{
    const int oy = j / p->out_w, ox = j % p->out_w;
    wd->iy0 = oy * p->stride_h - p->pad_top;
    wd->ix0 = ox * p->stride_w - p->pad_left;
    taps(wd->iy0, p->dil_h, p->k_h, p->in_h, &wd->ky0, &wd->ky1);
    taps(wd->ix0, p->dil_w, p->k_w, p->in_w, &wd->kx0, &wd->kx1);
}

/* Grouped conv, output channel oc of the pixel whose window is wd. */
static int32_t conv_acc(const td_conv_s8_params *p, const int8_t *input,
                        const int8_t *weights, const int32_t *bias,
                        const window *wd, int oc)
{
    const int cg = p->in_c / p->groups, ocg = p->out_c / p->groups;
    const int8_t *w = weights + oc * (p->k_h * p->k_w * cg);
    const int8_t *in_g = input + (oc / ocg) * cg;
    const int32_t off = p->input_offset;
    int32_t acc = bias ? bias[oc] : 0;
    int ky, kx, c;
    for (ky = wd->ky0; ky < wd->ky1; ++ky) {
        const int iy = wd->iy0 + ky * p->dil_h;
        for (kx = wd->kx0; kx < wd->kx1; ++kx) {
            const int ix = wd->ix0 + kx * p->dil_w;
            const int8_t *xp = in_g + (iy * p->in_w + ix) * p->in_c;
            const int8_t *wp = w + (ky * p->k_w + kx) * cg;
            for (c = 0; c < cg; ++c) {
                acc += wp[c] * (xp[c] + off);
            }
        }
    }
    return acc;
}

/* Depthwise, output channel oc (input channel oc / multiplier). */
static int32_t dw_acc(const td_conv_s8_params *p, const int8_t *input,
                      const int8_t *weights, const int32_t *bias,
                      const window *wd, int oc)
{
    const int mult = p->out_c / p->in_c;
    const int8_t *in_ch = input + oc / mult;
    const int32_t off = p->input_offset;
    int32_t acc = bias ? bias[oc] : 0;
    int ky, kx;
    for (ky = wd->ky0; ky < wd->ky1; ++ky) {
        const int8_t *xr = in_ch + (wd->iy0 + ky * p->dil_h) * p->in_w * p->in_c;
        const int8_t *wr = weights + ky * p->k_w * p->out_c + oc;
        for (kx = wd->kx0; kx < wd->kx1; ++kx) {
            acc += wr[kx * p->out_c] * (xr[(wd->ix0 + kx * p->dil_w) * p->in_c] + off);
        }
    }
    return acc;
}

typedef int32_t (*acc_fn)(const td_conv_s8_params *p, const int8_t *input,
                          const int8_t *weights, const int32_t *bias,
                          const window *wd, int oc);

static void overlap_conv(const td_conv_s8_params *p, const int8_t *input,
                         const int8_t *weights, const int32_t *bias,
                         int8_t *output, int32_t backward, acc_fn fn)
{
    const int pixels = p->out_h * p->out_w, out_c = p->out_c;
    int n, m;
    for (n = 0; n < pixels; ++n) {
        const int j = backward ? pixels - 1 - n : n;
        int8_t *out = output + j * out_c;
        window wd;
        pixel_window(p, j, &wd);
        for (m = 0; m < out_c; ++m) {
            const int oc = backward ? out_c - 1 - m : m;
            out[oc] = requant(p, fn(p, input, weights, bias, &wd, oc), oc);
        }
    }
}

void td_conv2d_s8_overlap(const td_conv_s8_params *p, const int8_t *input,
                          const int8_t *weights, const int32_t *bias,
                          int8_t *output, int32_t backward)
{
    overlap_conv(p, input, weights, bias, output, backward, conv_acc);
}

void td_depthwise_conv2d_s8_overlap(const td_conv_s8_params *p,
                                    const int8_t *input,
                                    const int8_t *weights,
                                    const int32_t *bias, int8_t *output,
                                    int32_t backward)
{
    overlap_conv(p, input, weights, bias, output, backward, dw_acc);
}

/* td_add_s8's arithmetic for one element (a is input1, b input2). */
static int8_t add_one(const td_conv_add_s8_params *p, int32_t a, int32_t b)
{
    const int ls = (int)p->left_shift;
    const int32_t x1 = td_mbqm(td_shl_wrap(a + p->input1_offset, ls),
                               p->input1_multiplier, p->input1_shift);
    const int32_t x2 = td_mbqm(td_shl_wrap(b + p->input2_offset, ls),
                               p->input2_multiplier, p->input2_shift);
    const int32_t sum = (int32_t)((uint32_t)x1 + (uint32_t)x2);
    const int32_t o = td_mbqm(sum, p->output_multiplier, p->output_shift) +
                      p->output_offset;
    return (int8_t)td_clamp_s32(o, p->act_min, p->act_max);
}

void td_conv2d_add_s8(const td_conv_add_s8_params *p, const int8_t *input,
                      const int8_t *weights, const int32_t *bias,
                      const int8_t *residual, int8_t *output,
                      int32_t backward)
{
    const td_conv_s8_params *cp = p->conv;
    const int pixels = cp->out_h * cp->out_w, out_c = cp->out_c;
    int n, m;
    for (n = 0; n < pixels; ++n) {
        const int j = backward ? pixels - 1 - n : n;
        const int8_t *res = residual + j * out_c;
        int8_t *out = output + j * out_c;
        window wd;
        pixel_window(cp, j, &wd);
        for (m = 0; m < out_c; ++m) {
            const int oc = backward ? out_c - 1 - m : m;
            const int32_t c = requant(cp, conv_acc(cp, input, weights, bias, &wd, oc), oc);
            const int32_t r = res[oc];
            out[oc] = p->conv_is_input1 ? add_one(p, c, r) : add_one(p, r, c);
        }
    }
}
