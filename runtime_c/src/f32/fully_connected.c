/* Fully connected (Gemm with transposed weights) for float32. */
#include "td_f32_internal.h"

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
            const float *w = weights + o * n;
            float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            if (bias) {
                acc[0] = bias[o];
                acc[1] = bias[o + 1];
                acc[2] = bias[o + 2];
                acc[3] = bias[o + 3];
            }
            td_dot4_f32(n, x, w, w + n, w + 2 * n, w + 3 * n, acc);
            for (int32_t j = 0; j < 4; ++j) {
                out[o + j] = td_clampf(acc[j], act_min, act_max);
            }
        }
        for (; o < out_features; ++o) {
            const float *w = weights + o * n;
            const float acc = td_dot_f32(n, x, w, bias ? bias[o] : 0.0f);
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
