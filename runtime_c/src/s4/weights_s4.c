/* Convolution, depthwise convolution and fully connected with int4 weights
 * (td_kernels_s4.h).  Each output channel's accumulator is
 *     bias + sum over valid taps of w * x + input_offset * sum of those w,
 * the int8 kernels' sum in another order (int32 addition is exact), so the
 * results are theirs bit for bit.  Weights are read four bytes (eight
 * weights) at a time where a run of them starts on a byte boundary. */
#include "td_kernels_s4.h"

/* Weight i of a packed array, sign-extended from its nibble. */
static inline int32_t s4_at(const uint8_t *w, int32_t i)
{
    const int32_t v = (i & 1) ? (w[i >> 1] >> 4) : (w[i >> 1] & 15);
    return (v ^ 8) - 8;
}

/* Sums over weights [start, start + n) of w and of w * x[i - start]. */
static void s4_dot(const uint8_t *w, int32_t start, int32_t n, const int8_t *x,
                   int32_t *dot, int32_t *wsum)
{
    int32_t acc = 0, sum = 0, i = 0;
    if (n > 0 && (start & 1)) {
        const int32_t w0 = s4_at(w, start);
        acc += w0 * x[0];
        sum += w0;
        i = 1;
    }
    {
        const uint8_t *wb = w + ((start + i) >> 1);
        /* eight weights a word: nibble k sign-extended by shifting it to the top and back */
        for (; i + 7 < n; i += 8, wb += 4) {
            const uint32_t v = (uint32_t)wb[0] | ((uint32_t)wb[1] << 8) | ((uint32_t)wb[2] << 16)
                               | ((uint32_t)wb[3] << 24);
#define TD_S4_NIBBLE(k)                                              \
            do {                                                         \
                const int32_t wk = (int32_t)(v << (28 - 4 * (k))) >> 28; \
                acc += wk * x[i + (k)];                                  \
                sum += wk;                                               \
            } while (0)
            TD_S4_NIBBLE(0); TD_S4_NIBBLE(1); TD_S4_NIBBLE(2); TD_S4_NIBBLE(3);
            TD_S4_NIBBLE(4); TD_S4_NIBBLE(5); TD_S4_NIBBLE(6); TD_S4_NIBBLE(7);
#undef TD_S4_NIBBLE
        }
        for (; i + 1 < n; i += 2, ++wb) {
            const int32_t lo = ((*wb & 15) ^ 8) - 8, hi = ((*wb >> 4) ^ 8) - 8;
            acc += lo * x[i] + hi * x[i + 1];
            sum += lo + hi;
        }
    }
    if (i < n) {
        const int32_t wl = s4_at(w, start + i);
        acc += wl * x[i];
        sum += wl;
    }
    *dot = acc;
    *wsum = sum;
}

/* One output pixel's taps: ky in [ky0, ky1), kx in [kx0, kx1), at input origin (iy0, ix0). */
typedef struct {
    int iy0, ix0, ky0, ky1, kx0, kx1;
} window;

/* Output channel oc's accumulator (without bias) over the window: grouped convolution,
 * weights [out_c][k_h][k_w][in_c / groups]. */
static int32_t conv_channel(const td_conv_s8_params *p, const int8_t *input, const uint8_t *weights,
                            int32_t oc, const window *wd)
{
    const int32_t in_c = p->in_c, cg = in_c / p->groups, ocg = p->out_c / p->groups;
    const int32_t k_len = p->k_h * p->k_w * cg;
    const int8_t *in_g = input + (oc / ocg) * cg;
    int32_t acc = 0, wsum = 0;
    int ky, kx;
    for (ky = wd->ky0; ky < wd->ky1; ++ky) {
        const int iy = wd->iy0 + ky * p->dil_h;
        for (kx = wd->kx0; kx < wd->kx1; ++kx) {
            int32_t dot, sum;
            s4_dot(weights, oc * k_len + (ky * p->k_w + kx) * cg, cg,
                   in_g + (iy * p->in_w + wd->ix0 + kx * p->dil_w) * in_c, &dot, &sum);
            acc += dot;
            wsum += sum;
        }
    }
    return acc + p->input_offset * wsum;
}

/* The same for a depthwise convolution, weights [k_h][k_w][out_c]. */
static int32_t dw_channel(const td_conv_s8_params *p, const int8_t *input, const uint8_t *weights,
                          int32_t oc, const window *wd)
{
    const int32_t out_c = p->out_c, in_c = p->in_c;
    const int8_t *in_ch = input + oc / (out_c / in_c);
    int32_t acc = 0, wsum = 0;
    int ky, kx;
    for (ky = wd->ky0; ky < wd->ky1; ++ky) {
        const int iy = wd->iy0 + ky * p->dil_h;
        for (kx = wd->kx0; kx < wd->kx1; ++kx) {
            const int32_t w = s4_at(weights, (ky * p->k_w + kx) * out_c + oc);
            acc += w * in_ch[(iy * p->in_w + wd->ix0 + kx * p->dil_w) * in_c];
            wsum += w;
        }
    }
    return acc + p->input_offset * wsum;
}

/* Every output pixel and channel: bias + the channel's accumulator, requantized. */
static void conv_layer(const td_conv_s8_params *p, const int8_t *input, const uint8_t *weights,
                       const int32_t *bias, int8_t *output, int depthwise)
{
    const int32_t out_c = p->out_c;
    int32_t oc, oy, ox;
    window wd;
    for (oy = 0; oy < p->out_h; ++oy) {
        wd.iy0 = oy * p->stride_h - p->pad_top;
        td_valid_taps(wd.iy0, p->dil_h, p->k_h, p->in_h, &wd.ky0, &wd.ky1);
        for (ox = 0; ox < p->out_w; ++ox) {
            wd.ix0 = ox * p->stride_w - p->pad_left;
            td_valid_taps(wd.ix0, p->dil_w, p->k_w, p->in_w, &wd.kx0, &wd.kx1);
            for (oc = 0; oc < out_c; ++oc) {
                const int32_t acc = depthwise ? dw_channel(p, input, weights, oc, &wd)
                                              : conv_channel(p, input, weights, oc, &wd);
                output[(oy * p->out_w + ox) * out_c + oc] = td_conv_requant(p, acc + (bias ? bias[oc] : 0), oc);
            }
        }
    }
}

void td_conv2d_s4(const td_conv_s8_params *p, const int8_t *input,
                  const uint8_t *weights, const int32_t *bias, int8_t *output)
{
    conv_layer(p, input, weights, bias, output, 0);
}

/* Depthwise windows up to this many taps take the channel-major path below. */
#define TD_S4_DW_TAPS 64

void td_depthwise_conv2d_s4(const td_conv_s8_params *p, const int8_t *input,
                            const uint8_t *weights, const int32_t *bias,
                            int8_t *output)
{
    /* Channel by channel: its taps unpacked once (not once per output pixel), then
     * every output pixel of the channel; the same sums as dw_channel.  A window wholly
     * inside the input adds the channel's constant (bias + input_offset * the sum of
     * all its weights) instead of summing the weights tap by tap; 3x3 undilated windows
     * have their taps unrolled. */
    const int32_t out_c = p->out_c, in_c = p->in_c, mult = out_c / in_c;
    const int32_t k_h = p->k_h, k_w = p->k_w, taps = k_h * k_w;
    const int32_t step_x = p->dil_w * in_c, step_y = p->dil_h * p->in_w * in_c;
    const int32_t span_y = (k_h - 1) * p->dil_h, span_x = (k_w - 1) * p->dil_w;
    const int unrolled = k_h == 3 && k_w == 3 && p->dil_h == 1 && p->dil_w == 1;
    int8_t wk[TD_S4_DW_TAPS];
    int32_t oc, oy, ox, t;
    if (taps > TD_S4_DW_TAPS) {
        conv_layer(p, input, weights, bias, output, 1);
        return;
    }
    for (oc = 0; oc < out_c; ++oc) {
        const int8_t *in_ch = input + oc / mult;
        int32_t wsum_all = 0, inner;
        for (t = 0; t < taps; ++t) {
            wk[t] = (int8_t)s4_at(weights, t * out_c + oc);
            wsum_all += wk[t];
        }
        inner = (bias ? bias[oc] : 0) + p->input_offset * wsum_all;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int iy0 = oy * p->stride_h - p->pad_top;
            const int rows_inside = iy0 >= 0 && iy0 + span_y < p->in_h;
            int ky0, ky1;
            td_valid_taps(iy0, p->dil_h, k_h, p->in_h, &ky0, &ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int ix0 = ox * p->stride_w - p->pad_left;
                int32_t acc;
                if (rows_inside && ix0 >= 0 && ix0 + span_x < p->in_w) {
                    const int8_t *x = in_ch + ((iy0 * p->in_w + ix0) * in_c);
                    if (unrolled) {
                        const int8_t *x1 = x + step_y, *x2 = x1 + step_y;
                        acc = wk[0] * x[0] + wk[1] * x[in_c] + wk[2] * x[2 * in_c]
                            + wk[3] * x1[0] + wk[4] * x1[in_c] + wk[5] * x1[2 * in_c]
                            + wk[6] * x2[0] + wk[7] * x2[in_c] + wk[8] * x2[2 * in_c];
                    } else {
                        int ky, kx;
                        acc = 0;
                        for (ky = 0; ky < k_h; ++ky) {
                            const int8_t *xr = x + ky * step_y;
                            for (kx = 0; kx < k_w; ++kx) {
                                acc += wk[ky * k_w + kx] * xr[kx * step_x];
                            }
                        }
                    }
                    acc += inner;
                } else {
                    int kx0, kx1, ky, kx;
                    int32_t wsum = 0;
                    acc = 0;
                    td_valid_taps(ix0, p->dil_w, k_w, p->in_w, &kx0, &kx1);
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int8_t *xr = in_ch + ((iy0 * p->in_w + ix0) * in_c + ky * step_y + kx0 * step_x);
                        const int8_t *w = wk + ky * k_w;
                        for (kx = kx0; kx < kx1; ++kx, xr += step_x) {
                            acc += w[kx] * *xr;
                            wsum += w[kx];
                        }
                    }
                    acc += p->input_offset * wsum + (bias ? bias[oc] : 0);
                }
                output[(oy * p->out_w + ox) * out_c + oc] = td_conv_requant(p, acc, oc);
            }
        }
    }
}

void td_fully_connected_s4(const td_fc_s8_params *p, const int8_t *input,
                           const uint8_t *weights, const int32_t *bias,
                           int8_t *output)
{
    const int32_t in_f = p->in_features, out_f = p->out_features;
    int32_t o, r;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *x = input + r * in_f;
        for (o = 0; o < out_f; ++o) {
            const int32_t mi = p->per_channel ? o : 0;
            int32_t dot, wsum, acc;
            s4_dot(weights, o * in_f, in_f, x, &dot, &wsum);
            acc = dot + p->input_offset * wsum + (bias ? bias[o] : 0);
            acc = td_mbqm(acc, p->multiplier[mi], p->shift[mi]) + p->output_offset;
            output[r * out_f + o] = (int8_t)td_clamp_s32(acc, p->act_min, p->act_max);
        }
    }
}
