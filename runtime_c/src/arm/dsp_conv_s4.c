/* Convolution with int4 weights, Armv7E-M DSP: see td_arm_conv_s4.h. */
#include "td_arm_conv_s4.h"

#if defined(__ARM_FEATURE_DSP)

/* Widen a channel's 8-step word: s0 = (f0, f1), s1 = (f2, f3), s2 = (f4, f5),
 * s3 = (f6, f7), each times 16 (s1 in t, s3 in w). */
#define TD_S4C_W_ "ldr %[w], [%[wp]], #4\n\tand %[t], %[m], %[w], lsl #4\n\tand %[w], %[w], %[m]\n\t" \
    "sxtb16 %[s0], %[t]\n\tsxtb16 %[t], %[t], ror #8\n\t"                                        \
    "sxtb16 %[s2], %[w]\n\tsxtb16 %[w], %[w], ror #8\n\t"
/* One pixel's 8-step: its two groups at byte offsets A and B of xp. */
#define TD_S4C_PX_(a, A, B) "ldrd %[x0], %[x1], [%[xp], #" A "]\n\t"                     \
    "smlad %[" a "], %[x0], %[s0], %[" a "]\n\tsmlad %[" a "], %[x1], %[t], %[" a "]\n\t" \
    "ldrd %[x0], %[x1], [%[xp], #" B "]\n\t"                                             \
    "smlad %[" a "], %[x0], %[s2], %[" a "]\n\tsmlad %[" a "], %[x1], %[w], %[" a "]\n\t"
#define TD_S4C_OUT_ [xp] "+r"(xp), [wp] "+r"(wp), [w] "=&r"(w), [t] "=&r"(t), [s0] "=&r"(s0), \
    [s2] "=&r"(s2), [x0] "=&r"(x0), [x1] "=&r"(x1)

/* A layer's requantization with its flags resolved once (see td_arm_rq): the
 * accumulator's 16 traded for acc_shift by a left and a right shift (one of them
 * 0), fix as a mask (all ones: fix 1), the zero point added after the shift
 * (0 when folded), the clamp's bounds (-128 and 127 when there is none). */
typedef struct {
    int lsl, asr, fix, uniform, shift, zp, lo, hi;
} td_s4c_rq;

/* One accumulator (16 times the sum) -> its int8 output.  UNIFORM: SMMLA and the
 * layer's shift, else SMMLAR and the channel's. */
TD_ARM_AI int8_t td_s4c_out(int32_t acc16, int32_t m, int32_t c0, int32_t mask, int shift,
                            const td_s4c_rq *q, const int UNIFORM)
{
    const int32_t a = (int32_t)((uint32_t)acc16 << q->lsl) >> q->asr;
    const int32_t c = c0 + ((a >> 31) & mask);
    int32_t v = (UNIFORM ? td_arm_smmla(a, m, c) : td_arm_smmlar(a, m, c)) >> shift;
    v = td_arm_ssat8(v + q->zp);
    v = v < q->lo ? q->lo : v;
    v = v > q->hi ? q->hi : v;
    return (int8_t)v;
}

/* One block of n (1..3) pixels through every channel (RS: record words). */
TD_ARM_AI void td_s4c_block(const int16_t *blk, const int32_t *wp, int8_t *o, int n, int OC,
                            int K8, const td_s4c_rq *q, const int RS, const int UNIFORM)
{
    const uint32_t m = 0xF0F0F0F0u;
    int c;
    for (c = 0; c < OC; ++c, ++o) {
        const int16_t *xp = blk;
        int32_t a0 = *wp++, a1 = a0, a2 = a0;
        uint32_t w, t, s0, s2, x0, x1;
        int i = K8;
        if (n == 3) {
            do {
                __asm__ volatile(TD_S4C_W_ TD_S4C_PX_("a1", "8", "32") TD_S4C_PX_("a2", "16", "40")
                                 TD_S4C_PX_("a0", "0", "24") "add %[xp], %[xp], #48\n\t"
                                 : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), TD_S4C_OUT_
                                 : [m] "r"(m) : "memory");
            } while (--i);
        } else if (n == 2) {
            do {
                __asm__ volatile(TD_S4C_W_ TD_S4C_PX_("a1", "8", "24") TD_S4C_PX_("a0", "0", "16")
                                 "add %[xp], %[xp], #32\n\t"
                                 : [a0] "+r"(a0), [a1] "+r"(a1), TD_S4C_OUT_ : [m] "r"(m) : "memory");
            } while (--i);
        } else {
            do {
                __asm__ volatile(TD_S4C_W_ TD_S4C_PX_("a0", "0", "8") "add %[xp], %[xp], #16\n\t"
                                 : [a0] "+r"(a0), TD_S4C_OUT_ : [m] "r"(m) : "memory");
            } while (--i);
        }
        {
            const int32_t mask = q->fix == 1 ? -1 : q->fix == 2 ? wp[RS - 1] : 0;
            const int shift = UNIFORM ? q->shift : wp[2];
            o[0] = td_s4c_out(a0, wp[0], wp[1], mask, shift, q, UNIFORM);
            if (n > 1) {
                o[OC] = td_s4c_out(a1, wp[0], wp[1], mask, shift, q, UNIFORM);
            }
            if (n > 2) {
                o[2 * OC] = td_s4c_out(a2, wp[0], wp[1], mask, shift, q, UNIFORM);
            }
        }
        wp += RS;
    }
}

void td_arm_conv_s4(const int8_t *in, int16_t *blk, const int32_t *stream, int8_t *out,
                    const td_arm_conv_s4_cfg *cfg)
{
    const td_arm_rq_cfg *rq = &cfg->rq;
    const int P = cfg->pixels, OC = cfg->out_c, K8 = cfg->k8, ASH = cfg->acc_shift;
    const int RS = rq->rec_words;
    td_s4c_rq q;
    int p;
    q.lsl = ASH > 4 ? ASH - 4 : 0;
    q.asr = ASH < 4 ? 4 - ASH : 0;
    q.fix = rq->fix;
    q.uniform = rq->uniform_shift >= 0;
    q.shift = rq->uniform_shift;
    q.zp = rq->fold ? 0 : rq->out_zero_point;
    q.lo = rq->clamp ? rq->act_min : -128;
    q.hi = rq->clamp ? rq->act_max : 127;
    for (p = 0; p < P; p += 3) {
        const int n = P - p < 3 ? P - p : 3;
        td_arm_im2col_rt(in, blk, p, n, &cfg->win);
        /* the record's length and mode are compile-time in each copy */
        if (q.uniform && RS == 2) {
            td_s4c_block(blk, stream, out + p * OC, n, OC, K8, &q, 2, 1);
        } else if (q.uniform) {
            td_s4c_block(blk, stream, out + p * OC, n, OC, K8, &q, 3, 1);
        } else if (RS == 3) {
            td_s4c_block(blk, stream, out + p * OC, n, OC, K8, &q, 3, 0);
        } else {
            td_s4c_block(blk, stream, out + p * OC, n, OC, K8, &q, 4, 0);
        }
    }
}

#endif /* __ARM_FEATURE_DSP */
