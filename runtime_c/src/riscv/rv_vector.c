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

static inline void fill_bytes(int8_t *dst, int32_t value, int32_t n)
{
    while (n > 0) {
        size_t vl;
        __asm__ volatile("vsetvli %0, %1, " "e8, m8, ta, ma" "\n\t"
                         "vmv.v.x v8, %2\n\t"
                         "vse8.v v8, (%3)\n\t"
                         : "=&r"(vl) : "r"(n), "r"(value), "r"(dst) : "memory");
        dst += vl;
        n -= (int32_t)vl;
    }
}

static inline void copy_bytes(int8_t *dst, const int8_t *src, int32_t n)
{
    while (n > 0) {
        size_t vl;
        __asm__ volatile("vsetvli %0, %1, " "e8, m8, ta, ma" "\n\t"
                         "vle8.v v8, (%2)\n\t"
                         "vse8.v v8, (%3)\n\t"
                         : "=&r"(vl) : "r"(n), "r"(src), "r"(dst) : "memory");
        dst += vl;
        src += vl;
        n -= (int32_t)vl;
    }
}

/* ---------------------------------------------------------------------- */
/* Requantization of an int32 block [n_pix][out_c] -> int8, per channel    */
/* ---------------------------------------------------------------------- */

/* v4 (e32, m4): acc << left (v8), srdhm by v12, rdbpot by v16, zero point,
 * clamp; result e8 in v24.  vtype e32 m4 on entry and exit. */
#define TD_RQ_M4(LEFT)                                                      \
    LEFT                                                                    \
    "vsmul.vv v4, v4, v12\n\t"                                              \
    "vmslt.vx v0, v4, zero\n\t"                                             \
    "vrsub.vi v4, v4, 0, v0.t\n\t"                                          \
    "vssrl.vv v4, v4, v16\n\t"                                              \
    "vrsub.vi v4, v4, 0, v0.t\n\t"                                          \
    "vadd.vx v4, v4, %[zp]\n\t"                                             \
    "vmax.vx v4, v4, %[lo]\n\t"                                             \
    "vmin.vx v4, v4, %[hi]\n\t"                                             \
    "vsetvli zero, zero, " E16M2 "\n\t"                                     \
    "vnsrl.wi v20, v4, 0\n\t"                                               \
    "vsetvli zero, zero, " E8M1 "\n\t"                                      \
    "vnsrl.wi v24, v20, 0\n\t"

static void requant_block(const int32_t *acc, int n_pix, int out_c,
                          const int32_t *left, const int32_t *mult,
                          const int32_t *right, int use_left, int32_t zp,
                          int32_t lo, int32_t hi, int8_t *out)
{
    int c0 = 0;
    while (c0 < out_c) {
        size_t vl;
        int t;
        __asm__ volatile("vsetvli %0, %1, " E32M4 "\n\t"
                         "vle32.v v8, (%2)\n\t"
                         "vle32.v v12, (%3)\n\t"
                         "vle32.v v16, (%4)\n\t"
                         : "=&r"(vl)
                         : "r"(out_c - c0), "r"(left + c0), "r"(mult + c0),
                           "r"(right + c0)
                         : "memory");
        for (t = 0; t < n_pix; ++t) {
            const int32_t *a = acc + t * out_c + c0;
            int8_t *o = out + t * out_c + c0;
            if (use_left) {
                __asm__ volatile("vsetvli zero, %[vl], " E32M4 "\n\t"
                                 "vle32.v v4, (%[a])\n\t"
                                 TD_RQ_M4("vsll.vv v4, v4, v8\n\t")
                                 "vse8.v v24, (%[o])\n\t"
                                 :
                                 : [vl] "r"(vl), [a] "r"(a), [o] "r"(o),
                                   [zp] "r"(zp), [lo] "r"(lo), [hi] "r"(hi)
                                 : "memory");
            } else {
                __asm__ volatile("vsetvli zero, %[vl], " E32M4 "\n\t"
                                 "vle32.v v4, (%[a])\n\t"
                                 TD_RQ_M4("")
                                 "vse8.v v24, (%[o])\n\t"
                                 :
                                 : [vl] "r"(vl), [a] "r"(a), [o] "r"(o),
                                   [zp] "r"(zp), [lo] "r"(lo), [hi] "r"(hi)
                                 : "memory");
            }
        }
        c0 += (int)vl;
    }
}

/* ---------------------------------------------------------------------- */
/* Add                                                                     */
/* ---------------------------------------------------------------------- */

/* reg (e32 m8) = mbqm(reg, M, shift as left L / right R), scalar parameters */
#define TD_MBQM_M8(reg, M, L, R)                                            \
    "vsll.vx " reg ", " reg ", " L "\n\t"                                   \
    "vsmul.vx " reg ", " reg ", " M "\n\t"                                  \
    "vmslt.vx v0, " reg ", zero\n\t"                                        \
    "vrsub.vi " reg ", " reg ", 0, v0.t\n\t"                                \
    "vssrl.vx " reg ", " reg ", " R "\n\t"                                  \
    "vrsub.vi " reg ", " reg ", 0, v0.t\n\t"

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
            TD_MBQM_M8("v8", "%[m1]", "%[l1]", "%[r1]")
            "vle8.v v2, (%[b])\n\t"
            "vsext.vf4 v16, v2\n\t"
            "vadd.vx v16, v16, %[off2]\n\t"
            "vsll.vx v16, v16, %[ls]\n\t"
            TD_MBQM_M8("v16", "%[m2]", "%[l2]", "%[r2]")
            "vadd.vv v8, v8, v16\n\t"
            : [vl] "=&r"(vl)
            : [n] "r"(n), [a] "r"(a), [b] "r"(b), [off1] "r"(p->input1_offset),
              [off2] "r"(p->input2_offset), [ls] "r"(p->left_shift),
              [m1] "r"(p->input1_multiplier), [l1] "r"(l1), [r1] "r"(r1),
              [m2] "r"(p->input2_multiplier), [l2] "r"(l2), [r2] "r"(r2)
            : "memory");
        __asm__ volatile(
            TD_MBQM_M8("v8", "%[mo]", "%[lo]", "%[ro]")
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

/* Gather one output pixel's window (top-left tap at iy0, ix0) into dst
 * [k_h][k_w][in_c] with the zero point in padding taps. */
static void gather(const td_rvv_conv_params *p, const int8_t *input, int iy0,
                   int ix0, int8_t *dst)
{
    const int in_c = p->in_c, row = p->k_w * in_c;
    int ky, kx0, kx1;
    kx0 = ix0 < 0 ? -ix0 : 0;
    kx1 = p->in_w - ix0 < p->k_w ? p->in_w - ix0 : p->k_w;
    if (kx1 < kx0) {
        kx1 = kx0;
    }
    for (ky = 0; ky < p->k_h; ++ky, dst += row) {
        const int iy = iy0 + ky;
        if (iy < 0 || iy >= p->in_h || kx0 >= kx1) {
            fill_bytes(dst, p->pad_value, row);
            continue;
        }
        if (kx0 > 0) {
            fill_bytes(dst, p->pad_value, kx0 * in_c);
        }
        copy_bytes(dst + kx0 * in_c, input + ((iy * p->in_w) + ix0 + kx0) * in_c,
                   (kx1 - kx0) * in_c);
        if (kx1 < p->k_w) {
            fill_bytes(dst + kx1 * in_c, p->pad_value, (p->k_w - kx1) * in_c);
        }
    }
}

#define TD_MAX_TILE 6

void td_rvv_conv_s8(const td_rvv_conv_params *p, const int8_t *input,
                    const int8_t *weights, int8_t *output, void *scratch,
                    const int8_t *residual)
{
    const int out_c = p->out_c, in_c = p->in_c;
    const int row = p->k_w * in_c, k_len = p->k_h * row;
    const int n_pix = p->out_h * p->out_w, in_row = p->in_w * in_c;
    const int tile = p->lmul == 4 ? 6 : 3;
    int8_t *gathered = (int8_t *)scratch;
    int32_t *accbuf = (int32_t *)(void *)((uintptr_t)(gathered + TD_MAX_TILE * k_len + 15) &
                                          ~(uintptr_t)15);
    int8_t *results = (int8_t *)(accbuf + TD_MAX_TILE * out_c);
    int done;
    set_vxrm_rnu();
    for (done = 0; done < n_pix; done += tile) {
        const int8_t *xp[TD_MAX_TILE];
        int rs[TD_MAX_TILE];
        const int n = n_pix - done < tile ? n_pix - done : tile;
        const int pix0 = p->backward ? n_pix - done - n : done;
        int all_gathered = 1, t, c0, ky, oy = pix0 / p->out_w, ox = pix0 % p->out_w;
        for (t = 0; t < n; ++t) {
            const int iy0 = oy * p->stride_h - p->pad_top;
            const int ix0 = ox * p->stride_w - p->pad_left;
            if (!p->im2col_all && iy0 >= 0 && ix0 >= 0 &&
                iy0 + p->k_h <= p->in_h && ix0 + p->k_w <= p->in_w) {
                xp[t] = input + (iy0 * p->in_w + ix0) * in_c;
                rs[t] = in_row;
                all_gathered = 0;
            } else {
                gather(p, input, iy0, ix0, gathered + t * k_len);
                xp[t] = gathered + t * k_len;
                rs[t] = row;
            }
            if (++ox == p->out_w) {
                ox = 0;
                ++oy;
            }
        }
        for (; t < tile; ++t) {
            xp[t] = xp[n - 1];
            rs[t] = rs[n - 1];
        }
        c0 = 0;
        while (c0 < out_c) {
            const int8_t *w = weights + c0;
            const int32_t *b = p->bias + c0;
            size_t vl;
            if (n == 1) {
                __asm__ volatile("vsetvli %0, %1, " E16M4 "\n\t"
                                 "vle32.v v8, (%2)\n\t"
                                 : "=&r"(vl) : "r"(out_c - c0), "r"(b) : "memory");
                if (rs[0] == row) {
                    mac_p1(xp[0], w, out_c, k_len);
                } else {
                    for (ky = 0; ky < p->k_h; ++ky) {
                        mac_p1(xp[0] + ky * rs[0], w + ky * row * out_c, out_c, row);
                    }
                }
                __asm__ volatile("vse32.v v8, (%0)\n\t"
                                 : : "r"(accbuf + c0) : "memory");
            } else if (tile == 3) {
                __asm__ volatile("vsetvli %0, %1, " E16M4 "\n\t"
                                 "vle32.v v8, (%2)\n\t"
                                 "vle32.v v16, (%2)\n\t"
                                 "vle32.v v24, (%2)\n\t"
                                 : "=&r"(vl) : "r"(out_c - c0), "r"(b) : "memory");
                if (all_gathered) {
                    mac_p3(xp[0], xp[1], xp[2], w, out_c, k_len);
                } else {
                    for (ky = 0; ky < p->k_h; ++ky) {
                        mac_p3(xp[0] + ky * rs[0], xp[1] + ky * rs[1],
                               xp[2] + ky * rs[2], w + ky * row * out_c, out_c, row);
                    }
                }
                __asm__ volatile("vse32.v v8, (%0)\n\t"
                                 "vse32.v v16, (%1)\n\t"
                                 "vse32.v v24, (%2)\n\t"
                                 :
                                 : "r"(accbuf + c0), "r"(accbuf + out_c + c0),
                                   "r"(accbuf + 2 * out_c + c0)
                                 : "memory");
            } else {
                __asm__ volatile("vsetvli %0, %1, " E16M2 "\n\t"
                                 "vle32.v v8, (%2)\n\t"
                                 "vle32.v v12, (%2)\n\t"
                                 "vle32.v v16, (%2)\n\t"
                                 "vle32.v v20, (%2)\n\t"
                                 "vle32.v v24, (%2)\n\t"
                                 "vle32.v v28, (%2)\n\t"
                                 : "=&r"(vl) : "r"(out_c - c0), "r"(b) : "memory");
                if (all_gathered) {
                    mac_p6(xp, w, out_c, k_len);
                } else {
                    for (ky = 0; ky < p->k_h; ++ky) {
                        const int8_t *xr[TD_MAX_TILE];
                        for (t = 0; t < TD_MAX_TILE; ++t) {
                            xr[t] = xp[t] + ky * rs[t];
                        }
                        mac_p6(xr, w + ky * row * out_c, out_c, row);
                    }
                }
                __asm__ volatile("vse32.v v8, (%0)\n\t"
                                 "vse32.v v12, (%1)\n\t"
                                 "vse32.v v16, (%2)\n\t"
                                 :
                                 : "r"(accbuf + c0), "r"(accbuf + out_c + c0),
                                   "r"(accbuf + 2 * out_c + c0)
                                 : "memory");
                __asm__ volatile("vse32.v v20, (%0)\n\t"
                                 "vse32.v v24, (%1)\n\t"
                                 "vse32.v v28, (%2)\n\t"
                                 :
                                 : "r"(accbuf + 3 * out_c + c0),
                                   "r"(accbuf + 4 * out_c + c0),
                                   "r"(accbuf + 5 * out_c + c0)
                                 : "memory");
            }
            c0 += (int)vl;
        }
        requant_block(accbuf, n, out_c, p->left, p->mult, p->right, p->flags & 1,
                      p->output_offset, p->act_min, p->act_max,
                      p->add != NULL ? results : output + pix0 * out_c);
        if (p->add != NULL) {
            const int8_t *r = residual + pix0 * out_c;
            if (p->conv_is_input1) {
                add_elems(p->add, results, r, output + pix0 * out_c, n * out_c);
            } else {
                add_elems(p->add, r, results, output + pix0 * out_c, n * out_c);
            }
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Depthwise convolution                                                   */
/* ---------------------------------------------------------------------- */

void td_rvv_depthwise_conv_s8(const td_rvv_dw_params *p, const int8_t *input,
                              const int16_t *weights, int8_t *output,
                              void *scratch)
{
    enum { MAX_KH = 16 };
    const int C = p->channels, rw = p->row_w, row_bytes = rw * C;
    const int k_h = p->k_h, k_w = p->k_w, tile = p->tile;
    const int np_max = tile / C;
    const int strided = p->stride_w > 1 && np_max > 1;
    int8_t *rows = (int8_t *)scratch;
    int8_t *zrow = rows + k_h * row_bytes;
    const int copy_w = p->in_w < rw - p->pad_left ? p->in_w : rw - p->pad_left;
    const int direct = p->pad_left == 0 && copy_w == rw && !strided && !p->backward;
    const int n_blocks = (p->out_w + np_max - 1) / np_max;
    int y;
    set_vxrm_rnu();
    fill_bytes(rows, p->pad_value, (k_h + 1) * row_bytes);
    for (y = 0; y < p->out_h; ++y) {
        const int oy = p->backward ? p->out_h - 1 - y : y;
        const int iy0 = oy * p->stride_h - p->pad_top;
        const int8_t *rp[MAX_KH];
        int ky, bx;
        for (ky = 0; ky < k_h; ++ky) {
            const int iy = iy0 + ky;
            if (iy < 0 || iy >= p->in_h) {
                rp[ky] = zrow;
            } else if (direct) {
                rp[ky] = input + iy * p->in_w * C;
            } else {
                copy_bytes(rows + ky * row_bytes + p->pad_left * C,
                           input + iy * p->in_w * C, copy_w * C);
                rp[ky] = rows + ky * row_bytes;
            }
        }
        for (bx = 0; bx < n_blocks; ++bx) {
            const int px0 = (p->backward ? n_blocks - 1 - bx : bx) * np_max;
            const int np = p->out_w - px0 < np_max ? p->out_w - px0 : np_max;
            const int n_el = np * C;
            int e0 = 0;
            int8_t *out = output + (oy * p->out_w + px0) * C;
            while (e0 < n_el) {
                size_t vl;
                int kx;
                const int16_t *w = weights + e0;
                __asm__ volatile("vsetvli %0, %1, " E16M4 "\n\t"
                                 "vle32.v v8, (%2)\n\t"
                                 : "=&r"(vl) : "r"(n_el - e0), "r"(p->bias + e0)
                                 : "memory");
                if (strided) {
                    __asm__ volatile("vle16.v v16, (%0)\n\t"
                                     : : "r"(p->index + e0) : "memory");
                }
                for (ky = 0; ky < k_h; ++ky) {
                    const int8_t *x = rp[ky] + px0 * p->stride_w * C;
                    for (kx = 0; kx < k_w; ++kx, x += C, w += tile) {
                        if (strided) {
                            /* 16-bit gathers: the low byte is the input */
                            __asm__ volatile("vluxei16.v v4, (%0), v16\n\t"
                                             "vle16.v v0, (%1)\n\t"
                                             "vsll.vi v4, v4, 8\n\t"
                                             "vsra.vi v4, v4, 8\n\t"
                                             "vwmacc.vv v8, v4, v0\n\t"
                                             : : "r"(x), "r"(w) : "memory");
                        } else {
                            __asm__ volatile("vle8.v v6, (%0)\n\t"
                                             "vle16.v v0, (%1)\n\t"
                                             "vsext.vf2 v4, v6\n\t"
                                             "vwmacc.vv v8, v4, v0\n\t"
                                             : : "r"(x + e0), "r"(w) : "memory");
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
                e0 += (int)vl;
            }
        }
    }
}

