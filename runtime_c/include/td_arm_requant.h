/* tinydeploy runtime: Arm Cortex-M requantization (SMMLA(R) + shift) and the
 * fused residual add epilogue, shared by the td_arm_*.h int8 kernels.
 *
 * Arithmetic: bit-exact with the portable kernels (TFLite int8 rules).  The
 * generator folds the input zero point into the bias, scales weights and
 * bias by 2^(left_shift + 1) and turns TFLite's two roundings
 * (SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT) into one
 * SMMLAR plus an arithmetic shift:
 *
 *   out = ssat8((smmlar(acc2, m, C) >> e))       with acc2 = acc << (left + 1)
 *
 *   floor((floor((acc2 * m + 2^31) / 2^32) + 2^(e-1) - [t < 0]) / 2^e)
 *     = floor((acc2 * m + 2^31 + (2^(e-1) - [t < 0]) * 2^32) / 2^(32 + e))
 *
 * (nested floor divisions by positive integers merge), so C = 2^(e-1) +
 * zero_point * 2^e, minus 1 for negative accumulators when that can change
 * the clamped result ("fix").  backends/arm.py proves the ranges (no int32
 * overflow anywhere) before it picks these kernels; otherwise the layer
 * keeps the portable kernel.
 */
#ifndef TD_ARM_REQUANT_H
#define TD_ARM_REQUANT_H

#include "td_arm_common.h"

#if defined(__ARM_FEATURE_DSP)

/* ---------------------------------------------------------------------- */
/* Scalar primitives                                                       */
/* ---------------------------------------------------------------------- */

/* (c * 2^32 + a * b + 2^31) >> 32: ACLE has no SMMLAR intrinsic. */
TD_ARM_AI int32_t td_arm_smmlar(int32_t a, int32_t b, int32_t c)
{
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}

/* (c * 2^32 + a * b) >> 32 */
TD_ARM_AI int32_t td_arm_smmla(int32_t a, int32_t b, int32_t c)
{
    int32_t r;
    __asm__("smmla %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}

/* v << s in 32 bits (int8 weights: the scale int16 weights carry; requant_plan
 * proves that the shifted accumulator fits). */
TD_ARM_AI int32_t td_arm_lsl(int32_t v, const int s)
{
    return s ? (int32_t)((uint32_t)v << s) : v;
}

/* ssat(v, 8).  GCC's __ssat macro converts the builtin's unsigned result
 * inside the macro (a -Wsign-conversion warning at every use): wrapped. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-conversion"
TD_ARM_AI int32_t td_arm_ssat8(int32_t v)
{
    return __ssat(v, 8);
}
#pragma GCC diagnostic pop

/* ssat(v >> E, 8) in one instruction (GCC only sometimes combines them). */
TD_ARM_AI int32_t td_arm_ssat8_asr(int32_t v, const int E)
{
    int32_t r;
    if (E <= 0) {
        return td_arm_ssat8(v);
    }
#if TD_ARM_GCC
    __asm__("ssat %0, #8, %1, asr %2" : "=r"(r) : "r"(v), "i"(E));
#else
    r = td_arm_ssat8(v >> E); /* clang folds the shift into the SSAT */
#endif
    return r;
}

/* td_arm_rq_cfg.uniform_shift of the compact per-channel records (see
 * td_arm_rec_load) */
#define TD_ARM_RQ_COMPACT (-2)
/* td_arm_rq_cfg.uniform_shift of the packed records of the int8-weight GEMM
 * (td_arm_gemm_block): the compact records without f, which sits in the low
 * TD_ARM_PACK_BITS bits of the channel's bias word (bias << TD_ARM_PACK_BITS | f;
 * backends/arm.py _packed_records has checked the bias fits), so a record is {m[, mask]}. */
#define TD_ARM_RQ_PACKED (-3)
#define TD_ARM_PACK_BITS 5


/* Requantize one accumulator with its channel record r = {m, C, e, fix
 * mask} (as loaded by td_arm_rec_load; see kernels_arm.requant_plan).
 * E >= 0: uniform mode, SMMLA and the layer's shift E; E < 0: SMMLAR and the
 * channel's shift.  FIX: 0 none, 1 add acc >> 31, 2 add (acc >> 31) & mask.
 * FOLD: zero point folded into C, else ZP is added after the shift.  CLAMP:
 * clamp to [LO, HI] after the int8 saturation. */
TD_ARM_AI int32_t td_arm_rq(int32_t acc, const int32_t *r, const int FIX,
                            const int E, const int FOLD, const int ZP,
                            const int CLAMP, const int LO, const int HI)
{
    int32_t c = r[1], v;
    if (FIX == 1) {
        c += acc >> 31;
    } else if (FIX == 2) {
        c += (acc >> 31) & r[3];
    }
    if (E >= 0) {
        v = td_arm_smmla(acc, r[0], c);
        if (FOLD) {
            v = td_arm_ssat8_asr(v, E);
        } else {
            v = td_arm_ssat8((v >> E) + ZP);
        }
    } else if (E == TD_ARM_RQ_COMPACT || E == TD_ARM_RQ_PACKED) {
        /* r[2] = e - 1: the shift's last bit inside the SSAT */
        v = td_arm_smmlar(acc, r[0], c) >> r[2];
        v = FOLD ? td_arm_ssat8_asr(v, 1) : td_arm_ssat8((v >> 1) + ZP);
    } else {
        v = td_arm_smmlar(acc, r[0], c) >> r[2];
        if (!FOLD) {
            v += ZP;
        }
        v = td_arm_ssat8(v);
    }
    if (CLAMP) {
        v = v < LO ? LO : v;
        v = v > HI ? HI : v;
    }
    return v;
}

/* A channel record copied into registers (int8 stores may alias it):
 * {m, C, e (per-channel mode only), fix mask (FIX == 2 only)}.  The
 * compact per-channel record of the int8-weight kernels (E ==
 * TD_ARM_RQ_COMPACT) is {m, f[, mask]} with f = e - 1: C = 2^(e-1) + ZP 2^e
 * (FOLD) or 2^(e-1) is K << f with K = 2 ZP + 1 or 1 (requant_plan has
 * checked it fits), and the shift by e is f here and one inside the SSAT. */
typedef struct {
    int32_t r[4];
} td_arm_rec;

TD_ARM_AI td_arm_rec td_arm_rec_load(const int32_t *p, const int RS, const int E,
                                     const int FIX, const int FOLD, const int ZP)
{
    td_arm_rec k;
    k.r[0] = p[0];
    if (E == TD_ARM_RQ_COMPACT) {
        k.r[1] = (int32_t)((uint32_t)(FOLD ? 2 * ZP + 1 : 1) << p[1]);
        k.r[2] = p[1];
    } else {
        k.r[1] = p[1];
        k.r[2] = E >= 0 ? 0 : p[2];
    }
    k.r[3] = FIX == 2 ? p[RS - 1] : 0;
    return k;
}

/* The packed record {m[, mask]} at p of the channel whose bias word is bw. */
TD_ARM_AI td_arm_rec td_arm_rec_load_packed(const int32_t *p, int32_t bw, const int RS,
                                            const int FIX, const int FOLD, const int ZP)
{
    td_arm_rec k;
    const int32_t f = bw & ((1 << TD_ARM_PACK_BITS) - 1);
    k.r[0] = p[0];
    k.r[1] = (int32_t)((uint32_t)(FOLD ? 2 * ZP + 1 : 1) << f);
    k.r[2] = f;
    k.r[3] = FIX == 2 ? p[RS - 1] : 0;
    return k;
}

/* Requantization constants shared by every call of one layer.  RS: words
 * per channel record. */
#define TD_ARM_RQ_ARGS const int FIX, const int RS, const int E, const int FOLD, \
    const int ZP, const int CLAMP, const int LO, const int HI
#define TD_ARM_RQ_PASS FIX, RS, E, FOLD, ZP, CLAMP, LO, HI
#define TD_ARM_RQ(acc, r) td_arm_rq((acc), (r), FIX, E, FOLD, ZP, CLAMP, LO, HI)

/* A layer's requantization constants (the arguments above, named). */
typedef struct {
    int fix;            /* FIX: 0 none, 1 C += acc >> 31, 2 C += (acc >> 31) & mask */
    int rec_words;      /* RS: int32 words per channel record */
    int uniform_shift;  /* E: >= 0 one shift for all channels (SMMLA), -1 per channel,
                        * TD_ARM_RQ_COMPACT per channel, compact records */
    int fold;           /* FOLD: 1 zero point folded into C, 0 added after the shift */
    int out_zero_point; /* ZP */
    int clamp;          /* CLAMP: 1 clamp to [act_min, act_max] after ssat8 */
    int act_min, act_max;
} td_arm_rq_cfg;

/* The same as enum constants PREFIX_field (see TD_ARM_WIN_PARAMS). */
#define TD_ARM_RQ_PARAMS(L) L##_fix, L##_rec_words, L##_uniform_shift, L##_fold, \
    L##_out_zero_point, L##_clamp, L##_act_min, L##_act_max
/* The same with the zero point Z given (a run-time value: layers that differ only in it
 * share one function). */
#define TD_ARM_RQ_PARAMS_ZP(L, Z) L##_fix, L##_rec_words, L##_uniform_shift, L##_fold, Z, \
    L##_clamp, L##_act_min, L##_act_max

#define TD_ARM_RQ_LOCALS(q) const int FIX = (q)->fix, RS = (q)->rec_words, \
    E = (q)->uniform_shift, FOLD = (q)->fold, ZP = (q)->out_zero_point, CLAMP = (q)->clamp, \
    LO = (q)->act_min, HI = (q)->act_max

/* ---------------------------------------------------------------------- */
/* Fused residual add (in-place mode "conv_add")                           */
/* ---------------------------------------------------------------------- */
/* y = add(conv, r) with TFLite's Add arithmetic: each operand's rescaled
 * value comes from a 256-entry table (t1 for the conv result, t2 for the
 * residual; both point at entry 128 so a signed int8 indexes them), the
 * sum is requantized like a convolution accumulator (uniform mode, see
 * td_arm_rq: SMMLA with AM, C = AC (+ fix mask AMASK), shift AE). */
typedef struct {
    const int8_t *res;  /* residual, indexed like the output */
    const int32_t *t1;  /* conv value -> rescaled (entry 128 = value 0) */
    const int32_t *t2;  /* residual value -> rescaled */
} td_arm_epi;

#define TD_ARM_EPI_ARGS const int ADD, const int AM, const int AC, const int AMASK, \
    const int AE, const int ACL, const int ALO, const int AHI
#define TD_ARM_EPI_PASS ADD, AM, AC, AMASK, AE, ACL, ALO, AHI
#define TD_ARM_EPI_PASS_NONE 0, 0, 0, 0, 0, 0, 0, 0
/* The arguments above as enum constants PREFIX_add_field (see
 * TD_ARM_WIN_PARAMS): add_mult = AM, add_c = AC (rounding and zero point),
 * add_fix_mask = AMASK, add_shift = AE, add_clamp/add_min/add_max. */
#define TD_ARM_EPI_PARAMS(L) 1, L##_add_mult, L##_add_c, L##_add_fix_mask, L##_add_shift, \
    L##_add_clamp, L##_add_min, L##_add_max

TD_ARM_AI int32_t td_arm_epi_add(const td_arm_epi *ep, int32_t v, int32_t r, TD_ARM_EPI_ARGS)
{
    const int32_t sum = ep->t1[v] + ep->t2[r];
    int32_t c = AC, o;
    (void)ADD;
    if (AMASK) {
        c += (sum >> 31) & AMASK;
    }
    o = td_arm_ssat8_asr(td_arm_smmla(sum, AM, c), AE);
    if (ACL) {
        o = o < ALO ? ALO : o;
        o = o > AHI ? AHI : o;
    }
    return o;
}

/* ---------------------------------------------------------------------- */
/* Layer parameters shared by the DSP and Helium kernels                   */
/* ---------------------------------------------------------------------- */
/* Fully connected (td_arm_fc, td_mve_fc). */
typedef struct {
    int rows;        /* input rows (batch) */
    int in_features; /* K */
    int out_c;       /* output features */
    td_arm_rq_cfg rq;
    int acc_shift;   /* 0: int16 weights; > 0: int8 weights, accumulator << acc_shift (DSP) */
} td_arm_fc_cfg;

/* Depthwise 3x3, depth multiplier 1 (td_arm_dw3x3, td_mve_dw3x3). */
typedef struct {
    td_arm_win win;   /* k_h = k_w = 3, in_c = channels */
    int group_c;      /* channels per ring group */
    int ring_w;       /* PU: ring row length (padded input row) */
    int dir;          /* 1 output rows in increasing order, -1 decreasing */
    td_arm_rq_cfg rq;
    int acc_shift;    /* DSP: 0 int16 weight pairs; > 0 int8 weights, accumulator << acc_shift */
} td_arm_dw_cfg;

/* Store the block's values: plain, or through the fused residual add. */
#define TD_ARM_PUT(idx, v)                                                   \
    do {                                                                     \
        if (ADD) {                                                           \
            o[idx] = (int8_t)td_arm_epi_add(ep, (v), ep->res[(o - y0) + (idx)], \
                                            TD_ARM_EPI_PASS);                \
        } else {                                                             \
            o[idx] = (int8_t)(v);                                            \
        }                                                                    \
    } while (0)

#endif /* __ARM_FEATURE_DSP */

#endif
