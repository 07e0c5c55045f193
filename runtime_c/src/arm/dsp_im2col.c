/* Armv7E-M DSP: the im2col copy of td_arm_gemm.h with run-time shapes.  The
 * int8-weight convolutions (--optimize size/balanced) call it instead of the
 * inlined copy specialized per layer: one small function for every layer, a
 * few percent slower.  Same block layout as td_arm_im2col. */
#include "td_arm_gemm.h"

#if defined(__ARM_FEATURE_DSP)

void td_arm_im2col_rt(const int8_t *in, int16_t *blk, int p, int n, const td_arm_win *w)
{
    const int C = w->in_c, KW = w->k_w, KH = w->k_h, IW = w->in_w, IH = w->in_h;
    const int G = KW * C / 4, L = KW * C % 4, N4 = n * 4, zp = w->in_zero_point;
    const uint32_t zz = ((uint32_t)zp & 0xffffu) * 0x10001u;
    int oy = p / w->out_w, ox = p - oy * w->out_w, i, r, q, t;
    for (i = 0; i < n; ++i) {
        const int iy0 = oy * w->stride_h - w->pad_top, ix0 = ox * w->stride_w - w->pad_left;
        const int full_x = ix0 >= 0 && ix0 + KW <= IW;
        int16_t *dn = blk + i * 4;
        int16_t *dl = dn + KH * G * N4; /* the rows' leftover elements */
        for (r = 0; r < KH; ++r) {
            const int iy = iy0 + r;
            int16_t *d = dn + r * G * N4;
            if (iy < 0 || iy >= IH) {
                for (q = 0; q < G; ++q) {
                    td_arm_fill4(d + q * N4, zz);
                }
                for (t = 0; t < L; ++t) {
                    dl[((r * L + t) >> 2) * N4 + ((r * L + t) & 3)] = (int16_t)zp;
                }
            } else if (full_x) {
                const int8_t *src = in + (iy * IW + ix0) * C;
                for (q = 0; q < G; ++q) {
                    td_arm_widen4(d + q * N4, *(const td_u32u *)(const void *)(src + 4 * q));
                }
                for (t = 0; t < L; ++t) {
                    dl[((r * L + t) >> 2) * N4 + ((r * L + t) & 3)] = src[4 * G + t];
                }
            } else if (C % 4 == 0) {
                /* padding inside the row: whole taps of C / 4 groups */
                const int8_t *src = in + (iy * IW + ix0) * C;
                int kx;
                for (kx = 0; kx < KW; ++kx) {
                    int16_t *dk = d + kx * (C / 4) * N4;
                    const int inside = ix0 + kx >= 0 && ix0 + kx < IW;
                    for (q = 0; q < C / 4; ++q) {
                        if (inside) {
                            td_arm_widen4(dk + q * N4,
                                          *(const td_u32u *)(const void *)(src + kx * C + 4 * q));
                        } else {
                            td_arm_fill4(dk + q * N4, zz);
                        }
                    }
                }
            } else {
                td_arm_win_row(in, dn, N4, iy, ix0, IH, IW, C, KW, KH, r, zp);
            }
        }
        if (++ox == w->out_w) {
            ox = 0;
            ++oy;
        }
    }
}

#endif
