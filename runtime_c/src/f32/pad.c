/* Pad (ONNX modes constant, reflect, edge). Negative pads crop. */
#include "td_f32_internal.h"

enum { PAD_CONSTANT = 0, PAD_REFLECT = 1, PAD_EDGE = 2 };

/* Input coordinate that output coordinate o reads along a dim of size n,
 * or -1 for the constant value. */
static int32_t source_index(int32_t o, int32_t before, int32_t n,
                            int32_t mode)
{
    int32_t i = o - before;
    if (i >= 0 && i < n) {
        return i;
    }
    if (mode == PAD_EDGE) {
        return i < 0 ? 0 : n - 1;
    }
    if (mode != PAD_REFLECT) {
        return -1;
    }
    if (n == 1) {
        return 0;
    }
    /* Mirror without repeating the edge: period 2 * (n - 1). */
    const int32_t period = 2 * (n - 1);
    i %= period;
    i = i < 0 ? i + period : i;
    return i < n ? i : period - i;
}

/* One innermost row: a straight copy in the middle, mapped edges. */
static void pad_row(const td_pad_f32_params *p, const float *x, float *out)
{
    const int32_t d = TD_MAX_DIMS - 1;
    const int32_t n = p->in_shape[d], before = p->pad_before[d];
    const int32_t out_n = p->out_shape[d];
    int32_t m0 = before > 0 ? before : 0;
    int32_t m1 = before + n < out_n ? before + n : out_n;
    m0 = m0 < out_n ? m0 : out_n;
    m1 = m1 > m0 ? m1 : m0;
    for (int32_t o = 0; o < m0; ++o) {
        const int32_t i = source_index(o, before, n, p->mode);
        out[o] = i < 0 ? p->value : x[i];
    }
    for (int32_t o = m0; o < m1; ++o) {
        out[o] = x[o - before];
    }
    for (int32_t o = m1; o < out_n; ++o) {
        const int32_t i = source_index(o, before, n, p->mode);
        out[o] = i < 0 ? p->value : x[i];
    }
}

void td_pad_f32(const td_pad_f32_params *p, const float *input, float *output)
{
    int32_t in_strides[TD_MAX_DIMS];
    int32_t idx[TD_MAX_DIMS] = {0};
    int32_t rows = 1;
    in_strides[TD_MAX_DIMS - 1] = 1;
    for (int32_t d = TD_MAX_DIMS - 1; d > 0; --d) {
        in_strides[d - 1] = in_strides[d] * p->in_shape[d];
    }
    for (int32_t d = 0; d < TD_MAX_DIMS - 1; ++d) {
        rows *= p->out_shape[d];
    }
    const int32_t out_n = p->out_shape[TD_MAX_DIMS - 1];
    for (int32_t r = 0; r < rows; ++r, output += out_n) {
        /* Locate the source row; any outer coordinate in constant padding
         * makes the whole row the constant. */
        int32_t off = 0;
        for (int32_t d = 0; d < TD_MAX_DIMS - 1 && off >= 0; ++d) {
            const int32_t i = source_index(idx[d], p->pad_before[d],
                                           p->in_shape[d], p->mode);
            off = i < 0 ? -1 : off + i * in_strides[d];
        }
        if (off < 0) {
            for (int32_t o = 0; o < out_n; ++o) {
                output[o] = p->value;
            }
        } else {
            pad_row(p, input + off, output);
        }
        for (int32_t d = TD_MAX_DIMS - 2; d >= 0; --d) {
            if (++idx[d] < p->out_shape[d]) {
                break;
            }
            idx[d] = 0;
        }
    }
}
