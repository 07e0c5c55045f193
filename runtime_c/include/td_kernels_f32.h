/* tinydeploy runtime: float32 kernel API (portable C99).
 *
 * Conventions shared by every kernel:
 *  - activations are dense, row-major, NHWC (batch is always 1 and omitted);
 *  - parameters that the code generator knows at compile time come in a
 *    const struct that lives in flash;
 *  - act_min/act_max clamp the result (fused ReLU/ReLU6/Clip); the generator
 *    passes -INFINITY/INFINITY-like bounds (-FLT_MAX/FLT_MAX) when there is none.
 *  - no malloc, no stdio; kernels never read or write outside the given
 *    buffers.
 */
#ifndef TD_KERNELS_F32_H
#define TD_KERNELS_F32_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Convolution, NHWC input [in_h][in_w][in_c], output [out_h][out_w][out_c].
 * Weights [out_c][k_h][k_w][in_c / groups]; bias [out_c] or NULL.
 * Grouped convolution: output channel oc reads input channels
 * (oc / (out_c / groups)) * (in_c / groups) ... + in_c / groups - 1.
 * Depthwise is groups == in_c. pad_top/pad_left are the zero padding before
 * the first row/column; the bottom/right padding is implied by out_h/out_w. */
typedef struct {
    int16_t in_h, in_w, in_c;
    int16_t out_h, out_w, out_c;
    int16_t k_h, k_w;
    int16_t stride_h, stride_w;
    int16_t dil_h, dil_w;
    int16_t pad_top, pad_left;
    int16_t groups;
    float act_min, act_max;
} td_conv_f32_params;

void td_conv2d_f32(const td_conv_f32_params *p, const float *input,
                   const float *weights, const float *bias, float *output);

/* Transposed convolution (ONNX ConvTranspose), NHWC input [in_h][in_w][in_c],
 * output [out_h][out_w][out_c].  Output pixel (oy, ox) sums the taps (ky, kx)
 * whose input position iy = (oy + pad_top - ky * dil_h) / stride_h (ix
 * likewise) is a whole number inside the input.  pad_top/pad_left are ONNX's
 * leading pads; output rows no tap reaches (output_padding) get the bias
 * only.  Weights [out_c][k_h][k_w][in_c / groups] (re-laid from ONNX's
 * [in_c][out_c / groups][k_h][k_w]); bias [out_c] or NULL. */
typedef struct {
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dil_h, dil_w;
    int32_t pad_top, pad_left;
    int32_t groups;
    float act_min, act_max;
} td_conv_transpose_f32_params;

void td_conv_transpose_f32(const td_conv_transpose_f32_params *p,
                           const float *input, const float *weights,
                           const float *bias, float *output);

/* Fully connected: output[r][o] = sum_i input[r][i] * weights[o][i] + bias[o],
 * for rows r in [0, rows). bias may be NULL. */
typedef struct {
    int32_t rows, in_features, out_features;
    float act_min, act_max;
} td_fc_f32_params;

void td_fully_connected_f32(const td_fc_f32_params *p, const float *input,
                            const float *weights, const float *bias,
                            float *output);

/* Pooling over NHWC. Padding cells are excluded from the average when
 * count_include_pad is 0 (ONNX default) and count as zeros when 1. Taps are
 * dil_h rows and dil_w columns apart (ONNX dilations). */
typedef struct {
    int16_t in_h, in_w, channels;
    int16_t out_h, out_w;
    int16_t k_h, k_w;
    int16_t stride_h, stride_w;
    int16_t dil_h, dil_w;
    int16_t pad_top, pad_left;
    int16_t count_include_pad;
    float act_min, act_max;
} td_pool_f32_params;

void td_max_pool_f32(const td_pool_f32_params *p, const float *input,
                     float *output);
void td_avg_pool_f32(const td_pool_f32_params *p, const float *input,
                     float *output);

/* Mean over the `inner`-strided middle axis: input viewed as
 * [outer][reduce][inner], output [outer][inner]. Global average pooling over
 * NHWC is outer=1, reduce=H*W, inner=C. */
void td_mean_f32(int32_t outer, int32_t reduce, int32_t inner,
                 const float *input, float *output);

/* Max and sum over the middle axis of [outer][reduce][inner] (reduce.c). */
void td_reduce_max_f32(int32_t outer, int32_t reduce, int32_t inner,
                       const float *input, float *output);
void td_reduce_sum_f32(int32_t outer, int32_t reduce, int32_t inner,
                       const float *input, float *output);

/* Element-wise binary op with NumPy broadcasting, up to 6 dimensions.
 * Shapes are padded on the left to TD_MAX_DIMS; a stride of 0 broadcasts. */
#define TD_MAX_DIMS 6
typedef enum { TD_ADD = 0, TD_SUB = 1, TD_MUL = 2, TD_DIV = 3,
               TD_MAX = 4, TD_MIN = 5 } td_binary_kind;
typedef struct {
    int32_t out_shape[TD_MAX_DIMS];
    int32_t a_strides[TD_MAX_DIMS];   /* in elements */
    int32_t b_strides[TD_MAX_DIMS];
    int32_t kind;                      /* td_binary_kind */
    float act_min, act_max;
} td_binary_f32_params;

void td_binary_f32(const td_binary_f32_params *p, const float *a,
                   const float *b, float *output);

/* Element-wise unary op; in-place safe (output may equal input). */
typedef enum { TD_RELU = 0, TD_CLIP = 1, TD_LEAKY_RELU = 2, TD_SIGMOID = 3,
               TD_TANH = 4, TD_HARD_SIGMOID = 5, TD_HARD_SWISH = 6,
               TD_EXP = 7, TD_NEG = 8, TD_ABS = 9, TD_SQRT = 10,
               TD_POW = 11, TD_ERF = 12, TD_ELU = 13, TD_SOFTPLUS = 14,
               TD_GELU = 15, TD_GELU_TANH = 16, TD_SILU = 17 } td_unary_kind;
typedef struct {
    int32_t size;
    int32_t kind;        /* td_unary_kind */
    float alpha, beta;   /* LeakyRelu/Elu alpha; HardSigmoid alpha, beta; Pow exponent */
    float act_min, act_max;  /* Clip bounds; also applied after every kind */
} td_unary_f32_params;

void td_unary_f32(const td_unary_f32_params *p, const float *input,
                  float *output);

/* Softmax over the innermost axis: input viewed as [outer][axis_size]. */
void td_softmax_f32(int32_t outer, int32_t axis_size, const float *input,
                    float *output);

/* Concatenation: input k viewed as [outer][inner_k]; output as
 * [outer][sum_k inner_k]. */
void td_concat_f32(int32_t outer, int32_t n_inputs, const int32_t *inner_sizes,
                   const float *const *inputs, float *output);

/* Transpose of up to TD_MAX_DIMS dims: output index o maps to input offset
 * sum_d o_d * in_strides[d] (in_strides already permuted by the generator). */
typedef struct {
    int32_t out_shape[TD_MAX_DIMS];
    int32_t in_strides[TD_MAX_DIMS];
} td_transpose_params;

void td_transpose_f32(const td_transpose_params *p, const float *input,
                      float *output);

/* Pad of up to TD_MAX_DIMS dims (shapes left-padded with 1 and pads with 0).
 * mode: 0 constant, 1 reflect, 2 edge. */
typedef struct {
    int32_t in_shape[TD_MAX_DIMS];
    int32_t pad_before[TD_MAX_DIMS];
    int32_t out_shape[TD_MAX_DIMS];
    int32_t mode;
    float value;
} td_pad_f32_params;

void td_pad_f32(const td_pad_f32_params *p, const float *input, float *output);

/* Bilinear resize (ONNX Resize mode "linear" over H and W) of
 * [in_h][in_w][channels] to [out_h][out_w][channels].  Output row o reads
 * input coordinate (o + 0.5) * scale_h - 0.5 (TD_RESIZE_HALF_PIXEL) or
 * o * scale_h (TD_RESIZE_ASYMMETRIC, TD_RESIZE_ALIGN_CORNERS: the generator
 * gives the scale (in - 1) / (out - 1)), clamped to [0, in_h - 1], and mixes
 * its two neighbouring rows linearly; columns likewise. */
typedef enum { TD_RESIZE_ASYMMETRIC = 0, TD_RESIZE_HALF_PIXEL = 1,
               TD_RESIZE_ALIGN_CORNERS = 2 } td_resize_coord_mode;
typedef struct {
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t coord_mode;          /* td_resize_coord_mode */
    float scale_h, scale_w;      /* input step per output step */
} td_resize_bilinear_f32_params;

void td_resize_bilinear_f32(const td_resize_bilinear_f32_params *p,
                            const float *input, float *output);

/* ---------------------------------------------------------------------- */
/* MatMul of two activations (ONNX MatMul, numpy broadcasting of batch axes) */
/* ---------------------------------------------------------------------- */

/* output [batch...][m][n] (dense) = A [batch...][m][k] @ B [batch...][k][n].
 * The operands are read through element strides: A[b][r][i] is
 * a[sum_d b_d * a_batch_strides[d] + r * a_m_stride + i * a_k_stride], B likewise
 * (b_k_stride 1 reads an operand stored transposed).  Batch axes are
 * left-padded with 1 to TD_BMM_BATCH_DIMS; a batch stride of 0 broadcasts. */
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
} td_batch_matmul_f32_params;

void td_batch_matmul_f32(const td_batch_matmul_f32_params *p, const float *a,
                         const float *b, float *output);

/* ---------------------------------------------------------------------- */
/* Layer normalization (layer_norm.c)                                      */
/* ---------------------------------------------------------------------- */

/* Normalization of each row of [outer][size] to zero mean and unit variance
 * (epsilon added to the variance), then times scale[i] plus bias[i] (either
 * may be NULL). Output may equal input. */
typedef struct {
    int32_t outer, size;
    float epsilon;
} td_layer_norm_f32_params;

void td_layer_norm_f32(const td_layer_norm_f32_params *p, const float *input,
                       const float *scale, const float *bias, float *output);

/* ---------------------------------------------------------------------- */
/* Recurrent layers (ONNX LSTM and GRU, default activations), the time loop
 * inside the kernel. x [seq_len][batch][input_size]; w [dirs][gates *
 * hidden][input_size], r [dirs][gates * hidden][hidden], b [dirs][2 * gates *
 * hidden] (ONNX's W, R, B; gates in ONNX order: LSTM i, o, f, c; GRU z, r, h);
 * h0, c0 [dirs][batch][hidden] or NULL (zero). output: TD_RNN_Y writes
 * [seq_len][dirs][batch][hidden], TD_RNN_Y_H / TD_RNN_Y_C [dirs][batch][hidden].
 * Direction 1 (num_directions 2), or the only one when reverse is 1, runs
 * from the last step to the first. scratch: 6 * hidden (LSTM) or 5 * hidden
 * (GRU) floats. */
typedef enum { TD_RNN_Y = 0, TD_RNN_Y_H = 1, TD_RNN_Y_C = 2 } td_rnn_output;
typedef struct {
    int32_t seq_len, batch, input_size, hidden_size;
    int32_t num_directions;      /* 1 or 2 */
    int32_t reverse;             /* num_directions 1: run backward */
    int32_t output;              /* td_rnn_output */
    int32_t linear_before_reset; /* GRU */
} td_rnn_f32_params;

void td_lstm_f32(const td_rnn_f32_params *p, const float *x, const float *w,
                 const float *r, const float *b, const float *h0,
                 const float *c0, float *output, float *scratch);
void td_gru_f32(const td_rnn_f32_params *p, const float *x, const float *w,
                const float *r, const float *b, const float *h0,
                float *output, float *scratch);

/* ---------------------------------------------------------------------- */
/* Attention (attention.c)                                                 */
/* ---------------------------------------------------------------------- */

/* Fused attention softmax(scale * q @ k^T) @ v, one query row at a time:
 * each score sums over the head dimension in order (as td_batch_matmul_f32),
 * times scale (scale_kind 1) or divided by it (scale_kind 2; 0: no scale),
 * the row's softmax as td_softmax_f32, and the row times v. Operands are
 * read through strides (q [m][k], k^T [k][n], v [n][d] per batch entry);
 * the output is [batch...][m][d], contiguous. scratch: n floats. */
typedef struct {
    int32_t batch_shape[4];
    int32_t q_batch_strides[4], k_batch_strides[4], v_batch_strides[4];
    int32_t m, k, n, d;
    int32_t q_m_stride, q_k_stride, k_k_stride, k_n_stride;
    int32_t v_k_stride, v_n_stride;
    int32_t scale_kind;
    float scale;
} td_attention_f32_params;

void td_attention_f32(const td_attention_f32_params *p, const float *q,
                      const float *k, const float *v, float *output,
                      float *scratch);

#ifdef __cplusplus
}
#endif
#endif
