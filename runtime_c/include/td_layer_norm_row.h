/* tinydeploy runtime: the per-row arithmetic of the int8 layer normalization
 * (s8/layer_norm_s8.c documents it), shared by its portable kernel and the
 * vector-lane ones (riscv/rvv_layer_norm_s8.c, arm/mve_layer_norm_s8.c): the
 * rounding shift, and a row's reciprocal square root y (Q29) and normalizing
 * shift s = 28 + e. */
#ifndef TD_LAYER_NORM_ROW_H
#define TD_LAYER_NORM_ROW_H

#include "td_kernels_s8.h"

/* The parameters of the vector-lane kernels (td_rvv_layer_norm_s8,
 * td_mve_layer_norm_s8): td_layer_norm_s8's, with every element's
 * requantization shift 33 or more (the backends check) given as half_hi =
 * 2^(shift - 33) (the rounding term's high word) and shift32 = shift - 32.
 * The lanes compute the 64-bit products of magnitudes as word pairs (low and
 * high multiply); round(v / 2^s) = sign(v) floor((|v| + 2^(s-1)) / 2^s) is
 *   s < 32:  (hi << (32 - s)) + (lo >> s) + (((lo mod 2^s) + 2^(s-1)) >> s),
 *   s = 32:  hi + (lo >> 31),
 *   s > 32:  (hi + 2^(s-33)) >> (s - 32)   (lo / 2^32 < 1 cannot change the floor),
 * without carries. */
typedef struct {
    int32_t outer, size;
    int32_t eps_hi, eps_lo;
    int32_t output_offset;
    const int32_t *multiplier, *half_hi, *shift32, *bias;
} td_layer_norm_lanes_params;

#define TD_LN_ONE_Q29 ((int64_t)1 << 29)
/* the chord 7/3 - 4/3 x in Q29: round(7/3 2^29), round(4/3 2^29) */
#define TD_LN_C0 ((int64_t)1252698795)
#define TD_LN_C1 ((int64_t)715827883)

/* round(v / 2^s), ties away from zero, for 1 <= s <= 62 */
static inline int64_t td_ln_rounding_shift(int64_t v, int32_t s)
{
    const int64_t half = (int64_t)1 << (s - 1);
    return (v + half - (v < 0 ? 1 : 0)) >> s;
}

/* y ~ 2^29 / sqrt(t / 2^30) for t in [2^28, 2^30) */
static inline int64_t td_ln_rsqrt_q29(int64_t t)
{
    const int64_t x = t * 2; /* Q31, in [2^29, 2^31) */
    int64_t y = TD_LN_C0 - ((TD_LN_C1 * x) >> 31);
    int k;
    for (k = 0; k < 4; ++k) {
        const int64_t y2 = (y * y + (TD_LN_ONE_Q29 >> 1)) >> 29;
        const int64_t xy2 = (x * y2 + ((int64_t)1 << 30)) >> 31;
        y = (y * (3 * TD_LN_ONE_Q29 - xy2) + TD_LN_ONE_Q29) >> 30;
    }
    return y;
}

/* A row of n codes with sums sum and sum_sq: y (0 when T = 0) and *s, so that
 * z_i = round((n q_i - sum) y / 2^s). */
static inline int32_t td_ln_row_scale(int32_t n, int32_t sum, int32_t sum_sq, int64_t eps,
                                      int32_t *s)
{
    int64_t t = (int64_t)n * sum_sq - (int64_t)sum * sum + eps;
    int32_t y = 0, e = 0;
    if (t > 0) {
        while (t >= ((int64_t)1 << 30)) {
            t >>= 2;
            ++e;
        }
        while (t < ((int64_t)1 << 28)) {
            t <<= 2;
            --e;
        }
        y = (int32_t)td_ln_rsqrt_q29(t); /* <= 2^30 */
    }
    *s = 28 + e;
    return y;
}

#endif
