/* Scalar RV32IM int8 kernels (cores without SIMD, e.g. ESP32-C3).
 *
 * Convolution: output pixels in tiles of 3, output channels in blocks of 4:
 * 12 accumulators stay in registers while the inner loop loads 4 weights
 * and 3 input bytes per step (7 loads for 12 multiply-accumulates).
 * Interior pixels are read in place; padding taps read a zero-point row
 * (the input offset is folded into the bias), so the inner loop never tests
 * bounds.  Requantization uses one MULH (no 64-bit arithmetic), exact under
 * the bounds the generator checks (see td_rv_rq).  The depthwise body is
 * td_rv_dw_body() in the header, instantiated per layer with constant
 * shapes; td_rv_dw_edge() here computes its border pixels. */
#include <stddef.h>

#include "td_kernels_s8.h"
#include "td_kernels_riscv.h"

#define TILE 3

#define rv_requant td_rv_requant

/* One step of the 3-pixel x 4-channel block at byte offset o of the rows
 * (weights at 4 * o): 7 loads, 12 multiplies, 12 adds.  Accumulators
 * ra, s1-s11 (s0 stays free: it is the frame pointer at -O0), weights
 * t0-t3, input byte t4, product t5. */
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
    TD_MAC34_ROW("t4", "ra", "s1", "s2", "s3")                              \
    "lb t4, " #o "(%[x1])\n\t"                                              \
    TD_MAC34_ROW("t4", "s4", "s5", "s6", "s7")                              \
    "lb t4, " #o "(%[x2])\n\t"                                              \
    TD_MAC34_ROW("t4", "s8", "s9", "s10", "s11")

/* One asm statement longer than the 4095 characters ISO C99 promises for a
 * string literal (clang -Wpedantic says so): fine for GCC and clang. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverlength-strings"
/* acc[p * 4 + j] += sum over `rows` rows of n bytes (rows `stride` bytes
 * apart) of x_p[i] * w[i * 4 + j]; the weights continue row after row. */
static void mac_3x4(int32_t *acc, const int8_t *x0, const int8_t *x1,
                    const int8_t *x2, const int8_t *w, int32_t n,
                    int32_t stride, int32_t rows)
{
    const int32_t skip = stride - n;
    __asm__ volatile(
        "lw ra, 0(%[acc])\n\tlw s1, 4(%[acc])\n\t"
        "lw s2, 8(%[acc])\n\tlw s3, 12(%[acc])\n\t"
        "lw s4, 16(%[acc])\n\tlw s5, 20(%[acc])\n\t"
        "lw s6, 24(%[acc])\n\tlw s7, 28(%[acc])\n\t"
        "lw s8, 32(%[acc])\n\tlw s9, 36(%[acc])\n\t"
        "lw s10, 40(%[acc])\n\tlw s11, 44(%[acc])\n\t"
        "5:\n\t"
        "andi t6, %[n], -8\n\t"
        "add t6, t6, %[x0]\n\t"
        "bgeu %[x0], t6, 6f\n\t"
        "1:\n\t"
        TD_MAC34(0) TD_MAC34(1) TD_MAC34(2) TD_MAC34(3)
        TD_MAC34(4) TD_MAC34(5) TD_MAC34(6) TD_MAC34(7)
        "addi %[x0], %[x0], 8\n\t"
        "addi %[x1], %[x1], 8\n\t"
        "addi %[x2], %[x2], 8\n\t"
        "addi %[w], %[w], 32\n\t"
        "bltu %[x0], t6, 1b\n\t"
        "6:\n\t"
        "andi t6, %[n], 4\n\t"
        "beqz t6, 2f\n\t"
        TD_MAC34(0) TD_MAC34(1) TD_MAC34(2) TD_MAC34(3)
        "addi %[x0], %[x0], 4\n\t"
        "addi %[x1], %[x1], 4\n\t"
        "addi %[x2], %[x2], 4\n\t"
        "addi %[w], %[w], 16\n\t"
        "2:\n\t"
        "andi t6, %[n], 3\n\t"
        "add t6, t6, %[x0]\n\t"
        "bgeu %[x0], t6, 4f\n\t"
        "3:\n\t"
        TD_MAC34(0)
        "addi %[x0], %[x0], 1\n\t"
        "addi %[x1], %[x1], 1\n\t"
        "addi %[x2], %[x2], 1\n\t"
        "addi %[w], %[w], 4\n\t"
        "bltu %[x0], t6, 3b\n\t"
        "4:\n\t"
        "add %[x0], %[x0], %[skip]\n\t"
        "add %[x1], %[x1], %[skip]\n\t"
        "add %[x2], %[x2], %[skip]\n\t"
        "addi %[rows], %[rows], -1\n\t"
        "bnez %[rows], 5b\n\t"
        "sw ra, 0(%[acc])\n\tsw s1, 4(%[acc])\n\t"
        "sw s2, 8(%[acc])\n\tsw s3, 12(%[acc])\n\t"
        "sw s4, 16(%[acc])\n\tsw s5, 20(%[acc])\n\t"
        "sw s6, 24(%[acc])\n\tsw s7, 28(%[acc])\n\t"
        "sw s8, 32(%[acc])\n\tsw s9, 36(%[acc])\n\t"
        "sw s10, 40(%[acc])\n\tsw s11, 44(%[acc])\n\t"
        : [x0] "+r"(x0), [x1] "+r"(x1), [x2] "+r"(x2), [w] "+r"(w),
          [rows] "+r"(rows)
        : [acc] "r"(acc), [n] "r"(n), [skip] "r"(skip)
        : "memory", "ra", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8",
          "s9", "s10", "s11", "t0", "t1", "t2", "t3", "t4", "t5", "t6");
}
#pragma GCC diagnostic pop

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

/* Store the requantized accumulators acc[t * 4 + j] of n pixels x nc
 * channels (channel ob...), or their sum with the residual. */
static void store_block(const td_rv_conv_params *p, const int32_t *acc, int n,
                        int ob, int nc, int8_t *out, const int8_t *res)
{
    const int out_c = p->out_c;
    const int32_t lo = p->act_min, hi = p->act_max;
    int t, j;
    if (p->add == NULL) {
        for (j = 0; j < nc; ++j) {
            const td_rv_rq q = p->rq[ob + j];
            for (t = 0; t < n; ++t) {
                out[t * out_c + j] = (int8_t)rv_requant(acc[4 * t + j], &q, lo, hi);
            }
        }
        return;
    }
    {
        const td_rv_add_params *a = p->add;
        const int32_t *tc = (p->conv_is_input1 ? a->table1 : a->table2) + 128;
        const int32_t *tr = (p->conv_is_input1 ? a->table2 : a->table1) + 128;
        const td_rv_rq qa = a->rq;
        for (j = 0; j < nc; ++j) {
            const td_rv_rq q = p->rq[ob + j];
            for (t = 0; t < n; ++t) {
                const int32_t c = rv_requant(acc[4 * t + j], &q, lo, hi);
                const int32_t sum = (int32_t)((uint32_t)tc[c] + (uint32_t)tr[res[t * out_c + j]]);
                out[t * out_c + j] = (int8_t)rv_requant(sum, &qa, a->act_min, a->act_max);
            }
        }
    }
}

/* One output pixel, 4 channels after 4 (decreasing when backward); padding
 * taps read the zero point row. */
static void conv_pixel(const td_rv_conv_params *p, const int8_t *input,
                       const int8_t *weights, int oy, int ox, int8_t *output,
                       const int8_t *residual)
{
    const int out_c = p->out_c, in_c = p->in_c, row = p->k_w * in_c;
    const int k_len = p->k_h * row, nb = (out_c + 3) / 4;
    const int iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    const int at = (oy * p->out_w + ox) * out_c;
    int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = p->in_w - ix0 < p->k_w ? p->in_w - ix0 : p->k_w;
    int i;
    if (kx1 < kx0) {
        kx1 = kx0;
    }
    for (i = 0; i < nb; ++i) {
        const int ob = (p->backward ? nb - 1 - i : i) * 4;
        const int8_t *wb = weights + ob * k_len;
        int32_t acc[4];
        int ky;
        acc[0] = p->bias[ob];
        acc[1] = p->bias[ob + 1];
        acc[2] = p->bias[ob + 2];
        acc[3] = p->bias[ob + 3];
        for (ky = 0; ky < p->k_h; ++ky) {
            const int iy = iy0 + ky;
            const int8_t *w = wb + ky * row * 4;
            if (iy < 0 || iy >= p->in_h) {
                mac_1x4(acc, p->zp_row, w, row);
                continue;
            }
            mac_1x4(acc, p->zp_row, w, kx0 * in_c);
            mac_1x4(acc, input + (iy * p->in_w + ix0 + kx0) * in_c, w + kx0 * in_c * 4,
                    (kx1 - kx0) * in_c);
            mac_1x4(acc, p->zp_row, w + kx1 * in_c * 4, (p->k_w - kx1) * in_c);
        }
        store_block(p, acc, 1, ob, out_c - ob < 4 ? out_c - ob : 4, output + at + ob,
                    p->add != NULL ? residual + at + ob : NULL);
    }
}

/* n <= 3 interior pixels (ox0...) of row oy, 4 channels after 4, each block
 * written when done. */
static void conv_tile(const td_rv_conv_params *p, const int8_t *input,
                      const int8_t *weights, int oy, int ox0, int n,
                      int8_t *output, const int8_t *residual)
{
    const int out_c = p->out_c, in_c = p->in_c, row = p->k_w * in_c;
    const int k_len = p->k_h * row, in_row = p->in_w * in_c;
    const int iy0 = oy * p->stride_h - p->pad_top;
    const int at = (oy * p->out_w + ox0) * out_c;
    const int8_t *xp[TILE];
    int t, ob;
    for (t = 0; t < TILE; ++t) {
        const int ox = ox0 + (t < n ? t : n - 1);
        xp[t] = input + (iy0 * p->in_w + ox * p->stride_w - p->pad_left) * in_c;
    }
    for (ob = 0; ob < out_c; ob += 4) {
        const int8_t *w = weights + ob * k_len;
        int32_t acc[4 * TILE];
        int j;
        for (j = 0; j < 4; ++j) {
            acc[j] = acc[4 + j] = acc[8 + j] = p->bias[ob + j];
        }
        if (iy0 >= 0 && iy0 + p->k_h <= p->in_h) {
            mac_3x4(acc, xp[0], xp[1], xp[2], w, row, in_row, p->k_h);
        } else {  /* rows above or below the image read the zero point row */
            int ky;
            for (ky = 0; ky < p->k_h; ++ky) {
                const int iy = iy0 + ky;
                if (iy < 0 || iy >= p->in_h) {
                    mac_3x4(acc, p->zp_row, p->zp_row, p->zp_row, w + ky * row * 4, row, row, 1);
                } else {
                    mac_3x4(acc, xp[0] + ky * in_row, xp[1] + ky * in_row, xp[2] + ky * in_row,
                            w + ky * row * 4, row, in_row, 1);
                }
            }
        }
        store_block(p, acc, n, ob, out_c - ob < 4 ? out_c - ob : 4, output + at + ob,
                    p->add != NULL ? residual + at + ob : NULL);
    }
}

/* A tile writes each 4-channel block before re-reading its inputs for the
 * next: with an overlapping output it must not write into its own inputs. */
TD_RV_TILE_OVERLAPS(tile_clobbers_inputs, td_rv_conv_params, p->ordered && p->out_c > 4)

static void conv_run(const td_rv_conv_params *p, const int8_t *input,
                     const int8_t *weights, int oy, int ox, int n, int8_t *output,
                     const int8_t *residual)
{
    int t;
    if (n > 1 && !tile_clobbers_inputs(p, input, output, oy, ox, n)) {
        conv_tile(p, input, weights, oy, ox, n, output, residual);
        return;
    }
    for (t = 0; t < n; ++t) {
        conv_pixel(p, input, weights, oy, p->backward ? ox + n - 1 - t : ox + t, output, residual);
    }
}

void td_rv_conv_s8(const td_rv_conv_params *p, const int8_t *input,
                   const int8_t *weights, int8_t *output,
                   const int8_t *residual)
{
    int y;
    for (y = 0; y < p->out_h; ++y) {
        const int oy = p->backward ? p->out_h - 1 - y : y;
        int lo, hi, ox;
        td_rv_interior(p->in_w, p->k_w, p->stride_w, p->pad_left, p->out_w, &lo, &hi);
        if (!p->backward) {
            for (ox = 0; ox < lo; ++ox) {
                conv_pixel(p, input, weights, oy, ox, output, residual);
            }
            for (ox = lo; ox < hi; ox += TILE) {
                conv_run(p, input, weights, oy, ox, hi - ox < TILE ? hi - ox : TILE, output,
                         residual);
            }
            for (ox = hi; ox < p->out_w; ++ox) {
                conv_pixel(p, input, weights, oy, ox, output, residual);
            }
        } else {
            int end;
            for (ox = p->out_w - 1; ox >= hi; --ox) {
                conv_pixel(p, input, weights, oy, ox, output, residual);
            }
            for (end = hi; end > lo; end -= TILE) {
                const int start = end - TILE > lo ? end - TILE : lo;
                conv_run(p, input, weights, oy, start, end - start, output, residual);
            }
            for (ox = lo - 1; ox >= 0; --ox) {
                conv_pixel(p, input, weights, oy, ox, output, residual);
            }
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Depthwise convolution: channel by channel, the channel's weights and    */
/* requantization parameters in registers; interior 3x3 windows unrolled.  */
/* ---------------------------------------------------------------------- */

void td_rv_dw_edge(const td_rv_dw_params *p, const int8_t *input,
                   const int8_t *weights, int oy, int ox, int8_t *output)
{
    const int C = p->channels, k_h = p->k_h, k_w = p->k_w, taps = k_h * k_w;
    const int iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    const int8_t *tp[TD_RV_DW_MAX_TAPS];
    int8_t *out = output + (oy * p->out_w + ox) * C;
    int ky, kx, k, t;
    for (ky = 0; ky < k_h; ++ky) {
        const int iy = iy0 + ky;
        for (kx = 0; kx < k_w; ++kx) {
            const int ix = ix0 + kx;
            tp[ky * k_w + kx] = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w
                                    ? input + (iy * p->in_w + ix) * C
                                    : p->zp_ch;
        }
    }
    for (k = 0; k < C; ++k) {
        const int c = p->backward ? C - 1 - k : k;
        const int8_t *w = weights + c * taps;
        int32_t acc = p->bias[c];
        if (taps == 9) {
            acc += w[0] * tp[0][c] + w[1] * tp[1][c] + w[2] * tp[2][c] + w[3] * tp[3][c] +
                   w[4] * tp[4][c] + w[5] * tp[5][c] + w[6] * tp[6][c] + w[7] * tp[7][c] +
                   w[8] * tp[8][c];
        } else {
            for (t = 0; t < taps; ++t) {
                acc += w[t] * tp[t][c];
            }
        }
        out[c] = (int8_t)td_rv_requant(acc, &p->rq[c], p->act_min, p->act_max);
    }
}
