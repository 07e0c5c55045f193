/* Max and sum over the middle axis of [outer][reduce][inner] (ReduceMax,
 * ReduceSum). The mean is td_mean_f32 (mean.c). */
#include "td_f32_internal.h"

void td_reduce_max_f32(int32_t outer, int32_t reduce, int32_t inner,
                       const float *input, float *output)
{
    for (int32_t o = 0; o < outer; ++o) {
        const float *x = input + o * reduce * inner;
        float *out = output + o * inner;
        for (int32_t i = 0; i < inner; ++i) {
            out[i] = x[i];
        }
        x += inner;
        for (int32_t r = 1; r < reduce; ++r, x += inner) {
            for (int32_t i = 0; i < inner; ++i) {
                if (x[i] > out[i]) {
                    out[i] = x[i];
                }
            }
        }
    }
}

void td_reduce_sum_f32(int32_t outer, int32_t reduce, int32_t inner,
                       const float *input, float *output)
{
    for (int32_t o = 0; o < outer; ++o) {
        const float *x = input + o * reduce * inner;
        float *out = output + o * inner;
        for (int32_t i = 0; i < inner; ++i) {
            out[i] = 0.0f;
        }
        for (int32_t r = 0; r < reduce; ++r, x += inner) {
            for (int32_t i = 0; i < inner; ++i) {
                out[i] += x[i];
            }
        }
    }
}
