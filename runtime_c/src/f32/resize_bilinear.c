/* Bilinear resize of NHWC float32 images (ONNX Resize mode "linear" over H
 * and W): the input coordinate of each output row/column, clamped to the
 * input, mixes its two neighbours with weights 1 - f and f. */
#include "td_f32_internal.h"

/* Output coordinate o -> neighbours *lo, *hi and the weight *f of *hi. */
static void interp(int32_t o, int32_t mode, float scale, int32_t size,
                   int32_t *lo, int32_t *hi, float *f)
{
    float v = mode == TD_RESIZE_HALF_PIXEL ? ((float)o + 0.5f) * scale - 0.5f
                                           : (float)o * scale;
    const float last = (float)(size - 1);
    v = v < 0.0f ? 0.0f : (v > last ? last : v);
    *lo = (int32_t)v;
    *hi = *lo + 1 < size ? *lo + 1 : size - 1;
    *f = v - (float)*lo;
}

void td_resize_bilinear_f32(const td_resize_bilinear_f32_params *p,
                            const float *input, float *output)
{
    const int32_t ch = p->channels, row = p->in_w * ch;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        int32_t y0, y1;
        float fy;
        interp(oy, p->coord_mode, p->scale_h, p->in_h, &y0, &y1, &fy);
        const float *r0 = input + y0 * row, *r1 = input + y1 * row;
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            int32_t x0, x1;
            float fx;
            float *out = output + (oy * p->out_w + ox) * ch;
            interp(ox, p->coord_mode, p->scale_w, p->in_w, &x0, &x1, &fx);
            const float *a = r0 + x0 * ch, *b = r0 + x1 * ch;
            const float *d = r1 + x0 * ch, *e = r1 + x1 * ch;
            for (int32_t c = 0; c < ch; ++c) {
                const float top = a[c] + (b[c] - a[c]) * fx;
                const float bottom = d[c] + (e[c] - d[c]) * fx;
                out[c] = top + (bottom - top) * fy;
            }
        }
    }
}
