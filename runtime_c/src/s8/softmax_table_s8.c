/* int8 softmax with a compile-time table of the exponentials (see
 * td_softmax_table_s8.h).  Per row: the maximum, the Q12.19 sum of the
 * table entries (each rounded from Q0.31 as the reference rounds it), one
 * fixed-point reciprocal, then every output from its table entry. */
#include "td_softmax_table_s8.h"

/* One element's output code from its table entry e >= 0, with recip > 0 the
 * Q0.31 reciprocal of the row's sum and shift = exponent - 2, where the
 * reference computes RoundingDivideByPOT(SRDHM(recip, e), exponent) - 128
 * (exponent in [23, 31]).  For non-negative operands SRDHM is
 * floor((recip e + 2^30) / 2^31) and the rounding division by 2^exponent
 * is (floor(x / 2^(exponent - 1)) + 1) / 2 (halves up, as the reference
 * rounds positive values), and the two floors make one: t = floor((recip e
 * + 2^30) / 2^(30 + exponent)), the high word of the 64-bit sum shifted by
 * exponent - 2. */
static int32_t output_code(uint32_t recip, int32_t e, int shift)
{
    const uint64_t y = (uint64_t)recip * (uint32_t)e + (1u << 30);
    const uint32_t r = (((uint32_t)(y >> 32) >> shift) + 1u) >> 1;
    return (int32_t)(r < 255u ? r : 255u) + INT8_MIN;
}

#if defined(__GNUC__)
#define TD_SMAX_INLINE static inline __attribute__((always_inline))
#else
#define TD_SMAX_INLINE static inline
#endif

/* The table entry of index i = max - x (0..255); clamp: whether an index can
 * pass table_last (not for a full table, table_last = 256: the two passes
 * are instantiated for both cases). */
TD_SMAX_INLINE int32_t entry(const int32_t *table, int32_t i, int32_t last, int clamp)
{
    return table[clamp && i > last ? last : i];
}

/* The sum and output passes of one row with maximum max_v. */
TD_SMAX_INLINE void sum_and_output(const td_softmax_table_s8_params *p, const int8_t *in,
                                   int8_t *out, int32_t max_v, int clamp)
{
    const int32_t depth = p->depth, last = p->table_last;
    const int32_t *table = p->table;
    int32_t c, sum = 0;
    uint32_t recip;
    int headroom, exponent;
    for (c = 0; c < depth; ++c) {
        const int32_t e = entry(table, max_v - in[c], last, clamp);
        /* RoundingDivideByPOT(e, 12) for e >= 0: Q0.31 -> Q12.19 */
        sum += (e >> 12) + ((e >> 11) & 1);
    }
    /* 1 / sum: normalize sum to [1, 2) and use 1 / (1 + x); the row maximum
     * has the entry 2^31 - 1, so sum >= 2^19 and the exponent >= 23 */
    headroom = td_clz32((uint32_t)sum);
    recip = (uint32_t)td_fp_one_over_one_plus_x(
        (int32_t)(((uint32_t)sum << headroom) - 0x80000000u));
    exponent = (12 - headroom) + 31 - 8;
    if (exponent >= 32) {
        /* a sum of 2^28 or more: every SRDHM(recip, e) < 2^31 divided by 2^32
         * or more rounds to 0 (the reference's 64-bit arithmetic) */
        for (c = 0; c < depth; ++c) {
            out[c] = INT8_MIN;
        }
        return;
    }
    for (c = 0; c < depth; ++c) {
        const int32_t e = entry(table, max_v - in[c], last, clamp);
        out[c] = (int8_t)output_code(recip, e, exponent - 2);
    }
}

static void softmax_row(const td_softmax_table_s8_params *p, const int8_t *in,
                        int8_t *out)
{
    const int32_t depth = p->depth;
    int32_t c, max_v = INT8_MIN;
    for (c = 0; c < depth; ++c) {
        max_v = in[c] > max_v ? in[c] : max_v;
    }
    if (p->table_last >= 256) {
        sum_and_output(p, in, out, max_v, 0);
    } else {
        sum_and_output(p, in, out, max_v, 1);
    }
}

void td_softmax_table_s8(const td_softmax_table_s8_params *p,
                         const int8_t *input, int8_t *output)
{
    int32_t r;
    for (r = 0; r < p->outer; ++r) {
        softmax_row(p, input + r * p->depth, output + r * p->depth);
    }
}
