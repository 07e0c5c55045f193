/* int8 softmax with a compile-time table of the exponentials (see
 * td_softmax_table_s8.h).  Per row: the maximum, the Q12.19 sum of the
 * table entries (each rounded from Q0.31 as the reference rounds it), one
 * fixed-point reciprocal, then every output from its table entry. */
#include "td_softmax_table_s8.h"

static int clz32(uint32_t x)
{
#if defined(__GNUC__)
    return x ? __builtin_clz(x) : 32;
#else
    int n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
#endif
}

/* x / 2^e rounded to nearest for x >= 0 and any e >= 1: for e >= 32 the
 * quotient of an int32 rounds to 0 (the reference's 64-bit arithmetic). */
static int32_t rdbpot_nonneg(int32_t x, int e)
{
    return e < 32 ? td_rdbpot(x, e) : 0;
}

static void softmax_row(const td_softmax_table_s8_params *p, const int8_t *in,
                        int8_t *out)
{
    const int32_t depth = p->depth, last = p->table_last;
    const int32_t *table = p->table;
    int32_t c, max_v = INT8_MIN, sum = 0, recip;
    int headroom, exponent;
    for (c = 0; c < depth; ++c) {
        max_v = in[c] > max_v ? in[c] : max_v;
    }
    for (c = 0; c < depth; ++c) {
        const int32_t i = max_v - in[c];
        const int32_t e = table[i < last ? i : last];
        /* RoundingDivideByPOT(e, 12) for e >= 0: Q0.31 -> Q12.19 */
        sum += (e >> 12) + ((e >> 11) & 1);
    }
    /* 1 / sum: normalize sum to [1, 2) and use 1 / (1 + x); the row maximum
     * has the entry 2^31 - 1, so sum >= 2^19 */
    headroom = clz32((uint32_t)sum);
    recip = td_fp_one_over_one_plus_x(
        (int32_t)(((uint32_t)sum << headroom) - 0x80000000u));
    exponent = (12 - headroom) + 31 - 8;
    for (c = 0; c < depth; ++c) {
        const int32_t i = max_v - in[c];
        const int32_t e = table[i < last ? i : last];
        const int32_t v = rdbpot_nonneg(td_srdhm(recip, e), exponent) + INT8_MIN;
        out[c] = (int8_t)(v > INT8_MAX ? INT8_MAX : v);
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
