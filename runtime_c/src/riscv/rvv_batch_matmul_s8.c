/* RISC-V vector (Zve32x / V) int8 MatMul of two activations, inline assembly
 * (RVV 1.0; GCC 12 has no vector intrinsics), vector length agnostic.
 *
 * Lanes run over the output columns of one row: for each k, the row of B
 * (any stride: vlse8) is sign-extended to int16 plus b_offset, and
 * vwmacc.vx adds (a + a_offset) times it to int32 accumulators; both factors
 * fit int16 (|x + offset| <= 255).  The int32 sums are exact (tinydeploy's
 * overflow check bounds them), so they equal the portable kernel's; the
 * requantization is the one of rv_vector.c (vsmul with round-to-nearest-up
 * for SRDHM, a sign-symmetric rounding shift for RDBPOT), bit-exact with
 * td_mbqm.  Vector state lives across consecutive asm statements of one
 * function (no calls in between; GCC 12 does not use vector registers). */
#include <stddef.h>

#include "td_rvv_bmm.h"
#include "td_rvv_mbqm.h"

#if !defined(__riscv_vector)
#error "rvv_batch_matmul_s8.c needs a RISC-V vector target (-march=..._zve32x or ...v)"
#endif

/* One output row: out[c] for c = 0..n-1 from A's row ar. */
static void bmm_row(const td_batch_matmul_s8_params *p, const int8_t *ar,
                    const int8_t *b, int8_t *out)
{
    const int32_t left = p->shift > 0 ? p->shift : 0;
    const int32_t right = p->shift > 0 ? 0 : -p->shift;
    const int32_t n = p->n, k = p->k;
    const int32_t ak = p->a_k_stride, bk = p->b_k_stride, bn = p->b_n_stride;
    int32_t c = 0;
    while (c < n) {
        const int8_t *bc = b + c * bn;
        size_t vl;
        int32_t i;
        __asm__ volatile(
            "vsetvli %[vl], %[n], e32, m4, ta, mu\n\t"
            "vmv.v.i v8, 0\n\t"
            : [vl] "=&r"(vl)
            : [n] "r"(n - c));
        for (i = 0; i < k; ++i) {
            const int32_t av = ar[i * ak] + p->a_offset;
            __asm__ volatile(
                "vsetvli zero, zero, e8, m1, ta, mu\n\t"
                "vlse8.v v4, (%[b]), %[bn]\n\t"
                "vsetvli zero, zero, e16, m2, ta, mu\n\t"
                "vsext.vf2 v12, v4\n\t"
                "vadd.vx v12, v12, %[bo]\n\t"
                "vwmacc.vx v8, %[av], v12\n\t"
                :
                : [b] "r"(bc + i * bk), [bn] "r"(bn), [bo] "r"(p->b_offset), [av] "r"(av)
                : "memory");
        }
        __asm__ volatile(
            "vsetvli zero, zero, e32, m4, ta, mu\n\t"
            TD_RVV_MBQM("v8", "%[m]", "%[l]", "%[r]")
            "vadd.vx v8, v8, %[zp]\n\t"
            "vmax.vx v8, v8, %[amin]\n\t"
            "vmin.vx v8, v8, %[amax]\n\t"
            "vsetvli zero, zero, e16, m2, ta, mu\n\t"
            "vnsrl.wi v12, v8, 0\n\t"
            "vsetvli zero, zero, e8, m1, ta, mu\n\t"
            "vnsrl.wi v4, v12, 0\n\t"
            "vse8.v v4, (%[o])\n\t"
            :
            : [m] "r"(p->multiplier), [l] "r"(left), [r] "r"(right), [zp] "r"(p->output_offset),
              [amin] "r"(p->act_min), [amax] "r"(p->act_max), [o] "r"(out + c)
            : "memory");
        c += (int32_t)vl;
    }
}

/* One batch entry: its m output rows. */
static void bmm_block(const td_batch_matmul_s8_params *p, const int8_t *a, const int8_t *b,
                      int8_t *out)
{
    int32_t r;
    for (r = 0; r < p->m; ++r) {
        bmm_row(p, a + r * p->a_m_stride, b, out + r * p->n);
    }
}

void td_rvv_batch_matmul_s8(const td_batch_matmul_s8_params *p, const int8_t *a,
                            const int8_t *b, int8_t *output)
{
    __asm__ volatile("csrwi vxrm, 0");  /* round to nearest up (vsmul, vssrl) */
    td_bmm_each_batch(p, a, b, output, bmm_block);
}
