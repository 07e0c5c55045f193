/* RISC-V vector (Zve32x / V) int8 kernels, inline assembly (RVV 1.0).
 *
 * Vector length agnostic: every loop is strip-mined with vsetvli, so the
 * same code runs at any VLEN; only speed depends on it.  GCC 12 does not
 * allocate vector registers, so the assembly names them directly; vector
 * state may live across consecutive asm statements of one function (no calls
 * in between).
 *
 * Arithmetic (bit-exact with TFLite, see td_kernels_s8.h):
 *  - products: int8 weights sign-extended to int16 (vsext.vf2), then
 *    vwmacc.vx / vwmacc.vv into int32 accumulators;
 *  - SRDHM(x, m) = vsmul(x, m) with vxrm = round-to-nearest-up (for every
 *    x, m the two agree: gemmlowp's nudge for negative products also rounds
 *    ties up), saturating INT32_MIN * INT32_MIN exactly like gemmlowp;
 *  - RDBPOT(y, e) (ties away from zero) = sign(y) * vssrl(|y|, e) with
 *    round-to-nearest-up on the magnitude (|INT32_MIN| is fine as unsigned).
 */
#include <stddef.h>

#include "td_kernels_s8.h"
#include "td_kernels_riscv.h"
#include "td_rvv_mbqm.h"

#if !defined(__riscv_vector)
#error "rv_vector.c needs a RISC-V vector target (-march=..._zve32x or ...v)"
#endif

/* vtype strings */
#define E8M1 "e8, m1, ta, mu"
#define E8M2 "e8, m2, ta, mu"
#define E16M2 "e16, m2, ta, mu"
#define E16M4 "e16, m4, ta, mu"
#define E32M4 "e32, m4, ta, mu"
#define E32M8 "e32, m8, ta, mu"

static inline void set_vxrm_rnu(void)
{
    __asm__ volatile("csrwi vxrm, 0");
}

/* ---------------------------------------------------------------------- */
/* Add                                                                     */
/* ---------------------------------------------------------------------- */


static void add_elems(const td_rvv_add_params *p, const int8_t *a,
                      const int8_t *b, int8_t *output, int32_t n)
{
    const int32_t l1 = p->input1_shift > 0 ? p->input1_shift : 0;
    const int32_t r1 = p->input1_shift > 0 ? 0 : -p->input1_shift;
    const int32_t l2 = p->input2_shift > 0 ? p->input2_shift : 0;
    const int32_t r2 = p->input2_shift > 0 ? 0 : -p->input2_shift;
    const int32_t lo = p->output_shift > 0 ? p->output_shift : 0;
    const int32_t ro = p->output_shift > 0 ? 0 : -p->output_shift;
    while (n > 0) {
        size_t vl;
        __asm__ volatile(
            "vsetvli %[vl], %[n], " E32M8 "\n\t"
            "vle8.v v2, (%[a])\n\t"
            "vsext.vf4 v8, v2\n\t"
            "vadd.vx v8, v8, %[off1]\n\t"
            "vsll.vx v8, v8, %[ls]\n\t"
            TD_RVV_MBQM("v8", "%[m1]", "%[l1]", "%[r1]")
            "vle8.v v2, (%[b])\n\t"
            "vsext.vf4 v16, v2\n\t"
            "vadd.vx v16, v16, %[off2]\n\t"
            "vsll.vx v16, v16, %[ls]\n\t"
            TD_RVV_MBQM("v16", "%[m2]", "%[l2]", "%[r2]")
            "vadd.vv v8, v8, v16\n\t"
            : [vl] "=&r"(vl)
            : [n] "r"(n), [a] "r"(a), [b] "r"(b), [off1] "r"(p->input1_offset),
              [off2] "r"(p->input2_offset), [ls] "r"(p->left_shift),
              [m1] "r"(p->input1_multiplier), [l1] "r"(l1), [r1] "r"(r1),
              [m2] "r"(p->input2_multiplier), [l2] "r"(l2), [r2] "r"(r2)
            : "memory");
        __asm__ volatile(
            TD_RVV_MBQM("v8", "%[mo]", "%[lo]", "%[ro]")
            "vadd.vx v8, v8, %[zp]\n\t"
            "vmax.vx v8, v8, %[amin]\n\t"
            "vmin.vx v8, v8, %[amax]\n\t"
            "vsetvli zero, zero, " E16M4 "\n\t"
            "vnsrl.wi v16, v8, 0\n\t"
            "vsetvli zero, zero, " E8M2 "\n\t"
            "vnsrl.wi v24, v16, 0\n\t"
            "vse8.v v24, (%[o])\n\t"
            :
            : [mo] "r"(p->output_multiplier), [lo] "r"(lo), [ro] "r"(ro),
              [zp] "r"(p->output_offset), [amin] "r"(p->act_min),
              [amax] "r"(p->act_max), [o] "r"(output)
            : "memory");
        a += vl;
        b += vl;
        output += vl;
        n -= (int32_t)vl;
    }
}

void td_rvv_add_s8(const td_rvv_add_params *p, const int8_t *a,
                   const int8_t *b, int8_t *output)
{
    set_vxrm_rnu();
    add_elems(p, a, b, output, p->size);
}

/* ---------------------------------------------------------------------- */
/* Requantization from registers                                           */
/* ---------------------------------------------------------------------- */

/* The fused residual add (conv2d + add_s8) in scalar registers: operand c
 * is the conv result, operand r the residual (TFLite's input 1 or 2). */
typedef struct {
    int32_t off_c, off_r, ls;
    int32_t m_c, l_c, r_c, m_r, l_r, r_r, m_o, l_o, r_o;
    int32_t zp, lo, hi;
} add_ctx;

static void add_ctx_init(add_ctx *a, const td_rvv_add_params *q, int conv_is_input1)
{
    const int32_t s1 = q->input1_shift, s2 = q->input2_shift;
    const int32_t l1 = s1 > 0 ? s1 : 0, r1 = s1 > 0 ? 0 : -s1;
    const int32_t l2 = s2 > 0 ? s2 : 0, r2 = s2 > 0 ? 0 : -s2;
    if (conv_is_input1) {
        a->off_c = q->input1_offset; a->m_c = q->input1_multiplier; a->l_c = l1; a->r_c = r1;
        a->off_r = q->input2_offset; a->m_r = q->input2_multiplier; a->l_r = l2; a->r_r = r2;
    } else {
        a->off_c = q->input2_offset; a->m_c = q->input2_multiplier; a->l_c = l2; a->r_c = r2;
        a->off_r = q->input1_offset; a->m_r = q->input1_multiplier; a->l_r = l1; a->r_r = r1;
    }
    a->ls = q->left_shift;
    a->m_o = q->output_multiplier;
    a->l_o = q->output_shift > 0 ? q->output_shift : 0;
    a->r_o = q->output_shift > 0 ? 0 : -q->output_shift;
    a->zp = q->output_offset;
    a->lo = q->act_min;
    a->hi = q->act_max;
}

/* Per-channel requantization of the int32 register group H (e32, m4, vl
 * elements, channels c0...): temporaries v4-v7 and the mask v0.  Writes vl
 * int8 to out, or, with an add, add(result, residual) to out. */
#define TD_DEFINE_RQ(N)                                                     \
static void rq_v##N(size_t vl, const td_rvv_conv_params *p, int c0,         \
                    int8_t *out, const int8_t *res, const add_ctx *a)       \
{                                                                           \
    if (p->flags & 1) {                                                     \
        __asm__ volatile("vsetvli zero, %0, " E32M4 "\n\t"                  \
                         "vle32.v v4, (%1)\n\t"                             \
                         "vsll.vv v" #N ", v" #N ", v4\n\t"                 \
                         : : "r"(vl), "r"(p->left + c0) : "memory");        \
    }                                                                       \
    __asm__ volatile(                                                       \
        "vsetvli zero, %[vl], " E32M4 "\n\t"                                \
        "vle32.v v4, (%[mult])\n\t"                                         \
        "vsmul.vv v" #N ", v" #N ", v4\n\t"                                 \
        "vle32.v v4, (%[right])\n\t"                                        \
        "vmslt.vx v0, v" #N ", zero\n\t"                                    \
        "vrsub.vi v" #N ", v" #N ", 0, v0.t\n\t"                            \
        "vssrl.vv v" #N ", v" #N ", v4\n\t"                                 \
        "vrsub.vi v" #N ", v" #N ", 0, v0.t\n\t"                            \
        "vadd.vx v" #N ", v" #N ", %[zp]\n\t"                               \
        "vmax.vx v" #N ", v" #N ", %[lo]\n\t"                               \
        "vmin.vx v" #N ", v" #N ", %[hi]\n\t"                               \
        :                                                                   \
        : [vl] "r"(vl), [mult] "r"(p->mult + c0), [right] "r"(p->right + c0), \
          [zp] "r"(p->output_offset), [lo] "r"(p->act_min),                 \
          [hi] "r"(p->act_max)                                              \
        : "memory");                                                        \
    if (a != NULL) {                                                        \
        __asm__ volatile(                                                   \
            "vle8.v v7, (%[r])\n\t"                                         \
            "vsext.vf4 v4, v7\n\t"                                          \
            "vadd.vx v4, v4, %[off]\n\t"                                    \
            "vsll.vx v4, v4, %[ls]\n\t"                                     \
            TD_RVV_MBQM("v4", "%[m]", "%[l]", "%[s]")                       \
            : : [r] "r"(res), [off] "r"(a->off_r), [ls] "r"(a->ls),         \
                [m] "r"(a->m_r), [l] "r"(a->l_r), [s] "r"(a->r_r)           \
            : "memory");                                                    \
        __asm__ volatile(                                                   \
            "vadd.vx v" #N ", v" #N ", %[off]\n\t"                          \
            "vsll.vx v" #N ", v" #N ", %[ls]\n\t"                           \
            TD_RVV_MBQM("v" #N, "%[m]", "%[l]", "%[s]")                     \
            "vadd.vv v" #N ", v" #N ", v4\n\t"                              \
            : : [off] "r"(a->off_c), [ls] "r"(a->ls), [m] "r"(a->m_c),      \
                [l] "r"(a->l_c), [s] "r"(a->r_c)                            \
            : "memory");                                                    \
        __asm__ volatile(                                                   \
            TD_RVV_MBQM("v" #N, "%[m]", "%[l]", "%[s]")                     \
            "vadd.vx v" #N ", v" #N ", %[zp]\n\t"                           \
            "vmax.vx v" #N ", v" #N ", %[lo]\n\t"                           \
            "vmin.vx v" #N ", v" #N ", %[hi]\n\t"                           \
            : : [m] "r"(a->m_o), [l] "r"(a->l_o), [s] "r"(a->r_o),          \
                [zp] "r"(a->zp), [lo] "r"(a->lo), [hi] "r"(a->hi)           \
            : "memory");                                                    \
    }                                                                       \
    __asm__ volatile(                                                       \
        "vsetvli zero, zero, " E16M2 "\n\t"                                 \
        "vnsrl.wi v4, v" #N ", 0\n\t"                                       \
        "vsetvli zero, zero, " E8M1 "\n\t"                                  \
        "vnsrl.wi v6, v4, 0\n\t"                                            \
        "vse8.v v6, (%0)\n\t"                                               \
        : : "r"(out) : "memory");                                           \
}

TD_DEFINE_RQ(8)
TD_DEFINE_RQ(12)
TD_DEFINE_RQ(16)
TD_DEFINE_RQ(20)
TD_DEFINE_RQ(24)
TD_DEFINE_RQ(28)

/* Requantize register group v<reg> (m4) */
static void rq_reg(int reg, size_t vl, const td_rvv_conv_params *p, int c0,
                   int8_t *out, const int8_t *res, const add_ctx *a)
{
    if (vl == 0) {
        return;
    }
    switch (reg) {
    case 8: rq_v8(vl, p, c0, out, res, a); break;
    case 12: rq_v12(vl, p, c0, out, res, a); break;
    case 16: rq_v16(vl, p, c0, out, res, a); break;
    case 20: rq_v20(vl, p, c0, out, res, a); break;
    case 24: rq_v24(vl, p, c0, out, res, a); break;
    default: rq_v28(vl, p, c0, out, res, a); break;
    }
}

/* An LMUL-8 accumulator v<reg> (vl <= 2 * vlmax4 elements) as two halves */
static void rq_m8(int reg, size_t vl, size_t vlmax4, const td_rvv_conv_params *p,
                  int c0, int8_t *out, const int8_t *res, const add_ctx *a)
{
    const size_t lo = vl < vlmax4 ? vl : vlmax4;
    rq_reg(reg, lo, p, c0, out, res, a);
    rq_reg(reg + 4, vl - lo, p, c0 + (int)lo, out + lo, res != NULL ? res + lo : NULL, a);
}

/* ---------------------------------------------------------------------- */
/* Convolution                                                             */
/* ---------------------------------------------------------------------- */

/* Hot loops.  Weights: rows of out_c bytes (stride ws), the current block of
 * vl channels at w.  The inputs are n consecutive bytes at each x pointer.
 *
 * LMUL 8, 3 pixels: vtype e16 m4; int8 weights loaded into v6-v7 and
 * sign-extended into v4-v7; accumulators e32 m8 in v8, v16, v24. */
#define TD_P3_STEP(o)                                                       \
    "vle8.v v6, (%[w])\n\t"                                                 \
    "add %[w], %[w], %[ws]\n\t"                                             \
    "vsext.vf2 v4, v6\n\t"                                                  \
    "lb %[t], " #o "(%[x0])\n\t"                                            \
    "vwmacc.vx v8, %[t], v4\n\t"                                            \
    "lb %[t], " #o "(%[x1])\n\t"                                            \
    "vwmacc.vx v16, %[t], v4\n\t"                                           \
    "lb %[t], " #o "(%[x2])\n\t"                                            \
    "vwmacc.vx v24, %[t], v4\n\t"

static inline void mac_p3(const int8_t *x0, const int8_t *x1,
                          const int8_t *x2, const int8_t *w, int32_t ws,
                          int32_t n)
{
    const int8_t *end4 = x0 + (n & ~3), *end = x0 + n;
    int32_t t;
    __asm__ volatile(
        "bgeu %[x0], %[end4], 2f\n\t"
        "1:\n\t"
        TD_P3_STEP(0) TD_P3_STEP(1) TD_P3_STEP(2) TD_P3_STEP(3)
        "addi %[x0], %[x0], 4\n\t"
        "addi %[x1], %[x1], 4\n\t"
        "addi %[x2], %[x2], 4\n\t"
        "bltu %[x0], %[end4], 1b\n\t"
        "2:\n\t"
        "bgeu %[x0], %[end], 4f\n\t"
        "3:\n\t"
        TD_P3_STEP(0)
        "addi %[x0], %[x0], 1\n\t"
        "addi %[x1], %[x1], 1\n\t"
        "addi %[x2], %[x2], 1\n\t"
        "bltu %[x0], %[end], 3b\n\t"
        "4:\n\t"
        : [x0] "+r"(x0), [x1] "+r"(x1), [x2] "+r"(x2), [w] "+r"(w),
          [t] "=&r"(t)
        : [ws] "r"(ws), [end4] "r"(end4), [end] "r"(end)
        : "memory");
}

/* LMUL 4, 6 pixels: vtype e16 m2; weights into v5, sign-extended into
 * v4-v5; accumulators e32 m4 in v8, v12, v16, v20, v24, v28. */
#define TD_P6_STEP(o)                                                       \
    "vle8.v v5, (%[w])\n\t"                                                 \
    "add %[w], %[w], %[ws]\n\t"                                             \
    "vsext.vf2 v4, v5\n\t"                                                  \
    "lb %[t], " #o "(%[x0])\n\t"                                            \
    "vwmacc.vx v8, %[t], v4\n\t"                                            \
    "lb %[t], " #o "(%[x1])\n\t"                                            \
    "vwmacc.vx v12, %[t], v4\n\t"                                           \
    "lb %[t], " #o "(%[x2])\n\t"                                            \
    "vwmacc.vx v16, %[t], v4\n\t"                                           \
    "lb %[t], " #o "(%[x3])\n\t"                                            \
    "vwmacc.vx v20, %[t], v4\n\t"                                           \
    "lb %[t], " #o "(%[x4])\n\t"                                            \
    "vwmacc.vx v24, %[t], v4\n\t"                                           \
    "lb %[t], " #o "(%[x5])\n\t"                                            \
    "vwmacc.vx v28, %[t], v4\n\t"

static inline void mac_p6(const int8_t *const *xs, const int8_t *w,
                          int32_t ws, int32_t n)
{
    const int8_t *x0 = xs[0], *x1 = xs[1], *x2 = xs[2];
    const int8_t *x3 = xs[3], *x4 = xs[4], *x5 = xs[5];
    const int8_t *end4 = x0 + (n & ~3), *end = x0 + n;
    int32_t t;
    __asm__ volatile(
        "bgeu %[x0], %[end4], 2f\n\t"
        "1:\n\t"
        TD_P6_STEP(0) TD_P6_STEP(1) TD_P6_STEP(2) TD_P6_STEP(3)
        "addi %[x0], %[x0], 4\n\t"
        "addi %[x1], %[x1], 4\n\t"
        "addi %[x2], %[x2], 4\n\t"
        "addi %[x3], %[x3], 4\n\t"
        "addi %[x4], %[x4], 4\n\t"
        "addi %[x5], %[x5], 4\n\t"
        "bltu %[x0], %[end4], 1b\n\t"
        "2:\n\t"
        "bgeu %[x0], %[end], 4f\n\t"
        "3:\n\t"
        TD_P6_STEP(0)
        "addi %[x0], %[x0], 1\n\t"
        "addi %[x1], %[x1], 1\n\t"
        "addi %[x2], %[x2], 1\n\t"
        "addi %[x3], %[x3], 1\n\t"
        "addi %[x4], %[x4], 1\n\t"
        "addi %[x5], %[x5], 1\n\t"
        "bltu %[x0], %[end], 3b\n\t"
        "4:\n\t"
        : [x0] "+r"(x0), [x1] "+r"(x1), [x2] "+r"(x2), [x3] "+r"(x3),
          [x4] "+r"(x4), [x5] "+r"(x5), [w] "+r"(w), [t] "=&r"(t)
        : [ws] "r"(ws), [end4] "r"(end4), [end] "r"(end)
        : "memory");
}

/* LMUL 8, 1 pixel: vtype e16 m4, accumulator v8. */
#define TD_P1_STEP(o)                                                       \
    "vle8.v v6, (%[w])\n\t"                                                 \
    "add %[w], %[w], %[ws]\n\t"                                             \
    "vsext.vf2 v4, v6\n\t"                                                  \
    "lb %[t], " #o "(%[x0])\n\t"                                            \
    "vwmacc.vx v8, %[t], v4\n\t"

static inline void mac_p1(const int8_t *x0, const int8_t *w, int32_t ws,
                          int32_t n)
{
    const int8_t *end4 = x0 + (n & ~3), *end = x0 + n;
    int32_t t;
    __asm__ volatile(
        "bgeu %[x0], %[end4], 2f\n\t"
        "1:\n\t"
        TD_P1_STEP(0) TD_P1_STEP(1) TD_P1_STEP(2) TD_P1_STEP(3)
        "addi %[x0], %[x0], 4\n\t"
        "bltu %[x0], %[end4], 1b\n\t"
        "2:\n\t"
        "bgeu %[x0], %[end], 4f\n\t"
        "3:\n\t"
        TD_P1_STEP(0)
        "addi %[x0], %[x0], 1\n\t"
        "bltu %[x0], %[end], 3b\n\t"
        "4:\n\t"
        : [x0] "+r"(x0), [w] "+r"(w), [t] "=&r"(t)
        : [ws] "r"(ws), [end4] "r"(end4), [end] "r"(end)
        : "memory");
}

static inline size_t vsetvl_e16m4(size_t n)
{
    size_t vl;
    __asm__ volatile("vsetvli %0, %1, " E16M4 : "=r"(vl) : "r"(n));
    return vl;
}

/* One output pixel, channel block after channel block (decreasing when
 * backward), each written as soon as it is done; padding taps read the zero
 * point row (zp_row, k_w * in_c bytes in flash). */
static void conv_pixel(const td_rvv_conv_params *p, const int8_t *input,
                       const int8_t *weights, int oy, int ox, int8_t *output,
                       const int8_t *residual, const add_ctx *a, size_t vlmax8)
{
    const int out_c = p->out_c, in_c = p->in_c, row = p->k_w * in_c;
    const int iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    const int pix = oy * p->out_w + ox;
    const int nb = (out_c + (int)vlmax8 - 1) / (int)vlmax8;
    int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = p->in_w - ix0 < p->k_w ? p->in_w - ix0 : p->k_w;
    int i;
    if (kx1 < kx0) {
        kx1 = kx0;
    }
    for (i = 0; i < nb; ++i) {
        const int c0 = (p->backward ? nb - 1 - i : i) * (int)vlmax8;
        const size_t vl = vsetvl_e16m4((size_t)(out_c - c0));
        int ky;
        __asm__ volatile("vle32.v v8, (%0)" : : "r"(p->bias + c0) : "memory");
        for (ky = 0; ky < p->k_h; ++ky) {
            const int iy = iy0 + ky;
            const int8_t *w = weights + ky * row * out_c + c0;
            if (iy < 0 || iy >= p->in_h) {
                mac_p1(p->zp_row, w, out_c, row);
                continue;
            }
            if (kx0 > 0) {
                mac_p1(p->zp_row, w, out_c, kx0 * in_c);
            }
            mac_p1(input + (iy * p->in_w + ix0 + kx0) * in_c, w + kx0 * in_c * out_c,
                   out_c, (kx1 - kx0) * in_c);
            if (kx1 < p->k_w) {
                mac_p1(p->zp_row, w + kx1 * in_c * out_c, out_c, (p->k_w - kx1) * in_c);
            }
        }
        rq_m8(8, vl, vlmax8 / 2, p, c0, output + pix * out_c + c0,
              a != NULL ? residual + pix * out_c + c0 : NULL, a);
    }
}

#define TD_MAX_TILE 6

/* n (<= tile) interior pixels ox0... of row oy: all their inputs are read
 * (channel block by channel block) and each block written when done, so the
 * caller only uses tiles when there is one block or no overlap. */
static void conv_tile(const td_rvv_conv_params *p, const int8_t *input,
                      const int8_t *weights, int oy, int ox0, int n, int tile,
                      int8_t *output, const int8_t *residual, const add_ctx *a,
                      size_t vlmax8)
{
    const int out_c = p->out_c, in_c = p->in_c, row = p->k_w * in_c;
    const int in_row = p->in_w * in_c;
    const int iy0 = oy * p->stride_h - p->pad_top;
    const int pix0 = oy * p->out_w + ox0;
    const int8_t *xp[TD_MAX_TILE];
    int t, c0 = 0;
    for (t = 0; t < tile; ++t) {
        const int ox = ox0 + (t < n ? t : n - 1);
        xp[t] = input + (iy0 * p->in_w + ox * p->stride_w - p->pad_left) * in_c;
    }
    while (c0 < out_c) {
        const int8_t *w = weights + c0;
        const int32_t *b = p->bias + c0;
        size_t vl = 0;
        int ky;
        if (tile == 3) {
            __asm__ volatile("vsetvli %0, %1, " E16M4 "\n\t"
                             "vle32.v v8, (%2)\n\t"
                             "vle32.v v16, (%2)\n\t"
                             "vle32.v v24, (%2)\n\t"
                             : "=&r"(vl) : "r"(out_c - c0), "r"(b) : "memory");
            for (ky = 0; ky < p->k_h; ++ky) {
                const int iy = iy0 + ky;
                if (iy < 0 || iy >= p->in_h) {  /* above or below the image */
                    mac_p3(p->zp_row, p->zp_row, p->zp_row, w + ky * row * out_c, out_c, row);
                } else {
                    mac_p3(xp[0] + ky * in_row, xp[1] + ky * in_row, xp[2] + ky * in_row,
                           w + ky * row * out_c, out_c, row);
                }
            }
            for (t = 0; t < n; ++t) {
                const int at = (pix0 + t) * out_c + c0;
                rq_m8(8 + 8 * t, vl, vlmax8 / 2, p, c0, output + at,
                      a != NULL ? residual + at : NULL, a);
            }
        } else {
            __asm__ volatile("vsetvli %0, %1, " E16M2 "\n\t"
                             "vle32.v v8, (%2)\n\t"
                             "vle32.v v12, (%2)\n\t"
                             "vle32.v v16, (%2)\n\t"
                             "vle32.v v20, (%2)\n\t"
                             "vle32.v v24, (%2)\n\t"
                             "vle32.v v28, (%2)\n\t"
                             : "=&r"(vl) : "r"(out_c - c0), "r"(b) : "memory");
            for (ky = 0; ky < p->k_h; ++ky) {
                const int iy = iy0 + ky;
                const int8_t *xr[TD_MAX_TILE];
                for (t = 0; t < TD_MAX_TILE; ++t) {
                    xr[t] = iy < 0 || iy >= p->in_h ? p->zp_row : xp[t] + ky * in_row;
                }
                mac_p6(xr, w + ky * row * out_c, out_c, row);
            }
            for (t = 0; t < n; ++t) {
                const int at = (pix0 + t) * out_c + c0;
                rq_reg(8 + 4 * t, vl, p, c0, output + at, a != NULL ? residual + at : NULL, a);
            }
        }
        c0 += (int)vl;
    }
}

/* Does the tile (n interior pixels from ox0) write into its own inputs? */
TD_RV_TILE_OVERLAPS(tile_clobbers_inputs, td_rvv_conv_params, 1)

static void conv_run(const td_rvv_conv_params *p, const int8_t *input,
                     const int8_t *weights, int oy, int ox, int n, int tile, int check,
                     int8_t *output, const int8_t *residual, const add_ctx *a,
                     size_t vlmax8)
{
    int t;
    if (!check || !tile_clobbers_inputs(p, input, output, oy, ox, n)) {
        conv_tile(p, input, weights, oy, ox, n, tile, output, residual, a, vlmax8);
        return;
    }
    for (t = 0; t < n; ++t) {
        conv_pixel(p, input, weights, oy, p->backward ? ox + n - 1 - t : ox + t, output,
                   residual, a, vlmax8);
    }
}

void td_rvv_conv_s8(const td_rvv_conv_params *p, const int8_t *input,
                    const int8_t *weights, int8_t *output,
                    const int8_t *residual)
{
    const int tile = p->lmul == 4 ? 6 : 3;
    const size_t vlmax8 = vsetvl_e16m4((size_t)1 << 30);
    const size_t block = tile == 6 ? vlmax8 / 2 : vlmax8;
    /* a tile writes each channel block before re-reading its inputs for the
     * next: with an overlapping output it must not write into them */
    const int check = p->ordered && (size_t)p->out_c > block;
    add_ctx actx;
    const add_ctx *a = NULL;
    int y;
    set_vxrm_rnu();
    if (p->add != NULL) {
        add_ctx_init(&actx, p->add, p->conv_is_input1);
        a = &actx;
    }
    for (y = 0; y < p->out_h; ++y) {
        const int oy = p->backward ? p->out_h - 1 - y : y;
        int lo, hi, ox;
        td_rv_interior(p->in_w, p->k_w, p->stride_w, p->pad_left, p->out_w, &lo, &hi);
        if (!p->backward) {
            for (ox = 0; ox < lo; ++ox) {
                conv_pixel(p, input, weights, oy, ox, output, residual, a, vlmax8);
            }
            for (ox = lo; ox < hi; ox += tile) {
                conv_run(p, input, weights, oy, ox, hi - ox < tile ? hi - ox : tile, tile,
                         check, output, residual, a, vlmax8);
            }
            for (ox = hi; ox < p->out_w; ++ox) {
                conv_pixel(p, input, weights, oy, ox, output, residual, a, vlmax8);
            }
        } else {
            int end;
            for (ox = p->out_w - 1; ox >= hi; --ox) {
                conv_pixel(p, input, weights, oy, ox, output, residual, a, vlmax8);
            }
            for (end = hi; end > lo; end -= tile) {
                const int start = end - tile > lo ? end - tile : lo;
                conv_run(p, input, weights, oy, start, end - start, tile, check, output,
                         residual, a, vlmax8);
            }
            for (ox = lo - 1; ox >= 0; --ox) {
                conv_pixel(p, input, weights, oy, ox, output, residual, a, vlmax8);
            }
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Convolution with the vector over output pixels (few output channels)    */
/* ---------------------------------------------------------------------- */

/* Hot loop: n steps; the input of every lane is `st` bytes after the
 * previous lane's (strided load, st 0 broadcasts the zero-point row), the
 * weights of 3 output channels interleaved [k][3].  vtype e16 m4;
 * accumulators e32 m8 in v8, v16, v24. */
#define TD_PX_STEP(o)                                                       \
    "vlse8.v v6, (%[x]), %[st]\n\t"                                         \
    "addi %[x], %[x], 1\n\t"                                                \
    "vsext.vf2 v4, v6\n\t"                                                  \
    "lb %[t], 3*" #o "+0(%[w])\n\t"                                         \
    "vwmacc.vx v8, %[t], v4\n\t"                                            \
    "lb %[t], 3*" #o "+1(%[w])\n\t"                                         \
    "vwmacc.vx v16, %[t], v4\n\t"                                           \
    "lb %[t], 3*" #o "+2(%[w])\n\t"                                         \
    "vwmacc.vx v24, %[t], v4\n\t"

static inline void mac_px(const int8_t *x, int32_t st, const int8_t *w, int32_t n)
{
    const int8_t *end4 = x + (n & ~3), *end = x + n;
    int32_t t;
    __asm__ volatile(
        "bgeu %[x], %[end4], 2f\n\t"
        "1:\n\t"
        TD_PX_STEP(0) TD_PX_STEP(1) TD_PX_STEP(2) TD_PX_STEP(3)
        "addi %[w], %[w], 12\n\t"
        "bltu %[x], %[end4], 1b\n\t"
        "2:\n\t"
        "bgeu %[x], %[end], 4f\n\t"
        "3:\n\t"
        TD_PX_STEP(0)
        "addi %[w], %[w], 3\n\t"
        "bltu %[x], %[end], 3b\n\t"
        "4:\n\t"
        : [x] "+r"(x), [w] "+r"(w), [t] "=&r"(t)
        : [st] "r"(st), [end4] "r"(end4), [end] "r"(end)
        : "memory");
}

/* Requantize accumulator v<N> (e32 m8, vl lanes = pixels) of channel c and
 * store it with stride out_c. */
#define TD_DEFINE_PX_RQ(N)                                                  \
static void px_rq_v##N(const td_rvv_conv_px_params *p, int c, int8_t *out)  \
{                                                                           \
    const int32_t s = p->shift[c];                                          \
    const int32_t l = s > 0 ? s : 0, r = s > 0 ? 0 : -s;                    \
    __asm__ volatile(                                                       \
        "vsetvli zero, zero, " E32M8 "\n\t"                                 \
        TD_RVV_MBQM("v" #N, "%[m]", "%[l]", "%[r]")                         \
        "vadd.vx v" #N ", v" #N ", %[zp]\n\t"                               \
        "vmax.vx v" #N ", v" #N ", %[lo]\n\t"                               \
        "vmin.vx v" #N ", v" #N ", %[hi]\n\t"                               \
        "vsetvli zero, zero, " E16M4 "\n\t"                                 \
        "vnsrl.wi v4, v" #N ", 0\n\t"                                       \
        "vsetvli zero, zero, " E8M2 "\n\t"                                  \
        "vnsrl.wi v2, v4, 0\n\t"                                            \
        "vsse8.v v2, (%[o]), %[st]\n\t"                                     \
        "vsetvli zero, zero, " E16M4 "\n\t"                                 \
        :                                                                   \
        : [m] "r"(p->mult[c]), [l] "r"(l), [r] "r"(r),                      \
          [zp] "r"(p->output_offset), [lo] "r"(p->act_min),                 \
          [hi] "r"(p->act_max), [o] "r"(out), [st] "r"((int32_t)p->out_c)   \
        : "memory");                                                        \
}

TD_DEFINE_PX_RQ(8)
TD_DEFINE_PX_RQ(16)
TD_DEFINE_PX_RQ(24)

/* n pixels (ox0...) of row oy; taps kx in [kx0, kx1) of valid rows read the
 * input, the others the zero-point row.  Channel triples in increasing
 * (decreasing if backward) order, each stored when done. */
static void px_run(const td_rvv_conv_px_params *p, const int8_t *input,
                   const int8_t *weights, int oy, int ox0, int n, int kx0, int kx1,
                   int8_t *output)
{
    const int in_c = p->in_c, row = p->k_w * in_c, k_len = p->k_h * row;
    const int groups = (p->out_c + 2) / 3;
    const int iy0 = oy * p->stride_h - p->pad_top, ix0 = ox0 * p->stride_w - p->pad_left;
    const int32_t st = p->stride_w * in_c;
    int8_t *out = output + (oy * p->out_w + ox0) * p->out_c;
    int i;
    for (i = 0; i < groups; ++i) {
        const int g = p->backward ? groups - 1 - i : i;
        const int8_t *wg = weights + g * 3 * k_len;
        const int32_t *b = p->bias + 3 * g;
        int ky;
        __asm__ volatile("vsetvli zero, %0, " E32M8 "\n\t"
                         "vmv.v.x v8, %1\n\t"
                         "vmv.v.x v16, %2\n\t"
                         "vmv.v.x v24, %3\n\t"
                         "vsetvli zero, zero, " E16M4 "\n\t"
                         : : "r"(n), "r"(b[0]), "r"(b[1]), "r"(b[2]) : "memory");
        for (ky = 0; ky < p->k_h; ++ky) {
            const int iy = iy0 + ky;
            const int8_t *w = wg + ky * row * 3;
            if (iy < 0 || iy >= p->in_h) {
                mac_px(p->zp_row, 0, w, row);
                continue;
            }
            mac_px(p->zp_row, 0, w, kx0 * in_c);
            mac_px(input + (iy * p->in_w + ix0 + kx0) * in_c, st, w + kx0 * in_c * 3,
                   (kx1 - kx0) * in_c);
            mac_px(p->zp_row, 0, w + kx1 * in_c * 3, (p->k_w - kx1) * in_c);
        }
        px_rq_v8(p, 3 * g, out + 3 * g);
        if (3 * g + 1 < p->out_c) {
            px_rq_v16(p, 3 * g + 1, out + 3 * g + 1);
        }
        if (3 * g + 2 < p->out_c) {
            px_rq_v24(p, 3 * g + 2, out + 3 * g + 2);
        }
    }
}

static void px_pixel(const td_rvv_conv_px_params *p, const int8_t *input,
                     const int8_t *weights, int oy, int ox, int8_t *output)
{
    const int ix0 = ox * p->stride_w - p->pad_left;
    int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = p->in_w - ix0 < p->k_w ? p->in_w - ix0 : p->k_w;
    if (kx1 < kx0) {
        kx1 = kx0;
    }
    px_run(p, input, weights, oy, ox, 1, kx0, kx1, output);
}

TD_RV_TILE_OVERLAPS(segment_clobbers_inputs, td_rvv_conv_px_params, 1)

/* A segment writes each channel triple before re-reading its inputs for
 * the next: with an overlapping output it must not write into them. */
static void px_segment(const td_rvv_conv_px_params *p, const int8_t *input,
                       const int8_t *weights, int oy, int ox0, int n, int8_t *output)
{
    if (p->ordered && p->out_c > 3 && segment_clobbers_inputs(p, input, output, oy, ox0, n)) {
        int t;
        for (t = 0; t < n; ++t) {
            px_pixel(p, input, weights, oy, p->backward ? ox0 + n - 1 - t : ox0 + t, output);
        }
        return;
    }
    px_run(p, input, weights, oy, ox0, n, 0, p->k_w, output);
}

void td_rvv_conv_px_s8(const td_rvv_conv_px_params *p, const int8_t *input,
                       const int8_t *weights, int8_t *output)
{
    const size_t vlmax8 = vsetvl_e16m4((size_t)1 << 30);
    const int seg = (int)vlmax8;
    int y;
    set_vxrm_rnu();
    for (y = 0; y < p->out_h; ++y) {
        const int oy = p->backward ? p->out_h - 1 - y : y;
        int lo, hi, ox;
        td_rv_interior(p->in_w, p->k_w, p->stride_w, p->pad_left, p->out_w, &lo, &hi);
        if (!p->backward) {
            for (ox = 0; ox < lo; ++ox) {
                px_pixel(p, input, weights, oy, ox, output);
            }
            for (ox = lo; ox < hi; ox += seg) {
                px_segment(p, input, weights, oy, ox, hi - ox < seg ? hi - ox : seg, output);
            }
            for (ox = hi; ox < p->out_w; ++ox) {
                px_pixel(p, input, weights, oy, ox, output);
            }
        } else {
            int end;
            for (ox = p->out_w - 1; ox >= hi; --ox) {
                px_pixel(p, input, weights, oy, ox, output);
            }
            for (end = hi; end > lo; end -= seg) {
                const int start = end - seg > lo ? end - seg : lo;
                px_segment(p, input, weights, oy, start, end - start, output);
            }
            for (ox = lo - 1; ox >= 0; --ox) {
                px_pixel(p, input, weights, oy, ox, output);
            }
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Depthwise convolution                                                   */
/* ---------------------------------------------------------------------- */

/* n_el = np * channels elements of np consecutive output pixels starting at
 * (oy, ox0); taps kx in [kx0, kx1) of valid rows read the input, the others
 * add zero point * weight.  Sub-blocks of vlmax elements in increasing
 * (decreasing when backward) order, each written when done. */
static void dw_block(const td_rvv_dw_params *p, const int8_t *input,
                     const int16_t *weights, int oy, int ox0, int np, int kx0,
                     int kx1, int8_t *output, size_t vlmax8)
{
    const int C = p->channels, tile = p->tile, n_el = np * C;
    const int strided = p->stride_w > 1 && np > 1;
    const int iy0 = oy * p->stride_h - p->pad_top, ix0 = ox0 * p->stride_w - p->pad_left;
    const int nb = (n_el + (int)vlmax8 - 1) / (int)vlmax8;
    int8_t *out = output + (oy * p->out_w + ox0) * C;
    int i;
    for (i = 0; i < nb; ++i) {
        const int e0 = (p->backward ? nb - 1 - i : i) * (int)vlmax8;
        const size_t vl = vsetvl_e16m4((size_t)(n_el - e0));
        int ky, kx;
        (void)vl;
        __asm__ volatile("vle32.v v8, (%0)" : : "r"(p->bias + e0) : "memory");
        if (strided) {
            __asm__ volatile("vle16.v v16, (%0)" : : "r"(p->index + e0) : "memory");
        }
        for (ky = 0; ky < p->k_h; ++ky) {
            const int iy = iy0 + ky;
            const int row_ok = iy >= 0 && iy < p->in_h;
            const int8_t *x = input + (iy * p->in_w + ix0) * C;
            const int16_t *w = weights + ky * p->k_w * tile + e0;
            if (row_ok && kx0 == 0 && kx1 == p->k_w && !strided) {
                /* a whole row of taps, unit stride */
                const int8_t *xx = x + e0;
                int32_t k = p->k_w;
                __asm__ volatile("1:\n\t"
                                 "vle8.v v6, (%[x])\n\t"
                                 "vle16.v v0, (%[w])\n\t"
                                 "vsext.vf2 v4, v6\n\t"
                                 "vwmacc.vv v8, v4, v0\n\t"
                                 "add %[x], %[x], %[cs]\n\t"
                                 "add %[w], %[w], %[ts]\n\t"
                                 "addi %[k], %[k], -1\n\t"
                                 "bnez %[k], 1b\n\t"
                                 : [x] "+r"(xx), [w] "+r"(w), [k] "+r"(k)
                                 : [cs] "r"((int32_t)C), [ts] "r"((int32_t)(tile * 2))
                                 : "memory");
                continue;
            }
            for (kx = 0; kx < p->k_w; ++kx, w += tile) {
                if (!row_ok || kx < kx0 || kx >= kx1) {
                    __asm__ volatile("vle16.v v0, (%0)\n\t"
                                     "vwmacc.vx v8, %1, v0\n\t"
                                     : : "r"(w), "r"((int32_t)p->pad_value) : "memory");
                } else if (strided) {
                    /* 16-bit gathers: the low byte is the input */
                    __asm__ volatile("vluxei16.v v4, (%0), v16\n\t"
                                     "vle16.v v0, (%1)\n\t"
                                     "vsll.vi v4, v4, 8\n\t"
                                     "vsra.vi v4, v4, 8\n\t"
                                     "vwmacc.vv v8, v4, v0\n\t"
                                     : : "r"(x + kx * C), "r"(w) : "memory");
                } else {
                    __asm__ volatile("vle8.v v6, (%0)\n\t"
                                     "vle16.v v0, (%1)\n\t"
                                     "vsext.vf2 v4, v6\n\t"
                                     "vwmacc.vv v8, v4, v0\n\t"
                                     : : "r"(x + kx * C + e0), "r"(w) : "memory");
                }
            }
        }
        __asm__ volatile(
            "vsetvli zero, zero, " E32M8 "\n\t"
            "vle32.v v16, (%[left])\n\t"
            "vsll.vv v8, v8, v16\n\t"
            "vle32.v v16, (%[mult])\n\t"
            "vsmul.vv v8, v8, v16\n\t"
            "vle32.v v16, (%[right])\n\t"
            "vmslt.vx v0, v8, zero\n\t"
            "vrsub.vi v8, v8, 0, v0.t\n\t"
            "vssrl.vv v8, v8, v16\n\t"
            "vrsub.vi v8, v8, 0, v0.t\n\t"
            "vadd.vx v8, v8, %[zp]\n\t"
            "vmax.vx v8, v8, %[lo]\n\t"
            "vmin.vx v8, v8, %[hi]\n\t"
            "vsetvli zero, zero, " E16M4 "\n\t"
            "vnsrl.wi v16, v8, 0\n\t"
            "vsetvli zero, zero, " E8M2 "\n\t"
            "vnsrl.wi v24, v16, 0\n\t"
            "vse8.v v24, (%[o])\n\t"
            :
            : [left] "r"(p->left + e0), [mult] "r"(p->mult + e0),
              [right] "r"(p->right + e0), [zp] "r"(p->output_offset),
              [lo] "r"(p->act_min), [hi] "r"(p->act_max), [o] "r"(out + e0)
            : "memory");
    }
}

static void dw_pixel(const td_rvv_dw_params *p, const int8_t *input,
                     const int16_t *weights, int oy, int ox, int8_t *output,
                     size_t vlmax8)
{
    const int ix0 = ox * p->stride_w - p->pad_left;
    int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = p->in_w - ix0 < p->k_w ? p->in_w - ix0 : p->k_w;
    if (kx1 < kx0) {
        kx1 = kx0;
    }
    dw_block(p, input, weights, oy, ox, 1, kx0, kx1, output, vlmax8);
}

void td_rvv_depthwise_conv_s8(const td_rvv_dw_params *p, const int8_t *input,
                              const int16_t *weights, int8_t *output)
{
    const int np_max = p->tile / p->channels;
    const size_t vlmax8 = vsetvl_e16m4((size_t)1 << 30);
    int y;
    set_vxrm_rnu();
    for (y = 0; y < p->out_h; ++y) {
        const int oy = p->backward ? p->out_h - 1 - y : y;
        int lo, hi, ox;
        td_rv_interior(p->in_w, p->k_w, p->stride_w, p->pad_left, p->out_w, &lo, &hi);
        if (!p->backward) {
            for (ox = 0; ox < lo; ++ox) {
                dw_pixel(p, input, weights, oy, ox, output, vlmax8);
            }
            for (ox = lo; ox < hi; ox += np_max) {
                dw_block(p, input, weights, oy, ox, hi - ox < np_max ? hi - ox : np_max, 0,
                         p->k_w, output, vlmax8);
            }
            for (ox = hi; ox < p->out_w; ++ox) {
                dw_pixel(p, input, weights, oy, ox, output, vlmax8);
            }
        } else {
            int end;
            for (ox = p->out_w - 1; ox >= hi; --ox) {
                dw_pixel(p, input, weights, oy, ox, output, vlmax8);
            }
            for (end = hi; end > lo; end -= np_max) {
                const int start = end - np_max > lo ? end - np_max : lo;
                dw_block(p, input, weights, oy, start, end - start, 0, p->k_w, output, vlmax8);
            }
            for (ox = lo - 1; ox >= 0; --ox) {
                dw_pixel(p, input, weights, oy, ox, output, vlmax8);
            }
        }
    }
}
/* ---------------------------------------------------------------------- */
/* Pooling (lanes over channels)                                           */
/* ---------------------------------------------------------------------- */

static void pool_window(const td_pool_s8_params *p, int o, int size, int k,
                        int *lo, int *hi)
{
    *lo = o < 0 ? -o : 0;
    *hi = size - o < k ? size - o : k;
    if (*hi < *lo) {
        *hi = *lo;
    }
    (void)p;
}

void td_rvv_max_pool_s8(const td_pool_s8_params *p, const int8_t *input,
                        int8_t *output)
{
    const int C = p->channels, row = p->in_w * C;
    int oy, ox;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int iy0 = oy * p->stride_h - p->pad_top;
        int ky0, ky1;
        pool_window(p, iy0, p->in_h, p->k_h, &ky0, &ky1);
        for (ox = 0; ox < p->out_w; ++ox) {
            const int ix0 = ox * p->stride_w - p->pad_left;
            int8_t *out = output + (oy * p->out_w + ox) * C;
            int kx0, kx1, c0 = 0;
            pool_window(p, ix0, p->in_w, p->k_w, &kx0, &kx1);
            while (c0 < C) {
                const int8_t *base = input + ((iy0 + ky0) * p->in_w + ix0 + kx0) * C + c0;
                size_t vl;
                int y, x;
                __asm__ volatile("vsetvli %0, %1, e8, m8, ta, ma\n\t"
                                 "vmv.v.x v8, %2\n\t"
                                 : "=&r"(vl) : "r"(C - c0), "r"((int32_t)INT8_MIN));
                for (y = ky0; y < ky1; ++y, base += row) {
                    const int8_t *q = base;
                    for (x = kx0; x < kx1; ++x, q += C) {
                        __asm__ volatile("vle8.v v16, (%0)\n\t"
                                         "vmax.vv v8, v8, v16\n\t"
                                         : : "r"(q) : "memory");
                    }
                }
                __asm__ volatile("vmax.vx v8, v8, %0\n\t"
                                 "vmin.vx v8, v8, %1\n\t"
                                 "vse8.v v8, (%2)\n\t"
                                 : : "r"(p->act_min), "r"(p->act_max), "r"(out + c0)
                                 : "memory");
                c0 += (int)vl;
            }
        }
    }
}

void td_rvv_avg_pool_s8(const td_pool_s8_params *p, const int8_t *input,
                        int8_t *output)
{
    const int C = p->channels, row = p->in_w * C, full = p->k_h * p->k_w;
    int oy, ox;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int iy0 = oy * p->stride_h - p->pad_top;
        int ky0, ky1;
        pool_window(p, iy0, p->in_h, p->k_h, &ky0, &ky1);
        for (ox = 0; ox < p->out_w; ++ox) {
            const int ix0 = ox * p->stride_w - p->pad_left;
            int8_t *out = output + (oy * p->out_w + ox) * C;
            int kx0, kx1, c0 = 0, valid, count;
            pool_window(p, ix0, p->in_w, p->k_w, &kx0, &kx1);
            valid = (ky1 - ky0) * (kx1 - kx0);
            count = p->count_include_pad ? full : valid;
            while (c0 < C) {
                /* padding cells count as zero points when they are counted */
                const int32_t extra = (count - valid) * p->zero_point;
                const int8_t *base = input + ((iy0 + ky0) * p->in_w + ix0 + kx0) * C + c0;
                size_t vl;
                int y, x;
                __asm__ volatile("vsetvli %0, %1, " E32M8 "\n\t"
                                 "vmv.v.x v8, %2\n\t"
                                 : "=&r"(vl) : "r"(C - c0), "r"(extra));
                for (y = ky0; y < ky1; ++y, base += row) {
                    const int8_t *q = base;
                    for (x = kx0; x < kx1; ++x, q += C) {
                        __asm__ volatile("vle8.v v2, (%0)\n\t"
                                         "vsext.vf4 v16, v2\n\t"
                                         "vadd.vv v8, v8, v16\n\t"
                                         : : "r"(q) : "memory");
                    }
                }
                if (count == 0) {
                    __asm__ volatile("vmv.v.i v8, 0");
                } else {
                    /* TFLite: (sum +- count / 2) / count, C division (toward zero) */
                    __asm__ volatile("vmsle.vx v0, v8, zero\n\t"
                                     "vadd.vx v8, v8, %0\n\t"
                                     "vsub.vx v8, v8, %1, v0.t\n\t"
                                     "vdiv.vx v8, v8, %2\n\t"
                                     : : "r"(count / 2), "r"(2 * (count / 2)), "r"(count));
                }
                __asm__ volatile("vmax.vx v8, v8, %0\n\t"
                                 "vmin.vx v8, v8, %1\n\t"
                                 "vsetvli zero, zero, " E16M4 "\n\t"
                                 "vnsrl.wi v16, v8, 0\n\t"
                                 "vsetvli zero, zero, " E8M2 "\n\t"
                                 "vnsrl.wi v24, v16, 0\n\t"
                                 "vse8.v v24, (%2)\n\t"
                                 : : "r"(p->act_min), "r"(p->act_max), "r"(out + c0)
                                 : "memory");
                c0 += (int)vl;
            }
        }
    }
}
