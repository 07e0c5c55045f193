/* Element-wise binary ops with NumPy broadcasting (Add, Sub, Mul, Div, Max,
 * Min). */
#include "td_f32_internal.h"

/* Drops size-1 dims and merges neighbours that both operands traverse
 * contiguously, so the inner loop runs as long as possible. Returns the
 * number of dims left (>= 1), or 0 if the output is empty. */
static int32_t collapse_dims(const td_binary_f32_params *p, int32_t shape[],
                             int32_t as[], int32_t bs[])
{
    int32_t nd = 0;
    for (int32_t d = 0; d < TD_MAX_DIMS; ++d) {
        const int32_t n = p->out_shape[d];
        if (n <= 0) {
            return 0;
        }
        if (n == 1) {
            continue;
        }
        if (nd > 0 && as[nd - 1] == p->a_strides[d] * n &&
            bs[nd - 1] == p->b_strides[d] * n) {
            shape[nd - 1] *= n;
            as[nd - 1] = p->a_strides[d];
            bs[nd - 1] = p->b_strides[d];
            continue;
        }
        shape[nd] = n;
        as[nd] = p->a_strides[d];
        bs[nd] = p->b_strides[d];
        ++nd;
    }
    if (nd == 0) {
        shape[0] = 1;
        as[0] = 0;
        bs[0] = 0;
        nd = 1;
    }
    return nd;
}

/* One run of n outputs; the switch is hoisted out of the element loop.
 * Each element is read before it is written, so out may alias a or b. */
#define TD_BINARY_LOOP(expr)                                      \
    for (int32_t i = 0; i < n; ++i, a += sa, b += sb) {           \
        const float x = *a;                                       \
        const float y = *b;                                       \
        out[i] = td_clampf((expr), lo, hi);                       \
    }                                                             \
    break

static void binary_run(int32_t kind, int32_t n, const float *a, int32_t sa,
                       const float *b, int32_t sb, float *out, float lo,
                       float hi)
{
    switch (kind) {
    case TD_ADD: TD_BINARY_LOOP(x + y);
    case TD_SUB: TD_BINARY_LOOP(x - y);
    case TD_MUL: TD_BINARY_LOOP(x * y);
    case TD_DIV: TD_BINARY_LOOP(x / y);
    case TD_MAX: TD_BINARY_LOOP(x > y ? x : y);
    case TD_MIN: TD_BINARY_LOOP(x < y ? x : y);
    default: break;
    }
}

void td_binary_f32(const td_binary_f32_params *p, const float *a,
                   const float *b, float *output)
{
    int32_t shape[TD_MAX_DIMS], as[TD_MAX_DIMS], bs[TD_MAX_DIMS];
    int32_t idx[TD_MAX_DIMS] = {0};
    const int32_t nd = collapse_dims(p, shape, as, bs);
    if (nd == 0) {
        return;
    }
    const int32_t inner = shape[nd - 1];
    int32_t runs = 1;
    for (int32_t d = 0; d < nd - 1; ++d) {
        runs *= shape[d];
    }
    int32_t oa = 0, ob = 0;
    for (int32_t r = 0; r < runs; ++r, output += inner) {
        binary_run(p->kind, inner, a + oa, as[nd - 1], b + ob, bs[nd - 1],
                   output, p->act_min, p->act_max);
        /* Odometer step over the outer dims. */
        for (int32_t d = nd - 2; d >= 0; --d) {
            oa += as[d];
            ob += bs[d];
            if (++idx[d] < shape[d]) {
                break;
            }
            oa -= as[d] * shape[d];
            ob -= bs[d] * shape[d];
            idx[d] = 0;
        }
    }
}
