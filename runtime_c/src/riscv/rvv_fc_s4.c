/* Fully connected with int4 weights, RISC-V vector (Zve32x / V, RVV 1.0), inline
 * assembly (GCC 12 has no vector intrinsics), vector length agnostic: see
 * td_rvv_s4.h.  Vector state lives across consecutive asm statements of one
 * function (no calls in between; GCC does not use vector registers here). */
#include <stddef.h>

#include "td_rvv_s4.h"

#if !defined(__riscv_vector)
#error "rvv_fc_s4.c needs a RISC-V vector target (-march=..._zve32x or ...v)"
#endif

/* The sum over j < h of w_lo[j] * x[j] + w_hi[j] * x[h + j] (w: the packed bytes). */
static int32_t dot_s4(const uint8_t *w, const int8_t *x, int32_t h)
{
    int32_t j = 0, dot;
    size_t vl;
    /* int32 lanes (e32 m4: as many as e8 m1) start at 0; the strips leave the lanes
     * beyond a short last strip as they are (tail undisturbed) */
    __asm__ volatile("vsetvli zero, %0, e32, m4, ta, ma\n\tvmv.v.i v8, 0" : : "r"(1 << 30) : "memory");
    while (j < h) {
        __asm__ volatile("vsetvli %[vl], %[n], e8, m1, tu, mu\n\t"
                         "vle8.v v1, (%[w])\n\t"
                         "vsll.vi v2, v1, 4\n\t"
                         "vsra.vi v2, v2, 4\n\t"
                         "vsra.vi v1, v1, 4\n\t"
                         "vle8.v v3, (%[xl])\n\t"
                         "vle8.v v4, (%[xh])\n\t"
                         "vwmul.vv v6, v2, v3\n\t"
                         "vwmacc.vv v6, v1, v4\n\t"
                         "vsetvli zero, zero, e16, m2, tu, mu\n\t"
                         "vwadd.wv v8, v8, v6\n\t"
                         : [vl] "=&r"(vl)
                         : [n] "r"(h - j), [w] "r"(w + j), [xl] "r"(x + j), [xh] "r"(x + h + j)
                         : "memory");
        j += (int32_t)vl;
    }
    __asm__ volatile("vsetvli zero, %1, e32, m4, ta, ma\n\t"
                     "vmv.s.x v12, zero\n\t"
                     "vredsum.vs v12, v8, v12\n\t"
                     "vmv.x.s %0, v12"
                     : "=r"(dot) : "r"(1 << 30) : "memory");
    return dot;
}

void td_rvv_fc_s4(const td_fc_s8_params *p, const int8_t *input, const int32_t *start,
                  const uint8_t *weights, int8_t *output)
{
    const int32_t in_f = p->in_features, h = in_f / 2, out_f = p->out_features;
    int32_t r, o;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *x = input + r * in_f;
        for (o = 0; o < out_f; ++o) {
            const int32_t mi = p->per_channel ? o : 0;
            const int32_t acc = start[o] + dot_s4(weights + o * h, x, h);
            const int32_t v = td_mbqm(acc, p->multiplier[mi], p->shift[mi]) + p->output_offset;
            output[r * out_f + o] = (int8_t)td_clamp_s32(v, p->act_min, p->act_max);
        }
    }
}
