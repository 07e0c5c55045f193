/* int8 max / average pooling (TFLite reference pooling) and Mean
 * (TFLite QuantizedMeanOrSum).  Window bounds are clamped to the image once
 * per output row/column. */
#include "td_kernels_s8.h"

/* Taps [*lo, *hi) of a window of k taps `dil` apart from `origin` that lie
 * inside [0, size). */
static void clamp_window(int origin, int k, int dil, int size, int *lo,
                         int *hi)
{
    if (dil == 1) { /* no division: cores without a divider pay for one */
        *lo = origin < 0 ? -origin : 0;
        *hi = size - origin < k ? size - origin : k;
    } else {
        *lo = origin < 0 ? (dil - 1 - origin) / dil : 0;
        *hi = origin < size ? (size - 1 - origin) / dil + 1 : 0;
        if (*hi > k) {
            *hi = k;
        }
    }
    if (*hi < *lo) {
        *hi = *lo;
    }
}

/* in[at] is the window's first valid cell for one channel; the valid cells are
 * rows x cols taps, row_step and col_step bytes apart. */
typedef int32_t (*window_fn)(const td_pool_s8_params *p, const int8_t *in,
                             int at, int rows, int cols, int row_step,
                             int col_step);

static void pool(const td_pool_s8_params *p, const int8_t *input,
                 int8_t *output, window_fn fn)
{
    const int ch = p->channels;
    const int row_step = p->dil_h * p->in_w * ch, col_step = p->dil_w * ch;
    int oy, ox, c, ky0, ky1, kx0, kx1;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int iy0 = oy * p->stride_h - p->pad_top;
        clamp_window(iy0, p->k_h, p->dil_h, p->in_h, &ky0, &ky1);
        for (ox = 0; ox < p->out_w; ++ox) {
            const int ix0 = ox * p->stride_w - p->pad_left;
            int8_t *out = output + (oy * p->out_w + ox) * ch;
            int at;
            clamp_window(ix0, p->k_w, p->dil_w, p->in_w, &kx0, &kx1);
            at = ((iy0 + ky0 * p->dil_h) * p->in_w + ix0 + kx0 * p->dil_w) * ch;
            for (c = 0; c < ch; ++c) {
                const int32_t v = fn(p, input, at + c, ky1 - ky0, kx1 - kx0,
                                     row_step, col_step);
                out[c] = (int8_t)td_clamp_s32(v, p->act_min, p->act_max);
            }
        }
    }
}

static int32_t max_window(const td_pool_s8_params *p, const int8_t *in,
                          int at, int rows, int cols, int row_step,
                          int col_step)
{
    int32_t m = INT8_MIN;
    int y, x;
    (void)p;
    for (y = 0; y < rows; ++y, at += row_step) {
        for (x = 0; x < cols; ++x) {
            const int32_t v = in[at + x * col_step];
            m = v > m ? v : m;
        }
    }
    return m;
}

void td_max_pool_s8(const td_pool_s8_params *p, const int8_t *input,
                    int8_t *output)
{
    pool(p, input, output, max_window);
}

static int32_t avg_window(const td_pool_s8_params *p, const int8_t *in,
                          int at, int rows, int cols, int row_step,
                          int col_step)
{
    int32_t sum = 0, count = rows * cols;
    int y, x;
    for (y = 0; y < rows; ++y, at += row_step) {
        for (x = 0; x < cols; ++x) {
            sum += in[at + x * col_step];
        }
    }
    if (p->count_include_pad) {
        const int32_t full = p->k_h * p->k_w;
        sum += (full - count) * p->zero_point;
        count = full;
    }
    if (count == 0) {
        return 0;
    }
    /* TFLite: round half away from zero with C's truncating division */
    return sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
}

void td_avg_pool_s8(const td_pool_s8_params *p, const int8_t *input,
                    int8_t *output)
{
    pool(p, input, output, avg_window);
}

void td_mean_s8(const td_mean_s8_params *p, const int8_t *input,
                int8_t *output)
{
    const int32_t inner = p->inner, reduce = p->reduce;
    const uint32_t zp_term = (uint32_t)p->input_offset * (uint32_t)reduce;
    int32_t o, i, r;
    for (o = 0; o < p->outer; ++o) {
        const int8_t *in = input + o * reduce * inner;
        for (i = 0; i < inner; ++i) {
            int32_t sum = 0, v;
            for (r = 0; r < reduce; ++r) {
                sum += in[r * inner + i];
            }
            v = (int32_t)((uint32_t)sum + zp_term);
            v = td_mbqm(v, p->multiplier, p->shift) + p->output_offset;
            output[o * inner + i] = (int8_t)td_clamp_s32(v, INT8_MIN, INT8_MAX);
        }
    }
}
