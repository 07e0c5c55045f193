/* int8 softmax (TFLite reference Softmax with int8 input and output):
 * exp of the rescaled differences to the row maximum in gemmlowp fixed point
 * (Q5.26 in, Q0.31 out), their sum in Q12.19, and a fixed-point reciprocal.
 * Reads every input element before writing it, so in place is safe. */
#include "td_kernels_s8.h"

/* exp(beta * scale * diff) in Q0.31 for diff >= diff_min. */
static int32_t scaled_exp(const td_softmax_s8_params *p, int32_t diff)
{
    const int32_t rescaled = td_srdhm(td_shl_wrap(diff, (int)p->input_left_shift),
                                      p->input_multiplier);
    return td_fp_exp_neg(rescaled, 5);
}

static void softmax_row(const td_softmax_s8_params *p, const int8_t *in,
                        int8_t *out)
{
    const int32_t depth = p->depth;
    int32_t c, max_v = INT8_MIN, sum = 0, recip;
    int headroom, exponent;
    for (c = 0; c < depth; ++c) {
        max_v = in[c] > max_v ? in[c] : max_v;
    }
    for (c = 0; c < depth; ++c) {
        const int32_t diff = in[c] - max_v;
        if (diff >= p->diff_min) {
            sum += td_rdbpot(scaled_exp(p, diff), 12);   /* Q0.31 -> Q12.19 */
        }
    }
    /* 1 / sum: normalize sum to [1, 2) and use 1 / (1 + x) */
    headroom = td_clz32((uint32_t)sum);
    recip = td_fp_one_over_one_plus_x(
        (int32_t)(((uint32_t)sum << headroom) - 0x80000000u));
    exponent = (12 - headroom) + 31 - 8;
    for (c = 0; c < depth; ++c) {
        const int32_t diff = in[c] - max_v;
        int32_t v = INT8_MIN;
        if (diff >= p->diff_min) {
            v = td_rdbpot(td_srdhm(recip, scaled_exp(p, diff)), exponent) + INT8_MIN;
        }
        out[c] = (int8_t)td_clamp_s32(v, INT8_MIN, INT8_MAX);
    }
}

void td_softmax_s8(const td_softmax_s8_params *p, const int8_t *input,
                   int8_t *output)
{
    int32_t r;
    for (r = 0; r < p->outer; ++r) {
        softmax_row(p, input + r * p->depth, output + r * p->depth);
    }
}
