/* Transpose: gathers the input through permuted strides. */
#include "td_f32_internal.h"

/* Drops size-1 dims and merges neighbours that are also neighbours in the
 * input. Returns the number of dims left (>= 1), or 0 for an empty output. */
static int32_t collapse_dims(const td_transpose_params *p, int32_t shape[],
                             int32_t strides[])
{
    int32_t nd = 0;
    for (int32_t d = 0; d < TD_MAX_DIMS; ++d) {
        const int32_t n = p->out_shape[d];
        if (n <= 0) {
            return 0;
        }
        if (n == 1) {
            continue;
        }
        if (nd > 0 && strides[nd - 1] == p->in_strides[d] * n) {
            shape[nd - 1] *= n;
            strides[nd - 1] = p->in_strides[d];
            continue;
        }
        shape[nd] = n;
        strides[nd] = p->in_strides[d];
        ++nd;
    }
    if (nd == 0) {
        shape[0] = 1;
        strides[0] = 0;
        nd = 1;
    }
    return nd;
}

/* Along (collapsed) output dimension k, contiguous in the input, writing with the
 * output's stride: for output rows shorter than the input's (an NCHW image's
 * channels going last; see td_transpose_s8). */
static void transpose_scatter(const int32_t *shape, const int32_t *strides, int32_t nd,
                              int32_t k, const float *input, float *output)
{
    int32_t out_strides[TD_MAX_DIMS] = {0}, idx[TD_MAX_DIMS] = {0};
    int32_t size = 1, rows = 1, ioff = 0, ooff = 0;
    for (int32_t d = nd - 1; d >= 0; --d) {
        out_strides[d] = size;
        size *= shape[d];
        rows *= d == k ? 1 : shape[d];
    }
    const int32_t n = shape[k], step = out_strides[k];
    for (int32_t r = 0; r < rows; ++r) {
        const float *src = input + ioff;
        float *dst = output + ooff;
        for (int32_t x = 0; x < n; ++x, dst += step) {
            *dst = src[x];
        }
        for (int32_t d = nd - 1; d >= 0; --d) {
            if (d == k) {
                continue;
            }
            ioff += strides[d];
            ooff += out_strides[d];
            if (++idx[d] < shape[d]) {
                break;
            }
            ioff -= strides[d] * shape[d];
            ooff -= out_strides[d] * shape[d];
            idx[d] = 0;
        }
    }
}

void td_transpose_f32(const td_transpose_params *p, const float *input,
                      float *output)
{
    int32_t shape[TD_MAX_DIMS], strides[TD_MAX_DIMS];
    int32_t idx[TD_MAX_DIMS] = {0};
    const int32_t nd = collapse_dims(p, shape, strides);
    if (nd == 0) {
        return;
    }
    int32_t k = -1;
    for (int32_t d = 0; d < nd - 1; ++d) {
        if (strides[d] == 1 && shape[d] > 2 * shape[nd - 1] && (k < 0 || shape[d] > shape[k])) {
            k = d;
        }
    }
    if (k >= 0) {
        transpose_scatter(shape, strides, nd, k, input, output);
        return;
    }
    const int32_t inner = shape[nd - 1];
    const int32_t step = strides[nd - 1];
    int32_t runs = 1;
    for (int32_t d = 0; d < nd - 1; ++d) {
        runs *= shape[d];
    }
    int32_t off = 0;
    for (int32_t r = 0; r < runs; ++r, output += inner) {
        const float *x = input + off;
        for (int32_t i = 0; i < inner; ++i) {
            output[i] = x[i * step];
        }
        for (int32_t d = nd - 2; d >= 0; --d) {
            off += strides[d];
            if (++idx[d] < shape[d]) {
                break;
            }
            off -= strides[d] * shape[d];
            idx[d] = 0;
        }
    }
}
