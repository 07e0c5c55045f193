/* int8 Max and Min with NumPy broadcasting (TFLite MAXIMUM / MINIMUM): both
 * inputs already have the output's scale and zero point (the int8 stage
 * requantizes them), so the op compares codes, then applies the fused
 * activation clamp. Elements are written in increasing order, so an output
 * aliasing a non-broadcast input is safe. */
#include "td_kernels_s8.h"

void td_minmax_s8(const td_minmax_s8_params *p, const int8_t *a,
                  const int8_t *b, int8_t *output)
{
    enum { OUTER = TD_MAX_DIMS - 1 };
    int32_t idx[OUTER] = {0};
    int32_t rows = 1, r, i, a_off = 0, b_off = 0;
    int d;
    const int32_t n = p->out_shape[OUTER];
    const int32_t sa = p->a_strides[OUTER], sb = p->b_strides[OUTER];
    for (d = 0; d < OUTER; ++d) {
        rows *= p->out_shape[d];
    }
    for (r = 0; r < rows; ++r) {
        const int8_t *x = a + a_off, *y = b + b_off;
        int8_t *out = output + r * n;
        for (i = 0; i < n; ++i) {
            const int32_t u = x[i * sa], v = y[i * sb];
            const int32_t m = p->is_max ? (u > v ? u : v) : (u < v ? u : v);
            out[i] = (int8_t)td_clamp_s32(m, p->act_min, p->act_max);
        }
        for (d = OUTER - 1; d >= 0; --d) {
            a_off += p->a_strides[d];
            b_off += p->b_strides[d];
            if (++idx[d] < p->out_shape[d]) {
                break;
            }
            a_off -= p->a_strides[d] * p->out_shape[d];
            b_off -= p->b_strides[d] * p->out_shape[d];
            idx[d] = 0;
        }
    }
}
