/* tinydeploy runtime: Helium (MVE) int8 convolution, fully connected and
 * depthwise 3x3.
 * td-requires: arm/mve_s8.c (td_mve_im2col) */
#ifndef TD_ARM_MVE_H
#define TD_ARM_MVE_H

#include "td_arm_requant.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__ARM_FEATURE_MVE)
/* ---------------------------------------------------------------------- */
/* Helium (MVE): convolution / fully connected                              */
/* ---------------------------------------------------------------------- */
/* int8 weights and activations, 16 MACs per VMLADAVA.S8.  A block is M
 * (4, 2 or 1) output channels x N (2 or 1) pixels; the pixels' windows are
 * copied (td_mve_im2col) into int8 rows of KC * 16 bytes (zero tail), so
 * every output reads contiguous memory.  VMLADAV accumulates into even
 * registers only: the accumulators are pinned to r0, r2, ..., r12, lr.
 *
 * Constant stream per block of M channels: bias'[M] (zero point folded,
 * unscaled), s[M] (acc2 = (acc + bias') << s), m[M], C[M], e[M], mask[M]
 * (see td_arm_rq), then KC chunks of [M][16] int8 weights. */
#define TD_MV_X_(n) "vldrb.8 %q[x" #n "], [%[p" #n "]], #16\n\t"
#define TD_MV_W_ "vldrb.8 %q[w], [%[wp]], #16\n\t"
#define TD_MV_A_(op, m, n) op " %[a" #m #n "], %q[x" #n "], %q[w]\n\t"
#define TD_MV_M2_(op, m) TD_MV_W_ TD_MV_A_(op, m, 0) TD_MV_A_(op, m, 1)
#define TD_MV_M1_(op, m) TD_MV_W_ TD_MV_A_(op, m, 0)
#define TD_MV_S42_(op) TD_MV_X_(0) TD_MV_X_(1) TD_MV_M2_(op, 0) TD_MV_M2_(op, 1) \
    TD_MV_M2_(op, 2) TD_MV_M2_(op, 3)
#define TD_MV_S41_(op) TD_MV_X_(0) TD_MV_M1_(op, 0) TD_MV_M1_(op, 1) TD_MV_M1_(op, 2) \
    TD_MV_M1_(op, 3)
#define TD_MV_S22_(op) TD_MV_X_(0) TD_MV_X_(1) TD_MV_M2_(op, 0) TD_MV_M2_(op, 1)
#define TD_MV_S21_(op) TD_MV_X_(0) TD_MV_M1_(op, 0) TD_MV_M1_(op, 1)
#define TD_MV_S12_(op) TD_MV_X_(0) TD_MV_X_(1) TD_MV_M2_(op, 0)
#define TD_MV_S11_(op) TD_MV_X_(0) TD_MV_M1_(op, 0)
#define TD_MV_Q_ [x0] "=&w"(x0), [x1] "=&w"(x1), [w] "=&w"(w)
#define TD_MV_P_ [p0] "+r"(p0), [p1] "+r"(p1), [wp] "+r"(pw)

/* One chunk of 16 K values for every accumulator of the block; FIRST:
 * VMLADAV (start from 0) instead of VMLADAVA. */
#define TD_MV_STEP_(M, N, FIRST)                                                         \
    do {                                                                                 \
        if (M == 4 && N == 2 && FIRST) {                                                 \
            __asm__ volatile(TD_MV_S42_("vmladav.s8")                                    \
                             : [a00] "=r"(a00), [a01] "=r"(a01), [a10] "=r"(a10),         \
                               [a11] "=r"(a11), [a20] "=r"(a20), [a21] "=r"(a21),         \
                               [a30] "=r"(a30), [a31] "=r"(a31), TD_MV_P_, TD_MV_Q_       \
                             : : "memory");                                              \
        } else if (M == 4 && N == 2) {                                                   \
            __asm__ volatile(TD_MV_S42_("vmladava.s8")                                   \
                             : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10),         \
                               [a11] "+r"(a11), [a20] "+r"(a20), [a21] "+r"(a21),         \
                               [a30] "+r"(a30), [a31] "+r"(a31), TD_MV_P_, TD_MV_Q_       \
                             : : "memory");                                              \
        } else if (M == 4 && FIRST) {                                                    \
            __asm__ volatile(TD_MV_S41_("vmladav.s8")                                    \
                             : [a00] "=r"(a00), [a10] "=r"(a10), [a20] "=r"(a20),          \
                               [a30] "=r"(a30), TD_MV_P_, TD_MV_Q_ : : "memory");         \
        } else if (M == 4) {                                                             \
            __asm__ volatile(TD_MV_S41_("vmladava.s8")                                   \
                             : [a00] "+r"(a00), [a10] "+r"(a10), [a20] "+r"(a20),          \
                               [a30] "+r"(a30), TD_MV_P_, TD_MV_Q_ : : "memory");         \
        } else if (M == 2 && N == 2 && FIRST) {                                          \
            __asm__ volatile(TD_MV_S22_("vmladav.s8")                                    \
                             : [a00] "=r"(a00), [a01] "=r"(a01), [a10] "=r"(a10),         \
                               [a11] "=r"(a11), TD_MV_P_, TD_MV_Q_ : : "memory");         \
        } else if (M == 2 && N == 2) {                                                   \
            __asm__ volatile(TD_MV_S22_("vmladava.s8")                                   \
                             : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10),         \
                               [a11] "+r"(a11), TD_MV_P_, TD_MV_Q_ : : "memory");         \
        } else if (M == 2 && FIRST) {                                                    \
            __asm__ volatile(TD_MV_S21_("vmladav.s8")                                    \
                             : [a00] "=r"(a00), [a10] "=r"(a10), TD_MV_P_, TD_MV_Q_       \
                             : : "memory");                                              \
        } else if (M == 2) {                                                             \
            __asm__ volatile(TD_MV_S21_("vmladava.s8")                                   \
                             : [a00] "+r"(a00), [a10] "+r"(a10), TD_MV_P_, TD_MV_Q_       \
                             : : "memory");                                              \
        } else if (N == 2 && FIRST) {                                                    \
            __asm__ volatile(TD_MV_S12_("vmladav.s8")                                    \
                             : [a00] "=r"(a00), [a01] "=r"(a01), TD_MV_P_, TD_MV_Q_       \
                             : : "memory");                                              \
        } else if (N == 2) {                                                             \
            __asm__ volatile(TD_MV_S12_("vmladava.s8")                                   \
                             : [a00] "+r"(a00), [a01] "+r"(a01), TD_MV_P_, TD_MV_Q_       \
                             : : "memory");                                              \
        } else if (FIRST) {                                                              \
            __asm__ volatile(TD_MV_S11_("vmladav.s8")                                    \
                             : [a00] "=r"(a00), TD_MV_P_, TD_MV_Q_ : : "memory");         \
        } else {                                                                         \
            __asm__ volatile(TD_MV_S11_("vmladava.s8")                                   \
                             : [a00] "+r"(a00), TD_MV_P_, TD_MV_Q_ : : "memory");         \
        }                                                                                \
    } while (0)

/* {a, b, c, d} from four core registers in two VMOVs. */
TD_ARM_AI int32x4_t td_mve_vec4(int32_t a, int32_t b, int32_t c, int32_t d)
{
    int32x4_t v;
    /* (QEMU and the architecture agree: the first register goes to the
     * lower lane of the pair) */
    __asm__("vmov %q0[2], %q0[0], %1, %2\n\tvmov %q0[3], %q0[1], %3, %4"
            : "=&w"(v) : "r"(a), "r"(c), "r"(b), "r"(d));
    return v;
}

/* v >> S for a template constant S: clang takes only integer constant
 * expressions for the _n intrinsics, so it shifts by a register (VSHL by a
 * negative amount is the same truncating arithmetic shift). */
#if TD_ARM_GCC
#define TD_MVE_ASR_(v, S) vshrq_n_s32((v), (S))
#else
#define TD_MVE_ASR_(v, S) vshlq_r_s32((v), -(S))
#endif

/* Requantize NP (1 or 2) pixels x four channels as vectors (uniform mode):
 * ((acc + bias') << s, VMULH m, + C [+ fix], >> E, clamp) -> 4 bytes each;
 * the channel constants are loaded once. */
TD_ARM_AI void td_mve_rq4x(int8_t *o, const int OC, const int NP, int32x4_t v0, int32x4_t v1,
                           const int32_t *r, TD_ARM_RQ_ARGS)
{
    const int32x4_t bias = vldrwq_s32(r), sh = vldrwq_s32(r + 4), m = vldrwq_s32(r + 8);
    const int32x4_t c = vldrwq_s32(r + 12);
    const int32x4_t lo = vdupq_n_s32(CLAMP ? LO : -128), hi = vdupq_n_s32(CLAMP ? HI : 127);
    int32x4_t c0 = c, c1 = c;
    (void)RS;
    v0 = vshlq_s32(vaddq_s32(v0, bias), sh);
    if (NP > 1) {
        v1 = vshlq_s32(vaddq_s32(v1, bias), sh);
    }
    if (FIX) {
        const int32x4_t mask = vldrwq_s32(r + 20);
        c0 = vaddq_s32(c, vandq_s32(vshrq_n_s32(v0, 31), mask));
        c1 = vaddq_s32(c, vandq_s32(vshrq_n_s32(v1, 31), mask));
    }
    v0 = TD_MVE_ASR_(vaddq_s32(vmulhq_s32(v0, m), c0), E > 0 ? E : 1);
    if (!FOLD) {
        v0 = vaddq_s32(v0, vdupq_n_s32(ZP));
    }
    vstrbq_s32(o, vminq_s32(vmaxq_s32(v0, lo), hi));
    if (NP > 1) {
        v1 = TD_MVE_ASR_(vaddq_s32(vmulhq_s32(v1, m), c1), E > 0 ? E : 1);
        if (!FOLD) {
            v1 = vaddq_s32(v1, vdupq_n_s32(ZP));
        }
        vstrbq_s32(o + OC, vminq_s32(vmaxq_s32(v1, lo), hi));
    }
}

/* One channel, scalar: acc2 = (acc + bias') << s, then td_arm_rq. */
TD_ARM_AI int32_t td_mve_rq1(int32_t acc, const int32_t *r, const int M, const int m,
                             TD_ARM_RQ_ARGS)
{
    int32_t k[4];
    const int32_t acc2 = (int32_t)((uint32_t)(acc + r[m]) << r[M + m]);
    k[0] = r[2 * M + m];
    k[1] = r[3 * M + m];
    k[2] = r[4 * M + m];
    k[3] = r[5 * M + m];
    (void)RS;
    return TD_ARM_RQ(acc2, k);
}

TD_ARM_AI void td_mve_block(const int8_t *x0p, const int8_t *x1p, const int8_t **wpp,
                            int8_t *o, int8_t *y0, const td_arm_epi *ep, const int M,
                            const int N, const int OC, const int KC, TD_ARM_RQ_ARGS,
                            TD_ARM_EPI_ARGS)
{
    const int32_t *r = (const int32_t *)(const void *)*wpp;
    register int32_t a00 __asm__("r0"), a01 __asm__("r2"), a10 __asm__("r4");
    register int32_t a11 __asm__("r6"), a20 __asm__("r8"), a21 __asm__("r10");
    register int32_t a30 __asm__("r12"), a31 __asm__("lr");
    register const int8_t *p0 __asm__("r1") = x0p;
    register const int8_t *p1 __asm__("r5") = x1p;
    register const int8_t *pw __asm__("r3") = *wpp + 24 * M;
    int8x16_t x0, x1, w;
    int k;
    a00 = a01 = a10 = a11 = a20 = a21 = a30 = a31 = 0;
    TD_MV_STEP_(M, N, 1);
#pragma GCC unroll 64
    for (k = 1; k < KC; ++k) {
        TD_MV_STEP_(M, N, 0);
    }
    *wpp = pw;
    {
        const int32_t b00 = a00, b01 = a01, b10 = a10, b11 = a11;
        const int32_t b20 = a20, b21 = a21, b30 = a30, b31 = a31;
        if (M == 4 && E >= 0 && !ADD) {
            const int32x4_t v0 = td_mve_vec4(b00, b10, b20, b30);
            const int32x4_t v1 = N == 2 ? td_mve_vec4(b01, b11, b21, b31) : v0;
            td_mve_rq4x(o, OC, N, v0, v1, r, TD_ARM_RQ_PASS);
        } else {
#define TD_MV_PUT_(m, n, acc) TD_ARM_PUT((n) * OC + (m), td_mve_rq1((acc), r, M, (m), TD_ARM_RQ_PASS))
            TD_MV_PUT_(0, 0, b00);
            if (N == 2) {
                TD_MV_PUT_(0, 1, b01);
            }
            if (M > 1) {
                TD_MV_PUT_(1, 0, b10);
                if (N == 2) {
                    TD_MV_PUT_(1, 1, b11);
                }
            }
            if (M > 2) {
                TD_MV_PUT_(2, 0, b20);
                TD_MV_PUT_(3, 0, b30);
                if (N == 2) {
                    TD_MV_PUT_(2, 1, b21);
                    TD_MV_PUT_(3, 1, b31);
                }
            }
#undef TD_MV_PUT_
        }
    }
}

/* Copy the windows of output pixels p and p + 1 (n = 1 or 2) into two rows
 * of KC * 16 int8 (zero point outside the image, zeros in the tail). */
void td_mve_im2col(const int8_t *in, int8_t *blk, int p, int n, int ih, int iw, int c,
                   int ow, int kh, int kw, int sh, int sw, int pt, int pl, int kc, int zp);

TD_ARM_AI void td_mve_pixels(const int8_t *x0p, const int8_t *x1p, const int8_t *w, int8_t *o,
                             int8_t *y0, const td_arm_epi *ep, const int N, const int OC,
                             const int KC, TD_ARM_RQ_ARGS, TD_ARM_EPI_ARGS)
{
    const int8_t *wp = w;
    int c;
    for (c = 0; c + 4 <= OC; c += 4) {
        td_mve_block(x0p, x1p, &wp, o + c, y0, ep, 4, N, OC, KC, TD_ARM_RQ_PASS, TD_ARM_EPI_PASS);
    }
    if (OC & 2) {
        td_mve_block(x0p, x1p, &wp, o + c, y0, ep, 2, N, OC, KC, TD_ARM_RQ_PASS, TD_ARM_EPI_PASS);
        c += 2;
    }
    if (OC & 1) {
        td_mve_block(x0p, x1p, &wp, o + c, y0, ep, 1, N, OC, KC, TD_ARM_RQ_PASS, TD_ARM_EPI_PASS);
    }
}

/* SEG (compile-time) bytes from src to dst, any alignment: 16-byte vectors,
 * then 8/4/2/1-byte scalar moves. */
TD_ARM_AI void td_mve_copy(int8_t *dst, const int8_t *src, const int SEG)
{
    int i;
#pragma GCC unroll 16
    for (i = 0; i + 16 <= SEG; i += 16) {
        vstrbq_s8(dst + i, vldrbq_s8(src + i));
    }
    if (SEG % 16 >= 8) {
        ((td_u32u *)(void *)(dst + i))[0] = ((const td_u32u *)(const void *)(src + i))[0];
        ((td_u32u *)(void *)(dst + i))[1] = ((const td_u32u *)(const void *)(src + i))[1];
        i += 8;
    }
    if (SEG % 8 >= 4) {
        *(td_u32u *)(void *)(dst + i) = *(const td_u32u *)(const void *)(src + i);
        i += 4;
    }
    if (SEG % 4 >= 2) {
        *(uint16_t *)(void *)(dst + i) = *(const uint16_t *)(const void *)(src + i);
        i += 2;
    }
    if (SEG % 2) {
        dst[i] = src[i];
    }
}

TD_ARM_AI void td_mve_set(int8_t *dst, const int ZP, const int SEG)
{
    const uint32_t zz = ((uint32_t)ZP & 0xffu) * 0x01010101u;
    int i;
#pragma GCC unroll 16
    for (i = 0; i + 16 <= SEG; i += 16) {
        vstrbq_s8(dst + i, vdupq_n_s8((int8_t)ZP));
    }
    for (; i + 4 <= SEG; i += 4) {
        *(td_u32u *)(void *)(dst + i) = zz;
    }
    for (; i < SEG; ++i) {
        dst[i] = (int8_t)ZP;
    }
}

/* The windows of n (1 or 2) output pixels from p into rows of KC * 16 int8
 * (the zero tails were written once by the caller). */
TD_ARM_AI void td_mve_im2col_t(const int8_t *in, int8_t *blk, int p, const int N, const int KC,
                               TD_ARM_WIN_ARGS)
{
    const int PW1 = KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 && PL == 0;
    const int NOPAD_X = PL == 0 && (OW - 1) * SW + KW <= IW;
    const int NOPAD_Y = PT == 0 && (OH - 1) * SH + KH <= IH;
    const int SEG = KW * C;
    int n, r;
    if (PW1) {
#pragma GCC unroll 2
        for (n = 0; n < N; ++n) {
            td_mve_copy(blk + n * KC * 16, in + (p + n) * C, C);
        }
        return;
    }
    {
        int oy = p / OW, ox = p - (p / OW) * OW;
#pragma GCC unroll 2
        for (n = 0; n < N; ++n) {
            const int iy0 = oy * SH - PT, ix0 = ox * SW - PL;
            const int full_x = NOPAD_X || (ix0 >= 0 && ix0 + KW <= IW);
            int8_t *d = blk + n * KC * 16;
#pragma GCC unroll 11
            for (r = 0; r < KH; ++r) {
                const int iy = iy0 + r;
                const int8_t *src = td_arm_row_at(in, (iy * IW + ix0) * C);
                if (!NOPAD_Y && (iy < 0 || iy >= IH)) {
                    td_mve_set(d + r * SEG, IZP, SEG);
                } else if (full_x) {
                    td_mve_copy(d + r * SEG, src, SEG);
                } else {
                    int kx;
#pragma GCC unroll 11
                    for (kx = 0; kx < KW; ++kx) {
                        const int ix = ix0 + kx;
                        if (ix >= 0 && ix < IW) {
                            td_mve_copy(d + r * SEG + kx * C, src + kx * C, C);
                        } else {
                            td_mve_set(d + r * SEG + kx * C, IZP, C);
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
}

/* A layer's arguments from its enum constants PREFIX_field (see
 * TD_ARM_WIN_PARAMS): pixels = P, out_c = OC, kc = KC (16-byte chunks per
 * window), dir = DIR, then the td_arm_win and td_arm_rq_cfg fields; _ADD_:
 * with the fused add. */
#define TD_MVE_CONV_PARAMS(L) L##_pixels, L##_out_c, L##_kc, L##_dir, TD_ARM_WIN_PARAMS(L), \
    TD_ARM_RQ_PARAMS(L), TD_ARM_EPI_PASS_NONE
#define TD_MVE_CONV_ADD_PARAMS(L) L##_pixels, L##_out_c, L##_kc, L##_dir, \
    TD_ARM_WIN_PARAMS(L), TD_ARM_RQ_PARAMS(L), TD_ARM_EPI_PARAMS(L)

/* The layer: P output pixels two at a time (DIR < 0: decreasing). */
TD_ARM_AI void td_mve_conv(const int8_t *in, int8_t *blk, const int8_t *w, int8_t *out,
                           const td_arm_epi *ep, const int P, const int OC, const int KC,
                           const int DIR, TD_ARM_WIN_ARGS, TD_ARM_RQ_ARGS, TD_ARM_EPI_ARGS)
{
    const int KLEN = KH * KW * C;
    int i;
    td_mve_set(blk + KLEN, 0, KC * 16 - KLEN);
    td_mve_set(blk + KC * 16 + KLEN, 0, KC * 16 - KLEN);
    for (i = 0; i + 2 <= P; i += 2) {
        const int p = DIR >= 0 ? i : P - i - 2;
        td_mve_im2col_t(in, blk, p, 2, KC, TD_ARM_WIN_PASS);
        td_mve_pixels(blk, blk + KC * 16, w, out + p * OC, out, ep, 2, OC, KC,
                      TD_ARM_RQ_PASS, TD_ARM_EPI_PASS);
    }
    if (P & 1) {
        const int p = DIR >= 0 ? P - 1 : 0;
        td_mve_im2col_t(in, blk, p, 1, KC, TD_ARM_WIN_PASS);
        td_mve_pixels(blk, blk, w, out + p * OC, out, ep, 1, OC, KC, TD_ARM_RQ_PASS,
                      TD_ARM_EPI_PASS);
    }
}
/* Fully connected reading its int8 input rows directly (K % 16 == 0, no
 * scratch): two rows at a time. */
TD_ARM_AI void td_mve_fc(const int8_t *in, const int8_t *w, int8_t *out,
                         const td_arm_fc_cfg *cfg)
{
    TD_ARM_RQ_LOCALS(&cfg->rq);
    const int ROWS = cfg->rows, K = cfg->in_features, OC = cfg->out_c;
    int r;
    for (r = 0; r + 2 <= ROWS; r += 2) {
        td_mve_pixels(in + r * K, in + (r + 1) * K, w, out + r * OC, out, NULL, 2, OC, K / 16,
                      TD_ARM_RQ_PASS, TD_ARM_EPI_PASS_NONE);
    }
    if (ROWS & 1) {
        td_mve_pixels(in + r * K, in + r * K, w, out + r * OC, out, NULL, 1, OC, K / 16,
                      TD_ARM_RQ_PASS, TD_ARM_EPI_PASS_NONE);
    }
}

/* ---------------------------------------------------------------------- */
/* Helium (MVE): depthwise 3x3                                             */
/* ---------------------------------------------------------------------- */
/* A ring of three input rows, channel-major int8 with the zero point
 * around the image: ring[c][slot][PU].  The row fill is a transposition:
 * eight channels of a pixel per VLDRB.S16 + scatter VSTRB.16.  An output
 * (u, c) is then one gather (the nine taps: lane 3 r + kx at offset
 * slot(r) * PU + kx, from one of three precomputed offset vectors for the
 * ring phase; lanes 9..15 have zero weights) and one VMLADAVA.S8 onto the
 * bias, then the scalar requantization (td_arm_rq, uniform mode).
 *
 * The stream: per channel 16 int8 weights (taps 3 ky + kx), then per
 * channel bias', s, m, C, mask (int32), then the 3 x 16 phase offsets. */
TD_ARM_AI void td_mve_dw_fill(const int8_t *in, int8_t *ring, int slot, int iy, const int IH,
                              const int IW, const int C, const int NC, const int PU,
                              const int PL, const int IZP)
{
    int c, x;
    if (iy < 0 || iy >= IH) {
        for (c = 0; c < NC; ++c) {
            td_mve_set(ring + (c * 3 + slot) * PU, IZP, PU);
        }
        return;
    }
    {
        /* scatter offsets: channel c0 + i lands at i * 3 * PU */
        const uint16x8_t off = vmulq_n_u16(vidupq_n_u16(0, 1), (uint16_t)(3 * PU));
        const int8_t *src = in + iy * IW * C;
        int8_t *dst = ring + slot * PU + PL;
        for (x = 0; x < IW; ++x) {
#pragma GCC unroll 8
            for (c = 0; c < NC; c += 8) {
                if (NC - c >= 8) {
                    vstrbq_scatter_offset_s16(dst + c * 3 * PU + x, off,
                                              vldrbq_s16(src + x * C + c));
                } else {
                    const mve_pred16_t pr = vctp16q((uint32_t)(NC - c));
                    vstrbq_scatter_offset_p_s16(dst + c * 3 * PU + x, off,
                                                vldrbq_z_s16(src + x * C + c, pr), pr);
                }
            }
        }
    }
}

/* Channels c0 .. c0 + NC - 1 of the layer (see td_mve_dw3x3); w: their
 * weight vectors, kr their constants, offs the gather offsets. */
TD_ARM_AI void td_mve_dw3x3_group(const int8_t *in, int8_t *ring, const int8_t *blob,
                                  const int32_t *kr, const uint8_t *offs, int8_t *out,
                                  const int IH, const int IW, const int C, const int NC,
                                  const int OH, const int OW, const int SV, const int SU,
                                  const int PT, const int PL, const int PU, const int IZP,
                                  const int DIR, TD_ARM_RQ_ARGS)
{
    /* rows loaded in order into rotating slots, as in td_arm_dw3x3_group */
    int nx = DIR >= 0 ? -PT : (OH - 1) * SV - PT + 2;
    int ns = 0, n, c, u;
    (void)RS;
    for (n = 0; n < OH; ++n) {
        const int oy = DIR >= 0 ? n : OH - 1 - n;
        const int iy0 = oy * SV - PT;
        int ph;
        uint8x16_t off;
        if (DIR >= 0) {
            nx = nx < iy0 ? iy0 : nx;
            for (; nx <= iy0 + 2; ++nx, ns = ns == 2 ? 0 : ns + 1) {
                td_mve_dw_fill(in, ring, ns, nx, IH, IW, C, NC, PU, PL, IZP);
            }
            ph = ns;
        } else {
            nx = nx > iy0 + 2 ? iy0 + 2 : nx;
            for (; nx >= iy0; --nx, ns = ns == 0 ? 2 : ns - 1) {
                td_mve_dw_fill(in, ring, ns, nx, IH, IW, C, NC, PU, PL, IZP);
            }
            ph = ns == 2 ? 0 : ns + 1;
        }
        off = vldrbq_u8(offs + 16 * ph);
#if TD_ARM_IMM /* immediates from the template arguments */
        if (FIX == 0 && FOLD && !CLAMP && E >= 1 && NC <= 255 && 3 * PU <= 4095 && OW <= 64) {
            /* the whole output row in one loop nest: per channel its weight
             * vector and constants, then per output a gather, VMLADAVA onto
             * the bias, SMMLA + SSAT */
            register int32_t acc __asm__("r0");
            const int8_t *cb = ring, *wp = blob;
            const int32_t *kp = kr;
            int8_t *co = out + oy * OW * C;
            int32_t ch = NC, t, bp, op, bb, sh, m, cc;
            int8x16_t x, w;
            (void)u;
            __asm__ volatile(
                "2:\n\t"
                "vldrb.8 %q[w], [%[wp]], #16\n\t"
                "ldrd %[bb], %[sh], [%[kp]]\n\t"
                "ldrd %[m], %[cc], [%[kp], #8]\n\t"
                "add %[kp], %[kp], #20\n\t"
                "mov %[bp], %[cb]\n\t"
                "mov %[op], %[co]\n\t"
                ".rept %c[ow]\n\t"
                "vldrb.u8 %q[x], [%[bp], %q[off]]\n\t"
                "mov %[acc], %[bb]\n\t"
                "vmladava.s8 %[acc], %q[x], %q[w]\n\t"
                "add %[bp], %[bp], %[su]\n\t"
                "lsl %[t], %[acc], %[sh]\n\t"
                "smmla %[t], %[t], %[m], %[cc]\n\t"
                "ssat %[t], #8, %[t], asr %[e]\n\t"
                "strb %[t], [%[op]], %[oc]\n\t"
                ".endr\n\t"
                "add %[cb], %[cb], %[cs]\n\t"
                "add %[co], %[co], #1\n\t"
                "subs %[ch], %[ch], #1\n\t"
                "bne 2b"
                : [acc] "=&r"(acc), [t] "=&r"(t), [bp] "=&r"(bp), [op] "=&r"(op),
                  [bb] "=&r"(bb), [sh] "=&r"(sh), [m] "=&r"(m),
                  [cc] "=&r"(cc), [cb] "+r"(cb), [co] "+r"(co), [ch] "+r"(ch),
                  [kp] "+r"(kp), [wp] "+r"(wp), [x] "=&w"(x), [w] "=&w"(w)
                : [off] "w"(off), [su] "i"(SU), [e] "i"(E), [oc] "i"(C), [ow] "i"(OW),
                  [cs] "i"(3 * PU)
                : "memory", "cc");
            continue;
        }
#endif
        for (c = 0; c < NC; ++c) {
            const int8x16_t w = vldrbq_s8(blob + 16 * c);
            const int32_t *q = kr + 5 * c;
            const int32_t b = q[0], sh = q[1];
            td_arm_rec rec;
            const int8_t *base = ring + c * 3 * PU;
            int8_t *o = out + oy * OW * C + c;
            rec.r[0] = q[2];
            rec.r[1] = q[3];
            rec.r[2] = 0;
            rec.r[3] = q[4];
            for (u = 0; u < OW; ++u) {
                const int32_t acc = vmladavaq_s8(b, vldrbq_gather_offset_s8(base, off), w);
                *o = (int8_t)TD_ARM_RQ((int32_t)((uint32_t)acc << sh), rec.r);
                base += SU;
                o += C;
            }
        }
    }
}

/* The layer (input IH x IW x C, depth multiplier 1): channels in groups of
 * CG, whose ring holds 3 x CG x PU int8 ([channel][slot][PU]); see
 * td_arm_dw3x3 for the order and in-place safety.  Blob: [C][16] weights,
 * [C][5] constants, [3][16] gather offsets. */
TD_ARM_AI void td_mve_dw3x3(const int8_t *in, int8_t *ring, const int8_t *blob, int8_t *out,
                            const td_arm_dw_cfg *cfg)
{
    TD_ARM_RQ_LOCALS(&cfg->rq);
    const int IH = cfg->win.in_h, IW = cfg->win.in_w, C = cfg->win.in_c, CG = cfg->group_c;
    const int OH = cfg->win.out_h, OW = cfg->win.out_w, SV = cfg->win.stride_h;
    const int SU = cfg->win.stride_w, PT = cfg->win.pad_top, PL = cfg->win.pad_left;
    const int PU = cfg->ring_w, IZP = cfg->win.in_zero_point, DIR = cfg->dir;
    const int32_t *kr = (const int32_t *)(const void *)(blob + C * 16);
    const uint8_t *offs = (const uint8_t *)(const void *)(kr + 5 * C);
    int c0;
    td_mve_set(ring, IZP, 3 * PU * CG);
    for (c0 = 0; c0 + CG <= C; c0 += CG) {
        td_mve_dw3x3_group(in + c0, ring, blob + 16 * c0, kr + 5 * c0, offs, out + c0, IH, IW, C,
                           CG, OH, OW, SV, SU, PT, PL, PU, IZP, DIR, TD_ARM_RQ_PASS);
    }
    if (C % CG) {
        td_mve_dw3x3_group(in + c0, ring, blob + 16 * c0, kr + 5 * c0, offs, out + c0, IH, IW, C,
                           C % CG, OH, OW, SV, SU, PT, PL, PU, IZP, DIR, TD_ARM_RQ_PASS);
    }
}
#endif /* __ARM_FEATURE_MVE */

#ifdef __cplusplus
}
#endif

#endif
