/* Private helpers shared by the float32 kernels (not part of the API). */
#ifndef TD_F32_INTERNAL_H
#define TD_F32_INTERNAL_H

#include <math.h>

#include "td_kernels_f32.h"

/* acc + a * b. Uses a fused multiply-add where the target has one (e.g.
 * Cortex-M7 VFMA): ISO C mode (-std=c99) forbids the compiler from
 * contracting a * b + c by itself. */
#if defined(FP_FAST_FMAF) || defined(__FP_FAST_FMAF)
#define TD_MAC(acc, a, b) fmaf((a), (b), (acc))
#else
#define TD_MAC(acc, a, b) ((acc) + (a) * (b))
#endif

/* Keeps a hot loop nest in its own function: when GCC inlines it into the
 * caller's loops it runs out of registers and spills inside the inner loop. */
#if defined(__GNUC__)
#define TD_NOINLINE __attribute__((noinline))
#else
#define TD_NOINLINE
#endif

/* Fused activation clamp. Written with comparisons rather than fminf/fmaxf
 * so that it never becomes a libm call on targets without min/max
 * instructions. */
static inline float td_clampf(float v, float lo, float hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* acc[j] += dot(x[0..n), w + j * w_stride) for j = 0..3: each input value
 * is loaded once for four MACs and the four sums are independent, which hides
 * the FPU latency on in-order cores. Kept out of line (fully_connected.c) so
 * that its loop gets all the registers. */
void td_f32_dot4(int32_t n, const float *x, const float *w, int32_t w_stride,
                 float acc[4]);

/* acc + dot(x[0..n), w[0..n)). */
float td_f32_dot(int32_t n, const float *x, const float *w, float acc);

/* Fully connected core, also used by the 1x1 convolution fast path:
 * out[r][o] = clamp(bias[o] + dot(in[r], w[o])). */
void td_f32_matmul_bt(int32_t rows, int32_t in_features, int32_t out_features,
                      const float *input, const float *weights,
                      const float *bias, float act_min, float act_max,
                      float *output);

#endif
