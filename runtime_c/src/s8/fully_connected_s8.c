/* int8 fully connected (TFLite FullyConnected / FullyConnectedPerChannel).
 * Weight-stationary: per output feature, input_offset * sum(w) is folded
 * into the bias once, so the inner loop is a pure multiply-accumulate. */
#include "td_kernels_s8.h"

void td_fully_connected_s8(const td_fc_s8_params *p, const int8_t *input,
                           const int8_t *weights, const int32_t *bias,
                           int8_t *output)
{
    const int32_t in_f = p->in_features, out_f = p->out_features;
    int32_t o, r, i;
    for (o = 0; o < out_f; ++o) {
        const int8_t *w = weights + o * in_f;
        const int32_t mi = p->per_channel ? o : 0;
        const int32_t mult = p->multiplier[mi], shift = p->shift[mi];
        int32_t base = 0;
        for (i = 0; i < in_f; ++i) {
            base += w[i];
        }
        base = base * p->input_offset + (bias ? bias[o] : 0);
        for (r = 0; r < p->rows; ++r) {
            const int8_t *x = input + r * in_f;
            int32_t acc = base;
            for (i = 0; i < in_f; ++i) {
                acc += w[i] * x[i];
            }
            acc = td_mbqm(acc, mult, shift) + p->output_offset;
            output[r * out_f + o] = (int8_t)td_clamp_s32(acc, p->act_min, p->act_max);
        }
    }
}
