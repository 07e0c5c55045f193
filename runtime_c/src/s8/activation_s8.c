/* int8 element-wise activations as TFLite's reference kernels compute them:
 * Logistic and Tanh (gemmlowp fixed point on a Q4.27 input), HardSwish
 * (16-bit fixed point), LeakyRelu, Requantize; plus a 256-entry table
 * lookup.  All are in-place safe. */
#include "td_kernels_s8.h"

/* Shared input stage of Logistic/Tanh: 1 saturates low, 2 high, 0 in range
 * with *q4 the input in Q4.27. */
static int q4_input(const td_sigmoid_s8_params *p, int8_t x, int32_t *q4)
{
    const int32_t v = x - p->input_zero_point;
    if (v <= -p->input_range_radius) {
        return 1;
    }
    if (v >= p->input_range_radius) {
        return 2;
    }
    *q4 = td_mbqm(v, p->input_multiplier, p->input_left_shift);
    return 0;
}

static int32_t fixed_logistic(int32_t a)
{
    const int32_t abs_a = a > 0 ? a : -a;
    const int32_t pos = td_fp_one_over_one_plus_x(td_fp_exp_neg(-abs_a, 4));
    if (a == 0) {
        return 1 << 30;
    }
    return a > 0 ? pos : INT32_MAX - pos;
}

void td_sigmoid_s8(const td_sigmoid_s8_params *p, const int8_t *input,
                   int8_t *output)
{
    int32_t i, q4 = 0;
    for (i = 0; i < p->size; ++i) {
        const int r = q4_input(p, input[i], &q4);
        int32_t v;
        if (r) {
            output[i] = r == 1 ? INT8_MIN : INT8_MAX;
            continue;
        }
        v = td_rdbpot(fixed_logistic(q4), 23) + INT8_MIN;
        output[i] = (int8_t)td_clamp_s32(v, INT8_MIN, INT8_MAX);
    }
}

static int32_t fixed_tanh(int32_t a)
{
    const int32_t n = a < 0 ? a : -a;
    /* Q4 raw read as Q5: exp(2 * n) */
    const int32_t t = td_fp_one_minus_x_over_one_plus_x(td_fp_exp_neg(n, 5));
    if (a == 0) {
        return 0;
    }
    return a < 0 ? -t : t;
}

void td_tanh_s8(const td_tanh_s8_params *p, const int8_t *input,
                int8_t *output)
{
    int32_t i, q4 = 0;
    for (i = 0; i < p->size; ++i) {
        const int r = q4_input(p, input[i], &q4);
        int32_t v;
        if (r) {
            output[i] = r == 1 ? INT8_MIN : INT8_MAX;
            continue;
        }
        v = td_rdbpot(fixed_tanh(q4), 24);
        output[i] = (int8_t)td_clamp_s32(v, INT8_MIN, INT8_MAX);
    }
}

/* 16-bit helpers of the HardSwish formulation (values held in int32). */
static int32_t srdhm16(int32_t a, int32_t b)
{
    const int32_t ab = a * b;
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    return (ab + (ab >= 0 ? (1 << 14) : 1 - (1 << 14))) / (1 << 15);
}

static int32_t sdhm16(int32_t a, int32_t b)
{
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    return (a * b) / (1 << 15);
}

static int32_t sat_shl16(int32_t v, int n)
{
    const int64_t r = (int64_t)v * ((int64_t)1 << n);
    return r > INT16_MAX ? INT16_MAX : (r < INT16_MIN ? INT16_MIN : (int32_t)r);
}

static int32_t wrap16(int32_t v)
{
    return (int32_t)(((uint32_t)v + 0x8000u) & 0xFFFFu) - 0x8000;
}

void td_hardswish_s8(const td_hardswish_s8_params *p, const int8_t *input,
                     int8_t *output)
{
    const int e = (int)p->reluish_multiplier_exponent;
    const int out_e = (int)-p->output_multiplier_exponent;
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t hires = (input[i] - p->input_zero_point) * 128;
        const int32_t pre_out = srdhm16(hires, p->output_multiplier_fixedpoint_int16);
        int32_t r = e > 0 ? sat_shl16(hires, e - 1) : hires;
        r = srdhm16(r, p->reluish_multiplier_fixedpoint_int16);
        if (e > 0) {
            r = sat_shl16(r, 1);
        } else if (e < 0) {
            r = td_rdbpot(r, -e);
        }
        r = (r + (1 << 15)) >> 1;           /* [-1, 1] -> [0, 1] */
        r = td_rdbpot(sdhm16(r, pre_out), out_e) + p->output_zero_point;
        output[i] = (int8_t)td_clamp_s32(wrap16(r), INT8_MIN, INT8_MAX);
    }
}

void td_leaky_relu_s8(const td_leaky_relu_s8_params *p, const int8_t *input,
                      int8_t *output)
{
    const int32_t ma = p->output_multiplier_alpha;
    const int32_t abs_ma = ma < 0 ? -ma : ma;
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t v = input[i] - p->input_zero_point;
        int32_t o;
        if (v >= 0) {
            o = td_mbqm(v, p->output_multiplier_identity, p->output_shift_identity);
        } else {
            o = td_mbqm(v, abs_ma, p->output_shift_alpha);
            o = ma < 0 ? -o : o;
        }
        output[i] = (int8_t)td_clamp_s32(o + p->output_zero_point, INT8_MIN, INT8_MAX);
    }
}

void td_requantize_s8(const td_requantize_s8_params *p, const int8_t *input,
                      int8_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t v = td_mbqm(input[i] - p->input_zero_point, p->multiplier,
                                  p->shift) + p->output_zero_point;
        output[i] = (int8_t)td_clamp_s32(v, INT8_MIN, INT8_MAX);
    }
}

void td_lut_s8(int32_t size, const int8_t table[256], const int8_t *input,
               int8_t *output)
{
    const int8_t *t = table + 128;
    int32_t i;
    /* four at a time, each read before any is written (in place: output == input) */
    for (i = 0; i + 4 <= size; i += 4) {
        const int8_t a = input[i], b = input[i + 1], c = input[i + 2], d = input[i + 3];
        output[i] = t[a];
        output[i + 1] = t[b];
        output[i + 2] = t[c];
        output[i + 3] = t[d];
    }
    for (; i < size; ++i) {
        output[i] = t[input[i]];
    }
}
