/* Recurrent layers in int8 for RISC-V vector cores (Zve32x / V): the
 * portable kernels' bodies (td_rnn_s8_body.h) with vector dot products
 * (int8 x int8 -> int16 products, vwredsum into an int32). Integer sums are
 * exact, so the results equal the portable kernels' bit for bit. Inline
 * assembly (RVV 1.0) as in rv_vector.c: GCC 12 does not allocate vector
 * registers, so the assembly names them. */
#include <stddef.h>

#include "td_rv_rnn.h"

#if !defined(__riscv_vector)
#error "rnn_rvv.c needs a RISC-V vector target (-march=..._zve32x or ...v)"
#endif

/* acc + w . v over n int8 values: strips of e8/m4, products in e16/m8,
 * summed into element 0 of v24 (e32) */
static int32_t td_rnn_dot_rvv(int32_t n, const int8_t *w, const int8_t *v, int32_t acc)
{
    size_t left = (size_t)n;
    while (left > 0) {
        size_t vl;
        __asm__ volatile(
            "vsetivli zero, 1, e32, m1, ta, mu\n\t"
            "vmv.s.x v24, %[acc]\n\t"
            "vsetvli %[vl], %[n], e8, m4, ta, mu\n\t"
            "vle8.v v8, (%[w])\n\t"
            "vle8.v v12, (%[v])\n\t"
            "vwmul.vv v16, v8, v12\n\t"
            "vsetvli zero, %[vl], e16, m8, ta, mu\n\t"
            "vwredsum.vs v24, v16, v24\n\t"
            "vsetivli zero, 1, e32, m1, ta, mu\n\t"
            "vmv.x.s %[acc], v24\n\t"
            : [vl] "=&r"(vl), [acc] "+r"(acc)
            : [n] "r"(left), [w] "r"(w), [v] "r"(v)
            : "memory");
        w += vl;
        v += vl;
        left -= vl;
    }
    return acc;
}

#define TD_RNN_DOT td_rnn_dot_rvv
#define TD_RNN_LSTM td_lstm_s8_rvv
#define TD_RNN_GRU td_gru_s8_rvv
#include "td_rnn_s8_body.h"
