/* Element-wise unary ops and activations. */
#include <math.h>

#include "td_f32_internal.h"

/* Each element is read before it is written, so output may equal input. */
#define TD_UNARY_LOOP(expr)                                       \
    for (int32_t i = 0; i < n; ++i) {                             \
        const float x = input[i];                                 \
        output[i] = td_clampf((expr), lo, hi);                    \
    }                                                             \
    break

static float sigmoidf(float x)
{
    /* expf(-x) overflows to inf for very negative x, giving exactly 0. */
    return 1.0f / (1.0f + expf(-x));
}

static float softplusf(float x)
{
    /* log(1 + e^x) = x to float precision once e^x dwarfs 1 (and expf overflows). */
    return x > 20.0f ? x : log1pf(expf(x));
}

static float hard_sigmoidf(float x, float alpha, float beta)
{
    return td_clampf(alpha * x + beta, 0.0f, 1.0f);
}

void td_unary_f32(const td_unary_f32_params *p, const float *input,
                  float *output)
{
    const int32_t n = p->size;
    const float lo = p->act_min, hi = p->act_max;
    const float alpha = p->alpha, beta = p->beta;
    switch (p->kind) {
    case TD_RELU: TD_UNARY_LOOP(x > 0.0f ? x : 0.0f);
    case TD_CLIP: TD_UNARY_LOOP(x);  /* the bounds are act_min/act_max */
    case TD_LEAKY_RELU: TD_UNARY_LOOP(x < 0.0f ? alpha * x : x);
    case TD_SIGMOID: TD_UNARY_LOOP(sigmoidf(x));
    case TD_TANH: TD_UNARY_LOOP(tanhf(x));
    case TD_HARD_SIGMOID: TD_UNARY_LOOP(hard_sigmoidf(x, alpha, beta));
    case TD_HARD_SWISH:
        TD_UNARY_LOOP(x * hard_sigmoidf(x, 1.0f / 6.0f, 0.5f));
    case TD_EXP: TD_UNARY_LOOP(expf(x));
    case TD_NEG: TD_UNARY_LOOP(-x);
    case TD_ABS: TD_UNARY_LOOP(fabsf(x));
    case TD_SQRT: TD_UNARY_LOOP(sqrtf(x));
    case TD_POW: TD_UNARY_LOOP(alpha == 2.0f ? x * x : powf(x, alpha));
    case TD_ERF: TD_UNARY_LOOP(erff(x));
    case TD_ELU: TD_UNARY_LOOP(x < 0.0f ? alpha * (expf(x) - 1.0f) : x);
    case TD_SOFTPLUS: TD_UNARY_LOOP(softplusf(x));
    case TD_GELU: TD_UNARY_LOOP(0.5f * x * (1.0f + erff(x * 0.70710678f)));
    case TD_GELU_TANH:
        TD_UNARY_LOOP(0.5f * x * (1.0f + tanhf(0.79788456f * (x + 0.044715f * x * x * x))));
    case TD_SILU: TD_UNARY_LOOP(x * sigmoidf(x));
    default: break;
    }
}
