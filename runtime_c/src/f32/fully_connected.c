/* Fully connected (Gemm with transposed weights) for float32, and the dot
 * product loops shared with the convolution. */
#include "td_f32_internal.h"

void td_f32_dot4(int32_t n, const float *x, const float *w, int32_t w_stride,
                 float acc[4])
{
    const float *w0 = w, *w1 = w + w_stride;
    const float *w2 = w1 + w_stride, *w3 = w2 + w_stride;
    float a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (int32_t i = 0; i < n; ++i) {
        const float v = x[i];
        a0 = TD_MAC(a0, v, w0[i]);
        a1 = TD_MAC(a1, v, w1[i]);
        a2 = TD_MAC(a2, v, w2[i]);
        a3 = TD_MAC(a3, v, w3[i]);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

float td_f32_dot(int32_t n, const float *x, const float *w, float acc)
{
    for (int32_t i = 0; i < n; ++i) {
        acc = TD_MAC(acc, x[i], w[i]);
    }
    return acc;
}

void td_f32_matmul_bt(int32_t rows, int32_t in_features, int32_t out_features,
                      const float *input, const float *weights,
                      const float *bias, float act_min, float act_max,
                      float *output)
{
    const int32_t n = in_features;
    for (int32_t r = 0; r < rows; ++r) {
        const float *x = input + r * n;
        float *out = output + r * out_features;
        int32_t o = 0;
        for (; o + 4 <= out_features; o += 4) {
            float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            if (bias) {
                acc[0] = bias[o];
                acc[1] = bias[o + 1];
                acc[2] = bias[o + 2];
                acc[3] = bias[o + 3];
            }
            td_f32_dot4(n, x, weights + o * n, n, acc);
            out[o] = td_clampf(acc[0], act_min, act_max);
            out[o + 1] = td_clampf(acc[1], act_min, act_max);
            out[o + 2] = td_clampf(acc[2], act_min, act_max);
            out[o + 3] = td_clampf(acc[3], act_min, act_max);
        }
        for (; o < out_features; ++o) {
            const float acc =
                td_f32_dot(n, x, weights + o * n, bias ? bias[o] : 0.0f);
            out[o] = td_clampf(acc, act_min, act_max);
        }
    }
}

void td_fully_connected_f32(const td_fc_f32_params *p, const float *input,
                            const float *weights, const float *bias,
                            float *output)
{
    td_f32_matmul_bt(p->rows, p->in_features, p->out_features, input, weights,
                     bias, p->act_min, p->act_max, output);
}
