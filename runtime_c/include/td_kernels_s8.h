/* tinydeploy runtime: int8 kernel API (portable C99).
 *
 * Arithmetic: the TFLite int8 specification exactly as TensorFlow Lite
 * Micro's reference kernels compute it (double-rounding requantization),
 * so results are bit-exact with TFLite Micro, CMSIS-NN and the numpy golden
 * kernels in tinydeploy/golden_kernels.py.  Every integer parameter below is
 * produced by tinydeploy/qmath.py (its *_params helpers return dicts whose
 * keys are these struct field names).
 *
 * Conventions shared by every kernel:
 *  - activations are dense, row-major, NHWC (batch is 1 and omitted);
 *  - parameter structs are const and meant to live in flash;
 *  - *_offset fields are added to raw values: input_offset = -input_zero_point,
 *    output_offset = +output_zero_point;
 *  - a multiplier/shift pair means real ~= multiplier * 2^(shift - 31)
 *    (shift > 0 is a left shift); applied with td_mbqm() below;
 *  - act_min/act_max clamp the int8 result (fused ReLU/ReLU6/Clip);
 *  - no malloc, no stdio, no static state, no scratch memory; kernels never
 *    touch memory outside the given buffers.  Element-wise kernels (add, mul,
 *    softmax, the activations, requantize, lut) may run in place
 *    (output == input).
 *  - assumes two's-complement int32 and arithmetic right shift of negative
 *    values (true for GCC/Clang/Arm compilers), as TFLite and CMSIS-NN do.
 *
 * Source files (runtime_c/src/s8/): conv_s8.c (td_conv2d_s8,
 * td_depthwise_conv2d_s8), conv_transpose_s8.c, fully_connected_s8.c,
 * binary_s8.c (add, mul), pool_s8.c (max/avg pool, mean),
 * resize_bilinear_s8.c, softmax_s8.c, activation_s8.c (sigmoid, tanh,
 * hardswish, leaky_relu, requantize, lut), shape_s8.c (concat, pad,
 * transpose).  Each file needs only this header (conv_transpose_s8.c also
 * the inline td_conv_transpose_taps.h, shared with the float kernel).
 */
#ifndef TD_KERNELS_S8_H
#define TD_KERNELS_S8_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef TD_MAX_DIMS
#define TD_MAX_DIMS 6
#endif

/* ---------------------------------------------------------------------- */
/* Fixed-point primitives (TFLite / gemmlowp), shared with the optimized   */
/* kernel variants so that every variant rounds identically.               */
/* ---------------------------------------------------------------------- */

/* Wrapping int32 shift-left (the TFLite code relies on the wrap). */
static inline int32_t td_shl_wrap(int32_t x, int n)
{
    return (int32_t)((uint32_t)x << n);
}

/* SaturatingRoundingDoublingHighMul: round(a * b / 2^31), ties away from 0. */
static inline int32_t td_srdhm(int32_t a, int32_t b)
{
    int64_t ab, v;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    v = ab + (ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30)));
    /* v / 2^31 truncating toward zero, without a 64-bit division */
    return (int32_t)(v >= 0 ? (v >> 31) : -((-v) >> 31));
}

/* RoundingDivideByPOT: x / 2^e rounded to nearest, ties away from zero. */
static inline int32_t td_rdbpot(int32_t x, int e)
{
    const int32_t mask = (int32_t)(((int64_t)1 << e) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (remainder > threshold ? 1 : 0);
}

/* MultiplyByQuantizedMultiplier (TFLite, double rounding). */
static inline int32_t td_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    const int left = shift > 0 ? (int)shift : 0;
    const int right = shift > 0 ? 0 : (int)-shift;
    return td_rdbpot(td_srdhm(td_shl_wrap(x, left), multiplier), right);
}

static inline int32_t td_clamp_s32(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* gemmlowp fixed point (Qm.n in int32, m integer bits): used by softmax,
 * sigmoid and tanh.  Saturating x * 2^n, n in [1, 30]. */
static inline int32_t td_fp_sat_shl(int32_t x, int n)
{
    const int32_t limit = (int32_t)((1u << (31 - n)) - 1u);
    if (x > limit) {
        return INT32_MAX;
    }
    return x < -limit ? INT32_MIN : td_shl_wrap(x, n);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out (Taylor around -1/8). */
static inline int32_t td_fp_exp_quarter(int32_t a)
{
    const int32_t exp_m1_8 = 1895147668, one_third = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = td_srdhm(x, x);
    const int32_t x3 = td_srdhm(x2, x);
    const int32_t x4 = td_srdhm(x2, x2);
    const int32_t poly =
        td_rdbpot(td_srdhm(td_rdbpot(x4, 2) + x3, one_third) + x2, 1);
    return exp_m1_8 + td_srdhm(exp_m1_8, x + poly);
}

/* exp(a) for a <= 0 in Q(int_bits), int_bits <= 5; result Q0.31. */
static inline int32_t td_fp_exp_neg(int32_t a, int int_bits)
{
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084,
                                      290630308, 39332535, 720401, 242};
    const int frac = 31 - int_bits;
    const int32_t quarter = (int32_t)1 << (frac - 2);
    const int32_t a_mod = (a & (quarter - 1)) - quarter;
    const int32_t remainder = a_mod - a;
    int32_t result = td_fp_exp_quarter(td_fp_sat_shl(a_mod, int_bits));
    int k;
    for (k = 0; k < 7 && k - 2 < int_bits; ++k) {
        if (remainder & ((int32_t)1 << (frac + k - 2))) {
            result = td_srdhm(result, barrel[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* Newton-Raphson core of 1/(1+a) for a in [0, 1) (Q0.31); result Q2.29. */
static inline int32_t td_fp_newton(int32_t a)
{
    const int64_t s = (int64_t)a + INT32_MAX;
    const int32_t half_den = (int32_t)((s + (s >= 0 ? 1 : -1)) / 2);
    int32_t x = 1515870810 + td_srdhm(half_den, -1010580540);
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t one_minus = (1 << 29) - td_srdhm(half_den, x);
        x += td_fp_sat_shl(td_srdhm(x, one_minus), 2);
    }
    return x;
}

/* Leading zero bits of x (32 for 0): the softmax sums' headroom. */
static inline int td_clz32(uint32_t x)
{
#if defined(__GNUC__)
    return x ? __builtin_clz(x) : 32;
#else
    int n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
#endif
}

static inline int32_t td_fp_one_over_one_plus_x(int32_t a)
{
    return td_fp_sat_shl(td_fp_newton(a), 1);
}

static inline int32_t td_fp_one_minus_x_over_one_plus_x(int32_t a)
{
    return td_fp_sat_shl(td_fp_newton(a) - (1 << 29), 2);
}

/* ---------------------------------------------------------------------- */
/* Convolution                                                             */
/* ---------------------------------------------------------------------- */

/* Shared by td_conv2d_s8 and td_depthwise_conv2d_s8.
 * Input [in_h][in_w][in_c], output [out_h][out_w][out_c].  pad_top/pad_left
 * are the padding before the first row/column; the bottom/right padding is
 * implied by out_h/out_w.  Padding taps contribute nothing (as in TFLite).
 * multiplier/shift have out_c entries (per_channel = 1) or one entry
 * (per_channel = 0).  bias: int32 [out_c] or NULL.
 * For td_depthwise_conv2d_s8, groups must equal in_c and out_c is a multiple
 * of in_c (depth multiplier out_c / in_c). */
typedef struct {
    int16_t in_h, in_w, in_c;
    int16_t out_h, out_w, out_c;
    int16_t k_h, k_w;
    int16_t stride_h, stride_w;
    int16_t dil_h, dil_w;
    int16_t pad_top, pad_left;
    int16_t groups;
    int16_t per_channel;
    int32_t input_offset;      /* -input zero point */
    int32_t output_offset;     /* +output zero point */
    int32_t act_min, act_max;
    const int32_t *multiplier;
    const int8_t *shift;       /* -31 .. 31 (TFLite convention) */
} td_conv_s8_params;

/* Kernel taps [*lo, *hi) with 0 <= origin + k * dil < size, k in [0, k_n)
 * (shared by the convolution kernels and their in-place versions). */
static inline void td_valid_taps(int origin, int dil, int k_n, int size, int *lo, int *hi)
{
    int a = 0, b = k_n;
    if (origin < 0) {
        a = (-origin + dil - 1) / dil;
    }
    if (origin + (k_n - 1) * dil >= size) {
        b = size - origin > 0 ? (size - origin + dil - 1) / dil : 0;
    }
    *lo = a;
    *hi = b > a ? b : a;
}

/* A convolution's int32 sum for output channel oc, requantized to int8. */
static inline int8_t td_conv_requant(const td_conv_s8_params *p, int32_t acc, int oc)
{
    const int i = p->per_channel ? oc : 0;
    const int32_t v = td_mbqm(acc, p->multiplier[i], p->shift[i]) + p->output_offset;
    return (int8_t)td_clamp_s32(v, p->act_min, p->act_max);
}

/* General (grouped) convolution.  Weights [out_c][k_h][k_w][in_c / groups];
 * output channel oc reads input channels of group oc / (out_c / groups). */
void td_conv2d_s8(const td_conv_s8_params *p, const int8_t *input,
                  const int8_t *weights, const int32_t *bias, int8_t *output);

/* Depthwise convolution, TFLite weight layout [k_h][k_w][out_c]; output
 * channel oc reads input channel oc / (out_c / in_c). */
void td_depthwise_conv2d_s8(const td_conv_s8_params *p, const int8_t *input,
                            const int8_t *weights, const int32_t *bias,
                            int8_t *output);

/* Transposed convolution (ONNX ConvTranspose; TFLite TRANSPOSE_CONV
 * arithmetic, extended with groups and dilation).  Output pixel (oy, ox) of
 * channel oc sums (x + input_offset) * w over the taps (ky, kx) whose input
 * position iy = (oy + pad_top - ky * dil_h) / stride_h (ix likewise) is a
 * whole number inside the input, then adds bias and requantizes per channel
 * like td_conv2d_s8.  pad_top/pad_left are ONNX's leading pads; output rows
 * no tap reaches (output_padding) get the bias only.  Weights
 * [out_c][k_h][k_w][in_c / groups]; output channel oc reads the input
 * channels of group oc / (out_c / groups).  bias: int32 [out_c] or NULL. */
typedef struct {
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dil_h, dil_w;
    int32_t pad_top, pad_left;
    int32_t groups;
    int32_t per_channel;
    int32_t input_offset;      /* -input zero point */
    int32_t output_offset;     /* +output zero point */
    int32_t act_min, act_max;
    const int32_t *multiplier;
    const int32_t *shift;
} td_conv_transpose_s8_params;

void td_conv_transpose_s8(const td_conv_transpose_s8_params *p,
                          const int8_t *input, const int8_t *weights,
                          const int32_t *bias, int8_t *output);

/* Fully connected: output[r][o] = requant(sum_i w[o][i] * (in[r][i] +
 * input_offset) + bias[o]) for r in [0, rows).  Weights [out_features]
 * [in_features]; bias may be NULL; multiplier/shift as for convolution. */
typedef struct {
    int32_t rows, in_features, out_features;
    int32_t per_channel;
    int32_t input_offset, output_offset;
    int32_t act_min, act_max;
    const int32_t *multiplier;
    const int32_t *shift;
} td_fc_s8_params;

void td_fully_connected_s8(const td_fc_s8_params *p, const int8_t *input,
                           const int8_t *weights, const int32_t *bias,
                           int8_t *output);

/* ---------------------------------------------------------------------- */
/* Element-wise binary ops with NumPy broadcasting (up to TD_MAX_DIMS)     */
/* ---------------------------------------------------------------------- */

/* Output index (o_0..o_5) reads a[sum o_d * a_strides[d]] and likewise b;
 * a stride of 0 broadcasts.  Shapes are left-padded with 1.  In place is
 * allowed when the output aliases an input that is not broadcast. */
typedef struct {
    int32_t out_shape[TD_MAX_DIMS];
    int32_t a_strides[TD_MAX_DIMS];   /* in elements */
    int32_t b_strides[TD_MAX_DIMS];
    int32_t input1_offset, input2_offset, output_offset;
    int32_t left_shift;               /* 20 for int8 */
    int32_t input1_multiplier, input1_shift;
    int32_t input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
} td_add_s8_params;

void td_add_s8(const td_add_s8_params *p, const int8_t *a, const int8_t *b,
               int8_t *output);

/* Max (is_max = 1) or Min of two inputs that share the output's scale and
 * zero point (minmax_s8.c), then the activation clamp. */
typedef struct {
    int32_t out_shape[TD_MAX_DIMS];
    int32_t a_strides[TD_MAX_DIMS];
    int32_t b_strides[TD_MAX_DIMS];
    int32_t is_max;
    int32_t act_min, act_max;
} td_minmax_s8_params;

void td_minmax_s8(const td_minmax_s8_params *p, const int8_t *a,
                  const int8_t *b, int8_t *output);

typedef struct {
    int32_t out_shape[TD_MAX_DIMS];
    int32_t a_strides[TD_MAX_DIMS];
    int32_t b_strides[TD_MAX_DIMS];
    int32_t input1_offset, input2_offset, output_offset;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
} td_mul_s8_params;

void td_mul_s8(const td_mul_s8_params *p, const int8_t *a, const int8_t *b,
               int8_t *output);

/* ---------------------------------------------------------------------- */
/* Pooling and mean                                                        */
/* ---------------------------------------------------------------------- */

/* Input and output share scale and zero point (TFLite requires it).
 * Average pool divides the window sum by the number of valid cells with
 * TFLite's rounding (half away from zero); with count_include_pad = 1 the
 * padding cells count as zero_point values and the divisor is k_h * k_w.
 * A window without valid cells yields act_min-clamped -128 (max) / 0 (avg).
 * Tap (ky, kx) of output (oy, ox) reads input row oy * stride_h - pad_top +
 * ky * dil_h (ONNX dilated pooling; TFLite's pools have dil 1). */
typedef struct {
    int16_t in_h, in_w, channels;
    int16_t out_h, out_w;
    int16_t k_h, k_w;
    int16_t stride_h, stride_w;
    int16_t dil_h, dil_w;
    int16_t pad_top, pad_left;
    int16_t count_include_pad;
    int32_t zero_point;
    int32_t act_min, act_max;
} td_pool_s8_params;

void td_max_pool_s8(const td_pool_s8_params *p, const int8_t *input,
                    int8_t *output);
void td_avg_pool_s8(const td_pool_s8_params *p, const int8_t *input,
                    int8_t *output);

/* Mean over the middle axis of input viewed as [outer][reduce][inner]
 * (global average pool over NHWC: outer 1, reduce H*W, inner C), as TFLite's
 * Mean: multiplier/shift already include the 1/reduce factor. */
typedef struct {
    int32_t outer, reduce, inner;
    int32_t input_offset, output_offset;
    int32_t multiplier, shift;
} td_mean_s8_params;

void td_mean_s8(const td_mean_s8_params *p, const int8_t *input,
                int8_t *output);

/* Max over the middle axis of [outer][reduce][inner] (reduce_s8.c): input
 * and output share scale and zero point. */
void td_reduce_max_s8(int32_t outer, int32_t reduce, int32_t inner,
                      const int8_t *input, int8_t *output);

/* ---------------------------------------------------------------------- */
/* Softmax and activations                                                 */
/* ---------------------------------------------------------------------- */

/* Softmax over the innermost axis of [outer][depth]; output scale 1/256,
 * zero point -128 (TFLite int8). */
typedef struct {
    int32_t outer, depth;
    int32_t input_multiplier, input_left_shift;
    int32_t diff_min;
} td_softmax_s8_params;

void td_softmax_s8(const td_softmax_s8_params *p, const int8_t *input,
                   int8_t *output);

/* Logistic (output scale 1/256, zero point -128) and Tanh (output scale
 * 1/128, zero point 0), TFLite int8 fixed-point formulations. */
typedef struct {
    int32_t size;
    int32_t input_zero_point;
    int32_t input_range_radius;
    int32_t input_multiplier, input_left_shift;
} td_sigmoid_s8_params;

typedef td_sigmoid_s8_params td_tanh_s8_params;

void td_sigmoid_s8(const td_sigmoid_s8_params *p, const int8_t *input,
                   int8_t *output);
void td_tanh_s8(const td_tanh_s8_params *p, const int8_t *input,
                int8_t *output);

/* HardSwish, TFLite int8 formulation (16-bit fixed point inside). */
typedef struct {
    int32_t size;
    int32_t input_zero_point, output_zero_point;
    int32_t reluish_multiplier_fixedpoint_int16;
    int32_t reluish_multiplier_exponent;
    int32_t output_multiplier_fixedpoint_int16;
    int32_t output_multiplier_exponent;
} td_hardswish_s8_params;

void td_hardswish_s8(const td_hardswish_s8_params *p, const int8_t *input,
                     int8_t *output);

/* LeakyRelu: x >= 0 scaled by the identity multiplier, x < 0 by alpha's
 * (a negative alpha has a negative multiplier). */
typedef struct {
    int32_t size;
    int32_t input_zero_point, output_zero_point;
    int32_t output_multiplier_alpha, output_shift_alpha;
    int32_t output_multiplier_identity, output_shift_identity;
} td_leaky_relu_s8_params;

void td_leaky_relu_s8(const td_leaky_relu_s8_params *p, const int8_t *input,
                      int8_t *output);

/* int8 -> int8 requantization (TFLite Quantize with int8 input). */
typedef struct {
    int32_t size;
    int32_t input_zero_point, output_zero_point;
    int32_t multiplier, shift;
} td_requantize_s8_params;

void td_requantize_s8(const td_requantize_s8_params *p, const int8_t *input,
                      int8_t *output);

/* Table lookup: output[i] = table[input[i] + 128].  Any int8 -> int8
 * element-wise function (the generator fills the table from the golden
 * kernel, so it is bit-exact by construction). */
void td_lut_s8(int32_t size, const int8_t table[256], const int8_t *input,
               int8_t *output);

/* ---------------------------------------------------------------------- */
/* Data movement                                                           */
/* ---------------------------------------------------------------------- */

/* Concatenation: input k viewed as [outer][inner_k], output as
 * [outer][sum_k inner_k].  An input is copied when requantize == 0, else
 * requantized: clamp(mbqm(x - input_zero_point) + output_zero_point), read
 * from table requantize - 1 of `tables` when there are tables (256 values
 * each, input value v at v + 128), else computed. */
typedef struct {
    int32_t inner;
    int32_t requantize;
    int32_t input_zero_point;
    int32_t multiplier, shift;
} td_concat_s8_input;

typedef struct {
    int32_t outer, n_inputs;
    int32_t output_zero_point;
    const td_concat_s8_input *inputs;   /* [n_inputs] */
    const int8_t *tables;               /* [requantized inputs][256], or NULL */
} td_concat_s8_params;

void td_concat_s8(const td_concat_s8_params *p, const int8_t *const *inputs,
                  int8_t *output);

/* Pad of up to TD_MAX_DIMS dims (shapes left-padded with 1, pads with 0).
 * mode: 0 constant (value, normally the zero point), 1 reflect, 2 edge. */
typedef struct {
    int32_t in_shape[TD_MAX_DIMS];
    int32_t pad_before[TD_MAX_DIMS];
    int32_t out_shape[TD_MAX_DIMS];
    int32_t mode;
    int32_t value;
} td_pad_s8_params;

void td_pad_s8(const td_pad_s8_params *p, const int8_t *input, int8_t *output);

/* Transpose: output index o reads input offset sum_d o_d * in_strides[d]
 * (strides already permuted by the generator). */
typedef struct {
    int32_t out_shape[TD_MAX_DIMS];
    int32_t in_strides[TD_MAX_DIMS];
} td_transpose_s8_params;

void td_transpose_s8(const td_transpose_s8_params *p, const int8_t *input,
                     int8_t *output);

/* Bilinear resize of [in_h][in_w][channels] to [out_h][out_w][channels]
 * (TFLite RESIZE_BILINEAR, integer kernel).  Output row o reads input
 * coordinate v = o * scale_h_q10 (+ scale_h_q10 / 2 - 512 with
 * half_pixel_centers) in Q10, rows max(v / 1024, 0) and
 * min(ceil(v / 1024), in_h - 1), weighted by Q10 fractions; columns likewise.
 * scale_*_q10 = round(float32 scale * 1024), the scale in / out (align
 * corners: (in - 1) / (out - 1)).  Output quantization = input's. */
typedef struct {
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t scale_h_q10, scale_w_q10;
    int32_t half_pixel_centers;
} td_resize_bilinear_s8_params;

void td_resize_bilinear_s8(const td_resize_bilinear_s8_params *p,
                           const int8_t *input, int8_t *output);

/* ---------------------------------------------------------------------- */
/* MatMul of two activations (TFLite BATCH_MATMUL, numpy batch broadcasting) */
/* ---------------------------------------------------------------------- */

/* output [batch...][m][n] (dense) = requantized sums over k of
 * (A[b][r][i] + a_offset) * (B[b][i][c] + b_offset) in int32; the operands are
 * read through element strides as in td_batch_matmul_f32 (batch axes
 * left-padded with 1 to TD_BMM_BATCH_DIMS, a batch stride of 0 broadcasts).
 * multiplier/shift: s_a * s_b / s_out, one pair per tensor. */
#ifndef TD_BMM_BATCH_DIMS
#define TD_BMM_BATCH_DIMS 4
#endif
typedef struct {
    int32_t batch_shape[TD_BMM_BATCH_DIMS];
    int32_t a_batch_strides[TD_BMM_BATCH_DIMS];
    int32_t b_batch_strides[TD_BMM_BATCH_DIMS];
    int32_t m, k, n;
    int32_t a_m_stride, a_k_stride;
    int32_t b_k_stride, b_n_stride;
    int32_t a_offset, b_offset, output_offset;
    int32_t multiplier, shift;
    int32_t act_min, act_max;
} td_batch_matmul_s8_params;

void td_batch_matmul_s8(const td_batch_matmul_s8_params *p, const int8_t *a,
                        const int8_t *b, int8_t *output);

/* The batch loop of the td_*batch_matmul_s8 kernels: block(p, a, b, out) for
 * every batch entry, its m x n outputs after the previous entry's. */
typedef void (*td_bmm_block_fn)(const td_batch_matmul_s8_params *p, const int8_t *a,
                                const int8_t *b, int8_t *out);

static inline void td_bmm_each_batch(const td_batch_matmul_s8_params *p, const int8_t *a,
                                     const int8_t *b, int8_t *output, td_bmm_block_fn block)
{
    const int32_t *shape = p->batch_shape;
    const int32_t *sa = p->a_batch_strides, *sb = p->b_batch_strides;
    const int32_t size = p->m * p->n;
    int32_t i0, i1, i2, i3;
    for (i0 = 0; i0 < shape[0]; ++i0) {
        for (i1 = 0; i1 < shape[1]; ++i1) {
            for (i2 = 0; i2 < shape[2]; ++i2) {
                for (i3 = 0; i3 < shape[3]; ++i3) {
                    const int32_t oa = i0 * sa[0] + i1 * sa[1] + i2 * sa[2] + i3 * sa[3];
                    const int32_t ob = i0 * sb[0] + i1 * sb[1] + i2 * sb[2] + i3 * sb[3];
                    block(p, a + oa, b + ob, output);
                    output += size;
                }
            }
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Layer normalization (layer_norm_s8.c)                                   */
/* ---------------------------------------------------------------------- */

/* int8 layer normalization of each row of [outer][size]: exact integer mean
 * and variance, a fixed-point reciprocal square root, then per element i a
 * requantization by multiplier[i] / 2^shift[i] (1..62) and the offset
 * bias[i] (in 1/256 output codes). eps_hi * 2^31 + eps_lo = round(size^2
 * epsilon / input_scale^2). Output may equal input. */
typedef struct {
    int32_t outer, size;
    int32_t eps_hi, eps_lo;
    int32_t output_offset;
    const int32_t *multiplier;
    const int32_t *shift;
    const int32_t *bias;
} td_layer_norm_s8_params;

void td_layer_norm_s8(const td_layer_norm_s8_params *p, const int8_t *input,
                      int8_t *output);

/* ---------------------------------------------------------------------- */
/* Recurrent layers in int8 (TFLite's integer LSTM, tinydeploy's GRU; see
 * tinydeploy/ops/rnn.py for the arithmetic). Layouts as td_lstm_f32's; w, r
 * int8 [dirs][gates * hidden][...]; bias_in, bias_rec int32 [dirs][gates *
 * hidden] (the input zero point folded into bias_in); multiplier/shift pairs
 * per gate row ([dirs][gates * hidden]) bring each side's accumulator to
 * Q3.12. LSTM h0 int8 (1/128), c0 the int16 cell state (in int32), GRU h0
 * the Q0.15 state (in int32), or NULL (zero). output: Y or Y_h, int8 at
 * 1/128. scratch: 11 * hidden (LSTM) or 10 * hidden (GRU) bytes, 2-byte
 * aligned. */
typedef enum { TD_RNN_S8_Y = 0, TD_RNN_S8_Y_H = 1 } td_rnn_s8_output;
typedef struct {
    int32_t seq_len, batch, input_size, hidden_size;
    int32_t num_directions;      /* 1 or 2 */
    int32_t reverse;             /* num_directions 1: run backward */
    int32_t output;              /* td_rnn_s8_output */
    int32_t linear_before_reset; /* GRU */
    const int32_t *input_multiplier, *input_shift;
    const int32_t *recurrent_multiplier, *recurrent_shift;
    /* LSTM (zero in a GRU): the cell state's scale 2^-cell_frac, the
     * requantization of forget x cell and of input x cell gate to the cell
     * state, of output x tanh(cell) to the hidden state, and the cell state
     * brought to the int16 tanh's input scale (x * multiplier >> shift) */
    int32_t cell_frac;
    int32_t forget_cell_multiplier, forget_cell_shift;
    int32_t input_cell_multiplier, input_cell_shift;
    int32_t hidden_multiplier, hidden_shift;
    int32_t cell_tanh_multiplier, cell_tanh_shift;
} td_rnn_s8_params;

void td_lstm_s8(const td_rnn_s8_params *p, const int8_t *x, const int8_t *w,
                const int8_t *r, const int32_t *bias_in,
                const int32_t *bias_rec, const int8_t *h0, const int32_t *c0,
                int8_t *output, void *scratch);
void td_gru_s8(const td_rnn_s8_params *p, const int8_t *x, const int8_t *w,
               const int8_t *r, const int32_t *bias_in,
               const int32_t *bias_rec, const int32_t *h0, int8_t *output,
               void *scratch);

/* ---------------------------------------------------------------------- */
/* Attention (attention_s8.c)                                              */
/* ---------------------------------------------------------------------- */

/* Fused attention softmax(scale * q @ k^T) @ v, one query row at a time:
 * the integer pipeline of the unfused layers (batch_matmul_s8 of q and k
 * requantized to the scores' int8 quantization, mul_s8 by the scalar scale
 * when has_scale, softmax_s8 of the row, batch_matmul_s8 of the int8
 * probabilities and v), so the results are the unfused ones bit for bit.
 * Operands are read through strides as td_batch_matmul_s8 reads them (q is
 * [m][k], k^T [k][n], v [n][d] per batch entry); the output is
 * [batch...][m][d], contiguous. scratch: 4 (n + d) + n bytes, 4-byte
 * aligned (the sums of each key and value column, one row of scores). */
typedef struct {
    int32_t batch_shape[4];
    int32_t q_batch_strides[4], k_batch_strides[4], v_batch_strides[4];
    int32_t m, k, n, d;
    int32_t q_m_stride, q_k_stride, k_k_stride, k_n_stride;
    int32_t v_k_stride, v_n_stride;
    /* scores: q @ k^T, requantized */
    int32_t q_offset, k_offset, score_offset;
    int32_t score_multiplier, score_shift, score_min, score_max;
    /* the scale: (score + scale_input_offset) * scale_factor, requantized */
    int32_t has_scale, scale_input_offset, scale_factor, scale_offset;
    int32_t scale_multiplier, scale_shift, scale_min, scale_max;
    /* softmax of each row (td_softmax_s8_params) */
    int32_t softmax_multiplier, softmax_left_shift, softmax_diff_min;
    /* probabilities @ v, requantized to the output */
    int32_t p_offset, v_offset, output_offset;
    int32_t multiplier, shift, act_min, act_max;
    /* the exponential table of the softmax (ops/softmax.py) when the
     * unfused softmax would use its table kernel, else a null pointer */
    int32_t softmax_table_last;
    const int32_t *softmax_table;
    /* the scale as a table of its 256 results (entry s + 128 for the score
     * code s), or a null pointer: computed */
    const int8_t *scale_table;
} td_attention_s8_params;

void td_attention_s8(const td_attention_s8_params *p, const int8_t *q,
                     const int8_t *k, const int8_t *v, int8_t *output,
                     int8_t *scratch);

#ifdef __cplusplus
}
#endif
#endif
