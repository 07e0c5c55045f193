/* MatMul of two activations (ONNX / numpy matmul with broadcast batch axes)
 * for float32.  Each operand is read through strides, so an operand stored
 * transposed (PyTorch's k.transpose(-2, -1)) needs no copy.  Every output
 * element is the sum over k = 0..K-1 in that order, whichever loop runs. */
#include "td_f32_internal.h"

/* One [M][K] @ [K][N] product into out [M][N]. */
static void bmm_block(const td_batch_matmul_f32_params *p, const float *a,
                      const float *b, float *out)
{
    const int32_t m = p->m, k = p->k, n = p->n;
    const int32_t am = p->a_m_stride, ak = p->a_k_stride;
    const int32_t bk = p->b_k_stride, bn = p->b_n_stride;
    int32_t r, c, i;
    if (bn == 1 && bk != 1) {
        /* B's rows are contiguous: add a[r][i] * B[i][:] to the output row. */
        for (r = 0; r < m; ++r) {
            const float *ar = a + r * am;
            float *o = out + r * n;
            for (c = 0; c < n; ++c) {
                o[c] = 0.0f;
            }
            for (i = 0; i < k; ++i) {
                const float v = ar[i * ak];
                const float *br = b + i * bk;
                for (c = 0; c < n; ++c) {
                    o[c] = TD_MAC(o[c], v, br[c]);
                }
            }
        }
        return;
    }
    for (r = 0; r < m; ++r) {
        const float *ar = a + r * am;
        for (c = 0; c < n; ++c) {
            const float *bc = b + c * bn;
            float acc = 0.0f;
            if (ak == 1 && bk == 1) {
                for (i = 0; i < k; ++i) {
                    acc = TD_MAC(acc, ar[i], bc[i]);
                }
            } else {
                for (i = 0; i < k; ++i) {
                    acc = TD_MAC(acc, ar[i * ak], bc[i * bk]);
                }
            }
            out[r * n + c] = acc;
        }
    }
}

void td_batch_matmul_f32(const td_batch_matmul_f32_params *p, const float *a,
                         const float *b, float *output)
{
    const int32_t *shape = p->batch_shape;
    const int32_t *sa = p->a_batch_strides, *sb = p->b_batch_strides;
    const int32_t block = p->m * p->n;
    int32_t i0, i1, i2, i3;
    for (i0 = 0; i0 < shape[0]; ++i0) {
        for (i1 = 0; i1 < shape[1]; ++i1) {
            for (i2 = 0; i2 < shape[2]; ++i2) {
                for (i3 = 0; i3 < shape[3]; ++i3) {
                    const int32_t oa = i0 * sa[0] + i1 * sa[1] + i2 * sa[2] + i3 * sa[3];
                    const int32_t ob = i0 * sb[0] + i1 * sb[1] + i2 * sb[2] + i3 * sb[3];
                    bmm_block(p, a + oa, b + ob, output);
                    output += block;
                }
            }
        }
    }
}
