/* Fully connected with int4 weights, Helium: see td_mve_s4.h. */
#include <arm_mve.h>

#include "td_mve_s4.h"

#if !defined(__ARM_FEATURE_MVE)
#error "mve_fc_s4.c needs a Helium (MVE) target"
#endif

void td_mve_fc_s4(const td_fc_s8_params *p, const int8_t *input, const int32_t *start,
                  const uint8_t *weights, int8_t *output)
{
    const int32_t in_f = p->in_features, h = in_f / 2, out_f = p->out_features;
    int32_t r, o, j;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *x = input + r * in_f;
        for (o = 0; o < out_f; ++o) {
            const uint8_t *w = weights + o * h;
            const int32_t mi = p->per_channel ? o : 0;
            int32_t acc = start[o], v;
            for (j = 0; j < h; j += 16) {
                const mve_pred16_t pr = vctp8q((uint32_t)(h - j));
                const int8x16_t b = vreinterpretq_s8_u8(vldrbq_z_u8(w + j, pr));
                const int8x16_t lo = vshrq_n_s8(vshlq_n_s8(b, 4), 4);
                const int8x16_t hi = vshrq_n_s8(b, 4);
                acc = vmladavaq_s8(acc, lo, vldrbq_z_s8(x + j, pr));
                acc = vmladavaq_s8(acc, hi, vldrbq_z_s8(x + h + j, pr));
            }
            v = td_mbqm(acc, p->multiplier[mi], p->shift[mi]) + p->output_offset;
            output[r * out_f + o] = (int8_t)td_clamp_s32(v, p->act_min, p->act_max);
        }
    }
}
