/* Armv7E-M DSP support routines shared by the generated layer wrappers:
 * layout changes of int8 activations into the int16 buffers that the
 * templates of td_kernels_arm.h read.  (The compute kernels themselves are
 * templates in that header, specialized per layer.) */
#include "td_kernels_arm.h"

#if defined(__ARM_FEATURE_DSP)

static uint32_t ror8(uint32_t v)
{
    return (v >> 8) | (v << 24);
}

/* n int16 values = zp */
static void fill16(int16_t *p, int n, int32_t zp)
{
    const uint32_t zz = ((uint32_t)zp & 0xffffu) * 0x10001u;
    if (n > 0 && ((uintptr_t)p & 2u)) {
        *p++ = (int16_t)zp;
        --n;
    }
    for (; n >= 4; n -= 4, p += 4) {
        ((td_u32a *)(void *)p)[0] = zz;
        ((td_u32a *)(void *)p)[1] = zz;
    }
    for (; n > 0; --n) {
        *p++ = (int16_t)zp;
    }
}

void td_arm_win_row(const int8_t *in, int16_t *d, int dstep, int iy, int ix0, int ih, int iw,
                    int c, int kw, int rl, int zp)
{
    static const uint8_t order[4] = {0, 2, 1, 3};
    const int valid_y = iy >= 0 && iy < ih;
    int e;
    for (e = 0; e < rl; ++e) {
        const int kx = e / c, ch = e - kx * c, ix = ix0 + kx;
        int v = zp;
        if (kx < kw && valid_y && ix >= 0 && ix < iw) {
            v = in[(iy * iw + ix) * c + ch];
        }
        d[(e >> 2) * dstep + order[e & 3]] = (int16_t)v;
    }
}

void td_arm_dw_expand(const int8_t *in, int16_t *xt, int ih, int iw, int c, int pt,
                      int pl, int pv, int pu, int zp, int transposed)
{
    /* a: the axis of xt's rows (v), b: the contiguous one (u) */
    const int na = transposed ? iw : ih, nb = transposed ? ih : iw;
    const int sa = transposed ? c : iw * c, sb = transposed ? iw * c : c;
    const int pa = transposed ? pl : pt, pb = transposed ? pt : pl;
    const int rowc = c * pu; /* int16 per xt row */
    int a, b, k;
    fill16(xt, pv * rowc, zp);
    for (a = 0; a < na; ++a) {
        const int8_t *src = in + a * sa;
        int16_t *dst = xt + (a + pa) * rowc + pb;
        b = 0;
        if ((c & 3) == 0) {
            for (; b + 2 <= nb; b += 2) {
                const int8_t *p0 = src + b * sb, *p1 = p0 + sb;
                int16_t *d = dst + b;
                for (k = 0; k < c; k += 4, d += 4 * pu) {
                    const uint32_t v0 = *(const td_u32u *)(const void *)(p0 + k);
                    const uint32_t v1 = *(const td_u32u *)(const void *)(p1 + k);
                    const uint32_t e0 = (uint32_t)__sxtb16(v0), o0 = (uint32_t)__sxtb16(ror8(v0));
                    const uint32_t e1 = (uint32_t)__sxtb16(v1), o1 = (uint32_t)__sxtb16(ror8(v1));
                    *(td_u32u *)(void *)d = (e0 & 0xffffu) | (e1 << 16);
                    *(td_u32u *)(void *)(d + pu) = (o0 & 0xffffu) | (o1 << 16);
                    *(td_u32u *)(void *)(d + 2 * pu) = (e0 >> 16) | (e1 & 0xffff0000u);
                    *(td_u32u *)(void *)(d + 3 * pu) = (o0 >> 16) | (o1 & 0xffff0000u);
                }
            }
        }
        for (; b < nb; ++b) {
            for (k = 0; k < c; ++k) {
                dst[k * pu + b] = src[b * sb + k];
            }
        }
    }
}

#endif
