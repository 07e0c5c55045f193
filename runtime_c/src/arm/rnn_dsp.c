/* Recurrent layers in int8 for Cortex-M with the DSP extension: the
 * portable kernels' bodies (td_rnn_s8_body.h) with the dot products four
 * int8 pairs at a time (SXTB16 + SMLAD). Integer sums are exact, so the
 * results equal the portable kernels' bit for bit. */
#include "td_arm_rnn.h"

#if defined(__ARM_FEATURE_DSP)

#include "td_arm_common.h"

/* acc + w . v over n int8 values (any alignment) */
static int32_t td_rnn_dot_dsp(int32_t n, const int8_t *w, const int8_t *v, int32_t acc)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t a = *(const td_u32u *)(const void *)(w + i);
        const uint32_t b = *(const td_u32u *)(const void *)(v + i);
        acc = __smlad((int16x2_t)__sxtb16((int8x4_t)a), (int16x2_t)__sxtb16((int8x4_t)b), acc);
        acc = __smlad((int16x2_t)td_arm_sxtb16_ror8(a), (int16x2_t)td_arm_sxtb16_ror8(b), acc);
    }
    for (; i < n; ++i) {
        acc += (int32_t)w[i] * (int32_t)v[i];
    }
    return acc;
}

#define TD_RNN_DOT td_rnn_dot_dsp
#define TD_RNN_LSTM td_lstm_s8_dsp
#define TD_RNN_GRU td_gru_s8_dsp
#include "td_rnn_s8_body.h"

#endif
