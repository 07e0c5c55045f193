/* RISC-V vector (Zve32x / V) int8 softmax with the compile-time exponential
 * table: the same function as td_softmax_table_s8 (s8/softmax_table_s8.c),
 * bit for bit, strip-mined with vsetvli (any VLEN, any depth).  Inline
 * assembly as in rv_vector.c (named vector registers); a reduction's v1
 * lives across the asm statements of one loop, with no call in between.
 *  - maximum: vredmax over int8 strips;
 *  - table entry: indexed load (vluxei32) at 4 (max - x), the index limited
 *    to table_last (vminu);
 *  - RoundingDivideByPOT(e, 12) of e >= 0 = vssra by 12 with vxrm =
 *    round-to-nearest-up, summed with vredsum;
 *  - SRDHM(recip, e) with recip, e >= 0 = vsmul (round-to-nearest-up), then
 *    RoundingDivideByPOT by the row's exponent (23..31) = vssrl; -128, at
 *    most 127, narrowed to int8 in two vnsrl steps. */
#include <stddef.h>

#include "td_softmax_table_s8.h"

#if defined(__riscv_vector)

static int32_t row_max(const int8_t *in, int32_t n)
{
    int32_t m;
    __asm__ volatile("vsetivli zero, 1, e8, m1, ta, mu\n\t"
                     "vmv.s.x v1, %[lo]\n\t"
                     : : [lo] "r"(INT8_MIN));
    while (n > 0) {
        size_t vl;
        __asm__ volatile("vsetvli %[vl], %[n], e8, m8, ta, mu\n\t"
                         "vle8.v v8, (%[x])\n\t"
                         "vredmax.vs v1, v8, v1\n\t"
                         : [vl] "=&r"(vl)
                         : [n] "r"(n), [x] "r"(in)
                         : "memory");
        in += vl;
        n -= (int32_t)vl;
    }
    __asm__ volatile("vsetivli zero, 1, e8, m1, ta, mu\n\t"
                     "vmv.x.s %[m], v1\n\t"
                     : [m] "=r"(m));
    return m;
}

/* v16..v23 = the table entries of the next vl elements (e32, m8) */
#define TD_RVV_ENTRIES                                                       \
    "vsetvli %[vl], %[n], e32, m8, ta, mu\n\t"                               \
    "vle8.v v2, (%[x])\n\t"                                                  \
    "vsext.vf4 v8, v2\n\t"                                                   \
    "vrsub.vx v8, v8, %[max]\n\t"                                            \
    "vminu.vx v8, v8, %[last]\n\t"                                           \
    "vsll.vi v8, v8, 2\n\t"                                                  \
    "vluxei32.v v16, (%[table]), v8\n\t"

static void softmax_row(const td_softmax_table_s8_params *p, const int8_t *in,
                        int8_t *out)
{
    const int32_t depth = p->depth, last = p->table_last;
    const int32_t max_v = row_max(in, depth);
    const int8_t *x;
    int32_t n, c, sum, recip;
    int headroom, exponent;
    __asm__ volatile("vsetivli zero, 1, e32, m1, ta, mu\n\t"
                     "vmv.s.x v1, zero\n\t");
    for (x = in, n = depth; n > 0;) {
        size_t vl;
        __asm__ volatile(TD_RVV_ENTRIES
                         "vssra.vi v16, v16, 12\n\t"
                         "vredsum.vs v1, v16, v1\n\t"
                         : [vl] "=&r"(vl)
                         : [n] "r"(n), [x] "r"(x), [max] "r"(max_v), [last] "r"(last),
                           [table] "r"(p->table)
                         : "memory");
        x += vl;
        n -= (int32_t)vl;
    }
    __asm__ volatile("vsetivli zero, 1, e32, m1, ta, mu\n\t"
                     "vmv.x.s %[s], v1\n\t"
                     : [s] "=r"(sum));
    headroom = __builtin_clz((uint32_t)sum);   /* sum >= 2^19 */
    recip = td_fp_one_over_one_plus_x(
        (int32_t)(((uint32_t)sum << headroom) - 0x80000000u));
    exponent = (12 - headroom) + 31 - 8;
    if (exponent >= 32) {   /* every output rounds to 0, as in the portable kernel */
        for (c = 0; c < depth; ++c) {
            out[c] = INT8_MIN;
        }
        return;
    }
    for (x = in, n = depth; n > 0;) {
        size_t vl;
        __asm__ volatile(TD_RVV_ENTRIES
                         "vsmul.vx v16, v16, %[recip]\n\t"
                         "vssrl.vx v16, v16, %[exp]\n\t"
                         "vadd.vx v16, v16, %[lo]\n\t"
                         "vmin.vx v16, v16, %[hi]\n\t"
                         "vsetvli zero, zero, e16, m4, ta, mu\n\t"
                         "vnsrl.wi v24, v16, 0\n\t"
                         "vsetvli zero, zero, e8, m2, ta, mu\n\t"
                         "vnsrl.wi v4, v24, 0\n\t"
                         "vse8.v v4, (%[o])\n\t"
                         : [vl] "=&r"(vl)
                         : [n] "r"(n), [x] "r"(x), [max] "r"(max_v), [last] "r"(last),
                           [table] "r"(p->table), [recip] "r"(recip), [exp] "r"(exponent),
                           [lo] "r"(INT8_MIN), [hi] "r"(INT8_MAX), [o] "r"(out + (x - in))
                         : "memory");
        x += vl;
        n -= (int32_t)vl;
    }
}

void td_rvv_softmax_table_s8(const td_softmax_table_s8_params *p,
                             const int8_t *input, int8_t *output)
{
    int32_t r;
    __asm__ volatile("csrwi vxrm, 0");   /* round-to-nearest-up */
    for (r = 0; r < p->outer; ++r) {
        softmax_row(p, input + r * p->depth, output + r * p->depth);
    }
}
#endif
