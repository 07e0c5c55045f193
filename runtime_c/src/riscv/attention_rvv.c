/* int8 fused attention for RISC-V vector cores (Zve32x / V): the portable
 * kernel's body (td_attention_s8_body.h) with its row products in vector
 * lanes over the output columns (any layout: the columns' elements are read
 * with a strided load, vlse8, or a unit-stride one when adjacent): for each
 * element of the row x, the matrix row is sign-extended to int16 and
 * vwmacc.vx adds x times it to int32 accumulators (int8 products, exact).
 * The requantization of a strip of scores (and of the scale) and of outputs
 * is in vector lanes too (TD_RVV_MBQM, bit-exact with td_mbqm).  The table
 * softmax is the vector one (riscv/rvv_softmax_table_s8.c, the
 * same results).  Inline assembly (RVV 1.0) as in rvv_batch_matmul_s8.c:
 * GCC 12 does not allocate vector registers, so the assembly names them, and
 * the accumulators (v8) live across the asm statements of one loop, with no
 * call in between.  The int32 sums are exact, so the results equal
 * td_attention_s8's bit for bit.
 * td-requires: s8/softmax_s8.c (td_softmax_s8, on the row in place)
 * td-requires: riscv/rvv_softmax_table_s8.c (td_rvv_softmax_table_s8, when p->softmax_table) */
#include <stddef.h>

#include "td_rv_attention.h"
#include "td_rvv_mbqm.h"

#if !defined(__riscv_vector)
#error "attention_rvv.c needs a RISC-V vector target (-march=..._zve32x or ...v)"
#endif

/* acc[c] += sum x[i xs] m[c cs + i is], vl columns per strip of e32/m4
 * accumulators (16 at VLEN 128), two elements of x per step */
static void td_attn_row_rvv(int32_t len, const int8_t *x, int32_t xs, const int8_t *m,
                            int32_t is, int32_t cs, int32_t cols, int32_t *acc)
{
    int32_t c = 0;
    while (c < cols) {
        const int8_t *mc = m + c * cs, *xp = x;
        size_t vl;
        int32_t i = 0;
        __asm__ volatile(
            "vsetvli %[vl], %[n], e32, m4, ta, mu\n\t"
            "vle32.v v8, (%[acc])\n\t"
            : [vl] "=&r"(vl)
            : [n] "r"(cols - c), [acc] "r"(acc + c)
            : "memory");
        for (; i + 2 <= len; i += 2) {
            const int32_t x0 = xp[0], x1 = xp[xs];
            __asm__ volatile(
                "vsetvli zero, zero, e8, m1, ta, mu\n\t"
                "vlse8.v v4, (%[m0]), %[cs]\n\t"
                "vlse8.v v5, (%[m1]), %[cs]\n\t"
                "vsetvli zero, zero, e16, m2, ta, mu\n\t"
                "vsext.vf2 v12, v4\n\t"
                "vsext.vf2 v16, v5\n\t"
                "vwmacc.vx v8, %[x0], v12\n\t"
                "vwmacc.vx v8, %[x1], v16\n\t"
                :
                : [m0] "r"(mc), [m1] "r"(mc + is), [cs] "r"(cs), [x0] "r"(x0), [x1] "r"(x1)
                : "memory");
            mc += 2 * is;
            xp += 2 * xs;
        }
        if (i < len) {
            __asm__ volatile(
                "vsetvli zero, zero, e8, m1, ta, mu\n\t"
                "vlse8.v v4, (%[m0]), %[cs]\n\t"
                "vsetvli zero, zero, e16, m2, ta, mu\n\t"
                "vsext.vf2 v12, v4\n\t"
                "vwmacc.vx v8, %[x0], v12\n\t"
                :
                : [m0] "r"(mc), [cs] "r"(cs), [x0] "r"((int32_t)*xp)
                : "memory");
        }
        __asm__ volatile(
            "vsetvli zero, zero, e32, m4, ta, mu\n\t"
            "vse32.v v8, (%[acc])\n\t"
            :
            : [acc] "r"(acc + c)
            : "memory");
        c += (int32_t)vl;
    }
}

/* out[c] = the int8 code of acc[c], c < w: td_mbqm by multiplier / shift, plus
 * offset, clamped to [lo, hi]; then, when scale, (code + s_in) * s_factor through
 * the same steps with the scale's parameters s[]: {in, factor, multiplier,
 * shift, offset, lo, hi}.  Lanes over the columns, e32/m4 strips. */
static void td_attn_codes_rvv(const int32_t *acc, int32_t w, int8_t *out, int32_t mult,
                              int32_t shift, int32_t offset, int32_t lo, int32_t hi,
                              const int32_t *s)
{
    const int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    int32_t c = 0;
    __asm__ volatile("csrwi vxrm, 0");  /* round to nearest up (vsmul, vssrl) */
    while (c < w) {
        size_t vl;
        __asm__ volatile(
            "vsetvli %[vl], %[n], e32, m4, ta, mu\n\t"
            "vle32.v v8, (%[acc])\n\t"
            TD_RVV_MBQM("v8", "%[m]", "%[l]", "%[r]")
            "vadd.vx v8, v8, %[zp]\n\t"
            "vmax.vx v8, v8, %[lo]\n\t"
            "vmin.vx v8, v8, %[hi]\n\t"
            : [vl] "=&r"(vl)
            : [n] "r"(w - c), [acc] "r"(acc + c), [m] "r"(mult), [l] "r"(left), [r] "r"(right),
              [zp] "r"(offset), [lo] "r"(lo), [hi] "r"(hi)
            : "memory");
        if (s != NULL) {
            const int32_t sl = s[3] > 0 ? s[3] : 0, sr = s[3] > 0 ? 0 : -s[3];
            __asm__ volatile(
                "vadd.vx v8, v8, %[in]\n\t"
                "vmul.vx v8, v8, %[f]\n\t"
                TD_RVV_MBQM("v8", "%[m]", "%[l]", "%[r]")
                "vadd.vx v8, v8, %[zp]\n\t"
                "vmax.vx v8, v8, %[lo]\n\t"
                "vmin.vx v8, v8, %[hi]\n\t"
                :
                : [in] "r"(s[0]), [f] "r"(s[1]), [m] "r"(s[2]), [l] "r"(sl), [r] "r"(sr),
                  [zp] "r"(s[4]), [lo] "r"(s[5]), [hi] "r"(s[6]));
        }
        __asm__ volatile(
            "vsetvli zero, zero, e16, m2, ta, mu\n\t"
            "vnsrl.wi v12, v8, 0\n\t"
            "vsetvli zero, zero, e8, m1, ta, mu\n\t"
            "vnsrl.wi v4, v12, 0\n\t"
            "vse8.v v4, (%[o])\n\t"
            :
            : [o] "r"(out + c)
            : "memory");
        c += (int32_t)vl;
    }
}

static void td_attn_score_codes_rvv(const td_attention_s8_params *p, const int32_t *acc,
                                    int32_t w, int8_t *out)
{
    const int32_t s[7] = {p->scale_input_offset, p->scale_factor, p->scale_multiplier,
                          p->scale_shift, p->scale_offset, p->scale_min, p->scale_max};
    td_attn_codes_rvv(acc, w, out, p->score_multiplier, p->score_shift, p->score_offset,
                      p->score_min, p->score_max, p->has_scale ? s : NULL);
}

static void td_attn_output_codes_rvv(const td_attention_s8_params *p, const int32_t *acc,
                                     int32_t w, int8_t *out)
{
    td_attn_codes_rvv(acc, w, out, p->multiplier, p->shift, p->output_offset, p->act_min,
                      p->act_max, NULL);
}

#define TD_ATTN_NO_PORTABLE_ROW
#define TD_ATTN_SCORE_CODES td_attn_score_codes_rvv
#define TD_ATTN_OUTPUT_CODES td_attn_output_codes_rvv
#define TD_ATTN_FN td_attention_s8_rvv
#define TD_ATTN_ROW td_attn_row_rvv
#define TD_ATTN_SOFTMAX_TABLE td_rvv_softmax_table_s8
#include "td_attention_s8_body.h"
