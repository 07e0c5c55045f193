/* tinydeploy runtime: int8 kernel variants for RISC-V (rv32).
 *
 * Two families, chosen at code-generation time by tinydeploy/kernels_riscv.py
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
 * tiles of 3 (LMUL 8) or 6 (LMUL 4) read the input in place, border pixels
 * one at a time with the padding taps reading zp_row.  Pixels go in
 * increasing order (decreasing if backward) and every output value is
 * written after all the inputs it depends on were read, never before an
 * input of an earlier pixel (later if backward) is read; with `ordered` set a
 * tile is only used when its channels fit one vector block, which keeps
 * this true for an output that overlaps the input (tinydeploy/inplace.py). */
void td_rvv_conv_s8(const td_rvv_conv_params *p, const int8_t *input,
                    const int8_t *weights, int8_t *output,
                    const int8_t *residual);

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
    const int32_t *bias;  /* folded, [channels] */
    const td_rv_rq *rq;   /* [channels] */
} td_rv_dw_params;

/* Scalar: weights [channels][k_h * k_w].  No scratch.  Channel by channel
 * (weights in registers), or with `ordered` pixel by pixel in increasing
 * (decreasing if backward) order. */
void td_rv_depthwise_conv_s8(const td_rv_dw_params *p, const int8_t *input,
                             const int8_t *weights, int8_t *output);

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

#ifdef __cplusplus
}
#endif
#endif
