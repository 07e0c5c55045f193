/* Softmax over the innermost axis. */
#include <math.h>

#include "td_f32_internal.h"

void td_softmax_f32(int32_t outer, int32_t axis_size, const float *input,
                    float *output)
{
    if (axis_size <= 0) {
        return;
    }
    for (int32_t o = 0; o < outer; ++o) {
        const float *x = input + o * axis_size;
        float *y = output + o * axis_size;
        /* Subtracting the row max keeps expf from overflowing. */
        float m = x[0];
        for (int32_t i = 1; i < axis_size; ++i) {
            m = x[i] > m ? x[i] : m;
        }
        float sum = 0.0f;
        for (int32_t i = 0; i < axis_size; ++i) {
            const float e = expf(x[i] - m);
            y[i] = e;
            sum += e;
        }
        const float inv = 1.0f / sum;
        for (int32_t i = 0; i < axis_size; ++i) {
            y[i] *= inv;
        }
    }
}
