/* Depthwise convolution with int4 weights, Armv7E-M DSP: see td_arm_dw_s4.h. */
#include "td_arm_dw_s4.h"
#include "td_kernels_s8.h"

#if defined(__ARM_FEATURE_DSP)

/* Taps a window may have (the tap list is on the stack): 8 x 8 windows and smaller. */
#define TD_DW_S4_MAX_TAPS 64

/* The layer's requantization with its flags resolved once: the accumulator's 16 traded
 * for acc_shift by a left and a right shift (one of them 0), fix as a mask source, the
 * zero point added after the shift (0 when folded), the clamp's bounds (-128 and 127
 * without one); compact records derive C = czp << f (czp: 2 zp + 1 folded, else 1). */
typedef struct {
    int mode, lsl, asr, shift, zp, czp, lo, hi, rs;
    int32_t all, rec; /* the fix mask: all (fix 1: -1), or the record's last word (fix 2) */
} td_dw_s4_rq;

enum { TD_DW_S4_UNIFORM, TD_DW_S4_CHANNEL, TD_DW_S4_COMPACT, TD_DW_S4_PORTABLE };

/* One accumulator (16 times the sum) and its channel's record r -> the int8 output:
 * td_arm_rq's arithmetic (see td_arm_requant.h) in the layer's record mode.  (One copy of
 * the layer loop for all modes: the branch costs about 3 instructions an output, a copy
 * per mode 3 KB of flash.) */
TD_ARM_AI int8_t dw_s4_out(int32_t acc16, const int32_t *r, const td_dw_s4_rq q)
{
    const int mode = q.mode;
    const int32_t a = (int32_t)((uint32_t)acc16 << q.lsl) >> q.asr;
    const int32_t mask = q.all | (r[q.rs - 1] & q.rec);
    int32_t v;
    if (mode == TD_DW_S4_PORTABLE) {
        /* r = {multiplier, shift}: the portable arithmetic on the sum */
        v = td_mbqm(acc16 >> 4, r[0], r[1]) + q.zp;
        (void)a;
        (void)mask;
    } else if (mode == TD_DW_S4_COMPACT) {
        /* r = {m, f = e - 1}: the shift's last bit after the rounding constant's */
        const int32_t c = (int32_t)((uint32_t)q.czp << r[1]) + ((a >> 31) & mask);
        v = td_arm_ssat8(((td_arm_smmlar(a, r[0], c) >> r[1]) >> 1) + q.zp);
    } else if (mode == TD_DW_S4_UNIFORM) {
        v = td_arm_ssat8((td_arm_smmla(a, r[0], r[1] + ((a >> 31) & mask)) >> q.shift) + q.zp);
    } else {
        v = td_arm_ssat8((td_arm_smmlar(a, r[0], r[1] + ((a >> 31) & mask)) >> r[2]) + q.zp);
    }
    v = v < q.lo ? q.lo : v;
    return (int8_t)(v > q.hi ? q.hi : v);
}

/* Four channels (HI: the upper four of a group of eight) across the window's taps, into
 * a[0..3]: per tap one word of weights and one of inputs (taps[t] + goff; PAD: taps[t]
 * may be NULL, a padding tap, which reads the zero point at zb).  With four accumulators
 * every operand stays in a register. */
static inline void dw_s4_half(const int8_t *const *taps, int32_t ntaps, const int32_t *w,
                              int32_t words, int32_t goff, const int8_t *zb, int32_t *a,
                              const int HI, const int PAD)
{
    int32_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    int32_t t;
    for (t = 0; t < ntaps; ++t, w += words) {
        const int8_t *base = taps[t];
        const int8_t *xp = PAD && base == NULL ? zb : base + goff;
        const uint32_t x = *(const td_u32u *)(const void *)xp;
        const uint32_t wd = (uint32_t)*w;
        const uint32_t lo = (wd << 4) & 0xF0F0F0F0u, hn = wd & 0xF0F0F0F0u;
        const int16x2_t s02 = HI ? (int16x2_t)td_arm_sxtb16_ror8(lo) : __sxtb16((int8x4_t)lo);
        const int16x2_t s13 = HI ? (int16x2_t)td_arm_sxtb16_ror8(hn) : __sxtb16((int8x4_t)hn);
        const int16x2_t x02 = __sxtb16((int8x4_t)x), x13 = (int16x2_t)td_arm_sxtb16_ror8(x);
        a0 = __smlabb(x02, s02, a0);
        a2 = __smlatt(x02, s02, a2);
        a1 = __smlabb(x13, s13, a1);
        a3 = __smlatt(x13, s13, a3);
    }
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
}

/* Channel j's weight (16 times it) in a tap's word. */
static inline int32_t tail_weight16(uint32_t w, int32_t j)
{
    static const uint8_t nibble[8] = {0, 1, 4, 5, 2, 3, 6, 7};
    return (int32_t)(int8_t)(uint8_t)((w >> (4u * nibble[j])) << 4);
}

/* The layer (see td_arm_dw_s4). */
TD_ARM_AI void dw_s4_layer(const int8_t *in, const int32_t *stream, int8_t *out,
                           const td_arm_win *win, const td_dw_s4_rq q)
{
    const int32_t c = win->in_c, k_h = win->k_h, k_w = win->k_w, ih = win->in_h, iw = win->in_w;
    const int32_t groups = c / 8, rest = c % 8, words = groups + (rest > 0);
    const int32_t ntaps = k_h * k_w, rs = q.rs;
    const int32_t *start = stream, *rec = stream + c, *weights = rec + c * rs;
    const uint32_t zz = ((uint32_t)win->in_zero_point & 0xffu) * 0x01010101u;
    const int8_t *zb = (const int8_t *)(const void *)&zz;
    const int8_t *taps[TD_DW_S4_MAX_TAPS];
    int32_t oy, ox, g, j, t;
    for (oy = 0; oy < win->out_h; ++oy) {
        const int32_t iy0 = oy * win->stride_h - win->pad_top;
        for (ox = 0; ox < win->out_w; ++ox) {
            const int32_t ix0 = ox * win->stride_w - win->pad_left;
            int8_t *o = out + (oy * win->out_w + ox) * c;
            int pad = 0;
            for (t = 0; t < ntaps; ++t) {
                const int32_t iy = iy0 + t / k_w, ix = ix0 + t % k_w;
                const int inside = iy >= 0 && iy < ih && ix >= 0 && ix < iw;
                taps[t] = inside ? in + (iy * iw + ix) * c : NULL;
                pad |= !inside;
            }
            for (g = 0; g < groups; ++g) {
                int32_t a[8];
                for (j = 0; j < 8; ++j) {
                    a[j] = start[8 * g + j];
                }
                if (pad) {
                    dw_s4_half(taps, ntaps, weights + g, words, 8 * g, zb, a, 0, 1);
                    dw_s4_half(taps, ntaps, weights + g, words, 8 * g + 4, zb, a + 4, 1, 1);
                } else {
                    dw_s4_half(taps, ntaps, weights + g, words, 8 * g, zb, a, 0, 0);
                    dw_s4_half(taps, ntaps, weights + g, words, 8 * g + 4, zb, a + 4, 1, 0);
                }
                for (j = 0; j < 8; ++j) {
                    o[8 * g + j] = dw_s4_out(a[j], rec + (8 * g + j) * rs, q);
                }
            }
            for (j = 0; j < rest; ++j) {
                const int32_t ch = 8 * groups + j;
                const int32_t *w = weights + groups;
                int32_t acc = start[ch];
                for (t = 0; t < ntaps; ++t, w += words) {
                    const int32_t x = taps[t] != NULL ? taps[t][ch] : (int32_t)zb[0];
                    acc += x * tail_weight16((uint32_t)*w, j);
                }
                o[ch] = dw_s4_out(acc, rec + ch * rs, q);
            }
        }
    }
}

void td_arm_dw_s4(const int8_t *in, const int32_t *stream, int8_t *out,
                  const td_arm_dw_s4_cfg *cfg)
{
    const td_arm_rq_cfg *rq = &cfg->rq;
    const int ash = cfg->acc_shift;
    td_dw_s4_rq q;
    q.lsl = ash > 4 ? ash - 4 : 0;
    q.asr = ash < 4 ? 4 - ash : 0;
    q.all = rq->fix == 1 ? -1 : 0;
    q.rec = rq->fix == 2 ? -1 : 0;
    q.shift = rq->uniform_shift;
    q.zp = rq->fold ? 0 : rq->out_zero_point;
    q.czp = rq->fold ? 2 * rq->out_zero_point + 1 : 1;
    q.lo = rq->clamp ? rq->act_min : -128;
    q.hi = rq->clamp ? rq->act_max : 127;
    q.rs = rq->rec_words;
    q.mode = cfg->portable ? TD_DW_S4_PORTABLE : rq->uniform_shift >= 0 ? TD_DW_S4_UNIFORM
        : rq->uniform_shift == TD_ARM_RQ_COMPACT ? TD_DW_S4_COMPACT : TD_DW_S4_CHANNEL;
    dw_s4_layer(in, stream, out, &cfg->win, q);
}

#endif /* __ARM_FEATURE_DSP */
