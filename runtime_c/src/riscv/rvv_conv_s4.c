/* Convolution with int4 weights, RISC-V vector (Zve32x / V, RVV 1.0), inline
 * assembly, vector length agnostic: see td_rvv_s4.h.  Vector state lives across
 * consecutive asm statements of one function (no calls in between). */
#include <stddef.h>

#include "td_rvv_s4.h"

#if !defined(__riscv_vector)
#error "rvv_conv_s4.c needs a RISC-V vector target (-march=..._zve32x or ...v)"
#endif

/* One tap for both channel blocks: the H-byte row at w (strip at the current vl),
 * input value x.  vtype e16 m2; accumulators e32 m4 in v8 (low nibbles) and v12. */
/* The strip of packed bytes at w -> the low nibbles in v6, the high ones in v4 (int16). */
#define TD_S4_UNPACK                                                        \
    "vle8.v v1, (%[w])\n\t"                                                 \
    "vsext.vf2 v4, v1\n\t"                                                  \
    "vsll.vi v6, v4, 12\n\t"                                                \
    "vsra.vi v6, v6, 12\n\t"                                                \
    "vsra.vi v4, v4, 4\n\t"
#define TD_S4_TAP                                                           \
    TD_S4_UNPACK                                                            \
    "add %[w], %[w], %[ws]\n\t"                                             \
    "vwmacc.vx v8, %[t], v6\n\t"                                            \
    "vwmacc.vx v12, %[t], v4\n\t"

/* n taps with inputs x[0..n) (one byte each), rows from w (stride ws). */
static inline const uint8_t *taps(const int8_t *x, const uint8_t *w, int32_t ws, int32_t n)
{
    const int8_t *end = x + n;
    int32_t t;
    if (n <= 0) {
        return w;
    }
    __asm__ volatile(
        "1:\n\t"
        "lb %[t], 0(%[x])\n\t"
        "addi %[x], %[x], 1\n\t"
        TD_S4_TAP
        "bltu %[x], %[end], 1b\n\t"
        : [x] "+r"(x), [w] "+r"(w), [t] "=&r"(t)
        : [ws] "r"(ws), [end] "r"(end)
        : "memory");
    return w;
}

/* n padding taps: the input is the zero point. */
static inline const uint8_t *pad_taps(int32_t zp, const uint8_t *w, int32_t ws, int32_t n)
{
    int32_t t = zp;
    for (; n > 0; --n) {
        __asm__ volatile(TD_S4_TAP : [w] "+r"(w) : [t] "r"(t), [ws] "r"(ws) : "memory");
    }
    return w;
}

/* Requantize v8 (reg 8) or v12 (reg 12): channels c0.. (vl of them), stored at out. */
#define TD_S4_RQ(N)                                                         \
static void rq_v##N(size_t vl, const td_rvv_conv_s4_params *p, int c0, int8_t *out) \
{                                                                           \
    __asm__ volatile(                                                       \
        "vsetvli zero, %[vl], e32, m4, ta, mu\n\t"                          \
        "vle32.v v16, (%[left])\n\t"                                        \
        "vsll.vv v" #N ", v" #N ", v16\n\t"                                 \
        "vle32.v v16, (%[mult])\n\t"                                        \
        "vsmul.vv v" #N ", v" #N ", v16\n\t"                                \
        "vle32.v v16, (%[right])\n\t"                                       \
        "vmslt.vx v0, v" #N ", zero\n\t"                                    \
        "vrsub.vi v" #N ", v" #N ", 0, v0.t\n\t"                            \
        "vssrl.vv v" #N ", v" #N ", v16\n\t"                                \
        "vrsub.vi v" #N ", v" #N ", 0, v0.t\n\t"                            \
        "vadd.vx v" #N ", v" #N ", %[zp]\n\t"                               \
        "vmax.vx v" #N ", v" #N ", %[lo]\n\t"                               \
        "vmin.vx v" #N ", v" #N ", %[hi]\n\t"                               \
        "vsetvli zero, zero, e16, m2, ta, mu\n\t"                           \
        "vnsrl.wi v20, v" #N ", 0\n\t"                                      \
        "vsetvli zero, zero, e8, m1, ta, mu\n\t"                            \
        "vnsrl.wi v22, v20, 0\n\t"                                          \
        "vse8.v v22, (%[o])\n\t"                                            \
        :                                                                   \
        : [vl] "r"(vl), [left] "r"(p->left + c0), [mult] "r"(p->mult + c0), \
          [right] "r"(p->right + c0), [zp] "r"(p->output_offset),           \
          [lo] "r"(p->act_min), [hi] "r"(p->act_max), [o] "r"(out)          \
        : "memory");                                                        \
}

TD_S4_RQ(8)
TD_S4_RQ(12)

void td_rvv_conv_s4(const td_rvv_conv_s4_params *p, const int8_t *input,
                    const uint8_t *weights, int8_t *output)
{
    const int32_t h = p->half, in_c = p->in_c, out_c = p->out_c, k_w = p->k_w;
    int32_t oy, ox, j0;
    __asm__ volatile("csrwi vxrm, 0"); /* round to nearest up (vsmul), as td_rvv_conv_s8 */
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            const int32_t kx0 = ix0 < 0 ? (-ix0 < k_w ? -ix0 : k_w) : 0;
            const int32_t kx1 = p->in_w - ix0 < k_w ? (p->in_w - ix0 > kx0 ? p->in_w - ix0 : kx0) : k_w;
            int8_t *out = output + (oy * p->out_w + ox) * out_c;
            for (j0 = 0; j0 < h; ) {
                const uint8_t *w = weights + j0;
                size_t vl;
                int32_t ky;
                __asm__ volatile("vsetvli %[vl], %[n], e16, m2, ta, mu\n\t"
                                 "vle32.v v8, (%[b0])\n\t"
                                 "vle32.v v12, (%[b1])\n\t"
                                 : [vl] "=&r"(vl)
                                 : [n] "r"(h - j0), [b0] "r"(p->bias + j0), [b1] "r"(p->bias + h + j0)
                                 : "memory");
                for (ky = 0; ky < p->k_h; ++ky) {
                    const int32_t iy = iy0 + ky;
                    if (iy < 0 || iy >= p->in_h) {
                        w = pad_taps(p->input_zero_point, w, h, k_w * in_c);
                        continue;
                    }
                    w = pad_taps(p->input_zero_point, w, h, kx0 * in_c);
                    w = taps(input + ((iy * p->in_w + ix0 + kx0) * in_c), w, h, (kx1 - kx0) * in_c);
                    w = pad_taps(p->input_zero_point, w, h, (k_w - kx1) * in_c);
                }
                rq_v8(vl, p, j0, out + j0);
                if (h + j0 < out_c) {
                    const int32_t rest = out_c - h - j0;
                    rq_v12((size_t)rest < vl ? (size_t)rest : vl, p, h + j0, out + h + j0);
                }
                j0 += (int32_t)vl;
            }
        }
    }
}

/* Depthwise (depth multiplier 1, an even channel count: 2H = C, so both blocks'
 * lanes are channels): the same tap rows over the channels, but each channel reads
 * its own input, so per tap the two channel blocks' inputs are vectors too (vle8 +
 * vsext.vf2, vwmacc.vv).  vtype e16 m2 as TD_S4_TAP. */
#define TD_S4_DW_TAP                                                        \
    TD_S4_UNPACK                                                            \
    "vle8.v v1, (%[x])\n\t"                                                 \
    "vsext.vf2 v20, v1\n\t"                                                 \
    "vwmacc.vv v8, v6, v20\n\t"                                             \
    "vle8.v v1, (%[xh])\n\t"                                                \
    "vsext.vf2 v20, v1\n\t"                                                 \
    "vwmacc.vv v12, v4, v20\n\t"

void td_rvv_dw_s4(const td_rvv_conv_s4_params *p, const int8_t *input,
                  const uint8_t *weights, int8_t *output)
{
    const int32_t h = p->half, c = p->in_c, k_w = p->k_w;
    int32_t oy, ox, j0;
    __asm__ volatile("csrwi vxrm, 0"); /* round to nearest up (vsmul), as td_rvv_conv_s8 */
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            int8_t *out = output + (oy * p->out_w + ox) * c;
            for (j0 = 0; j0 < h; ) {
                size_t vl;
                int32_t ky, kx;
                __asm__ volatile("vsetvli %[vl], %[n], e16, m2, ta, mu\n\t"
                                 "vle32.v v8, (%[b0])\n\t"
                                 "vle32.v v12, (%[b1])\n\t"
                                 : [vl] "=&r"(vl)
                                 : [n] "r"(h - j0), [b0] "r"(p->bias + j0), [b1] "r"(p->bias + h + j0)
                                 : "memory");
                for (ky = 0; ky < p->k_h; ++ky) {
                    const int32_t iy = iy0 + ky;
                    for (kx = 0; kx < k_w; ++kx) {
                        const int32_t ix = ix0 + kx;
                        const uint8_t *w = weights + (ky * k_w + kx) * h + j0;
                        if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
                            /* padding: the zero point (the bias has its offset folded in) */
                            __asm__ volatile(TD_S4_UNPACK
                                             "vwmacc.vx v8, %[z], v6\n\t"
                                             "vwmacc.vx v12, %[z], v4\n\t"
                                             : : [w] "r"(w), [z] "r"(p->input_zero_point)
                                             : "memory");
                        } else {
                            const int8_t *x = input + ((iy * p->in_w + ix) * c + j0);
                            __asm__ volatile(TD_S4_DW_TAP
                                             : : [w] "r"(w), [x] "r"(x), [xh] "r"(x + h) : "memory");
                        }
                    }
                }
                rq_v8(vl, p, j0, out + j0);
                rq_v12(vl, p, h + j0, out + h + j0);
                j0 += (int32_t)vl;
            }
        }
    }
}
