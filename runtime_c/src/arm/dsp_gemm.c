/* Armv7E-M DSP support routine of the convolution templates of td_arm_gemm.h:
 * the slow path of the im2col copy (a window row with padding inside it). */
#include "td_arm_gemm.h"

#if defined(__ARM_FEATURE_DSP)

void td_arm_win_row(const int8_t *in, int16_t *d, int n4, int iy, int ix0, int ih, int iw,
                    int c, int kw, int kh, int r, int zp)
{
    static const uint8_t order[4] = {0, 2, 1, 3};
    const int seg = kw * c, g = seg / 4, l = seg % 4;
    const int valid_y = iy >= 0 && iy < ih;
    int e;
    for (e = 0; e < seg; ++e) {
        const int kx = e / c, ch = e - kx * c, ix = ix0 + kx;
        int16_t v = (int16_t)zp;
        if (valid_y && ix >= 0 && ix < iw) {
            v = in[(iy * iw + ix) * c + ch];
        }
        if (e < 4 * g) {
            d[(r * g + (e >> 2)) * n4 + order[e & 3]] = v;
        } else {
            const int t = r * l + e - 4 * g;
            d[(kh * g + (t >> 2)) * n4 + (t & 3)] = v;
        }
    }
}

#endif
