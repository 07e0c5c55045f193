/* tinydeploy runtime: the int8 LSTM and GRU for Cortex-M with the DSP
 * extension (arm/rnn_dsp.c, SMLAD dot products) or Helium (arm/rnn_mve.c,
 * VMLADAVA dot products): td_lstm_s8 / td_gru_s8 (td_kernels_s8.h), same
 * arguments, same results bit for bit. */
#ifndef TD_ARM_RNN_H
#define TD_ARM_RNN_H

#include "td_kernels_s8.h"

#if defined(__ARM_FEATURE_DSP)
void td_lstm_s8_dsp(const td_rnn_s8_params *p, const int8_t *x, const int8_t *w,
                    const int8_t *r, const int32_t *bias_in,
                    const int32_t *bias_rec, const int8_t *h0, const int32_t *c0,
                    int8_t *output, void *scratch);
void td_gru_s8_dsp(const td_rnn_s8_params *p, const int8_t *x, const int8_t *w,
                   const int8_t *r, const int32_t *bias_in,
                   const int32_t *bias_rec, const int32_t *h0, int8_t *output,
                   void *scratch);
#endif
#if defined(__ARM_FEATURE_MVE)
void td_lstm_s8_mve(const td_rnn_s8_params *p, const int8_t *x, const int8_t *w,
                    const int8_t *r, const int32_t *bias_in,
                    const int32_t *bias_rec, const int8_t *h0, const int32_t *c0,
                    int8_t *output, void *scratch);
void td_gru_s8_mve(const td_rnn_s8_params *p, const int8_t *x, const int8_t *w,
                   const int8_t *r, const int32_t *bias_in,
                   const int32_t *bias_rec, const int32_t *h0, int8_t *output,
                   void *scratch);
#endif

#endif
