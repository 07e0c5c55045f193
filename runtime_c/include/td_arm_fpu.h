/* tinydeploy runtime: float32 convolution (GEMM of VFMA blocks) and
 * depthwise 3x3 for Cortex-M cores with the DSP extension and an FPU.
 * Header only. */
#ifndef TD_ARM_FPU_H
#define TD_ARM_FPU_H

#include "td_arm_common.h"

#if defined(__ARM_FEATURE_DSP) && defined(__ARM_FP) && (__ARM_FP & 4)
/* ---------------------------------------------------------------------- */
/* float32 (FPU): convolution as a GEMM, depthwise 3x3                      */
/* ---------------------------------------------------------------------- */
/* Blocks of M (<= 4) output channels x N (<= 5) pixels: twenty VFMA
 * accumulators in the 32 single-precision registers, per K step N + M
 * loads.  The windows of N pixels are copied ([K][N], zero padding) into
 * scratch first.  Stream per block: bias[M], then K steps of [M] weights. */
TD_ARM_AI void td_f32_block(const float *x, const float **wpp, float *o, const int M,
                            const int N, const int K, const int OC, const float LO,
                            const float HI, const int XS)
{
    /* XS: 0 for an im2col block [K][N], else the input row stride (pixel n's
     * K values at x + n * XS: a pointwise convolution reads in place) */
    const float *w = *wpp;
    float acc[4][5];
    int m, n, k;
#pragma GCC unroll 4
    for (m = 0; m < M; ++m) {
#pragma GCC unroll 5
        for (n = 0; n < N; ++n) {
            acc[m][n] = w[m];
        }
    }
    w += M;
#pragma GCC unroll 4
    for (k = 0; k < K; ++k) {
        float xv[5], wv[4];
#pragma GCC unroll 5
        for (n = 0; n < N; ++n) {
            xv[n] = XS ? x[n * XS] : x[n];
        }
#pragma GCC unroll 4
        for (m = 0; m < M; ++m) {
            wv[m] = w[m];
        }
        x += XS ? 1 : N;
        w += M;
#pragma GCC unroll 4
        for (m = 0; m < M; ++m) {
#pragma GCC unroll 5
            for (n = 0; n < N; ++n) {
                acc[m][n] += wv[m] * xv[n];
            }
        }
    }
    *wpp = w;
#pragma GCC unroll 4
    for (m = 0; m < M; ++m) {
#pragma GCC unroll 5
        for (n = 0; n < N; ++n) {
            float v = acc[m][n];
            v = v < LO ? LO : v;
            o[n * OC + m] = v > HI ? HI : v;
        }
    }
}

TD_ARM_AI void td_f32_pixels(const float *x, const float *w, float *o, const int N,
                             const int K, const int OC, const float LO, const float HI,
                             const int XS)
{
    const float *wp = w;
    int c;
    for (c = 0; c + 4 <= OC; c += 4) {
        td_f32_block(x, &wp, o + c, 4, N, K, OC, LO, HI, XS);
    }
    if (OC % 4 == 3) {
        td_f32_block(x, &wp, o + c, 3, N, K, OC, LO, HI, XS);
    } else if (OC % 4 == 2) {
        td_f32_block(x, &wp, o + c, 2, N, K, OC, LO, HI, XS);
    } else if (OC % 4 == 1) {
        td_f32_block(x, &wp, o + c, 1, N, K, OC, LO, HI, XS);
    }
}

/* The windows of N output pixels from p, [K][N] with zeros outside. */
TD_ARM_AI void td_f32_im2col(const float *in, float *blk, int p, const int N, TD_ARM_WIN_ARGS)
{
    const int SEG = KW * C, K = KH * SEG;
    int n, r, j;
    int oy = p / OW, ox = p - (p / OW) * OW;
    (void)IZP;
    (void)K;
    (void)OH;
    for (n = 0; n < N; ++n) {
        const int iy0 = oy * SH - PT, ix0 = ox * SW - PL;
        const int full_x = ix0 >= 0 && ix0 + KW <= IW;
        for (r = 0; r < KH; ++r) {
            const int iy = iy0 + r;
            float *d = blk + r * SEG * N + n;
            if (iy < 0 || iy >= IH) {
                for (j = 0; j < SEG; ++j) {
                    d[j * N] = 0.0f;
                }
            } else if (full_x) {
                const float *src = in + (iy * IW + ix0) * C;
#pragma GCC unroll 8
                for (j = 0; j < SEG; ++j) {
                    d[j * N] = src[j];
                }
            } else {
                for (j = 0; j < SEG; ++j) {
                    const int ix = ix0 + j / C;
                    d[j * N] = ix >= 0 && ix < IW ? in[(iy * IW + ix) * C + j % C] : 0.0f;
                }
            }
        }
        if (++ox == OW) {
            ox = 0;
            ++oy;
        }
    }
}

TD_ARM_AI void td_f32_conv(const float *in, float *blk, const float *w, float *out, const int P,
                           const int OC, const float LO, const float HI, TD_ARM_WIN_ARGS)
{
    const int K = KH * KW * C;
    /* pointwise, stride 1, no padding: read the pixels in place */
    const int PW1 = KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 && PL == 0;
    int p;
#define TD_F32_STEP_(NN)                                                         \
    do {                                                                         \
        if (PW1) {                                                               \
            td_f32_pixels(in + p * C, w, out + p * OC, NN, K, OC, LO, HI, C);    \
        } else {                                                                 \
            td_f32_im2col(in, blk, p, NN, TD_ARM_WIN_PASS);                      \
            td_f32_pixels(blk, w, out + p * OC, NN, K, OC, LO, HI, 0);           \
        }                                                                        \
    } while (0)
    for (p = 0; p + 5 <= P; p += 5) {
        TD_F32_STEP_(5);
    }
    if (P % 5 == 4) {
        TD_F32_STEP_(4);
    } else if (P % 5 == 3) {
        TD_F32_STEP_(3);
    } else if (P % 5 == 2) {
        TD_F32_STEP_(2);
    } else if (P % 5 == 1) {
        TD_F32_STEP_(1);
    }
#undef TD_F32_STEP_
}

/* Depthwise 3x3: a ring of three channel-major rows ring[c][3][PU] (zeros
 * around the image); per channel the nine weights stay in registers and
 * the window slides along the row (three new loads per output at stride
 * 1).  Stream per channel: bias, w[3][3]. */
TD_ARM_AI void td_f32_dw_fill(const float *in, float *ring, int slot, int iy, const int IH,
                              const int IW, const int C, const int PU, const int PL)
{
    int c, x;
    if (iy < 0 || iy >= IH) {
        for (c = 0; c < C; ++c) {
            float *d = ring + (c * 3 + slot) * PU;
            for (x = 0; x < PU; ++x) {
                d[x] = 0.0f;
            }
        }
        return;
    }
    for (x = 0; x < IW; ++x) {
        const float *src = in + (iy * IW + x) * C;
        float *d = ring + slot * PU + PL + x;
#pragma GCC unroll 8
        for (c = 0; c < C; ++c) {
            d[c * 3 * PU] = src[c];
        }
    }
}

TD_ARM_AI void td_f32_dw3x3(const float *in, float *ring, const float *st, float *out,
                            const int IH, const int IW, const int C, const int OH,
                            const int OW, const int SV, const int SU, const int PT,
                            const int PL, const int PU, const int DIR, const float LO,
                            const float HI)
{
    int have[3] = {-1000, -1000, -1000};
    int n, k, c, u;
    for (k = 0; k < 3 * C * PU; ++k) {
        ring[k] = 0.0f;
    }
    for (n = 0; n < OH; ++n) {
        const int oy = DIR >= 0 ? n : OH - 1 - n;
        const int iy0 = oy * SV - PT;
        int sl[3];
        for (k = 0; k < 3; ++k) {
            const int iy = iy0 + (DIR >= 0 ? k : 2 - k);
            const int s = ((iy % 3) + 3) % 3;
            if (have[s] != iy) {
                td_f32_dw_fill(in, ring, s, iy, IH, IW, C, PU, PL);
                have[s] = iy;
            }
        }
        for (k = 0; k < 3; ++k) {
            sl[k] = (((iy0 + k) % 3) + 3) % 3;
        }
        for (c = 0; c < C; ++c) {
            const float *q = st + 10 * c;
            const float b = q[0], w0 = q[1], w1 = q[2], w2 = q[3], w3 = q[4], w4 = q[5];
            const float w5 = q[6], w6 = q[7], w7 = q[8], w8 = q[9];
            const float *r0 = ring + (c * 3 + sl[0]) * PU;
            const float *r1 = ring + (c * 3 + sl[1]) * PU;
            const float *r2 = ring + (c * 3 + sl[2]) * PU;
            float *o = out + oy * OW * C + c;
            if (SU == 1) {
                float a0 = r0[0], a1 = r0[1], b0 = r1[0], b1 = r1[1], c0 = r2[0], c1 = r2[1];
                for (u = 0; u < OW; ++u) {
                    const float a2 = r0[u + 2], b2 = r1[u + 2], c2 = r2[u + 2];
                    float v = b + w0 * a0 + w1 * a1 + w2 * a2 + w3 * b0 + w4 * b1 + w5 * b2 +
                              w6 * c0 + w7 * c1 + w8 * c2;
                    v = v < LO ? LO : v;
                    o[u * C] = v > HI ? HI : v;
                    a0 = a1;
                    a1 = a2;
                    b0 = b1;
                    b1 = b2;
                    c0 = c1;
                    c1 = c2;
                }
            } else {
                for (u = 0; u < OW; ++u) {
                    const float *x0 = r0 + u * SU, *x1 = r1 + u * SU, *x2 = r2 + u * SU;
                    float v = b + w0 * x0[0] + w1 * x0[1] + w2 * x0[2] + w3 * x1[0] + w4 * x1[1] +
                              w5 * x1[2] + w6 * x2[0] + w7 * x2[1] + w8 * x2[2];
                    v = v < LO ? LO : v;
                    o[u * C] = v > HI ? HI : v;
                }
            }
        }
    }
}
/* Depthwise 3x3, stride 1 along x, without scratch: reads the NHWC input
 * directly (nine weights in registers, the window slides along the row);
 * a kernel row outside the image gets zero weights (and reads a valid row),
 * a column outside the image reads as zero. */
TD_ARM_AI void td_f32_dw3x3_direct(const float *in, const float *st, float *out, const int IH,
                                   const int IW, const int C, const int OH, const int OW,
                                   const int SV, const int PT, const int PL, const float LO,
                                   const float HI)
{
    /* outputs u < UIN read columns u - PL .. u - PL + 2 all inside the image */
    const int UIN = IW - 2 + PL < OW ? IW - 2 + PL : OW;
    int oy, c, u, r;
    for (oy = 0; oy < OH; ++oy) {
        const int iy0 = oy * SV - PT;
        const float *rows[3];
        float on[3];
        for (r = 0; r < 3; ++r) {
            const int iy = iy0 + r;
            const int ok = iy >= 0 && iy < IH;
            rows[r] = in + (ok ? iy : (iy0 + 1 >= 0 && iy0 + 1 < IH ? iy0 + 1 : 0)) * IW * C;
            on[r] = ok ? 1.0f : 0.0f;
        }
        for (c = 0; c < C; ++c) {
            const float *q = st + 10 * c;
            const float b = q[0];
            const float w0 = q[1] * on[0], w1 = q[2] * on[0], w2 = q[3] * on[0];
            const float w3 = q[4] * on[1], w4 = q[5] * on[1], w5 = q[6] * on[1];
            const float w6 = q[7] * on[2], w7 = q[8] * on[2], w8 = q[9] * on[2];
            const float *r0 = rows[0] + c, *r1 = rows[1] + c, *r2 = rows[2] + c;
            float *o = out + oy * OW * C + c;
            float a0 = PL ? 0.0f : r0[0], a1 = PL ? r0[0] : r0[C];
            float b0 = PL ? 0.0f : r1[0], b1 = PL ? r1[0] : r1[C];
            float c0 = PL ? 0.0f : r2[0], c1 = PL ? r2[0] : r2[C];
            r0 += (2 - PL) * C;
            r1 += (2 - PL) * C;
            r2 += (2 - PL) * C;
            for (u = 0; u < OW; ++u) {
                float a2 = 0.0f, b2 = 0.0f, c2 = 0.0f, v;
                if (u < UIN) {
                    a2 = *r0;
                    b2 = *r1;
                    c2 = *r2;
                    r0 += C;
                    r1 += C;
                    r2 += C;
                }
                v = b + w0 * a0 + w1 * a1 + w2 * a2 + w3 * b0 + w4 * b1 + w5 * b2 + w6 * c0 +
                    w7 * c1 + w8 * c2;
                v = v < LO ? LO : v;
                o[u * C] = v > HI ? HI : v;
                a0 = a1;
                a1 = a2;
                b0 = b1;
                b1 = b2;
                c0 = c1;
                c1 = c2;
            }
        }
    }
}
#endif /* __ARM_FP */

#endif
