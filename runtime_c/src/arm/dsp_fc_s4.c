/* Fully connected with int4 weights, Armv7E-M DSP: see td_arm_s4.h. */
#include "td_arm_s4.h"

#if defined(__ARM_FEATURE_DSP)

#define TD_S4_X_ "ldr %[x1], [%[xp]], #4\n\tsxtb16 %[x0], %[x1]\n\tsxtb16 %[x1], %[x1], ror #8\n\t" \
    "ldr %[x3], [%[xp]], #4\n\tsxtb16 %[x2], %[x3]\n\tsxtb16 %[x3], %[x3], ror #8\n\t"
#define TD_S4_F_(a) "ldr %[w], [%[wp]], #4\n\tand %[t], %[m], %[w], lsl #4\n\tand %[w], %[w], %[m]\n\t" \
    "sxtb16 %[s], %[t]\n\tsmlad %[" a "], %[x0], %[s], %[" a "]\n\t"                           \
    "sxtb16 %[t], %[t], ror #8\n\tsmlad %[" a "], %[x1], %[t], %[" a "]\n\t"                   \
    "sxtb16 %[s], %[w]\n\tsmlad %[" a "], %[x2], %[s], %[" a "]\n\t"                           \
    "sxtb16 %[w], %[w], ror #8\n\tsmlad %[" a "], %[x3], %[w], %[" a "]\n\t"
#define TD_S4_OUT_ [xp] "+r"(xp), [wp] "+r"(wp), [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), \
    [x3] "=&r"(x3), [w] "=&r"(w), [t] "=&r"(t), [s] "=&r"(s)

/* 16 times a feature's sum -> its int8 output (the portable requantization). */
static int8_t requant(const td_fc_s8_params *p, int32_t acc16, int32_t o)
{
    const int32_t mi = p->per_channel ? o : 0;
    const int32_t v = td_mbqm(acc16 >> 4, p->multiplier[mi], p->shift[mi]) + p->output_offset;
    return (int8_t)td_clamp_s32(v, p->act_min, p->act_max);
}

void td_arm_fc_s4(const td_fc_s8_params *p, const int8_t *input, const int32_t *stream,
                  int8_t *output)
{
    const int32_t k8 = p->in_features / 8, out_f = p->out_features;
    const uint32_t m = 0xF0F0F0F0u;
    int32_t r, o, i;
    for (r = 0; r < p->rows; ++r) {
        const int32_t *wp = stream;
        for (o = 0; o < out_f; o += 2) {
            const int8_t *xp = input + r * p->in_features;
            uint32_t x0, x1, x2, x3, w, t, s;
            int32_t a0 = wp[0], a1;
            if (o + 1 < out_f) {
                a1 = wp[1];
                wp += 2;
#pragma GCC unroll 4
                for (i = 0; i < k8; ++i) {
                    __asm__ volatile(TD_S4_X_ TD_S4_F_("a0") TD_S4_F_("a1")
                                     : [a0] "+r"(a0), [a1] "+r"(a1), TD_S4_OUT_ : [m] "r"(m) : "memory");
                }
                output[r * out_f + o] = requant(p, a0, o);
                output[r * out_f + o + 1] = requant(p, a1, o + 1);
            } else {
                wp += 1;
                for (i = 0; i < k8; ++i) {
                    __asm__ volatile(TD_S4_X_ TD_S4_F_("a0") : [a0] "+r"(a0), TD_S4_OUT_ : [m] "r"(m) : "memory");
                }
                output[r * out_f + o] = requant(p, a0, o);
            }
        }
    }
}

#endif /* __ARM_FEATURE_DSP */
