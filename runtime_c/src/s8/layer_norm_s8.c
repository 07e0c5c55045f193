/* int8 layer normalization over the innermost block of [outer][size].
 *
 * Per row, with q the int8 codes, n = size, S = sum q, Q = sum q^2 (exact):
 *   d_i = n q_i - S                    (n times the deviation from the mean)
 *   T   = n Q - S^2 + E                (n^2 (variance + epsilon), in codes^2;
 *                                       E = round(n^2 epsilon / in_scale^2))
 *   z_i = round(d_i / sqrt(T) * 2^16)  (the normalized value, Q16)
 * with 1/sqrt(T) from a fixed-point reciprocal square root: T = t 4^e with
 * t in [2^28, 2^30), x = t / 2^30 in [1/4, 1) (Q31), y ~ 1/sqrt(x) in Q29
 * from the chord 7/3 - 4/3 x and four Newton steps y (3 - x y^2) / 2, so
 * 1/sqrt(T) = y 2^-(44 + e). Then per element i of the block
 *   out_i = zp + round((round(z_i m_i / 2^s_i) + b_i) / 2^8)
 * where m_i 2^-s_i = 2^8 scale_i / (2^16 out_scale) and b_i = round(2^8
 * bias_i / out_scale). Roundings are to nearest, ties away from zero. The
 * golden model (tinydeploy/ops/layer_norm.py) does the same integer steps. */
#include "td_layer_norm_row.h"

void td_layer_norm_s8(const td_layer_norm_s8_params *p, const int8_t *input,
                      int8_t *output)
{
    const int32_t n = p->size;
    const int64_t eps = ((int64_t)p->eps_hi << 31) + (int64_t)p->eps_lo;
    const int32_t *multiplier = p->multiplier, *shift = p->shift, *bias = p->bias;
    const int32_t zp = p->output_offset;
    int32_t r, i;
    for (r = 0; r < p->outer; ++r) {
        const int8_t *x = input + r * n;
        int8_t *out = output + r * n;
        int32_t sum = 0, sum_sq = 0, y, s;
        for (i = 0; i < n; ++i) {
            sum += x[i];
            sum_sq += (int32_t)x[i] * x[i];
        }
        y = td_ln_row_scale(n, sum, sum_sq, eps, &s);
        /* |d| < 2^24 (n <= 2^16) and |z| <= 2^24 (|d| / sqrt(T) <= sqrt(n)): the products
         * are 32 x 32 -> 64-bit multiplies. Reads x[i] before writing out[i]: output
         * may equal input. */
        for (i = 0; i < n; ++i) {
            const int32_t d = n * x[i] - sum;
            const int32_t z = (int32_t)td_ln_rounding_shift((int64_t)d * y, s);
            const int64_t v = td_ln_rounding_shift((int64_t)z * multiplier[i], shift[i]) + bias[i];
            int64_t o = td_ln_rounding_shift(v, 8) + zp;
            o = o < -128 ? -128 : (o > 127 ? 127 : o);
            out[i] = (int8_t)o;
        }
    }
}
