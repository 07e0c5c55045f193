/* int8 fused attention for Cortex-M with the DSP extension: the portable
 * kernel's body (td_attention_s8_body.h) with its row products four int8
 * pairs per two SMLAD (the operands sign-extended into halfword pairs by
 * SXTB16), two output columns at a time, when the row x is contiguous and
 * the matrix is contiguous along the sum (q @ k^T with k read in place, or
 * v transposed) or along the columns (p @ v, rows i..i+3 of two adjacent
 * columns packed from halfword loads).  Other layouts, the odd last column
 * and the len % 4 tail run the portable loops.  The int32 sums are exact, so
 * the results equal td_attention_s8's bit for bit.
 * td-requires: s8/softmax_s8.c (td_softmax_s8, on the row in place)
 * td-requires: s8/softmax_table_s8.c (td_softmax_table_s8, when p->softmax_table) */
#include "td_arm_attention.h"

#if defined(__ARM_FEATURE_DSP)

#include "td_arm_common.h"

static inline uint32_t td_attn_ld16(const int8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint32_t td_attn_ld32(const int8_t *p)
{
    return *(const td_u32u *)(const void *)p;
}

/* bytes 0 and 2, and bytes 1 and 3, of w as two sign-extended halfwords */
static inline int16x2_t td_attn_even(uint32_t w)
{
    return (int16x2_t)__sxtb16((int8x4_t)w);
}

static inline int16x2_t td_attn_odd(uint32_t w)
{
    return (int16x2_t)td_arm_sxtb16_ror8(w);
}

static void td_attn_row_c(int32_t len, const int8_t *x, int32_t xs, const int8_t *m,
                          int32_t is, int32_t cs, int32_t cols, int32_t *acc);

static void td_attn_row_dsp(int32_t len, const int8_t *x, int32_t xs, const int8_t *m,
                            int32_t is, int32_t cs, int32_t cols, int32_t *acc)
{
    const int32_t len4 = len & ~3;
    int32_t c = 0, i;
    if (xs == 1 && is == 1) {
        /* each column contiguous along the sum */
        for (; c + 2 <= cols; c += 2) {
            const int8_t *m0 = m + c * cs, *m1 = m0 + cs;
            int32_t a0 = acc[c], a1 = acc[c + 1];
            for (i = 0; i < len4; i += 4) {
                const uint32_t w = td_attn_ld32(x + i);
                const uint32_t w0 = td_attn_ld32(m0 + i), w1 = td_attn_ld32(m1 + i);
                const int16x2_t xe = td_attn_even(w), xo = td_attn_odd(w);
                a0 = __smlad(xe, td_attn_even(w0), a0);
                a0 = __smlad(xo, td_attn_odd(w0), a0);
                a1 = __smlad(xe, td_attn_even(w1), a1);
                a1 = __smlad(xo, td_attn_odd(w1), a1);
            }
            for (; i < len; ++i) {
                a0 += x[i] * m0[i];
                a1 += x[i] * m1[i];
            }
            acc[c] = a0;
            acc[c + 1] = a1;
        }
    } else if (xs == 1 && cs == 1) {
        /* rows contiguous along the columns: rows i and i + 2 give the pairs
         * of columns c, c + 1 for x's even elements, rows i + 1 and i + 3 for
         * its odd ones */
        for (; c + 2 <= cols; c += 2) {
            const int8_t *mc = m + c;
            int32_t a0 = acc[c], a1 = acc[c + 1];
            for (i = 0; i < len4; i += 4) {
                const uint32_t w = td_attn_ld32(x + i);
                const int8_t *r = mc + i * is;
                const uint32_t r02 = td_attn_ld16(r) | (td_attn_ld16(r + 2 * is) << 16);
                const uint32_t r13 = td_attn_ld16(r + is) | (td_attn_ld16(r + 3 * is) << 16);
                const int16x2_t xe = td_attn_even(w), xo = td_attn_odd(w);
                a0 = __smlad(xe, td_attn_even(r02), a0);
                a0 = __smlad(xo, td_attn_even(r13), a0);
                a1 = __smlad(xe, td_attn_odd(r02), a1);
                a1 = __smlad(xo, td_attn_odd(r13), a1);
            }
            for (; i < len; ++i) {
                a0 += x[i] * mc[i * is];
                a1 += x[i] * mc[i * is + 1];
            }
            acc[c] = a0;
            acc[c + 1] = a1;
        }
    }
    if (c < cols) {
        td_attn_row_c(len, x, xs, m + c * cs, is, cs, cols - c, acc + c);
    }
}

#define TD_ATTN_FN td_attention_s8_dsp
#define TD_ATTN_ROW td_attn_row_dsp
#define TD_ATTN_SOFTMAX_TABLE td_softmax_table_s8
#include "td_attention_s8_body.h"

#endif
