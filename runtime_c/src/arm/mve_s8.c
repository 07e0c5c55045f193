/* Helium (MVE) support routines for the templates of td_arm_mve.h:
 * the im2col copy of the GEMM convolution. */
#include "td_arm_mve.h"

#if defined(__ARM_FEATURE_MVE)

/* n bytes from src to dst (any alignment), 16 at a time, predicated tail. */
static void copy8(int8_t *dst, const int8_t *src, int n)
{
    for (; n > 0; n -= 16, dst += 16, src += 16) {
        const mve_pred16_t pr = vctp8q((uint32_t)n);
        vstrbq_p_s8(dst, vldrbq_z_s8(src, pr), pr);
    }
}

static void set8(int8_t *dst, int8_t v, int n)
{
    const int8x16_t vv = vdupq_n_s8(v);
    for (; n > 0; n -= 16, dst += 16) {
        vstrbq_p_s8(dst, vv, vctp8q((uint32_t)n));
    }
}

void td_mve_im2col(const int8_t *in, int8_t *blk, int p, int n, int ih, int iw, int c,
                   int ow, int kh, int kw, int sh, int sw, int pt, int pl, int kc, int zp)
{
    const int seg = kw * c, klen = kh * seg;
    int i, r, x;
    for (i = 0; i < n; ++i, ++p) {
        const int oy = p / ow, ox = p - (p / ow) * ow;
        const int iy0 = oy * sh - pt, ix0 = ox * sw - pl;
        int8_t *d = blk + i * kc * 16;
        for (r = 0; r < kh; ++r, d += seg) {
            const int iy = iy0 + r;
            if (iy < 0 || iy >= ih) {
                set8(d, (int8_t)zp, seg);
            } else if (ix0 >= 0 && ix0 + kw <= iw) {
                copy8(d, in + (iy * iw + ix0) * c, seg);
            } else {
                for (x = 0; x < kw; ++x) {
                    const int ix = ix0 + x;
                    if (ix >= 0 && ix < iw) {
                        copy8(d + x * c, in + (iy * iw + ix) * c, c);
                    } else {
                        set8(d + x * c, (int8_t)zp, c);
                    }
                }
            }
        }
        set8(blk + i * kc * 16 + klen, 0, kc * 16 - klen);
    }
}

#endif
