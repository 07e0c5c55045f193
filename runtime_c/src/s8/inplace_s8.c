/* int8 convolutions whose output may overlap their input (see
 * td_kernels_inplace.h for the access order the memory planner relies on).
 *
 * Pixel-major: for each output pixel the valid kernel taps are computed once,
 * then each output channel's window sum acc = bias + sum w * (x + offset) is
 * requantized and stored before the next channel is computed.  The sum is
 * over the same valid taps as td_conv2d_s8 / td_depthwise_conv2d_s8, and
 * int32 addition is exact, so the results are bit-identical. */
#include "td_kernels_inplace.h"

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
    td_valid_taps(wd->iy0, p->dil_h, p->k_h, p->in_h, &wd->ky0, &wd->ky1);
    td_valid_taps(wd->ix0, p->dil_w, p->k_w, p->in_w, &wd->kx0, &wd->kx1);
}

/* Output channels are computed in blocks of up to BLOCK: a block's window
 * sums are all accumulated before any of its values is written.  That only
 * moves reads earlier and writes later than the one-value-at-a-time order
 * the planner models, so every overlap that is safe there is safe here. */
#define BLOCK 4

#if defined(__GNUC__) || defined(__clang__)
#define TD_NOINLINE __attribute__((noinline))
#else
#define TD_NOINLINE
#endif

/* acc[0..3] += sum_c w_k[c] * (x[c] + off) for the rows w_k = w + k * stride.
 * Kept out of line so that its few variables stay in registers. */
static TD_NOINLINE void dot4(const int8_t *x, const int8_t *w, int stride, int n,
                             int32_t off, int32_t *acc)
{
    const int8_t *w1 = w + stride, *w2 = w1 + stride, *w3 = w2 + stride;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int c;
    for (c = 0; c < n; ++c) {
        const int32_t v = x[c] + off;
        a0 += w[c] * v;
        a1 += w1[c] * v;
        a2 += w2[c] * v;
        a3 += w3[c] * v;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Depthwise, four adjacent channels: acc[i] += w[i] * (x[i] + off) over a
 * rows x cols grid of taps (x and w advance by the given steps). */
static TD_NOINLINE void dw4(const int8_t *x, const int8_t *w, int rows, int cols,
                            int x_col, int x_row, int w_col, int w_row,
                            int32_t off, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int r, c;
    for (r = 0; r < rows; ++r) {
        for (c = 0; c < cols; ++c) {
            a0 += w[0] * (x[0] + off);
            a1 += w[1] * (x[1] + off);
            a2 += w[2] * (x[2] + off);
            a3 += w[3] * (x[3] + off);
            x += x_col;
            w += w_col;
        }
        x += x_row;
        w += w_row;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Sums of channels [oc, oc + n) of a grouped conv (n <= BLOCK, one group). */
static void conv_block(const td_conv_s8_params *p, const int8_t *input,
                       const int8_t *weights, const int32_t *bias,
                       const window *wd, int oc, int n, int32_t *acc)
{
    const int cg = p->in_c / p->groups, ocg = p->out_c / p->groups;
    const int k_len = p->k_h * p->k_w * cg;
    const int8_t *in_g = input + (oc / ocg) * cg;
    const int32_t off = p->input_offset;
    int ky, kx, c, i;
    for (ky = wd->ky0; ky < wd->ky1; ++ky) {
        const int iy = wd->iy0 + ky * p->dil_h;
        for (kx = wd->kx0; kx < wd->kx1; ++kx) {
            const int ix = wd->ix0 + kx * p->dil_w;
            const int8_t *xp = in_g + (iy * p->in_w + ix) * p->in_c;
            const int8_t *w0 = weights + oc * k_len + (ky * p->k_w + kx) * cg;
            if (n == BLOCK) {
                dot4(xp, w0, k_len, cg, off, acc);
            } else {
                for (c = 0; c < cg; ++c) {
                    const int32_t x = xp[c] + off;
                    for (i = 0; i < n; ++i) {
                        acc[i] += w0[i * k_len + c] * x;
                    }
                }
            }
        }
    }
    for (i = 0; i < n; ++i) {
        acc[i] += bias ? bias[oc + i] : 0;
    }
}

/* Sums of depthwise channels [oc, oc + n) (input channel oc / multiplier). */
static void dw_block(const td_conv_s8_params *p, const int8_t *input,
                     const int8_t *weights, const int32_t *bias,
                     const window *wd, int oc, int n, int32_t *acc)
{
    const int mult = p->out_c / p->in_c, out_c = p->out_c, in_c = p->in_c;
    const int32_t off = p->input_offset;
    int i;
    if (mult == 1 && n == BLOCK && wd->ky1 > wd->ky0 && wd->kx1 > wd->kx0) {
        const int cols = wd->kx1 - wd->kx0, x_col = p->dil_w * in_c;
        const int8_t *x = input + ((wd->iy0 + wd->ky0 * p->dil_h) * p->in_w +
                                   wd->ix0 + wd->kx0 * p->dil_w) * in_c + oc;
        const int8_t *w = weights + (wd->ky0 * p->k_w + wd->kx0) * out_c + oc;
        dw4(x, w, wd->ky1 - wd->ky0, cols, x_col, p->dil_h * p->in_w * in_c - cols * x_col,
            out_c, (p->k_w - cols) * out_c, off, acc);
    } else {
        int ky, kx;
        for (ky = wd->ky0; ky < wd->ky1; ++ky) {
            const int8_t *xr = input + (wd->iy0 + ky * p->dil_h) * p->in_w * in_c;
            const int8_t *wr = weights + ky * p->k_w * out_c + oc;
            for (kx = wd->kx0; kx < wd->kx1; ++kx) {
                const int8_t *xp = xr + (wd->ix0 + kx * p->dil_w) * in_c;
                const int8_t *wp = wr + kx * out_c;
                for (i = 0; i < n; ++i) {
                    acc[i] += wp[i] * (xp[(oc + i) / mult] + off);
                }
            }
        }
    }
    for (i = 0; i < n; ++i) {
        acc[i] += bias ? bias[oc + i] : 0;
    }
}

/* Channel blocks of one pixel: [first, first + n) in walking order. */
static int block_count(const td_conv_s8_params *p, int depthwise)
{
    /* grouped convs: a block must not straddle two groups */
    const int span = depthwise ? p->out_c : p->out_c / p->groups;
    const int per = (span + BLOCK - 1) / BLOCK;
    return per * (p->out_c / span);
}

static void block_at(const td_conv_s8_params *p, int depthwise, int b,
                     int *first, int *n)
{
    const int span = depthwise ? p->out_c : p->out_c / p->groups;
    const int per = (span + BLOCK - 1) / BLOCK;
    const int g = b / per, k = b % per;
    *first = g * span + k * BLOCK;
    *n = span - k * BLOCK < BLOCK ? span - k * BLOCK : BLOCK;
}

static void overlap_conv(const td_conv_s8_params *p, const int8_t *input,
                         const int8_t *weights, const int32_t *bias,
                         int8_t *output, int32_t backward, int depthwise)
{
    const int pixels = p->out_h * p->out_w, out_c = p->out_c;
    const int blocks = block_count(p, depthwise);
    int32_t acc[BLOCK];
    int n, m, i;
    for (n = 0; n < pixels; ++n) {
        const int j = backward ? pixels - 1 - n : n;
        int8_t *out = output + j * out_c;
        window wd;
        pixel_window(p, j, &wd);
        for (m = 0; m < blocks; ++m) {
            int oc, cnt;
            block_at(p, depthwise, backward ? blocks - 1 - m : m, &oc, &cnt);
            for (i = 0; i < BLOCK; ++i) {
                acc[i] = 0;
            }
            if (depthwise) {
                dw_block(p, input, weights, bias, &wd, oc, cnt, acc);
            } else {
                conv_block(p, input, weights, bias, &wd, oc, cnt, acc);
            }
            for (i = 0; i < cnt; ++i) {
                out[oc + i] = td_conv_requant(p, acc[i], oc + i);
            }
        }
    }
}

void td_conv2d_s8_overlap(const td_conv_s8_params *p, const int8_t *input,
                          const int8_t *weights, const int32_t *bias,
                          int8_t *output, int32_t backward)
{
    overlap_conv(p, input, weights, bias, output, backward, 0);
}

void td_depthwise_conv2d_s8_overlap(const td_conv_s8_params *p,
                                    const int8_t *input,
                                    const int8_t *weights,
                                    const int32_t *bias, int8_t *output,
                                    int32_t backward)
{
    overlap_conv(p, input, weights, bias, output, backward, 1);
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
    const int blocks = block_count(cp, 0);
    int32_t acc[BLOCK];
    int n, m, i;
    for (n = 0; n < pixels; ++n) {
        const int j = backward ? pixels - 1 - n : n;
        const int8_t *res = residual + j * out_c;
        int8_t *out = output + j * out_c;
        window wd;
        pixel_window(cp, j, &wd);
        for (m = 0; m < blocks; ++m) {
            int oc, cnt;
            block_at(cp, 0, backward ? blocks - 1 - m : m, &oc, &cnt);
            for (i = 0; i < BLOCK; ++i) {
                acc[i] = 0;
            }
            conv_block(cp, input, weights, bias, &wd, oc, cnt, acc);
            for (i = 0; i < cnt; ++i) {
                const int32_t c = td_conv_requant(cp, acc[i], oc + i);
                const int32_t r = res[oc + i];
                out[oc + i] = p->conv_is_input1 ? add_one(p, c, r) : add_one(p, r, c);
            }
        }
    }
}
