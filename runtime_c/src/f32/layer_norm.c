/* Layer normalization over the innermost block of [outer][size]:
 * y = (x - mean) / sqrt(var + epsilon) * scale + bias (ONNX
 * LayerNormalization, population variance). Two passes per row: the mean,
 * then the mean of the squared deviations. */
#include <stddef.h>

#include "td_f32_internal.h"

void td_layer_norm_f32(const td_layer_norm_f32_params *p, const float *input,
                       const float *scale, const float *bias, float *output)
{
    const int32_t n = p->size;
    const float inv_n = 1.0f / (float)n;
    int32_t r, i;
    for (r = 0; r < p->outer; ++r) {
        const float *x = input + r * n;
        float *y = output + r * n;
        float sum = 0.0f, dev = 0.0f, mean, inv_std;
        for (i = 0; i < n; ++i) {
            sum += x[i];
        }
        mean = sum * inv_n;
        for (i = 0; i < n; ++i) {
            const float d = x[i] - mean;
            dev = TD_MAC(dev, d, d);
        }
        inv_std = 1.0f / sqrtf(dev * inv_n + p->epsilon);
        /* read x[i] before writing y[i]: output may equal input */
        for (i = 0; i < n; ++i) {
            const float v = (x[i] - mean) * inv_std;
            const float s = scale != NULL ? v * scale[i] : v;
            y[i] = bias != NULL ? s + bias[i] : s;
        }
    }
}
