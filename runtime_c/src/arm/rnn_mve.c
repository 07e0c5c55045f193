/* Recurrent layers in int8 for Cortex-M with Helium (MVE): the portable
 * kernels' bodies (td_rnn_s8_body.h) with the dot products 16 int8 pairs at
 * a time (VMLADAVA, the tail predicated). Integer sums are exact, so the
 * results equal the portable kernels' bit for bit. */
#include "td_arm_rnn.h"

#if defined(__ARM_FEATURE_MVE)

#include "td_arm_common.h"

/* acc + w . v over n int8 values (any alignment) */
static int32_t td_rnn_dot_mve(int32_t n, const int8_t *w, const int8_t *v, int32_t acc)
{
    while (n > 0) {
        const mve_pred16_t pr = vctp8q((uint32_t)n);
        acc = vmladavaq_s8(acc, vldrbq_z_s8(w, pr), vldrbq_z_s8(v, pr));
        w += 16;
        v += 16;
        n -= 16;
    }
    return acc;
}

#define TD_RNN_DOT td_rnn_dot_mve
#define TD_RNN_LSTM td_lstm_s8_mve
#define TD_RNN_GRU td_gru_s8_mve
#include "td_rnn_s8_body.h"

#endif
