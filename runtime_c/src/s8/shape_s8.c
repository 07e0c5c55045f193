/* int8 data movement: concatenation (with optional requantization of an
 * input), pad (constant / reflect / edge) and transpose, over up to
 * TD_MAX_DIMS dimensions walked with an odometer on the outer dims. */
#include "td_kernels_s8.h"

void td_concat_s8(const td_concat_s8_params *p, const int8_t *const *inputs,
                  int8_t *output)
{
    int32_t o, k, i;
    for (o = 0; o < p->outer; ++o) {
        for (k = 0; k < p->n_inputs; ++k) {
            const td_concat_s8_input *q = &p->inputs[k];
            const int8_t *in = inputs[k] + o * q->inner;
            if (!q->requantize) {
                for (i = 0; i < q->inner; ++i) {
                    output[i] = in[i];
                }
            } else if (p->tables) {
                const int8_t *t = p->tables + 256 * (q->requantize - 1) + 128;
                for (i = 0; i < q->inner; ++i) {
                    output[i] = t[in[i]];
                }
            } else {
                for (i = 0; i < q->inner; ++i) {
                    const int32_t v = td_mbqm(in[i] - q->input_zero_point,
                                              q->multiplier, q->shift) +
                                      p->output_zero_point;
                    output[i] = (int8_t)td_clamp_s32(v, INT8_MIN, INT8_MAX);
                }
            }
            output += q->inner;
        }
    }
}

/* Source index of output index o along one padded dim, or -1 for the
 * constant value. */
static int32_t pad_source(int32_t o, int32_t before, int32_t n, int32_t mode)
{
    int32_t i = o - before;
    if (i >= 0 && i < n) {
        return i;
    }
    if (mode == 0) {
        return -1;
    }
    if (mode == 2) {
        return i < 0 ? 0 : n - 1;
    }
    /* reflect (numpy/ONNX "reflect": the edge is not repeated) */
    if (n == 1) {
        return 0;
    }
    while (i < 0 || i >= n) {
        i = i < 0 ? -i : 2 * (n - 1) - i;
    }
    return i;
}

void td_pad_s8(const td_pad_s8_params *p, const int8_t *input, int8_t *output)
{
    enum { IN = TD_MAX_DIMS - 1 };
    int32_t idx[TD_MAX_DIMS] = {0}, in_strides[TD_MAX_DIMS];
    int32_t rows = 1, r, x, acc = 1;
    const int8_t fill = (int8_t)p->value;
    int d;
    for (d = TD_MAX_DIMS - 1; d >= 0; --d) {
        in_strides[d] = acc;
        acc *= p->in_shape[d];
    }
    for (d = 0; d < IN; ++d) {
        rows *= p->out_shape[d];
    }
    for (r = 0; r < rows; ++r, output += p->out_shape[IN]) {
        int32_t base = 0, inside = 1;
        for (d = 0; d < IN; ++d) {
            const int32_t s = pad_source(idx[d], p->pad_before[d], p->in_shape[d], p->mode);
            inside = inside && s >= 0;
            base += (s < 0 ? 0 : s) * in_strides[d];
        }
        for (x = 0; x < p->out_shape[IN]; ++x) {
            const int32_t s = pad_source(x, p->pad_before[IN], p->in_shape[IN], p->mode);
            output[x] = (inside && s >= 0) ? input[base + s] : fill;
        }
        for (d = IN - 1; d >= 0; --d) {
            if (++idx[d] < p->out_shape[d]) {
                break;
            }
            idx[d] = 0;
        }
    }
}

/* The copy along output dimension k, contiguous in the input, with the
 * output's stride: a transpose whose output rows are short (an NCHW image's
 * channels going last) runs along the input's longer rows instead. */
static void transpose_scatter(const td_transpose_s8_params *p, const int32_t *out_strides,
                              int32_t k, const int8_t *input, int8_t *output)
{
    int32_t idx[TD_MAX_DIMS] = {0};
    int32_t rows = 1, r, x, ioff = 0, ooff = 0;
    const int32_t n = p->out_shape[k], step = out_strides[k], step2 = 2 * step, step3 = 3 * step;
    int d;
    for (d = 0; d < TD_MAX_DIMS; ++d) {
        rows *= d == k ? 1 : p->out_shape[d];
    }
    for (r = 0; r < rows; ++r) {
        const int8_t *src = input + ioff;
        int8_t *dst = output + ooff;
        for (x = 0; x + 4 <= n; x += 4, dst += 4 * step) {
            dst[0] = src[x];
            dst[step] = src[x + 1];
            dst[step2] = src[x + 2];
            dst[step3] = src[x + 3];
        }
        for (; x < n; ++x, dst += step) {
            *dst = src[x];
        }
        for (d = TD_MAX_DIMS - 1; d >= 0; --d) {
            if (d == k) {
                continue;
            }
            ioff += p->in_strides[d];
            ooff += out_strides[d];
            if (++idx[d] < p->out_shape[d]) {
                break;
            }
            ioff -= p->in_strides[d] * p->out_shape[d];
            ooff -= out_strides[d] * p->out_shape[d];
            idx[d] = 0;
        }
    }
}

void td_transpose_s8(const td_transpose_s8_params *p, const int8_t *input,
                     int8_t *output)
{
    enum { IN = TD_MAX_DIMS - 1 };
    int32_t idx[IN] = {0};
    int32_t out_strides[TD_MAX_DIMS];
    int32_t rows = 1, r, x, off = 0, size = 1, k = -1;
    const int32_t n = p->out_shape[IN], stride = p->in_strides[IN];
    int d;
    for (d = IN; d >= 0; --d) {
        out_strides[d] = size;
        size *= p->out_shape[d];
    }
    /* the longest output dimension that is contiguous in the input, if it is more
     * than twice as long as the output's rows */
    for (d = 0; d < IN; ++d) {
        if (p->in_strides[d] == 1 && p->out_shape[d] > 2 * n &&
            (k < 0 || p->out_shape[d] > p->out_shape[k])) {
            k = d;
        }
    }
    if (k >= 0 && size > 0) {
        transpose_scatter(p, out_strides, k, input, output);
        return;
    }
    for (d = 0; d < IN; ++d) {
        rows *= p->out_shape[d];
    }
    for (r = 0; r < rows; ++r, output += n) {
        for (x = 0; x < n; ++x) {
            output[x] = input[off + x * stride];
        }
        for (d = IN - 1; d >= 0; --d) {
            off += p->in_strides[d];
            if (++idx[d] < p->out_shape[d]) {
                break;
            }
            off -= p->in_strides[d] * p->out_shape[d];
            idx[d] = 0;
        }
    }
}
