/* tinydeploy runtime: the int8 LSTM and GRU for RISC-V vector cores
 * (riscv/rnn_rvv.c): td_lstm_s8 / td_gru_s8 (td_kernels_s8.h) with vector
 * dot products, same arguments, same results bit for bit. */
#ifndef TD_RV_RNN_H
#define TD_RV_RNN_H

#include "td_kernels_s8.h"

#if defined(__riscv_vector)
void td_lstm_s8_rvv(const td_rnn_s8_params *p, const int8_t *x, const int8_t *w,
                    const int8_t *r, const int32_t *bias_in,
                    const int32_t *bias_rec, const int8_t *h0, const int32_t *c0,
                    int8_t *output, void *scratch);
void td_gru_s8_rvv(const td_rnn_s8_params *p, const int8_t *x, const int8_t *w,
                   const int8_t *r, const int32_t *bias_in,
                   const int32_t *bias_rec, const int32_t *h0, int8_t *output,
                   void *scratch);
#endif

#endif
