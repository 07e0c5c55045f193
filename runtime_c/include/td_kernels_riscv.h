/* tinydeploy runtime: int8 kernel variants for RISC-V (rv32).
 *
 * Two families, chosen at code-generation time by tinydeploy/backends/riscv.py
 * from the target's features:
 *   - td_rv_*  : scalar RV32IM kernels for cores without SIMD (ESP32-C3 ...):
 *                register-blocked multiply-accumulate, requantization with one
 *                MULH instead of 64-bit arithmetic;
 *   - td_rvv_* : RISC-V vector kernels (Zve32x or V, any VLEN >= 128 that is a
 *                power of two), written in inline assembly (GCC 12 has no
 *                vector intrinsics).  Vector length agnostic: strip-mined with
 *                vsetvli, so one binary runs at VLEN 128, 256, 512 ...
 * Both compute exactly what the portable kernels of td_kernels_s8.h compute
 * (TFLite int8 arithmetic, bit for bit).
 *
 * Common conventions (the generator prepares everything in flash):
 *  - weights are re-arranged in the order the inner loop reads them; the
 *    input zero point is folded into the bias:
 *        bias'[c] = bias[c] + input_offset * sum_k w[k][c]
 *    so padding taps read the input zero point (pad_value) and contribute 0;
 *  - requantization parameters are expanded per output channel;
 *  - no kernel needs scratch memory: padding taps read a zero-point row in
 *    flash, results are requantized from registers, so a variant never
 *    costs RAM;
 *  - outputs may overlap inputs (in-place execution planned by
 *    tinydeploy/inplace.py): `ordered`/`backward` make a kernel follow the
 *    pixel order that makes the overlap safe.
 * Source files: runtime_c/src/riscv/rv_scalar.c (td_rv_*),
 * runtime_c/src/riscv/rv_vector.c (td_rvv_*).
 */
#ifndef TD_KERNELS_RISCV_H
#define TD_KERNELS_RISCV_H

#include <stdint.h>

#include "td_kernels_s8.h" /* td_pool_s8_params */
#include "td_layer_norm_row.h" /* td_layer_norm_lanes_params */

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------- */
/* Convolution (2-D, groups = 1, dilation 1) and fully connected          */
/* (as a 1x1 convolution over rows)                                        */
/* ---------------------------------------------------------------------- */

/* Scalar requantization parameters of one output channel: TFLite's
 * MultiplyByQuantizedMultiplier(acc, mult, shift) + zero point as
 *     x = acc << lsh                   (lsh = max(shift, 0) + 1)
 *     y = mulh(x, mult) + (lo(x * mult) >> 31)       (SRDHM, exact)
 *     z = (y + hz + ((y >> 31) & nz)) >> rsh          (RDBPOT + zero point)
 * with rsh = max(-shift, 0), hz = round bias + (zero point << rsh),
 * nz = -1 if rsh > 0 else 0.  The generator checks that x cannot overflow. */
typedef struct {
    int32_t mult, lsh, rsh, hz, nz;
} td_rv_rq;

static inline int32_t td_rv_requant(int32_t acc, const td_rv_rq *q, int32_t lo,
                                    int32_t hi)
{
    const int32_t x = (int32_t)((uint32_t)acc << q->lsh);
    const int64_t prod = (int64_t)x * q->mult;
    const int32_t y = (int32_t)(prod >> 32) + (int32_t)((uint32_t)prod >> 31);
    /* arithmetic shifts of negative values, as everywhere in the runtime */
    /* cppcheck-suppress shiftTooManyBitsSigned */
    int32_t z = (y + q->hz + ((y >> 31) & q->nz)) >> q->rsh;
    if (z < lo) {
        z = lo;
    }
    if (z > hi) {
        z = hi;
    }
    return z;
}

typedef struct {
    int16_t in_h, in_w, in_c;
    int16_t out_h, out_w, out_c;
    int16_t k_h, k_w;
    int16_t stride_h, stride_w;
    int16_t pad_top, pad_left;
    int16_t ordered;      /* output overlaps the input: see td_rvv_conv_s8 */
    int16_t backward;     /* decreasing pixel order */
    int16_t conv_is_input1; /* with add: the conv result is the add's input 1 */
    int32_t act_min, act_max;
    const int8_t *zp_row; /* k_w * in_c bytes = the input zero point */
    const int32_t *bias;  /* folded, [out_c rounded up to 4] */
    const td_rv_rq *rq;   /* [out_c] */
    const struct td_rv_add_params *add; /* fused residual add, or NULL */
} td_rv_conv_params;

/* Scalar: weights [out_c / 4][k_h][k_w][in_c][4] (output channels padded to
 * a multiple of 4 with zeros).  No scratch; same pixel order as
 * td_rvv_conv_s8 (tiles of 3 pixels x 4 channels; with `ordered`, tiles
 * only if out_c <= 4).  With p->add: output = add(conv result, residual)
 * element by element (output may equal residual). */
void td_rv_conv_s8(const td_rv_conv_params *p, const int8_t *input,
                   const int8_t *weights, int8_t *output,
                   const int8_t *residual);

/* Vector requantization of one output channel (all fields per channel):
 * acc << left, vsmul (round-to-nearest-up = SRDHM), rounding divide by
 * 2^right with ties away from zero, + zero point, clamp. */
typedef struct {
    int16_t in_h, in_w, in_c;
    int16_t out_h, out_w, out_c;
    int16_t k_h, k_w;
    int16_t stride_h, stride_w;
    int16_t pad_top, pad_left;
    int16_t lmul;         /* 8: 3 pixels per pass, 4: 6 pixels per pass */
    int16_t flags;        /* bit 0: some left shift is non-zero */
    int16_t ordered;      /* output overlaps the input (see below) */
    int16_t backward;     /* decreasing pixel order */
    int16_t conv_is_input1;
    int32_t output_offset, act_min, act_max;
    const int8_t *zp_row; /* k_w * in_c bytes = the input zero point */
    const int32_t *bias;  /* folded, [out_c] */
    const int32_t *mult;  /* [out_c] */
    const int32_t *left;  /* [out_c] */
    const int32_t *right; /* [out_c] */
    const struct td_rvv_add_params *add; /* fused residual add, or NULL */
} td_rvv_conv_params;

/* Vector: weights [k_h][k_w][in_c][out_c].  No scratch: interior pixels in
 * tiles of 3 (LMUL 8) or 6 (LMUL 4) read the input in place (rows above or
 * below the image read zp_row), border pixels one at a time with the
 * padding taps reading zp_row.  Pixels go in increasing order (decreasing
 * if backward); every output value is written after all the inputs it
 * depends on were read and, with `ordered` (the output overlaps the input,
 * tinydeploy/inplace.py), never before an input of an earlier pixel (later
 * if backward) is read: a tile with several channel blocks that would write
 * into its own inputs goes pixel by pixel instead (a runtime check). */
void td_rvv_conv_s8(const td_rvv_conv_params *p, const int8_t *input,
                    const int8_t *weights, int8_t *output,
                    const int8_t *residual);

/* Vector, lanes over output pixels (layers with few output channels and
 * wide rows): weights [out_c / 3][k_h][k_w][in_c][3] (channels padded to a
 * multiple of 3 with zeros), strided input loads, one vwmacc.vx per
 * channel.  Segments of a row (up to one register group of pixels) in
 * increasing (decreasing if backward) order, channel triples likewise, each
 * written when done; with `ordered`, a segment that would write into its
 * own inputs goes pixel by pixel.  No scratch. */
typedef struct {
    int16_t in_h, in_w, in_c;
    int16_t out_h, out_w, out_c;
    int16_t k_h, k_w;
    int16_t stride_h, stride_w;
    int16_t pad_top, pad_left;
    int16_t ordered, backward;
    int32_t output_offset, act_min, act_max;
    const int8_t *zp_row; /* k_w * in_c bytes = the input zero point */
    const int32_t *bias;  /* folded, [out_c rounded up to 3] */
    const int32_t *mult;  /* [out_c] */
    const int32_t *shift; /* [out_c], TFLite convention */
} td_rvv_conv_px_params;

void td_rvv_conv_px_s8(const td_rvv_conv_px_params *p, const int8_t *input,
                       const int8_t *weights, int8_t *output);

/* ---------------------------------------------------------------------- */
/* Depthwise convolution (depth multiplier 1)                              */
/* ---------------------------------------------------------------------- */

typedef struct {
    int16_t in_h, in_w, channels;
    int16_t out_h, out_w;
    int16_t k_h, k_w;
    int16_t stride_h, stride_w;
    int16_t pad_top, pad_left;
    int16_t pad_value;
    int16_t ordered;      /* output overlaps the input: pixel by pixel */
    int16_t backward;     /* decreasing pixel order */
    int32_t act_min, act_max;
    const int8_t *zp_ch;  /* channels bytes = the input zero point */
    const int32_t *bias;  /* folded, [channels] */
    const td_rv_rq *rq;   /* [channels] */
} td_rv_dw_params;

/* Scalar: weights [channels][k_h * k_w] (at most TD_RV_DW_MAX_TAPS taps).
 * No scratch.  The generator instantiates td_rv_dw_body() per layer with
 * the channel count, input width and stride as constants (tap offsets become
 * load immediates).  Interior pixels channel by channel with the 3x3
 * weights in registers; with `ordered` (the output overlaps the input)
 * every pixel in pixel order, channels in increasing order (everything
 * decreasing if backward).  td_rv_dw_edge(): all channels of one pixel
 * whose window crosses the border (padding taps read zp_ch), in that
 * order. */
#define TD_RV_DW_MAX_TAPS 25
void td_rv_dw_edge(const td_rv_dw_params *p, const int8_t *input,
                   const int8_t *weights, int oy, int ox, int8_t *output);

#if defined(__GNUC__)
#define TD_RV_INLINE static inline __attribute__((always_inline))
#else
#define TD_RV_INLINE static inline
#endif

/* Helpers of rv_scalar.c, rv_vector.c and td_rv_dw_body (one copy; the
 * generator's twins are _interior and tile_overlaps in backends/riscv.py). */

/* Interior output columns [*lo, *hi): every tap inside the row; else the
 * empty range at out_w. */
TD_RV_INLINE void td_rv_interior(int in_w, int k_w, int stride, int pad, int out_w,
                                 int *lo, int *hi)
{
    int a = (pad + stride - 1) / stride;
    int b = in_w - k_w + pad >= 0 ? (in_w - k_w + pad) / stride + 1 : 0;
    if (b > out_w) {
        b = out_w;
    }
    if (a >= b) {
        a = b = out_w;
    }
    *lo = a;
    *hi = b;
}

/* Defines `static int NAME(const TYPE *p, input, output, oy, ox0, n)`: do n
 * interior output pixels from (oy, ox0) write any byte of the input span
 * their windows read (p: a conv parameter struct)?  A tile that writes a
 * channel block before it re-reads its inputs for the next must then go
 * pixel by pixel.  Callers test that only where it can happen (`ordered`:
 * the planned output overlaps the input; more than one channel block):
 * before the call, or as GUARD, evaluated after the span arithmetic (the
 * scalar kernel's form, kept so that its compiled code does not change). */
#define TD_RV_TILE_OVERLAPS(NAME, TYPE, GUARD)                                            \
    static int NAME(const TYPE *p, const int8_t *input, const int8_t *output, int oy,   \
                    int ox0, int n)                                                     \
    {                                                                                   \
        const int iy0 = oy * p->stride_h - p->pad_top;                                  \
        const intptr_t first =                                                          \
            (intptr_t)(iy0 * p->in_w + ox0 * p->stride_w - p->pad_left) * p->in_c;      \
        const intptr_t last = (intptr_t)((iy0 + p->k_h - 1) * p->in_w +                  \
                                         (ox0 + n - 1) * p->stride_w - p->pad_left +     \
                                         p->k_w) * p->in_c;                              \
        const intptr_t in_lo = (intptr_t)input + first, in_hi = (intptr_t)input + last; \
        const intptr_t out_lo = (intptr_t)(output + (oy * p->out_w + ox0) * p->out_c);  \
        const intptr_t out_hi = out_lo + (intptr_t)n * p->out_c;                        \
        return (GUARD) && out_lo < in_hi && in_lo < out_hi;                             \
    }

TD_RV_INLINE void td_rv_dw_body(const td_rv_dw_params *p, const int8_t *input,
                                const int8_t *weights, int8_t *output,
                                const int C, const int in_w, const int stride_w)
{
    const int R = in_w * C, sx = stride_w * C;
    const int fast = p->k_h == 3 && p->k_w == 3;
    const int32_t lo_act = p->act_min, hi_act = p->act_max;
    int lo = p->out_w, hi = p->out_w, c;
    if (fast) {
        td_rv_interior(in_w, 3, stride_w, p->pad_left, p->out_w, &lo, &hi);
    }
    if (!p->ordered) {
        int oy, ox;
        /* interior: channel by channel; then the border pixels */
        for (c = 0; c < C && lo < hi; ++c) {
            const int8_t *w = weights + c * 9;
            const td_rv_rq q = p->rq[c];
            const int32_t bias = p->bias[c];
            const int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4];
            const int32_t w5 = w[5], w6 = w[6], w7 = w[7], w8 = w[8];
            for (oy = 0; oy < p->out_h; ++oy) {
                const int iy0 = oy * p->stride_h - p->pad_top;
                const int8_t *x;
                int8_t *o;
                if (iy0 < 0 || iy0 + 3 > p->in_h) {
                    continue;
                }
                x = input + (iy0 * in_w + lo * stride_w - p->pad_left) * C + c;
                o = output + (oy * p->out_w + lo) * C + c;
                for (ox = lo; ox < hi; ++ox, x += sx, o += C) {
                    const int32_t acc = bias + w0 * x[0] + w1 * x[C] + w2 * x[2 * C] +
                                        w3 * x[R] + w4 * x[R + C] + w5 * x[R + 2 * C] +
                                        w6 * x[2 * R] + w7 * x[2 * R + C] + w8 * x[2 * R + 2 * C];
                    *o = (int8_t)td_rv_requant(acc, &q, lo_act, hi_act);
                }
            }
        }
        for (oy = 0; oy < p->out_h; ++oy) {
            const int iy0 = oy * p->stride_h - p->pad_top;
            const int row_in = fast && iy0 >= 0 && iy0 + 3 <= p->in_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                if (row_in && ox == lo && lo < hi) {
                    ox = hi - 1;
                    continue;
                }
                td_rv_dw_edge(p, input, weights, oy, ox, output);
            }
        }
        return;
    }
    /* overlapping output: pixel by pixel in unit order */
    {
        const int n_pix = p->out_h * p->out_w;
        int i, py = p->backward ? p->out_h - 1 : 0, px = p->backward ? p->out_w - 1 : 0;
        for (i = 0; i < n_pix; ++i) {
            const int pix = py * p->out_w + px;
            const int iy0 = py * p->stride_h - p->pad_top;
            int8_t *out = output + pix * C;
            if (fast && iy0 >= 0 && iy0 + 3 <= p->in_h && px >= lo && px < hi) {
                const int8_t *x = input + (iy0 * in_w + px * stride_w - p->pad_left) * C;
                const int step = p->backward ? -1 : 1;
                int k;
                c = p->backward ? C - 1 : 0;
                for (k = 0; k < C; ++k, c += step) {
                    const int8_t *xc = x + c, *w = weights + 9 * c;
                    const int32_t acc = p->bias[c] + w[0] * xc[0] + w[1] * xc[C] +
                                        w[2] * xc[2 * C] + w[3] * xc[R] + w[4] * xc[R + C] +
                                        w[5] * xc[R + 2 * C] + w[6] * xc[2 * R] +
                                        w[7] * xc[2 * R + C] + w[8] * xc[2 * R + 2 * C];
                    out[c] = (int8_t)td_rv_requant(acc, &p->rq[c], lo_act, hi_act);
                }
            } else {
                td_rv_dw_edge(p, input, weights, py, px, output);
            }
            if (p->backward) {  /* next pixel, without a division */
                if (--px < 0) {
                    px = p->out_w - 1;
                    --py;
                }
            } else if (++px == p->out_w) {
                px = 0;
                ++py;
            }
        }
    }
}

typedef struct {
    int16_t in_h, in_w, channels;
    int16_t out_h, out_w;
    int16_t k_h, k_w;
    int16_t stride_h, stride_w;
    int16_t pad_top, pad_left;
    int16_t pad_value;
    int16_t tile;         /* elements of the tiled vectors below (multiple of channels) */
    int16_t flags;        /* bit 0: some left shift is non-zero */
    int16_t backward;     /* rows (and blocks) in decreasing order */
    int32_t output_offset, act_min, act_max;
    const int32_t *bias;  /* [tile]: channel j % channels */
    const int32_t *mult;  /* [tile] */
    const int32_t *left;  /* [tile] */
    const int32_t *right; /* [tile] */
    const uint16_t *index;/* [tile]: (j / channels) * stride_w * channels + j % channels */
} td_rvv_dw_params;

/* Vector: weights int16 [k_h][k_w][tile] (channel j % channels).  No
 * scratch: vectors span whole pixels of an output row (tile / channels
 * pixels), padding taps add zero point * weight; rows and blocks in
 * increasing (decreasing if backward) order, each block written after its
 * inputs were read. */
void td_rvv_depthwise_conv_s8(const td_rvv_dw_params *p, const int8_t *input,
                              const int16_t *weights, int8_t *output);

/* ---------------------------------------------------------------------- */
/* Element-wise add of two same-shape tensors (TFLite int8 Add)            */
/* ---------------------------------------------------------------------- */

/* Scalar: table1/table2 hold the rescaled inputs for every int8 value
 * (index x + 128), computed by the generator; the output is rq applied to
 * their sum.  Output may equal an input. */
typedef struct td_rv_add_params {
    int32_t size;
    int32_t act_min, act_max;
    const int32_t *table1, *table2;   /* [256] */
    td_rv_rq rq;
} td_rv_add_params;

void td_rv_add_s8(const td_rv_add_params *p, const int8_t *a, const int8_t *b,
                  int8_t *output);

/* Vector: TFLite's parameters, computed in int32 lanes. */
typedef struct td_rvv_add_params {
    int32_t size;
    int32_t input1_offset, input2_offset, output_offset;
    int32_t left_shift;
    int32_t input1_multiplier, input1_shift;
    int32_t input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
} td_rvv_add_params;

void td_rvv_add_s8(const td_rvv_add_params *p, const int8_t *a,
                   const int8_t *b, int8_t *output);

/* ---------------------------------------------------------------------- */
/* Pooling: the portable td_pool_s8_params (td_kernels_s8.h), lanes over   */
/* channels; average: TFLite's rounding with a vector division.            */
/* ---------------------------------------------------------------------- */

void td_rvv_max_pool_s8(const td_pool_s8_params *p, const int8_t *input,
                        int8_t *output);
void td_rvv_avg_pool_s8(const td_pool_s8_params *p, const int8_t *input,
                        int8_t *output);

/* ---------------------------------------------------------------------- */
/* Layer normalization in vector lanes (riscv/rvv_layer_norm_s8.c)          */
/* ---------------------------------------------------------------------- */
/* td_layer_norm_s8's arithmetic, bit for bit, in vector lanes (the
 * parameters: td_layer_norm_row.h).  Output may equal input. */
void td_rvv_layer_norm_s8(const td_layer_norm_lanes_params *p, const int8_t *input,
                          int8_t *output);

#ifdef __cplusplus
}
#endif
#endif
