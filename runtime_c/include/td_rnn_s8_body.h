/* tinydeploy runtime: the bodies of the int8 LSTM and GRU kernels
 * (tinydeploy's own integer LSTM/GRU, documented in tinydeploy/ops/rnn.py; in
 * the style of TFLite's 8x8_16 LSTM, not bit-exact with it), shared by the
 * portable kernels (s8/rnn_s8.c) and the Arm DSP variant (arm/rnn_dsp.c).
 * The including source defines TD_RNN_DOT(n, w, v, acc) (acc plus the dot
 * product of n int8 values of w and v, exactly) and the two functions'
 * names TD_RNN_LSTM and TD_RNN_GRU; without them this header is empty.
 *
 * int8 activations and weights, int32 accumulators, Q3.12 int16 gate
 * pre-activations, Q0.15 int16 gates from table sigmoid/tanh, an int16 cell
 * state (LSTM, 2^-cell_frac) or Q0.15 hidden state (GRU), int8 hidden output
 * at 1/128. The state and the gates live in the caller's scratch. */
#ifndef TD_RNN_S8_BODY_H
#define TD_RNN_S8_BODY_H

#if defined(TD_RNN_DOT) && defined(TD_RNN_LSTM) && defined(TD_RNN_GRU)

#include <stddef.h>

#include "td_kernels_s8.h"

/* sigmoid and tanh in Q0.15 at the Q3.12 inputs k * 256 - 32768, k = 0..256
 * (tinydeploy.ops.rnn.activation_table; tests/test_rnn.py checks them). */
static const int16_t td_rnn_sigmoid[257] = {
    11, 12, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22,
    23, 25, 26, 28, 30, 32, 34, 36, 38, 41, 43, 46,
    49, 52, 56, 59, 63, 67, 72, 76, 81, 86, 92, 98,
    104, 111, 118, 125, 133, 142, 151, 161, 171, 182, 194, 206,
    219, 233, 248, 264, 281, 299, 318, 338, 360, 383, 407, 433,
    461, 490, 521, 554, 589, 627, 666, 708, 753, 800, 851, 904,
    961, 1021, 1084, 1152, 1223, 1299, 1379, 1464, 1554, 1649, 1750, 1856,
    1969, 2088, 2213, 2346, 2486, 2633, 2789, 2952, 3124, 3306, 3496, 3696,
    3906, 4126, 4357, 4599, 4851, 5115, 5391, 5678, 5978, 6289, 6613, 6949,
    7297, 7658, 8031, 8416, 8813, 9221, 9641, 10072, 10513, 10964, 11424, 11894,
    12371, 12856, 13348, 13845, 14347, 14852, 15361, 15872, 16384, 16896, 17407, 17916,
    18421, 18923, 19420, 19912, 20397, 20874, 21344, 21804, 22255, 22696, 23127, 23547,
    23955, 24352, 24737, 25110, 25471, 25819, 26155, 26479, 26790, 27090, 27377, 27653,
    27917, 28169, 28411, 28642, 28862, 29072, 29272, 29462, 29644, 29816, 29979, 30135,
    30282, 30422, 30555, 30680, 30799, 30912, 31018, 31119, 31214, 31304, 31389, 31469,
    31545, 31616, 31684, 31747, 31807, 31864, 31917, 31968, 32015, 32060, 32102, 32141,
    32179, 32214, 32247, 32278, 32307, 32335, 32361, 32385, 32408, 32430, 32450, 32469,
    32487, 32504, 32520, 32535, 32549, 32562, 32574, 32586, 32597, 32607, 32617, 32626,
    32635, 32643, 32650, 32657, 32664, 32670, 32676, 32682, 32687, 32692, 32696, 32701,
    32705, 32709, 32712, 32716, 32719, 32722, 32725, 32727, 32730, 32732, 32734, 32736,
    32738, 32740, 32742, 32743, 32745, 32746, 32747, 32749, 32750, 32751, 32752, 32753,
    32754, 32755, 32756, 32756, 32757
};

static const int16_t td_rnn_tanh[257] = {
    -32768, -32768, -32768, -32768, -32768, -32768, -32768, -32768, -32768, -32768, -32768, -32768,
    -32768, -32768, -32768, -32768, -32768, -32768, -32768, -32768, -32768, -32768, -32768, -32768,
    -32768, -32768, -32768, -32768, -32768, -32768, -32768, -32768, -32768, -32768, -32767, -32767,
    -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32766, -32766, -32766, -32766, -32765,
    -32765, -32765, -32764, -32764, -32763, -32762, -32762, -32761, -32760, -32759, -32758, -32756,
    -32755, -32753, -32751, -32749, -32746, -32743, -32740, -32736, -32732, -32727, -32721, -32715,
    -32708, -32700, -32691, -32681, -32670, -32657, -32642, -32625, -32606, -32584, -32560, -32532,
    -32501, -32466, -32426, -32381, -32329, -32271, -32206, -32132, -32048, -31953, -31846, -31726,
    -31589, -31435, -31262, -31067, -30847, -30600, -30322, -30010, -29660, -29268, -28830, -28341,
    -27797, -27191, -26519, -25776, -24956, -24054, -23066, -21986, -20813, -19542, -18173, -16706,
    -15143, -13486, -11743, -9919, -8025, -6073, -4075, -2045, 0, 2045, 4075, 6073,
    8025, 9919, 11743, 13486, 15143, 16706, 18173, 19542, 20813, 21986, 23066, 24054,
    24956, 25776, 26519, 27191, 27797, 28341, 28830, 29268, 29660, 30010, 30322, 30600,
    30847, 31067, 31262, 31435, 31589, 31726, 31846, 31953, 32048, 32132, 32206, 32271,
    32329, 32381, 32426, 32466, 32501, 32532, 32560, 32584, 32606, 32625, 32642, 32657,
    32670, 32681, 32691, 32700, 32708, 32715, 32721, 32727, 32732, 32736, 32740, 32743,
    32746, 32749, 32751, 32753, 32755, 32756, 32758, 32759, 32760, 32761, 32762, 32762,
    32763, 32764, 32764, 32765, 32765, 32765, 32766, 32766, 32766, 32766, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767
};

/* Q3.12 -> Q0.15 by the table, interpolating linearly between entries (the
 * tables increase: the difference is never negative). */
static int32_t td_rnn_lookup(const int16_t *table, int32_t x)
{
    const int32_t u = x + 32768;
    const int32_t i = u >> 8, frac = u & 255;
    const int32_t lo = table[i];
    return lo + ((((int32_t)table[i + 1] - lo) * frac + 128) >> 8);
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
    const int32_t rows = 4 * hid, cf = p->cell_frac;
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
                    const int32_t ig = td_rnn_lookup(td_rnn_sigmoid, gates[j]);
                    const int32_t og = td_rnn_lookup(td_rnn_sigmoid, gates[hid + j]);
                    const int32_t fg = td_rnn_lookup(td_rnn_sigmoid, gates[2 * hid + j]);
                    const int32_t cg = td_rnn_lookup(td_rnn_tanh, gates[3 * hid + j]);
                    const int32_t cv = td_rnn_sat16(td_rdbpot(fg * c[j], 15) + td_rdbpot(ig * cg, 30 - cf));
                    const int32_t tin = cf >= 12 ? td_rdbpot(cv, cf - 12)
                                                 : td_rnn_sat16(cv * (1 << (12 - cf)));
                    c[j] = (int16_t)cv;
                    h[j] = td_rnn_sat8(td_rdbpot(og * td_rnn_lookup(td_rnn_tanh, tin), 23));
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
                    gates[k] = (int16_t)td_rnn_lookup(td_rnn_sigmoid, td_rnn_sat16(gx + gh));
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
                    gates[k] = (int16_t)td_rnn_lookup(td_rnn_tanh, td_rnn_sat16(gx + gh));
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
