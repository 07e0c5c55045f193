/* Private helpers shared by the float32 kernels (not part of the API). */
#ifndef TD_F32_INTERNAL_H
#define TD_F32_INTERNAL_H

#include "td_kernels_f32.h"

/* Fused activation clamp. Written with comparisons rather than fminf/fmaxf
 * so that it never becomes a libm call on targets without min/max
 * instructions. */
static inline float td_clampf(float v, float lo, float hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* 4 dot products of x[0..n) against four weight rows at once: each input
 * value is loaded once for four MACs and the four accumulators are
 * independent, which hides the FPU latency on in-order cores. */
static inline void td_dot4_f32(int32_t n, const float *x, const float *w0,
                               const float *w1, const float *w2,
                               const float *w3, float acc[4])
{
    float a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (int32_t i = 0; i < n; ++i) {
        const float v = x[i];
        a0 += v * w0[i];
        a1 += v * w1[i];
        a2 += v * w2[i];
        a3 += v * w3[i];
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

static inline float td_dot_f32(int32_t n, const float *x, const float *w,
                               float acc)
{
    for (int32_t i = 0; i < n; ++i) {
        acc += x[i] * w[i];
    }
    return acc;
}

/* Fully connected core, also used by the 1x1 convolution fast path:
 * out[r][o] = clamp(bias[o] + dot(in[r], w[o])). */
void td_f32_matmul_bt(int32_t rows, int32_t in_features, int32_t out_features,
                      const float *input, const float *weights,
                      const float *bias, float act_min, float act_max,
                      float *output);

#endif
