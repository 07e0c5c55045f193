/* Max and average pooling (ONNX MaxPool / AveragePool) over NHWC float32. */
#include <float.h>

#include "td_f32_internal.h"

/* Taps [*k0, *k1) of a window starting at input coordinate `start`, taps
 * `dil` apart, that lie inside [0, in). */
static void window_range(int32_t start, int32_t k, int32_t dil, int32_t in,
                         int32_t *k0, int32_t *k1)
{
    int32_t lo, hi;
    if (dil == 1) { /* no division: cores without a divider pay for one */
        lo = start < 0 ? -start : 0;
        hi = in - start;
    } else {
        lo = start < 0 ? (dil - 1 - start) / dil : 0;
        hi = start < in ? (in - 1 - start) / dil + 1 : 0;
    }
    hi = hi < k ? hi : k;
    *k0 = lo;
    *k1 = hi > lo ? hi : lo;
}

/* Valid window of one output pixel: the input pixel at its top-left valid
 * tap and its size in taps. */
typedef struct {
    int32_t offset;   /* floats from input to the first valid pixel */
    int32_t rows, cols;
} pool_window;

static pool_window pool_window_at(const td_pool_f32_params *p, int32_t oy,
                                  int32_t ox)
{
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    int32_t ky0, ky1, kx0, kx1;
    pool_window pw;
    window_range(iy0, p->k_h, p->dil_h, p->in_h, &ky0, &ky1);
    window_range(ix0, p->k_w, p->dil_w, p->in_w, &kx0, &kx1);
    pw.rows = ky1 - ky0;
    pw.cols = kx1 - kx0;
    pw.offset = pw.rows > 0 && pw.cols > 0
                    ? ((iy0 + ky0 * p->dil_h) * p->in_w + ix0 + kx0 * p->dil_w)
                          * p->channels
                    : 0;
    return pw;
}

void td_max_pool_f32(const td_pool_f32_params *p, const float *input,
                     float *output)
{
    const int32_t ch = p->channels;
    const int32_t row_stride = p->dil_h * p->in_w * ch;
    const int32_t col_stride = p->dil_w * ch;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const pool_window pw = pool_window_at(p, oy, ox);
            float *out = output + (oy * p->out_w + ox) * ch;
            for (int32_t c = 0; c < ch; ++c) {
                /* Padding never wins (ONNX pads MaxPool with -inf). */
                float m = -FLT_MAX;
                const float *x = input + pw.offset + c;
                for (int32_t r = 0; r < pw.rows; ++r, x += row_stride) {
                    for (int32_t k = 0; k < pw.cols; ++k) {
                        const float v = x[k * col_stride];
                        m = v > m ? v : m;
                    }
                }
                out[c] = td_clampf(m, p->act_min, p->act_max);
            }
        }
    }
}

void td_avg_pool_f32(const td_pool_f32_params *p, const float *input,
                     float *output)
{
    const int32_t ch = p->channels;
    const int32_t row_stride = p->dil_h * p->in_w * ch;
    const int32_t col_stride = p->dil_w * ch;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const pool_window pw = pool_window_at(p, oy, ox);
            float *out = output + (oy * p->out_w + ox) * ch;
            /* count_include_pad: padding cells count as zeros, and the bottom
             * and right padding is taken to cover the whole window. */
            const int32_t count = p->count_include_pad ? p->k_h * p->k_w
                                                       : pw.rows * pw.cols;
            const float scale = count > 0 ? 1.0f / (float)count : 0.0f;
            for (int32_t c = 0; c < ch; ++c) {
                float s = 0.0f;
                const float *x = input + pw.offset + c;
                for (int32_t r = 0; r < pw.rows; ++r, x += row_stride) {
                    for (int32_t k = 0; k < pw.cols; ++k) {
                        s += x[k * col_stride];
                    }
                }
                out[c] = td_clampf(s * scale, p->act_min, p->act_max);
            }
        }
    }
}
