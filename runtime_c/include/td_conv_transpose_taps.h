/* tinydeploy runtime: the taps of a transposed convolution, shared by
 * td_conv_transpose_f32 and td_conv_transpose_s8 (portable C99, inline only).
 *
 * Along one axis, output coordinate o sums the kernel taps k in [0, k_n)
 * whose input index i = (o + pad - k * dil) / stride is a whole number with
 * 0 <= i < size.  Those taps repeat every step = stride / gcd(stride, dil)
 * taps, the input index dropping by di = dil * step / stride each time, so
 * they are described by the first one and a count. */
#ifndef TD_CONV_TRANSPOSE_TAPS_H
#define TD_CONV_TRANSPOSE_TAPS_H

typedef struct {
    int k0;   /* first valid tap */
    int n;    /* number of valid taps: k0, k0 + step, ... */
    int i0;   /* input index of the first one */
    int di;   /* input index decrement per valid tap */
} td_tconv_taps;

static inline int td_tconv_step(int stride, int dil)
{
    int a = stride, b = dil;
    while (b != 0) {
        const int t = a % b;
        a = b;
        b = t;
    }
    return stride / a;
}

static inline void td_tconv_find_taps(int o, int pad, int dil, int stride,
                                      int step, int k_n, int size,
                                      td_tconv_taps *t)
{
    const int t0 = o + pad;
    int k = 0, i, n_k, n_i;
    t->k0 = 0;
    t->n = 0;
    t->i0 = 0;
    t->di = dil * step / stride;
    while (k < step && k < k_n && (t0 - k * dil) % stride != 0) {
        ++k;
    }
    if (k >= step || k >= k_n) {
        return;
    }
    i = (t0 - k * dil) / stride;
    if (i >= size) { /* skip the taps past the input's end */
        const int skip = (i - size) / t->di + 1;
        k += skip * step;
        i -= skip * t->di;
    }
    if (k >= k_n || i < 0) {
        return;
    }
    n_k = (k_n - 1 - k) / step + 1;
    n_i = i / t->di + 1;
    t->k0 = k;
    t->n = n_k < n_i ? n_k : n_i;
    t->i0 = i;
}

#endif
