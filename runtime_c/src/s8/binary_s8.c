/* int8 Add and Mul with NumPy broadcasting (TFLite AddFunc / MulElementwise).
 * The outer TD_MAX_DIMS - 1 dimensions are walked with an odometer; each
 * innermost row is handled by a per-op row function with element strides.
 * Rows are written in increasing order, so an output aliasing a
 * non-broadcast input is safe. */
#include "td_kernels_s8.h"

typedef void (*row_fn)(const void *p, const int8_t *a, int32_t sa,
                       const int8_t *b, int32_t sb, int8_t *out, int32_t n);

static void broadcast_rows(const int32_t *shape, const int32_t *as,
                           const int32_t *bs, const int8_t *a, const int8_t *b,
                           int8_t *out, const void *p, row_fn fn)
{
    enum { OUTER = TD_MAX_DIMS - 1 };
    int32_t idx[OUTER] = {0};
    int32_t rows = 1, r, a_off = 0, b_off = 0;
    int d;
    const int32_t n = shape[OUTER];
    for (d = 0; d < OUTER; ++d) {
        rows *= shape[d];
    }
    for (r = 0; r < rows; ++r) {
        fn(p, a + a_off, as[OUTER], b + b_off, bs[OUTER], out + r * n, n);
        for (d = OUTER - 1; d >= 0; --d) {
            a_off += as[d];
            b_off += bs[d];
            if (++idx[d] < shape[d]) {
                break;
            }
            a_off -= as[d] * shape[d];
            b_off -= bs[d] * shape[d];
            idx[d] = 0;
        }
    }
}

static void add_row(const void *vp, const int8_t *a, int32_t sa,
                    const int8_t *b, int32_t sb, int8_t *out, int32_t n)
{
    const td_add_s8_params *p = (const td_add_s8_params *)vp;
    /* the parameters in locals: the int8 stores may alias *p, which the loop would
     * otherwise load again for every element */
    const int ls = (int)p->left_shift;
    const int32_t off1 = p->input1_offset, m1 = p->input1_multiplier, s1 = p->input1_shift;
    const int32_t off2 = p->input2_offset, m2 = p->input2_multiplier, s2 = p->input2_shift;
    const int32_t mo = p->output_multiplier, so = p->output_shift, oo = p->output_offset;
    const int32_t lo = p->act_min, hi = p->act_max;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t x1 = td_mbqm(td_shl_wrap(a[i * sa] + off1, ls), m1, s1);
        const int32_t x2 = td_mbqm(td_shl_wrap(b[i * sb] + off2, ls), m2, s2);
        const int32_t sum = (int32_t)((uint32_t)x1 + (uint32_t)x2);
        out[i] = (int8_t)td_clamp_s32(td_mbqm(sum, mo, so) + oo, lo, hi);
    }
}

void td_add_s8(const td_add_s8_params *p, const int8_t *a, const int8_t *b,
               int8_t *output)
{
    broadcast_rows(p->out_shape, p->a_strides, p->b_strides, a, b, output, p,
                   add_row);
}

static void mul_row(const void *vp, const int8_t *a, int32_t sa,
                    const int8_t *b, int32_t sb, int8_t *out, int32_t n)
{
    const td_mul_s8_params *p = (const td_mul_s8_params *)vp;
    /* the parameters in locals (see add_row) */
    const int32_t off1 = p->input1_offset, off2 = p->input2_offset;
    const int32_t mo = p->output_multiplier, so = p->output_shift, oo = p->output_offset;
    const int32_t lo = p->act_min, hi = p->act_max;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t prod = (a[i * sa] + off1) * (b[i * sb] + off2);
        out[i] = (int8_t)td_clamp_s32(td_mbqm(prod, mo, so) + oo, lo, hi);
    }
}

void td_mul_s8(const td_mul_s8_params *p, const int8_t *a, const int8_t *b,
               int8_t *output)
{
    broadcast_rows(p->out_shape, p->a_strides, p->b_strides, a, b, output, p,
                   mul_row);
}
