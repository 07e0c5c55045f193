/* int8 ReduceMax over the middle axis of [outer][reduce][inner]: data
 * movement, the output keeps the input's scale and zero point (TFLite
 * REDUCE_MAX). ReduceSum is td_mean_s8 with TFLite SUM's multiplier. */
#include "td_kernels_s8.h"

void td_reduce_max_s8(int32_t outer, int32_t reduce, int32_t inner,
                      const int8_t *input, int8_t *output)
{
    int32_t o, r, i;
    for (o = 0; o < outer; ++o) {
        const int8_t *x = input + o * reduce * inner;
        int8_t *out = output + o * inner;
        for (i = 0; i < inner; ++i) {
            out[i] = x[i];
        }
        x += inner;
        for (r = 1; r < reduce; ++r, x += inner) {
            for (i = 0; i < inner; ++i) {
                if (x[i] > out[i]) {
                    out[i] = x[i];
                }
            }
        }
    }
}
