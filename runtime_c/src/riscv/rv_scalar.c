/* Scalar RV32IM int8 kernels (cores without SIMD, e.g. ESP32-C3).
 *
 * Convolution: output pixels in tiles of 3, output channels in blocks of 4:
 * 12 accumulators stay in registers while the inner loop loads 4 weights
 * and 3 input bytes per step (7 loads for 12 multiply-accumulates).
 * Pixels whose window lies inside the image are read in place; border
 * pixels (and every pixel of layers with short rows) are first gathered
 * into scratch with the zero point in the padding taps, so the inner loop
 * never tests bounds.  The input offset is folded into the bias by the
 * generator.  Requantization uses one MULH (no 64-bit arithmetic), exact
 * under the bounds the generator checks (see td_rv_rq). */
#include <stddef.h>

#include "td_kernels_s8.h"
#include "td_kernels_riscv.h"

#define TILE 3

static inline int32_t rv_requant(int32_t acc, const td_rv_rq *q, int32_t lo,
                                 int32_t hi)
{
    const int32_t x = (int32_t)((uint32_t)acc << q->lsh);
    const int64_t prod = (int64_t)x * q->mult;
    const int32_t y = (int32_t)(prod >> 32) + (int32_t)((uint32_t)prod >> 31);
    int32_t z = (y + q->hz + ((y >> 31) & q->nz)) >> q->rsh;
    if (z < lo) {
        z = lo;
    }
    if (z > hi) {
        z = hi;
    }
    return z;
}

/* One step of the 3-pixel x 4-channel block at byte offset o of the rows
 * (weights at 4 * o): 7 loads, 12 multiplies, 12 adds.  Accumulators
 * s0-s11, weights t0-t3, input byte t4, product t5. */
#define TD_MAC34_ROW(v, a, b, c, d)                                         \
    "mul t5, " v ", t0\n\tadd " a ", " a ", t5\n\t"                         \
    "mul t5, " v ", t1\n\tadd " b ", " b ", t5\n\t"                         \
    "mul t5, " v ", t2\n\tadd " c ", " c ", t5\n\t"                         \
    "mul t5, " v ", t3\n\tadd " d ", " d ", t5\n\t"
#define TD_MAC34(o)                                                         \
    "lb t0, 4*" #o "+0(%[w])\n\t"                                           \
    "lb t1, 4*" #o "+1(%[w])\n\t"                                           \
    "lb t2, 4*" #o "+2(%[w])\n\t"                                           \
    "lb t3, 4*" #o "+3(%[w])\n\t"                                           \
    "lb t4, " #o "(%[x0])\n\t"                                              \
    TD_MAC34_ROW("t4", "s0", "s1", "s2", "s3")                              \
    "lb t4, " #o "(%[x1])\n\t"                                              \
    TD_MAC34_ROW("t4", "s4", "s5", "s6", "s7")                              \
    "lb t4, " #o "(%[x2])\n\t"                                              \
    TD_MAC34_ROW("t4", "s8", "s9", "s10", "s11")

/* acc[p * 4 + j] += sum_i x_p[i] * w[i * 4 + j], i in [0, n), n >= 1 */
static void mac_3x4(int32_t *acc, const int8_t *x0, const int8_t *x1,
                    const int8_t *x2, const int8_t *w, int32_t n)
{
    const int8_t *end4 = x0 + (n & ~3);
    const int8_t *end = x0 + n;
    __asm__ volatile(
        "lw s0, 0(%[acc])\n\tlw s1, 4(%[acc])\n\t"
        "lw s2, 8(%[acc])\n\tlw s3, 12(%[acc])\n\t"
        "lw s4, 16(%[acc])\n\tlw s5, 20(%[acc])\n\t"
        "lw s6, 24(%[acc])\n\tlw s7, 28(%[acc])\n\t"
        "lw s8, 32(%[acc])\n\tlw s9, 36(%[acc])\n\t"
        "lw s10, 40(%[acc])\n\tlw s11, 44(%[acc])\n\t"
        "bgeu %[x0], %[end4], 2f\n\t"
        "1:\n\t"
        TD_MAC34(0) TD_MAC34(1) TD_MAC34(2) TD_MAC34(3)
        "addi %[x0], %[x0], 4\n\t"
        "addi %[x1], %[x1], 4\n\t"
        "addi %[x2], %[x2], 4\n\t"
        "addi %[w], %[w], 16\n\t"
        "bltu %[x0], %[end4], 1b\n\t"
        "2:\n\t"
        "bgeu %[x0], %[end], 4f\n\t"
        "3:\n\t"
        TD_MAC34(0)
        "addi %[x0], %[x0], 1\n\t"
        "addi %[x1], %[x1], 1\n\t"
        "addi %[x2], %[x2], 1\n\t"
        "addi %[w], %[w], 4\n\t"
        "bltu %[x0], %[end], 3b\n\t"
        "4:\n\t"
        "sw s0, 0(%[acc])\n\tsw s1, 4(%[acc])\n\t"
        "sw s2, 8(%[acc])\n\tsw s3, 12(%[acc])\n\t"
        "sw s4, 16(%[acc])\n\tsw s5, 20(%[acc])\n\t"
        "sw s6, 24(%[acc])\n\tsw s7, 28(%[acc])\n\t"
        "sw s8, 32(%[acc])\n\tsw s9, 36(%[acc])\n\t"
        "sw s10, 40(%[acc])\n\tsw s11, 44(%[acc])\n\t"
        : [x0] "+r"(x0), [x1] "+r"(x1), [x2] "+r"(x2), [w] "+r"(w)
        : [acc] "r"(acc), [end4] "r"(end4), [end] "r"(end)
        : "memory", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8",
          "s9", "s10", "s11", "t0", "t1", "t2", "t3", "t4", "t5");
}

/* acc[j] += sum_i x[i] * w[i * 4 + j] */
static void mac_1x4(int32_t *acc, const int8_t *x, const int8_t *w, int32_t n)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *end = x + n;
#define TD_STEP(o)                                                      \
    do {                                                                \
        const int32_t v = x[o];                                         \
        a0 += v * w[4 * (o)];                                           \
        a1 += v * w[4 * (o) + 1];                                       \
        a2 += v * w[4 * (o) + 2];                                       \
        a3 += v * w[4 * (o) + 3];                                       \
    } while (0)
    if (n & 1) {
        TD_STEP(0);
        x += 1; w += 4;
    }
    if (n & 2) {
        TD_STEP(0);
        TD_STEP(1);
        x += 2; w += 8;
    }
    while (x < end) {
        TD_STEP(0);
        TD_STEP(1);
        TD_STEP(2);
        TD_STEP(3);
        x += 4; w += 16;
    }
#undef TD_STEP
    acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
}

static void fill_s8(int8_t *dst, int32_t value, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        dst[i] = (int8_t)value;
    }
}

static void copy_s8(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i;
    if ((((uintptr_t)dst | (uintptr_t)src | (uint32_t)n) & 3u) == 0) {
        int32_t *d = (int32_t *)(void *)dst;
        const int32_t *q = (const int32_t *)(const void *)src;
        for (i = 0; i < n / 4; ++i) {
            d[i] = q[i];
        }
        return;
    }
    for (i = 0; i < n; ++i) {
        dst[i] = src[i];
    }
}

/* Gather the window of the output pixel whose top-left tap is (iy0, ix0)
 * into dst [k_h][k_w][in_c], padding taps = zero point. */
static void gather(const td_rv_conv_params *p, const int8_t *input, int iy0,
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
            fill_s8(dst, p->pad_value, row);
            continue;
        }
        fill_s8(dst, p->pad_value, kx0 * in_c);
        copy_s8(dst + kx0 * in_c,
                input + ((iy * p->in_w) + ix0 + kx0) * in_c,
                (kx1 - kx0) * in_c);
        fill_s8(dst + kx1 * in_c, p->pad_value, (p->k_w - kx1) * in_c);
    }
}

/* Element-wise add through the two 256-entry tables (index x + 128). */
static void add_tables(const td_rv_add_params *p, const int8_t *a,
                       const int8_t *b, int8_t *output, int32_t n)
{
    const int32_t *t1 = p->table1 + 128, *t2 = p->table2 + 128;
    const td_rv_rq q = p->rq;
    const int32_t lo = p->act_min, hi = p->act_max;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t sum = (int32_t)((uint32_t)t1[a[i]] + (uint32_t)t2[b[i]]);
        output[i] = (int8_t)rv_requant(sum, &q, lo, hi);
    }
}

void td_rv_add_s8(const td_rv_add_params *p, const int8_t *a, const int8_t *b,
                  int8_t *output)
{
    add_tables(p, a, b, output, p->size);
}

void td_rv_conv_s8(const td_rv_conv_params *p, const int8_t *input,
                   const int8_t *weights, int8_t *output, void *scratch,
                   const int8_t *residual)
{
    const int out_c = p->out_c, in_c = p->in_c;
    const int row = p->k_w * in_c, k_len = p->k_h * row;
    const int n_pix = p->out_h * p->out_w;
    const int in_row = p->in_w * in_c;
    const int backward = p->order == TD_RV_ORDER_BACKWARD;
    int8_t *gathered = (int8_t *)scratch;
    int8_t *results = gathered + ((TILE * k_len + 3) & ~3);
    int done;
    for (done = 0; done < n_pix; done += TILE) {
        const int8_t *xp[TILE];
        int rs[TILE];
        const int n = n_pix - done < TILE ? n_pix - done : TILE;
        const int pix0 = backward ? n_pix - done - n : done;
        int8_t *dst = p->order == TD_RV_ORDER_DIRECT ? output + pix0 * out_c : results;
        int all_gathered = 1, t, ob, oy = pix0 / p->out_w, ox = pix0 % p->out_w;
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
        for (; t < TILE; ++t) {
            xp[t] = xp[n - 1];
            rs[t] = rs[n - 1];
        }
        for (ob = 0; ob < out_c; ob += 4) {
            const int8_t *w = weights + ob * k_len;
            int32_t acc[4 * TILE];
            const int nc = out_c - ob < 4 ? out_c - ob : 4;
            int j, ky;
            for (j = 0; j < 4; ++j) {
                acc[j] = acc[4 + j] = acc[8 + j] = p->bias[ob + j];
            }
            if (n == 1) {
                if (rs[0] == row) {
                    mac_1x4(acc, xp[0], w, k_len);
                } else {
                    for (ky = 0; ky < p->k_h; ++ky) {
                        mac_1x4(acc, xp[0] + ky * rs[0], w + ky * row * 4, row);
                    }
                }
            } else if (all_gathered) {
                mac_3x4(acc, xp[0], xp[1], xp[2], w, k_len);
            } else {
                for (ky = 0; ky < p->k_h; ++ky) {
                    mac_3x4(acc, xp[0] + ky * rs[0], xp[1] + ky * rs[1],
                            xp[2] + ky * rs[2], w + ky * row * 4, row);
                }
            }
            for (j = 0; j < nc; ++j) {
                const td_rv_rq q = p->rq[ob + j];
                int8_t *o = dst + ob + j;
                for (t = 0; t < n; ++t, o += out_c) {
                    *o = (int8_t)rv_requant(acc[4 * t + j], &q, p->act_min, p->act_max);
                }
            }
        }
        if (p->add != NULL) {
            const int8_t *r = residual + pix0 * out_c;
            if (p->conv_is_input1) {
                add_tables(p->add, results, r, output + pix0 * out_c, n * out_c);
            } else {
                add_tables(p->add, r, results, output + pix0 * out_c, n * out_c);
            }
        } else if (p->order != TD_RV_ORDER_DIRECT) {
            copy_s8(output + pix0 * out_c, results, n * out_c);
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Depthwise convolution: channel by channel, the channel's weights and    */
/* requantization parameters in registers; interior 3x3 windows unrolled.  */
/* ---------------------------------------------------------------------- */

/* One output row [ox0, ox1) of channel c into out (stride C). */
static void dw_row(const td_rv_dw_params *p, const int8_t *input, const int8_t *w,
                   const td_rv_rq *q, int32_t bias, int c, int oy, int8_t *out)
{
    const int C = p->channels, k_h = p->k_h, k_w = p->k_w, R = p->in_w * C;
    const int iy0 = oy * p->stride_h - p->pad_top;
    const int rows_in = iy0 >= 0 && iy0 + k_h <= p->in_h;
    const int fast = k_h == 3 && k_w == 3;
    const int32_t w0 = w[0], w1 = fast ? w[1] : 0, w2 = fast ? w[2] : 0;
    const int32_t w3 = fast ? w[3] : 0, w4 = fast ? w[4] : 0, w5 = fast ? w[5] : 0;
    const int32_t w6 = fast ? w[6] : 0, w7 = fast ? w[7] : 0, w8 = fast ? w[8] : 0;
    const td_rv_rq rq = *q;
    int ox;
    for (ox = 0; ox < p->out_w; ++ox, out += C) {
        const int ix0 = ox * p->stride_w - p->pad_left;
        int32_t acc = bias;
        if (fast && rows_in && ix0 >= 0 && ix0 + 3 <= p->in_w) {
            const int8_t *x = input + (iy0 * p->in_w + ix0) * C + c;
            acc += w0 * x[0] + w1 * x[C] + w2 * x[2 * C];
            x += R;
            acc += w3 * x[0] + w4 * x[C] + w5 * x[2 * C];
            x += R;
            acc += w6 * x[0] + w7 * x[C] + w8 * x[2 * C];
        } else {
            int ky, kx;
            for (ky = 0; ky < k_h; ++ky) {
                const int iy = iy0 + ky;
                for (kx = 0; kx < k_w; ++kx) {
                    const int ix = ix0 + kx;
                    const int32_t v = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w
                                          ? input[(iy * p->in_w + ix) * C + c]
                                          : p->pad_value;
                    acc += w[ky * k_w + kx] * v;
                }
            }
        }
        *out = (int8_t)rv_requant(acc, &rq, p->act_min, p->act_max);
    }
}

void td_rv_depthwise_conv_s8(const td_rv_dw_params *p, const int8_t *input,
                             const int8_t *weights, int8_t *output,
                             void *scratch)
{
    const int C = p->channels, taps = p->k_h * p->k_w, out_row = p->out_w * C;
    int c, oy;
    if (p->order == TD_RV_ORDER_DIRECT) {
        for (c = 0; c < C; ++c) {
            for (oy = 0; oy < p->out_h; ++oy) {
                dw_row(p, input, weights + c * taps, &p->rq[c], p->bias[c], c, oy,
                       output + oy * out_row + c);
            }
        }
        return;
    }
    /* overlapping output: each output row is read completely, then written */
    for (oy = 0; oy < p->out_h; ++oy) {
        const int y = p->order == TD_RV_ORDER_BACKWARD ? p->out_h - 1 - oy : oy;
        int8_t *row = (int8_t *)scratch;
        for (c = 0; c < C; ++c) {
            dw_row(p, input, weights + c * taps, &p->rq[c], p->bias[c], c, y, row + c);
        }
        copy_s8(output + y * out_row, row, out_row);
    }
}
