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

/* 4*n int8 -> int16, natural order or SXTB16 order (x0, x2, x1, x3). */
static void widen4(const int8_t *s, int16_t *d, int n, int perm)
{
    td_u32a *dw = (td_u32a *)(void *)d;
    int k;
    if (perm) {
        for (k = 0; k < n; ++k) {
            const uint32_t v = *(const td_u32u *)(const void *)(s + 4 * k);
            dw[2 * k] = (uint32_t)__sxtb16(v);
            dw[2 * k + 1] = (uint32_t)__sxtb16(ror8(v));
        }
    } else {
        for (k = 0; k < n; ++k) {
            const uint32_t v = *(const td_u32u *)(const void *)(s + 4 * k);
            const uint32_t e = (uint32_t)__sxtb16(v), o = (uint32_t)__sxtb16(ror8(v));
            dw[2 * k] = (e & 0xffffu) | (o << 16);
            dw[2 * k + 1] = (e >> 16) | (o & 0xffff0000u);
        }
    }
}

void td_arm_pad_s16(const int8_t *in, int16_t *xs, int ih, int iw, int c, int cp,
                    int pt, int pl, int ph, int pw, int zp, int perm)
{
    const int row = pw * cp;
    int y, x, k;
    fill16(xs, pt * row, zp);
    for (y = 0; y < ih; ++y) {
        int16_t *r = xs + (pt + y) * row;
        int16_t *d = r + pl * cp;
        const int8_t *s = in + y * iw * c;
        fill16(r, pl * cp, zp);
        if (perm || (c == cp && (c & 3) == 0 && ((uintptr_t)d & 3u) == 0)) {
            widen4(s, d, iw * c / 4, perm);
        } else if (c == cp) {
            for (k = 0; k < iw * c; ++k) {
                d[k] = s[k];
            }
        } else {
            for (x = 0; x < iw; ++x, d += cp, s += c) {
                for (k = 0; k < c; ++k) {
                    d[k] = s[k];
                }
                for (; k < cp; ++k) {
                    d[k] = (int16_t)zp;
                }
            }
        }
        fill16(r + (pl + iw) * cp, (pw - pl - iw) * cp, zp);
    }
    fill16(xs + (pt + ih) * row, (ph - pt - ih) * row, zp);
}

#endif
