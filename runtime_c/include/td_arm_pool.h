/* tinydeploy runtime: Arm DSP-extension pooling (int8): global average,
 * max pooling.  Header only. */
#ifndef TD_ARM_POOL_H
#define TD_ARM_POOL_H

#include "td_arm_common.h"

#if defined(__ARM_FEATURE_DSP)

/* ---------------------------------------------------------------------- */
/* Global average pool (the window is the whole image)                     */
/* ---------------------------------------------------------------------- */
/* TFLite's average: (sum + P/2) / P for sum > 0, (sum - P/2) / P else (C
 * division), clamped.  Four channels at a time in two 16-bit lane sums
 * (SXTAB16): exact for P <= 255 pixels. */
TD_ARM_AI uint32_t td_arm_sxtab16_ror8(uint32_t acc, uint32_t v)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(v));
    return r;
}

TD_ARM_AI int32_t td_arm_avg_div(int32_t sum, const int P, const int LO, const int HI)
{
    int32_t v = sum > 0 ? (sum + P / 2) / P : (sum - P / 2) / P;
    v = v < LO ? LO : v;
    return v > HI ? HI : v;
}

/* Global average pooling's parameters. */
typedef struct {
    int pixels;   /* P: in_h * in_w (<= 255) */
    int channels; /* C */
    int act_min, act_max;
} td_arm_gavg_cfg;

TD_ARM_AI void td_arm_gavg(const int8_t *in, int8_t *out, const td_arm_gavg_cfg *cfg)
{
    const int P = cfg->pixels, C = cfg->channels, LO = cfg->act_min, HI = cfg->act_max;
    int c, p;
    for (c = 0; c + 4 <= C; c += 4) {
        uint32_t se = 0, so = 0;
        const int8_t *x = in + c;
#pragma GCC unroll 4
        for (p = 0; p < P; ++p) {
            const uint32_t v = *(const td_u32u *)(const void *)(x + p * C);
            se = (uint32_t)__sxtab16((int16x2_t)se, (int8x4_t)v);
            so = td_arm_sxtab16_ror8(so, v);
        }
        out[c] = (int8_t)td_arm_avg_div((int16_t)se, P, LO, HI);
        out[c + 1] = (int8_t)td_arm_avg_div((int16_t)so, P, LO, HI);
        out[c + 2] = (int8_t)td_arm_avg_div((int32_t)se >> 16, P, LO, HI);
        out[c + 3] = (int8_t)td_arm_avg_div((int32_t)so >> 16, P, LO, HI);
    }
    for (; c < C; ++c) {
        int32_t sum = 0;
        for (p = 0; p < P; ++p) {
            sum += in[p * C + c];
        }
        out[c] = (int8_t)td_arm_avg_div(sum, P, LO, HI);
    }
}

/* ---------------------------------------------------------------------- */
/* Max pooling: four channels per word                                     */
/* ---------------------------------------------------------------------- */
/* Per byte lane max(m, x): SSUB8 sets the GE flag of each lane where
 * x >= m, SEL then takes those lanes from x.  One asm statement, so that no
 * other GE-setting instruction can come between the two. */
TD_ARM_AI uint32_t td_arm_max4(uint32_t m, uint32_t x)
{
    uint32_t r;
    __asm__("ssub8 %[r], %[x], %[m]\n\tsel %[r], %[x], %[m]"
            : [r] "=&r"(r) : [x] "r"(x), [m] "r"(m) : "cc");
    return r;
}

/* Per byte lane min(m, x). */
TD_ARM_AI uint32_t td_arm_min4(uint32_t m, uint32_t x)
{
    uint32_t r;
    __asm__("ssub8 %[r], %[x], %[m]\n\tsel %[r], %[m], %[x]"
            : [r] "=&r"(r) : [x] "r"(x), [m] "r"(m) : "cc");
    return r;
}

/* The window rows/columns [*lo, *hi) of origin o inside 0 .. SIZE - 1. */
TD_ARM_AI void td_arm_clip_window(int o, const int K, const int SIZE, int *lo, int *hi)
{
    *lo = o < 0 ? -o : 0;
    *hi = SIZE - o < K ? SIZE - o : K;
    *hi = *hi < *lo ? *lo : *hi;
}

/* Max pooling's parameters (win.in_zero_point unused). */
typedef struct {
    td_arm_win win;
    int act_min, act_max;
} td_arm_maxpool_cfg;

/* TFLite max pooling (padding cells ignored) with the activation clamp:
 * the running max starts at LO (so the lower clamp is free), and HI < 127
 * adds one min per word.  Channels beyond a multiple of 4 one at a time. */
TD_ARM_AI void td_arm_maxpool(const int8_t *in, int8_t *out, const td_arm_maxpool_cfg *cfg)
{
    const int IH = cfg->win.in_h, IW = cfg->win.in_w, C = cfg->win.in_c, OH = cfg->win.out_h;
    const int OW = cfg->win.out_w, KH = cfg->win.k_h, KW = cfg->win.k_w, SH = cfg->win.stride_h;
    const int SW = cfg->win.stride_w, PT = cfg->win.pad_top, PL = cfg->win.pad_left;
    const int LO = cfg->act_min, HI = cfg->act_max;
    const uint32_t lo4 = (uint32_t)(uint8_t)LO * 0x01010101u;
    const uint32_t hi4 = (uint32_t)(uint8_t)HI * 0x01010101u;
    int oy, ox, c, y, x, ky0, ky1, kx0, kx1;
    for (oy = 0; oy < OH; ++oy) {
        td_arm_clip_window(oy * SH - PT, KH, IH, &ky0, &ky1);
        for (ox = 0; ox < OW; ++ox) {
            const int8_t *w; /* the window's first cell inside the image */
            int8_t *o = out + (oy * OW + ox) * C;
            td_arm_clip_window(ox * SW - PL, KW, IW, &kx0, &kx1);
            w = in + ((oy * SH - PT + ky0) * IW + ox * SW - PL + kx0) * C;
            for (c = 0; c + 4 <= C; c += 4) {
                uint32_t m = lo4;
                for (y = 0; y < ky1 - ky0; ++y) {
#pragma GCC unroll 4
                    for (x = 0; x < kx1 - kx0; ++x) {
                        m = td_arm_max4(m, *(const td_u32u *)(const void *)(w + (y * IW + x) * C + c));
                    }
                }
                if (HI < 127) {
                    m = td_arm_min4(m, hi4);
                }
                *(td_u32u *)(void *)(o + c) = m;
            }
            for (; c < C; ++c) {
                int32_t m = LO;
                for (y = 0; y < ky1 - ky0; ++y) {
                    for (x = 0; x < kx1 - kx0; ++x) {
                        const int32_t v = w[(y * IW + x) * C + c];
                        m = v > m ? v : m;
                    }
                }
                o[c] = (int8_t)(m < HI ? m : HI);
            }
        }
    }
}

#endif /* __ARM_FEATURE_DSP */

#endif
