/* Armv7E-M DSP: the im2col copy of td_arm_gemm.h with run-time shapes.  The
 * int8-weight convolutions (--optimize size/balanced) call it instead of the
 * inlined copy specialized per layer: one small function for every layer.
 * Same block layout as td_arm_im2col ([K/4][n][4] int16 in SXTB16 lane
 * order, then the window rows' leftover elements).  The copy loops move a
 * word per step with pointer increments only (no index arithmetic): they
 * run for every output pixel of every int8-weight convolution. */
#include "td_arm_gemm.h"

#if defined(__ARM_FEATURE_DSP)

/* Window rows up to this many bytes with padding inside them (C % 4 != 0) are
 * assembled on the stack first. */
#define TD_IM2COL_ROW_BYTES 48

/* g groups of four int8 from src (any alignment) widened to d, d + n4, ... */
__attribute__((noinline)) static void td_im2col_groups(int16_t *d, const int8_t *src, int g, const int n4)
{
    for (; g > 0; --g, src += 4, d += n4) {
        td_arm_widen4(d, *(const td_u32u *)(const void *)src);
    }
}

/* Three pixels at once: g groups of each of src, src + step, src + 2 step to
 * d, which the block's [K/4][3][4] layout makes contiguous.  In assembly:
 * GCC spills the three source pointers of the C loop. */
__attribute__((noinline)) static void td_im2col_groups3(int16_t *d, const int8_t *src, int step, int g)
{
    const int8_t *s1 = src + step, *s2 = src + 2 * step;
    uint32_t v0, v1, v2, t;
    for (; g > 0; --g) {
        __asm__ volatile("ldr %[v0], [%[s0]], #4\n\tldr %[v1], [%[s1]], #4\n\t"
                         "ldr %[v2], [%[s2]], #4\n\t"
                         "sxtb16 %[t], %[v0]\n\tsxtb16 %[v0], %[v0], ror #8\n\t"
                         "strd %[t], %[v0], [%[d]], #8\n\t"
                         "sxtb16 %[t], %[v1]\n\tsxtb16 %[v1], %[v1], ror #8\n\t"
                         "strd %[t], %[v1], [%[d]], #8\n\t"
                         "sxtb16 %[t], %[v2]\n\tsxtb16 %[v2], %[v2], ror #8\n\t"
                         "strd %[t], %[v2], [%[d]], #8"
                         : [s0] "+r"(src), [s1] "+r"(s1), [s2] "+r"(s2), [d] "+r"(d),
                           [v0] "=&r"(v0), [v1] "=&r"(v1), [v2] "=&r"(v2), [t] "=&r"(t)
                         : : "memory");
    }
}

/* g groups of the zero point. */
static inline void td_im2col_fill(int16_t *d, int g, const int n4, uint32_t zz)
{
    for (; g > 0; --g, d += n4) {
        td_arm_fill4(d, zz);
    }
}

/* A block of three pixels of one output row whose windows lie inside the
 * image along x: row by row, the three pixels together (step: bytes between
 * their windows). */
__attribute__((noinline)) static void td_im2col_row3(const int8_t *in, int16_t *blk, int iy0, int ix0, int step,
                           const td_arm_win *w)
{
    const int C = w->in_c, KW = w->k_w, KH = w->k_h, IW = w->in_w, IH = w->in_h;
    const int G = KW * C / 4, L = KW * C % 4, zp = w->in_zero_point;
    const uint32_t zz = ((uint32_t)zp & 0xffffu) * 0x10001u;
    int16_t *d = blk, *dl = blk + KH * G * 12;
    int r, t, i, left = 0;
    for (r = 0; r < KH; ++r, d += G * 12) {
        const int iy = iy0 + r;
        if (iy < 0 || iy >= IH) {
            td_im2col_fill(d, 3 * G, 4, zz);
            for (t = 0; t < L; ++t, ++left) {
                for (i = 0; i < 3; ++i) {
                    dl[(left >> 2) * 12 + 4 * i + (left & 3)] = (int16_t)zp;
                }
            }
        } else {
            const int8_t *src = in + (iy * IW + ix0) * C;
            td_im2col_groups3(d, src, step, G);
            for (t = 0; t < L; ++t, ++left) {
                for (i = 0; i < 3; ++i) {
                    dl[(left >> 2) * 12 + 4 * i + (left & 3)] = src[i * step + 4 * G + t];
                }
            }
        }
    }
}

/* The pointwise case (1x1, stride 1, no padding): the n pixels are contiguous. */
static void td_im2col_pointwise(const int8_t *src, int16_t *blk, const int n, int c)
{
    const int g = c / 4, l = c % 4, n4 = 4 * n;
    int16_t *dl = blk + g * n4;
    int i, t;
    if (n == 3) {
        td_im2col_groups3(blk, src, c, g);
    } else {
        for (i = 0; i < n; ++i) {
            td_im2col_groups(blk + 4 * i, src + i * c, g, n4);
        }
    }
    for (i = 0; i < n; ++i, src += c) {
        for (t = 0; t < l; ++t) {
            dl[4 * i + t] = src[4 * g + t];
        }
    }
}

void td_arm_im2col_rt(const int8_t *in, int16_t *blk, int p, int n, const td_arm_win *w)
{
    /* every field in a local: the asm stores clobber memory, the struct would be re-read */
    const int C = w->in_c, KW = w->k_w, KH = w->k_h, IW = w->in_w, IH = w->in_h, OW = w->out_w;
    const int SH = w->stride_h, SW = w->stride_w, PT = w->pad_top, PL = w->pad_left;
    const int G = KW * C / 4, L = KW * C % 4, N4 = n * 4, zp = w->in_zero_point;
    const uint32_t zz = ((uint32_t)zp & 0xffffu) * 0x10001u;
    int oy = p / OW, ox = p - oy * OW, i, r, t;
    if (KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 && PL == 0) {
        td_im2col_pointwise(in + p * C, blk, n, C);
        return;
    }
    if (n == 3 && ox + 2 < OW && ox * SW >= PL && (ox + 2) * SW - PL + KW <= IW) {
        /* the common case: three pixels of one output row, no padding along x */
        td_im2col_row3(in, blk, oy * SH - PT, ox * SW - PL, SW * C, w);
        return;
    }
    for (i = 0; i < n; ++i) {
        const int iy0 = oy * SH - PT, ix0 = ox * SW - PL;
        const int full_x = ix0 >= 0 && ix0 + KW <= IW;
        int16_t *d = blk + i * 4;  /* the pixel's groups, row after row */
        int16_t *dl = d + KH * G * N4; /* the rows' leftover elements */
        int left = 0;              /* leftover elements so far */
        for (r = 0; r < KH; ++r, d += G * N4) {
            const int iy = iy0 + r;
            /* pointers only inside the input (one before the arena is undefined) */
            const int row = (iy * IW + ix0) * C;
            if (iy < 0 || iy >= IH) {
                td_im2col_fill(d, G, N4, zz);
                for (t = 0; t < L; ++t, ++left) {
                    dl[(left >> 2) * N4 + (left & 3)] = (int16_t)zp;
                }
            } else if (full_x) {
                const int8_t *src = in + row;
                td_im2col_groups(d, src, G, N4);
                for (t = 0; t < L; ++t, ++left) {
                    dl[(left >> 2) * N4 + (left & 3)] = src[4 * G + t];
                }
            } else if (C % 4 == 0) {
                /* padding inside the row: whole taps of C / 4 groups */
                int kx;
                for (kx = 0; kx < KW; ++kx) {
                    int16_t *dk = d + kx * (C / 4) * N4;
                    if (ix0 + kx >= 0 && ix0 + kx < IW) {
                        td_im2col_groups(dk, in + (row + kx * C), C / 4, N4);
                    } else {
                        td_im2col_fill(dk, C / 4, N4, zz);
                    }
                }
            } else if (KW * C <= TD_IM2COL_ROW_BYTES) {
                /* padding inside the row, C % 4 != 0 (a first layer): the row with
                 * its padding assembled in a small buffer, then copied as a full row */
                int8_t row_buf[TD_IM2COL_ROW_BYTES];
                const int lo = ix0 < 0 ? -ix0 * C : 0;
                const int hi = ix0 + KW > IW ? (IW - ix0) * C : KW * C;
                int e;
                for (e = 0; e < KW * C; ++e) {
                    row_buf[e] = e >= lo && e < hi ? in[row + e] : (int8_t)zp;
                }
                td_im2col_groups(d, row_buf, G, N4);
                for (t = 0; t < L; ++t, ++left) {
                    dl[(left >> 2) * N4 + (left & 3)] = row_buf[4 * G + t];
                }
            } else {
                /* the same, element by element, the first 4G in SXTB16 lane order
                 * (0, 2, 1, 3), then the leftover */
                int kx, ch, e = 0;
                for (kx = 0; kx < KW; ++kx) {
                    const int inside = ix0 + kx >= 0 && ix0 + kx < IW;
                    for (ch = 0; ch < C; ++ch, ++e) {
                        const int16_t v = inside ? (int16_t)in[row + e] : (int16_t)zp;
                        if (e < 4 * G) {
                            d[(e >> 2) * N4 + ((e & 3) == 1 ? 2 : (e & 3) == 2 ? 1 : (e & 3))] = v;
                        } else {
                            dl[(left >> 2) * N4 + (left & 3)] = v;
                            ++left;
                        }
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

#endif
