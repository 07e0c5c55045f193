/* Recurrent layers for float32: ONNX LSTM and GRU with the default
 * activations, one layer per call, the time loop inside. The state (h, c)
 * and the gates live in the caller's scratch (planned in the arena). */
#include <stddef.h>

#include "td_f32_internal.h"

static float td_rnn_sigmoidf(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

static float td_rnn_dot(int32_t n, const float *a, const float *b, float acc)
{
    for (int32_t i = 0; i < n; ++i) {
        acc = TD_MAC(acc, a[i], b[i]);
    }
    return acc;
}

/* gates[j] = bias[j] + w[j] . x + r[j] . h for j < n */
static void td_rnn_gates(int32_t n, int32_t n_in, int32_t hid,
                         const float *w, const float *x, const float *r,
                         const float *h, const float *bias, float *gates)
{
    for (int32_t j = 0; j < n; ++j) {
        float acc = td_rnn_dot(n_in, w + (int64_t)j * n_in, x, bias[j]);
        gates[j] = td_rnn_dot(hid, r + (int64_t)j * hid, h, acc);
    }
}

static void td_rnn_copy(int32_t n, const float *src, float *dst)
{
    for (int32_t i = 0; i < n; ++i) {
        dst[i] = src[i];
    }
}

static void td_rnn_init(int32_t n, const float *src, float *dst)
{
    for (int32_t i = 0; i < n; ++i) {
        dst[i] = src != NULL ? src[i] : 0.0f;
    }
}

void td_lstm_f32(const td_rnn_f32_params *p, const float *x, const float *w,
                 const float *r, const float *b, const float *h0,
                 const float *c0, float *output, float *scratch)
{
    const int32_t hid = p->hidden_size, n_in = p->input_size;
    const int32_t seq = p->seq_len, batch = p->batch, dirs = p->num_directions;
    float *gates = scratch, *h = scratch + 4 * hid, *c = h + hid;
    for (int32_t d = 0; d < dirs; ++d) {
        const int32_t backward = dirs == 2 ? d : p->reverse;
        const float *wd = w + (int64_t)d * 4 * hid * n_in;
        const float *rd = r + (int64_t)d * 4 * hid * hid;
        const float *bd = b + (int64_t)d * 8 * hid;
        for (int32_t n = 0; n < batch; ++n) {
            const int64_t state = ((int64_t)d * batch + n) * hid;
            td_rnn_init(hid, h0 != NULL ? h0 + state : NULL, h);
            td_rnn_init(hid, c0 != NULL ? c0 + state : NULL, c);
            for (int32_t step = 0; step < seq; ++step) {
                const int32_t t = backward ? seq - 1 - step : step;
                /* bias: W's half plus R's half, as ONNX adds them */
                for (int32_t j = 0; j < 4 * hid; ++j) {
                    gates[j] = bd[j] + bd[4 * hid + j];
                }
                td_rnn_gates(4 * hid, n_in, hid, wd,
                             x + ((int64_t)t * batch + n) * n_in, rd, h,
                             gates, gates);
                for (int32_t j = 0; j < hid; ++j) {
                    const float ig = td_rnn_sigmoidf(gates[j]);
                    const float og = td_rnn_sigmoidf(gates[hid + j]);
                    const float fg = td_rnn_sigmoidf(gates[2 * hid + j]);
                    const float cg = tanhf(gates[3 * hid + j]);
                    c[j] = fg * c[j] + ig * cg;
                    h[j] = og * tanhf(c[j]);
                }
                if (p->output == TD_RNN_Y) {
                    td_rnn_copy(hid, h, output + (((int64_t)t * dirs + d) * batch + n) * hid);
                }
            }
            if (p->output == TD_RNN_Y_H) {
                td_rnn_copy(hid, h, output + state);
            } else if (p->output == TD_RNN_Y_C) {
                td_rnn_copy(hid, c, output + state);
            }
        }
    }
}

void td_gru_f32(const td_rnn_f32_params *p, const float *x, const float *w,
                const float *r, const float *b, const float *h0,
                float *output, float *scratch)
{
    const int32_t hid = p->hidden_size, n_in = p->input_size;
    const int32_t seq = p->seq_len, batch = p->batch, dirs = p->num_directions;
    float *gates = scratch, *h = scratch + 3 * hid, *rh = h + hid;
    for (int32_t d = 0; d < dirs; ++d) {
        const int32_t backward = dirs == 2 ? d : p->reverse;
        const float *wd = w + (int64_t)d * 3 * hid * n_in;
        const float *rd = r + (int64_t)d * 3 * hid * hid;
        const float *wb = b + (int64_t)d * 6 * hid, *rb = wb + 3 * hid;
        for (int32_t n = 0; n < batch; ++n) {
            const int64_t state = ((int64_t)d * batch + n) * hid;
            td_rnn_init(hid, h0 != NULL ? h0 + state : NULL, h);
            for (int32_t step = 0; step < seq; ++step) {
                const int32_t t = backward ? seq - 1 - step : step;
                const float *xt = x + ((int64_t)t * batch + n) * n_in;
                /* update and reset gates: x and h sides with both biases */
                for (int32_t j = 0; j < 2 * hid; ++j) {
                    gates[j] = wb[j] + rb[j];
                }
                td_rnn_gates(2 * hid, n_in, hid, wd, xt, rd, h, gates, gates);
                for (int32_t j = 0; j < 2 * hid; ++j) {
                    gates[j] = td_rnn_sigmoidf(gates[j]);
                }
                /* candidate: x side, then the reset gate on the h side */
                const float *wn = wd + (int64_t)2 * hid * n_in;
                const float *rn = rd + (int64_t)2 * hid * hid;
                if (p->linear_before_reset) {
                    for (int32_t j = 0; j < hid; ++j) {
                        const float hs = td_rnn_dot(hid, rn + (int64_t)j * hid, h, rb[2 * hid + j]);
                        const float xs = td_rnn_dot(n_in, wn + (int64_t)j * n_in, xt, wb[2 * hid + j]);
                        gates[2 * hid + j] = tanhf(xs + gates[hid + j] * hs);
                    }
                } else {
                    for (int32_t j = 0; j < hid; ++j) {
                        rh[j] = gates[hid + j] * h[j];
                    }
                    for (int32_t j = 0; j < hid; ++j) {
                        float acc = td_rnn_dot(n_in, wn + (int64_t)j * n_in, xt,
                                               wb[2 * hid + j] + rb[2 * hid + j]);
                        acc = td_rnn_dot(hid, rn + (int64_t)j * hid, rh, acc);
                        gates[2 * hid + j] = tanhf(acc);
                    }
                }
                for (int32_t j = 0; j < hid; ++j) {
                    const float z = gates[j];
                    h[j] = (1.0f - z) * gates[2 * hid + j] + z * h[j];
                }
                if (p->output == TD_RNN_Y) {
                    td_rnn_copy(hid, h, output + (((int64_t)t * dirs + d) * batch + n) * hid);
                }
            }
            if (p->output != TD_RNN_Y) {
                td_rnn_copy(hid, h, output + state);
            }
        }
    }
}
