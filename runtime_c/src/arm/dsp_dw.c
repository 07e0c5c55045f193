/* Armv7E-M DSP support routines of the depthwise templates of td_arm_dw.h:
 * int8 input rows into the int16 ring slots. */
#include "td_arm_dw.h"

#if defined(__ARM_FEATURE_DSP)

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

void td_arm_dw_ring_init(int16_t *ring, int n, int zp)
{
    fill16(ring, n, zp);
}

void td_arm_dw_fill(const int8_t *in, int16_t *slot, int iy, int ih, int iw, int c, int nc,
                    int pu, int pl, int zp)
{
    const int8_t *src = in + iy * iw * c;
    int16_t *dst = slot + pl;
    int b = 0, k;
    if (iy < 0 || iy >= ih) {
        fill16(slot, nc * pu, zp);
        return;
    }
    if ((nc & 3) == 0) {
        for (; b + 2 <= iw; b += 2) {
            const int8_t *p0 = src + b * c;
            int16_t *d = dst + b;
            for (k = 0; k < nc; k += 4, d += 4 * pu) {
                const uint32_t v0 = *(const td_u32u *)(const void *)(p0 + k);
                const uint32_t v1 = *(const td_u32u *)(const void *)(p0 + c + k);
                const uint32_t e0 = (uint32_t)__sxtb16((int8x4_t)v0), o0 = td_arm_sxtb16_ror8(v0);
                const uint32_t e1 = (uint32_t)__sxtb16((int8x4_t)v1), o1 = td_arm_sxtb16_ror8(v1);
                *(td_u32u *)(void *)d = td_arm_pkhbt16(e0, e1);
                *(td_u32u *)(void *)(d + pu) = td_arm_pkhbt16(o0, o1);
                *(td_u32u *)(void *)(d + 2 * pu) = td_arm_pkhtb16(e1, e0);
                *(td_u32u *)(void *)(d + 3 * pu) = td_arm_pkhtb16(o1, o0);
            }
        }
    }
    for (; b < iw; ++b) {
        for (k = 0; k < nc; ++k) {
            dst[k * pu + b] = src[b * c + k];
        }
    }
}

#endif
