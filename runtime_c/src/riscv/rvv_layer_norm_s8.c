/* int8 layer normalization on RISC-V vector cores: td_layer_norm_s8's integer
 * steps (s8/layer_norm_s8.c), bit for bit, in e32 lanes.  A row's sums come
 * from vector reductions and its reciprocal square root from the shared scalar
 * code (td_layer_norm_row.h).  Both roundings of a 64-bit product (ties away
 * from zero) work on magnitudes: round(v / 2^s) = sign(v) floor((|v| +
 * 2^(s-1)) / 2^s), with |v| = |a| |b| as the word pair (vmul, vmulhu) and
 *   s < 32:  (hi << (32 - s)) + (lo >> s) + (((lo mod 2^s) + 2^(s-1)) >> s),
 *   s = 32:  hi + (lo >> 31),
 *   s > 32:  (hi + 2^(s-33)) >> (s - 32)   (lo / 2^32 < 1 cannot change the floor),
 * no carries.  The normalizing shift s is the row's; every element's
 * requantization shift is 33 or more (backends/riscv.py checks).  The last
 * rounding (by 2^8) is vssrl on |v| with vxrm = round-to-nearest-up, the sign
 * restored. */
#include <stddef.h>

#include "td_kernels_riscv.h"
#include "td_layer_norm_row.h"

#if !defined(__riscv_vector)
#error "rvv_layer_norm_s8.c needs a RISC-V vector target (-march=..._zve32x or ...v)"
#endif

/* sum and sum of squares of n codes */
static void ln_sums(const int8_t *x, int32_t n, int32_t *sum, int32_t *sum_sq)
{
    int32_t s, q;
    __asm__ volatile("vsetivli zero, 1, e32, m1, ta, mu\n\t"
                     "vmv.s.x v20, zero\n\t"
                     "vmv.s.x v21, zero\n\t" : : : "memory");
    while (n > 0) {
        size_t vl;
        __asm__ volatile("vsetvli %[vl], %[n], e8, m1, ta, mu\n\t"
                         "vle8.v v1, (%[x])\n\t"
                         "vsetvli zero, %[vl], e32, m4, ta, mu\n\t"
                         "vsext.vf4 v8, v1\n\t"
                         "vredsum.vs v20, v8, v20\n\t"
                         "vmul.vv v12, v8, v8\n\t"
                         "vredsum.vs v21, v12, v21\n\t"
                         : [vl] "=&r"(vl)
                         : [n] "r"(n), [x] "r"(x)
                         : "memory");
        x += vl;
        n -= (int32_t)vl;
    }
    __asm__ volatile("vsetivli zero, 1, e32, m1, ta, mu\n\t"
                     "vmv.x.s %[s], v20\n\t"
                     "vmv.x.s %[q], v21\n\t"
                     : [s] "=r"(s), [q] "=r"(q)
                     :
                     : "memory");
    *sum = s;
    *sum_sq = q;
}

/* |d| (d = n x - sum) of a strip of vl codes into v8 (e32, m4), the mask of
 * d < 0 in v2, and |d| y as the word pair v16:v12 */
#define TD_LN_DEVIATIONS                                                    \
    "vsetvli %[vl], %[left], e8, m1, ta, mu\n\t"                            \
    "vle8.v v1, (%[x])\n\t"                                                 \
    "vsetvli zero, %[vl], e32, m4, ta, mu\n\t"                              \
    "vsext.vf4 v8, v1\n\t"                                                  \
    "vmul.vx v8, v8, %[nn]\n\t"                                             \
    "vsub.vx v8, v8, %[sum]\n\t"                                            \
    "vmslt.vx v2, v8, zero\n\t"                                             \
    "vmand.mm v0, v2, v2\n\t"                                               \
    "vrsub.vi v8, v8, 0, v0.t\n\t"                                          \
    "vmul.vx v12, v8, %[y]\n\t"                                             \
    "vmulhu.vx v16, v8, %[y]\n\t"

/* |z| = round(v16:v12 / 2^s) into v8: s < 32 (half = 2^(s-1), mask = 2^s - 1,
 * ls = 32 - s), s = 32, s > 32 (half = 2^(s-33), ls = s - 32) */
#define TD_LN_Z_LOW                                                         \
    "vsll.vx v20, v16, %[ls]\n\t"                                           \
    "vsrl.vx v16, v12, %[s]\n\t"                                            \
    "vadd.vv v20, v20, v16\n\t"                                             \
    "vand.vx v12, v12, %[mask]\n\t"                                         \
    "vadd.vx v12, v12, %[half]\n\t"                                         \
    "vsrl.vx v12, v12, %[s]\n\t"                                            \
    "vadd.vv v8, v20, v12\n\t"
#define TD_LN_Z_32                                                          \
    "vsrl.vi v12, v12, 31\n\t"                                              \
    "vadd.vv v8, v16, v12\n\t"
#define TD_LN_Z_HIGH                                                        \
    "vadd.vx v16, v16, %[half]\n\t"                                         \
    "vsrl.vx v8, v16, %[ls]\n\t"

/* out = clamp(zp + round((round(z m / 2^shift) + b) / 2^8)) of the strip, from
 * |z| (v8) and the sign of z (v2) */
#define TD_LN_OUTPUT                                                        \
    "vle32.v v4, (%[m])\n\t"                                                \
    "vmslt.vx v3, v4, zero\n\t"                                             \
    "vmxor.mm v2, v2, v3\n\t"                                               \
    "vmand.mm v0, v3, v3\n\t"                                               \
    "vrsub.vi v4, v4, 0, v0.t\n\t"                                          \
    "vmulhu.vv v16, v8, v4\n\t"                                             \
    "vle32.v v4, (%[hh])\n\t"                                               \
    "vadd.vv v16, v16, v4\n\t"                                              \
    "vle32.v v4, (%[sh])\n\t"                                               \
    "vsrl.vv v16, v16, v4\n\t"                                              \
    "vmand.mm v0, v2, v2\n\t"                                               \
    "vrsub.vi v16, v16, 0, v0.t\n\t"                                        \
    "vle32.v v4, (%[b])\n\t"                                                \
    "vadd.vv v16, v16, v4\n\t"                                              \
    "vmslt.vx v0, v16, zero\n\t"                                            \
    "vrsub.vi v16, v16, 0, v0.t\n\t"                                        \
    "vssrl.vi v16, v16, 8\n\t"                                              \
    "vrsub.vi v16, v16, 0, v0.t\n\t"                                        \
    "vadd.vx v16, v16, %[zp]\n\t"                                           \
    "vmax.vx v16, v16, %[lo]\n\t"                                           \
    "vmin.vx v16, v16, %[hi]\n\t"                                           \
    "vsetvli zero, %[vl], e16, m2, ta, mu\n\t"                              \
    "vnsra.wi v8, v16, 0\n\t"                                               \
    "vsetvli zero, %[vl], e8, m1, ta, mu\n\t"                               \
    "vnsra.wi v8, v8, 0\n\t"                                                \
    "vse8.v v8, (%[o])\n\t"

#define TD_LN_OPERANDS                                                      \
    : [vl] "=&r"(vl)                                                        \
    : [left] "r"(n - i), [x] "r"(x + i), [nn] "r"(n), [sum] "r"(sum),       \
      [y] "r"(y), [half] "r"(half), [mask] "r"(mask), [s] "r"(s),           \
      [ls] "r"(ls), [m] "r"(p->multiplier + i), [hh] "r"(p->half_hi + i),   \
      [sh] "r"(p->shift32 + i), [b] "r"(p->bias + i), [zp] "r"(zp),         \
      [lo] "r"(lo), [hi] "r"(hi), [o] "r"(out + i)                          \
    : "memory"

void td_rvv_layer_norm_s8(const td_layer_norm_lanes_params *p, const int8_t *input,
                          int8_t *output)
{
    const int32_t n = p->size, zp = p->output_offset, lo = -128, hi = 127;
    const int64_t eps = ((int64_t)p->eps_hi << 31) + (int64_t)p->eps_lo;
    int32_t r;
    __asm__ volatile("csrwi vxrm, 0"); /* round-to-nearest-up */
    for (r = 0; r < p->outer; ++r) {
        const int8_t *x = input + r * n;
        int8_t *out = output + r * n;
        int32_t sum, sum_sq, s, i = 0, y;
        uint32_t half, mask, ls;
        ln_sums(x, n, &sum, &sum_sq);
        y = td_ln_row_scale(n, sum, sum_sq, eps, &s);
        half = s < 32 ? 1u << (s - 1) : (s > 32 ? 1u << (s - 33) : 0u);
        mask = s < 32 ? (1u << s) - 1u : 0u;
        ls = (uint32_t)(s < 32 ? 32 - s : s - 32);
        while (i < n) {
            size_t vl;
            if (s < 32) {
                __asm__ volatile(TD_LN_DEVIATIONS TD_LN_Z_LOW TD_LN_OUTPUT TD_LN_OPERANDS);
            } else if (s == 32) {
                __asm__ volatile(TD_LN_DEVIATIONS TD_LN_Z_32 TD_LN_OUTPUT TD_LN_OPERANDS);
            } else {
                __asm__ volatile(TD_LN_DEVIATIONS TD_LN_Z_HIGH TD_LN_OUTPUT TD_LN_OPERANDS);
            }
            i += (int32_t)vl;
        }
    }
}
