/* int8 bilinear resize of NHWC images (TFLite RESIZE_BILINEAR, integer
 * kernel): coordinates in Q10 fixed point, the four neighbours weighted by
 * products of Q10 fractions (a Q20 sum), rounded half away from zero.  The
 * output has the input's scale and zero point (the weights sum to 2^20). */
#include "td_kernels_s8.h"

/* Output coordinate o -> input coordinate *v (Q10) and its two neighbours. */
static void interp_q10(int32_t o, int32_t scale_q10, int32_t half_pixel,
                       int32_t size, int32_t *v, int32_t *lo, int32_t *hi)
{
    const int32_t one = (int32_t)1 << 10;
    int32_t up;
    *v = o * scale_q10 + (half_pixel ? scale_q10 / 2 - (one >> 1) : 0);
    *lo = *v / one > 0 ? *v / one : 0;
    up = (*v + one - 1) / one;
    *hi = up < size - 1 ? up : size - 1;
}

void td_resize_bilinear_s8(const td_resize_bilinear_s8_params *p,
                           const int8_t *input, int8_t *output)
{
    const int32_t one = (int32_t)1 << 10, half = (int32_t)1 << 19;
    const int32_t ch = p->channels, row = p->in_w * ch;
    int32_t oy, ox, c;
    for (oy = 0; oy < p->out_h; ++oy) {
        int32_t vy, y0, y1;
        interp_q10(oy, p->scale_h_q10, p->half_pixel_centers, p->in_h, &vy, &y0, &y1);
        {
            const int32_t dy = vy - one * y0;
            const int8_t *r0 = input + y0 * row, *r1 = input + y1 * row;
            for (ox = 0; ox < p->out_w; ++ox) {
                int32_t vx, x0, x1;
                int8_t *out = output + (oy * p->out_w + ox) * ch;
                interp_q10(ox, p->scale_w_q10, p->half_pixel_centers, p->in_w, &vx, &x0, &x1);
                {
                    const int32_t dx = vx - one * x0;
                    /* |sum| <= 128 * 2048 * 2048 < 2^31 (checked at compile time) */
                    const int32_t w00 = (one - dy) * (one - dx), w10 = dy * (one - dx);
                    const int32_t w01 = (one - dy) * dx, w11 = dy * dx;
                    const int8_t *a = r0 + x0 * ch, *b = r1 + x0 * ch;
                    const int8_t *d = r0 + x1 * ch, *e = r1 + x1 * ch;
                    for (c = 0; c < ch; ++c) {
                        const int32_t acc = a[c] * w00 + b[c] * w10 + d[c] * w01 + e[c] * w11;
                        out[c] = (int8_t)((acc + (acc > 0 ? half : -half)) / (one * one));
                    }
                }
            }
        }
    }
}
