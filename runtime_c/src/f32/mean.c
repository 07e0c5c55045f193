/* Mean over the middle axis of [outer][reduce][inner] (ReduceMean,
 * GlobalAveragePool). */
#include "td_f32_internal.h"

void td_mean_f32(int32_t outer, int32_t reduce, int32_t inner,
                 const float *input, float *output)
{
    const float scale = reduce > 0 ? 1.0f / (float)reduce : 0.0f;
    for (int32_t o = 0; o < outer; ++o) {
        const float *x = input + o * reduce * inner;
        float *out = output + o * inner;
        /* Accumulate whole rows so that the input is read contiguously. */
        for (int32_t i = 0; i < inner; ++i) {
            out[i] = 0.0f;
        }
        for (int32_t r = 0; r < reduce; ++r, x += inner) {
            for (int32_t i = 0; i < inner; ++i) {
                out[i] += x[i];
            }
        }
        for (int32_t i = 0; i < inner; ++i) {
            out[i] *= scale;
        }
    }
}
