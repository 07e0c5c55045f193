/* Armv7E-M DSP: the im2col copy of td_arm_gemm.h with run-time shapes.  The
 * int8-weight convolutions (--optimize size/balanced) call it instead of the
 * inlined copy specialized per layer: one small function for every layer, a
 * few percent slower.  Same block layout as td_arm_im2col. */
#include "td_arm_gemm.h"

#if defined(__ARM_FEATURE_DSP)

/* Element t of a window's leftover part (after its whole 4-groups) of row r. */
#define TD_LEFT_(r, t) dl[(((r) * L + (t)) >> 2) * N4 + (((r) * L + (t)) & 3)]

void td_arm_im2col_rt(const int8_t *in, int16_t *blk, int p, int n, const td_arm_win *w)
{
    /* every field in a local: the asm stores clobber memory, the struct would be re-read */
    const int C = w->in_c, KW = w->k_w, KH = w->k_h, IW = w->in_w, IH = w->in_h, OW = w->out_w;
    const int SH = w->stride_h, SW = w->stride_w, PT = w->pad_top, PL = w->pad_left;
    const int G = KW * C / 4, L = KW * C % 4, N4 = n * 4, zp = w->in_zero_point;
    const uint32_t zz = ((uint32_t)zp & 0xffffu) * 0x10001u;
    int oy = p / OW, ox = p - oy * OW, i, r, q, t;
    if (KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 && PL == 0) {
        /* pointwise: the n pixels are contiguous */
        const int8_t *src = in + p * C;
        int16_t *dl = blk + G * N4;
        for (i = 0; i < n; ++i, src += C) {
            int16_t *d = blk + i * 4;
            for (q = 0; q < G; ++q, d += N4) {
                td_arm_widen4(d, *(const td_u32u *)(const void *)(src + 4 * q));
            }
            for (t = 0; t < L; ++t) {
                dl[i * 4 + t] = src[4 * G + t];
            }
        }
        return;
    }
    for (i = 0; i < n; ++i) {
        const int iy0 = oy * SH - PT, ix0 = ox * SW - PL;
        const int full_x = ix0 >= 0 && ix0 + KW <= IW;
        int16_t *dn = blk + i * 4;
        int16_t *dl = dn + KH * G * N4; /* the rows' leftover elements */
        for (r = 0; r < KH; ++r) {
            const int iy = iy0 + r;
            int16_t *d = dn + r * G * N4;
            /* pointers only inside the input (one before the arena is undefined) */
            const int row = (iy * IW + ix0) * C;
            if (iy < 0 || iy >= IH) {
                for (q = 0; q < G; ++q) {
                    td_arm_fill4(d + q * N4, zz);
                }
                for (t = 0; t < L; ++t) {
                    TD_LEFT_(r, t) = (int16_t)zp;
                }
            } else if (full_x) {
                const int8_t *src = in + row;
                for (q = 0; q < G; ++q) {
                    td_arm_widen4(d + q * N4, *(const td_u32u *)(const void *)(src + 4 * q));
                }
                for (t = 0; t < L; ++t) {
                    TD_LEFT_(r, t) = src[4 * G + t];
                }
            } else if (C % 4 == 0) {
                /* padding inside the row: whole taps of C / 4 groups */
                int kx;
                for (kx = 0; kx < KW; ++kx) {
                    int16_t *dk = d + kx * (C / 4) * N4;
                    const int inside = ix0 + kx >= 0 && ix0 + kx < IW;
                    for (q = 0; q < C / 4; ++q) {
                        if (inside) {
                            td_arm_widen4(dk + q * N4,
                                          *(const td_u32u *)(const void *)(in + (row + kx * C + 4 * q)));
                        } else {
                            td_arm_fill4(dk + q * N4, zz);
                        }
                    }
                }
            } else {
                /* padding inside the row, C % 4 != 0: element by element */
                int e;
                for (e = 0; e < KW * C; ++e) {
                    const int kx = e / C;
                    const int16_t v = ix0 + kx >= 0 && ix0 + kx < IW ? (int16_t)in[row + e] : (int16_t)zp;
                    if (e < 4 * G) {
                        /* SXTB16 lane order within a group: 0, 2, 1, 3 */
                        d[(e >> 2) * N4 + ((e & 3) == 1 ? 2 : (e & 3) == 2 ? 1 : (e & 3))] = v;
                    } else {
                        TD_LEFT_(r, e - 4 * G) = v;
                    }
                }
            }
        }
        if (++ox == OW) {
            ox = 0;
            ++oy;
        }
    }
}

#undef TD_LEFT_

#endif
