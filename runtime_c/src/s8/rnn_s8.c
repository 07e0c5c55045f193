/* Recurrent layers in int8, portable: tinydeploy's integer LSTM and GRU
 * (the arithmetic: tinydeploy/ops/rnn.py; the kernels' bodies:
 * td_rnn_s8_body.h, shared with the Arm DSP variant). */
#include "td_kernels_s8.h"

/* acc + w . v over n int8 values */
static int32_t td_rnn_dot(int32_t n, const int8_t *w, const int8_t *v, int32_t acc)
{
    for (int32_t i = 0; i < n; ++i) {
        acc += (int32_t)w[i] * (int32_t)v[i];
    }
    return acc;
}

#define TD_RNN_DOT td_rnn_dot
#define TD_RNN_LSTM td_lstm_s8
#define TD_RNN_GRU td_gru_s8
#include "td_rnn_s8_body.h"
