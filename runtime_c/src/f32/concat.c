/* Concatenation along one axis: [outer][inner_k] pieces side by side. */
#include "td_f32_internal.h"

void td_concat_f32(int32_t outer, int32_t n_inputs, const int32_t *inner_sizes,
                   const float *const *inputs, float *output)
{
    for (int32_t o = 0; o < outer; ++o) {
        for (int32_t k = 0; k < n_inputs; ++k) {
            const int32_t n = inner_sizes[k];
            const float *x = inputs[k] + o * n;
            for (int32_t i = 0; i < n; ++i) {
                output[i] = x[i];
            }
            output += n;
        }
    }
}
