/* int8 MatMul of two activations with the Armv7E-M DSP extension: the
 * operands' offset values (|x + offset| <= 255) are widened into halfword
 * pairs with SXTAB16 and multiplied two at a time with SMLAD.  A's rows must
 * be contiguous along K (a_k_stride 1); B is read either along K (b_k_stride
 * 1: q @ k^T, k read in place) or along N (b_n_stride 1: a @ v), two output
 * columns at a time; other layouts, the odd last column and the K % 4 tail
 * run the portable loop.  The int32 sums are exact (tinydeploy's overflow
 * check bounds them), so the result equals td_batch_matmul_s8 bit for bit. */
#include <string.h>

#include "td_arm_bmm.h"

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

static inline uint32_t bmm_load32(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint32_t bmm_load16(const int8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* bytes 0 and 2 of w, and bytes 1 and 3, sign-extended plus offset2 (the
 * offset in both halfwords). */
static inline int16x2_t bmm_even(uint32_t w, uint32_t offset2)
{
    return __sxtab16((int16x2_t)offset2, (int8x4_t)w);
}

static inline int16x2_t bmm_odd(uint32_t w, uint32_t offset2)
{
    return __sxtab16((int16x2_t)offset2, (int8x4_t)((w >> 8) | (w << 24)));
}

static inline int8_t bmm_out(const td_batch_matmul_s8_params *p, int32_t acc)
{
    acc = td_mbqm(acc, p->multiplier, p->shift) + p->output_offset;
    return (int8_t)td_clamp_s32(acc, p->act_min, p->act_max);
}

/* The portable sum of one output element from k = k0 on. */
static int32_t bmm_tail(const td_batch_matmul_s8_params *p, const int8_t *ar,
                        const int8_t *bc, int32_t k0, int32_t acc)
{
    int32_t i;
    for (i = k0; i < p->k; ++i) {
        acc += (ar[i * p->a_k_stride] + p->a_offset) * (bc[i * p->b_k_stride] + p->b_offset);
    }
    return acc;
}

static void bmm_block(const td_batch_matmul_s8_params *p, const int8_t *a,
                      const int8_t *b, int8_t *out)
{
    const int32_t m = p->m, k = p->k, n = p->n, k4 = k & ~3;
    const int32_t bk = p->b_k_stride, bn = p->b_n_stride;
    const uint32_t ao2 = ((uint32_t)p->a_offset & 0xFFFFu) * 0x10001u;
    const uint32_t bo2 = ((uint32_t)p->b_offset & 0xFFFFu) * 0x10001u;
    const int fast = p->a_k_stride == 1 && (bk == 1 || bn == 1);
    int32_t r;
    for (r = 0; r < m; ++r) {
        const int8_t *ar = a + r * p->a_m_stride;
        int8_t *o = out + r * n;
        int32_t c = 0, i;
        if (fast && bk == 1) {
            /* B's columns are contiguous along K. */
            for (; c + 2 <= n; c += 2) {
                const int8_t *b0 = b + c * bn, *b1 = b0 + bn;
                int32_t acc0 = 0, acc1 = 0;
                for (i = 0; i < k4; i += 4) {
                    const uint32_t wa = bmm_load32(ar + i);
                    const uint32_t w0 = bmm_load32(b0 + i), w1 = bmm_load32(b1 + i);
                    const int16x2_t ae = bmm_even(wa, ao2), ad = bmm_odd(wa, ao2);
                    acc0 = __smlad(ae, bmm_even(w0, bo2), acc0);
                    acc0 = __smlad(ad, bmm_odd(w0, bo2), acc0);
                    acc1 = __smlad(ae, bmm_even(w1, bo2), acc1);
                    acc1 = __smlad(ad, bmm_odd(w1, bo2), acc1);
                }
                o[c] = bmm_out(p, bmm_tail(p, ar, b0, k4, acc0));
                o[c + 1] = bmm_out(p, bmm_tail(p, ar, b1, k4, acc1));
            }
        } else if (fast) {
            /* B's rows are contiguous along N: rows i and i + 2 give the
             * pairs of two adjacent columns for A's even elements, rows
             * i + 1 and i + 3 for its odd ones. */
            for (; c + 2 <= n; c += 2) {
                const int8_t *bc = b + c;
                int32_t acc0 = 0, acc1 = 0;
                for (i = 0; i < k4; i += 4) {
                    const uint32_t wa = bmm_load32(ar + i);
                    const int8_t *br = bc + i * bk;
                    const uint32_t x02 = bmm_load16(br) | (bmm_load16(br + 2 * bk) << 16);
                    const uint32_t x13 = bmm_load16(br + bk) | (bmm_load16(br + 3 * bk) << 16);
                    const int16x2_t ae = bmm_even(wa, ao2), ad = bmm_odd(wa, ao2);
                    acc0 = __smlad(ae, bmm_even(x02, bo2), acc0);
                    acc0 = __smlad(ad, bmm_even(x13, bo2), acc0);
                    acc1 = __smlad(ae, bmm_odd(x02, bo2), acc1);
                    acc1 = __smlad(ad, bmm_odd(x13, bo2), acc1);
                }
                o[c] = bmm_out(p, bmm_tail(p, ar, bc, k4, acc0));
                o[c + 1] = bmm_out(p, bmm_tail(p, ar, bc + 1, k4, acc1));
            }
        }
        for (; c < n; ++c) {
            o[c] = bmm_out(p, bmm_tail(p, ar, b + c * bn, 0, 0));
        }
    }
}

void td_arm_batch_matmul_s8(const td_batch_matmul_s8_params *p, const int8_t *a,
                            const int8_t *b, int8_t *output)
{
    td_bmm_each_batch(p, a, b, output, bmm_block);
}

#endif
