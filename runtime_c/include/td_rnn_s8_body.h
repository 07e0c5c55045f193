/* tinydeploy runtime: the bodies of the int8 LSTM and GRU kernels
 * (TFLite's integer LSTM, and tinydeploy's own GRU in its style; documented in
 * tinydeploy/ops/rnn.py), shared by the portable kernels (s8/rnn_s8.c) and the
 * Arm DSP, Helium and RISC-V vector variants.
 * The including source defines TD_RNN_DOT(n, w, v, acc) (acc plus the dot
 * product of n int8 values of w and v, exactly) and the two functions'
 * names TD_RNN_LSTM and TD_RNN_GRU; without them this header is empty.
 *
 * int8 activations and weights, int32 accumulators, Q3.12 int16 gate
 * pre-activations, Q0.15 int16 gates from TFLite's int16 sigmoid/tanh, an
 * int16 cell state (LSTM, 2^-cell_frac) or Q0.15 hidden state (GRU), int8
 * hidden output at 1/128. The state and the gates live in the caller's scratch. */
#ifndef TD_RNN_S8_BODY_H
#define TD_RNN_S8_BODY_H

#if defined(TD_RNN_DOT) && defined(TD_RNN_LSTM) && defined(TD_RNN_GRU)

#include <stddef.h>

#include "td_kernels_s8.h"

/* TFLite's int16 sigmoid and tanh (tinydeploy.ops.rnn.sigmoid_q15 and
 * tanh_q15): 256 sigmoid nodes over [0, 10.67) in steps of 1/24, in units of
 * 2^-16 (tinydeploy.ops.rnn.SIGMOID_NODES; tests/test_rnn.py checks them),
 * read with linear interpolation on |x|. */
static const uint16_t td_rnn_sigmoid_nodes[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149,
    40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369,
    47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169,
    53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302,
    62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536,
    63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786,
    64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474,
    65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522,
    65523, 65523, 65524, 65524, 65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528,
    65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531,
    65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65534, 65535
};

/* x * multiplier / 2^shift, rounded: the input in the tables' units (a
 * Q3.12 gate pre-activation: 3 x, exactly) */
static inline int32_t td_rnn_prescale(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t rounding = shift > 0 ? (int32_t)1 << (shift - 1) : 0;
    return (x * multiplier + rounding) >> shift;
}

/* Q0.15 sigmoid of v / 2^9 table steps */
static inline int32_t td_rnn_sigmoid(int32_t v)
{
    const uint32_t a = (uint32_t)(v < 0 ? -v : v);
    const uint32_t k = a >> 9;
    uint32_t r = (uint32_t)0x7FFF << 10;
    if (k < 255) {
        const uint32_t lo = td_rnn_sigmoid_nodes[k];
        r = (lo << 9) + (a & 511u) * (td_rnn_sigmoid_nodes[k + 1] - lo);
    }
    r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
    return (int32_t)(r >> 10);
}

/* Q0.15 tanh = 2 sigmoid(2x) - 1: v read at v / 2^8 table steps */
static inline int32_t td_rnn_tanh(int32_t v)
{
    const uint32_t a = (uint32_t)(v < 0 ? -v : v);
    const uint32_t k = a >> 8;
    int32_t r = 0xFFFF << 8;
    if (k < 255) {
        const uint32_t lo = td_rnn_sigmoid_nodes[k];
        r = (int32_t)((lo << 8) + (a & 255u) * (td_rnn_sigmoid_nodes[k + 1] - lo));
    }
    r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
    return r >> 8;
}

static int32_t td_rnn_sat16(int32_t v)
{
    return td_clamp_s32(v, -32768, 32767);
}

static int8_t td_rnn_sat8(int32_t v)
{
    return (int8_t)td_clamp_s32(v, -128, 127);
}

/* Q3.12 gate term: acc + w . v requantized (saturating int16) */
static int32_t td_rnn_term(int32_t n, const int8_t *w, const int8_t *v,
                           int32_t acc, int32_t multiplier, int32_t shift)
{
    return td_rnn_sat16(td_mbqm(TD_RNN_DOT(n, w, v, acc), multiplier, shift));
}

void TD_RNN_LSTM(const td_rnn_s8_params *p, const int8_t *x, const int8_t *w,
                 const int8_t *r, const int32_t *bias_in,
                const int32_t *bias_rec, const int8_t *h0, const int32_t *c0,
                int8_t *output, void *scratch)
{
    const int32_t hid = p->hidden_size, n_in = p->input_size;
    const int32_t seq = p->seq_len, batch = p->batch, dirs = p->num_directions;
    const int32_t rows = 4 * hid;
    int16_t *gates = (int16_t *)scratch;
    int16_t *c = gates + rows;
    int8_t *h = (int8_t *)(c + hid);
    for (int32_t d = 0; d < dirs; ++d) {
        const int32_t backward = dirs == 2 ? d : p->reverse;
        const int8_t *wd = w + (int64_t)d * rows * n_in;
        const int8_t *rd = r + (int64_t)d * rows * hid;
        const int32_t *bi = bias_in + d * rows, *br = bias_rec + d * rows;
        const int32_t *im = p->input_multiplier + d * rows;
        const int32_t *is = p->input_shift + d * rows;
        const int32_t *rm = p->recurrent_multiplier + d * rows;
        const int32_t *rs = p->recurrent_shift + d * rows;
        for (int32_t n = 0; n < batch; ++n) {
            const int64_t state = ((int64_t)d * batch + n) * hid;
            for (int32_t j = 0; j < hid; ++j) {
                h[j] = h0 != NULL ? h0[state + j] : 0;
                c[j] = c0 != NULL ? (int16_t)c0[state + j] : 0;
            }
            for (int32_t step = 0; step < seq; ++step) {
                const int32_t t = backward ? seq - 1 - step : step;
                const int8_t *xt = x + ((int64_t)t * batch + n) * n_in;
                for (int32_t k = 0; k < rows; ++k) {
                    const int32_t gx = td_rnn_term(n_in, wd + (int64_t)k * n_in, xt, bi[k], im[k], is[k]);
                    const int32_t gh = td_rnn_term(hid, rd + (int64_t)k * hid, h, br[k], rm[k], rs[k]);
                    gates[k] = (int16_t)td_rnn_sat16(gx + gh);
                }
                for (int32_t j = 0; j < hid; ++j) {
                    const int32_t ig = td_rnn_sigmoid(3 * gates[j]);
                    const int32_t og = td_rnn_sigmoid(3 * gates[hid + j]);
                    const int32_t fg = td_rnn_sigmoid(3 * gates[2 * hid + j]);
                    const int32_t cg = td_rnn_tanh(3 * gates[3 * hid + j]);
                    const int32_t kept = td_rnn_sat16(td_mbqm(fg * c[j], p->forget_cell_multiplier,
                                                              p->forget_cell_shift));
                    const int32_t added = td_rnn_sat16(td_mbqm(ig * cg, p->input_cell_multiplier,
                                                               p->input_cell_shift));
                    const int32_t cv = td_rnn_sat16(kept + added);
                    const int32_t tc = td_rnn_tanh(td_rnn_prescale(cv, p->cell_tanh_multiplier, p->cell_tanh_shift));
                    c[j] = (int16_t)cv;
                    h[j] = td_rnn_sat8(td_mbqm(tc * og, p->hidden_multiplier, p->hidden_shift));
                }
                if (p->output == TD_RNN_S8_Y) {
                    int8_t *y = output + (((int64_t)t * dirs + d) * batch + n) * hid;
                    for (int32_t j = 0; j < hid; ++j) {
                        y[j] = h[j];
                    }
                }
            }
            if (p->output != TD_RNN_S8_Y) {
                for (int32_t j = 0; j < hid; ++j) {
                    output[state + j] = h[j];
                }
            }
        }
    }
}

void TD_RNN_GRU(const td_rnn_s8_params *p, const int8_t *x, const int8_t *w,
               const int8_t *r, const int32_t *bias_in,
               const int32_t *bias_rec, const int32_t *h0, int8_t *output,
               void *scratch)
{
    const int32_t hid = p->hidden_size, n_in = p->input_size;
    const int32_t seq = p->seq_len, batch = p->batch, dirs = p->num_directions;
    const int32_t rows = 3 * hid;
    int16_t *gates = (int16_t *)scratch;
    int16_t *hs = gates + rows;
    int8_t *h = (int8_t *)(hs + hid);
    int8_t *rh = h + hid;
    for (int32_t d = 0; d < dirs; ++d) {
        const int32_t backward = dirs == 2 ? d : p->reverse;
        const int8_t *wd = w + (int64_t)d * rows * n_in;
        const int8_t *rd = r + (int64_t)d * rows * hid;
        const int32_t *bi = bias_in + d * rows, *br = bias_rec + d * rows;
        const int32_t *im = p->input_multiplier + d * rows;
        const int32_t *is = p->input_shift + d * rows;
        const int32_t *rm = p->recurrent_multiplier + d * rows;
        const int32_t *rs = p->recurrent_shift + d * rows;
        for (int32_t n = 0; n < batch; ++n) {
            const int64_t state = ((int64_t)d * batch + n) * hid;
            for (int32_t j = 0; j < hid; ++j) {
                hs[j] = h0 != NULL ? (int16_t)h0[state + j] : 0;
                h[j] = td_rnn_sat8(td_rdbpot(hs[j], 8));
            }
            for (int32_t step = 0; step < seq; ++step) {
                const int32_t t = backward ? seq - 1 - step : step;
                const int8_t *xt = x + ((int64_t)t * batch + n) * n_in;
                /* update (z) and reset (r) gates */
                for (int32_t k = 0; k < 2 * hid; ++k) {
                    const int32_t gx = td_rnn_term(n_in, wd + (int64_t)k * n_in, xt, bi[k], im[k], is[k]);
                    const int32_t gh = td_rnn_term(hid, rd + (int64_t)k * hid, h, br[k], rm[k], rs[k]);
                    gates[k] = (int16_t)td_rnn_sigmoid(3 * td_rnn_sat16(gx + gh));
                }
                /* candidate: the reset gate scales R h (+ its bias), or h before R */
                const int8_t *hv = h;
                if (!p->linear_before_reset) {
                    for (int32_t j = 0; j < hid; ++j) {
                        rh[j] = td_rnn_sat8(td_rdbpot(gates[hid + j] * h[j], 15));
                    }
                    hv = rh;
                }
                for (int32_t j = 0; j < hid; ++j) {
                    const int32_t k = 2 * hid + j;
                    const int32_t gx = td_rnn_term(n_in, wd + (int64_t)k * n_in, xt, bi[k], im[k], is[k]);
                    int32_t gh = td_rnn_term(hid, rd + (int64_t)k * hid, hv, br[k], rm[k], rs[k]);
                    if (p->linear_before_reset) {
                        gh = td_rdbpot(gates[hid + j] * gh, 15);
                    }
                    gates[k] = (int16_t)td_rnn_tanh(3 * td_rnn_sat16(gx + gh));
                }
                for (int32_t j = 0; j < hid; ++j) {
                    const int32_t z = gates[j];
                    const int32_t v = td_rnn_sat16(td_rdbpot((32768 - z) * gates[2 * hid + j] + z * hs[j], 15));
                    hs[j] = (int16_t)v;
                    h[j] = td_rnn_sat8(td_rdbpot(v, 8));
                }
                if (p->output == TD_RNN_S8_Y) {
                    int8_t *y = output + (((int64_t)t * dirs + d) * batch + n) * hid;
                    for (int32_t j = 0; j < hid; ++j) {
                        y[j] = h[j];
                    }
                }
            }
            if (p->output != TD_RNN_S8_Y) {
                for (int32_t j = 0; j < hid; ++j) {
                    output[state + j] = h[j];
                }
            }
        }
    }
}

#endif /* TD_RNN_DOT && TD_RNN_LSTM && TD_RNN_GRU */
#endif
