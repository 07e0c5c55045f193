/* tinydeploy runtime: Arm DSP-extension depthwise 3x3 (int8, ring of int16
 * rows).
 * td-requires: arm/dsp_dw.c (td_arm_dw_fill, td_arm_dw_ring_init) */
#ifndef TD_ARM_DW_H
#define TD_ARM_DW_H

#include "td_arm_requant.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__ARM_FEATURE_DSP)

/* ---------------------------------------------------------------------- */
/* Depthwise 3x3 (depth multiplier 1)                                      */
/* ---------------------------------------------------------------------- */
/* The kernel rows of an output row are kept as channel-major int16 rows
 * ("ring slots", td_arm_dw_fill) with the zero point around the image:
 * slot[c][u], PU int16 per channel, u the image column.  For one channel
 * and output row, a kernel row (3 taps, weights W01 = (w0, w1),
 * W12 = (w1, w2)) contributes to output u:  SU == 1: x[u] w0 + x[u+1] w1 +
 * x[u+2] w2 as
 *   even u: smlad((x[u], x[u+1]), W01) + smlabt((x[u+2], .), W12)
 *   odd u:  smlatb((., x[u]), W01) + smlad((x[u+1], x[u+2]), W12)
 * SU == 2: smlad((x[2u], x[2u+1]), W01) + smlabt((x[2u+2], .), W12).
 * The channel stream: bias2, W01/W12 of the three rows, the record; or, on
 * int8 weights (ASH > 0, --optimize size/balanced), the plain bias, one word per
 * row with the bytes (w0, w1, w1, w2), whose SXTB16 and SXTB16 ROR 8 are
 * W01 and W12, and the record. */

#define TD_I4_(op, d, n, m, acc) op " %[" d "], %[" n "], %[" m "], %[" acc "]\n\t"

/* One kernel row for eight outputs (SU == 1: words x[0..9]; SU == 2:
 * x[0..17]).  FIRST: the accumulators start from the bias held in a0, whose
 * own first terms come last. */
#define TD_DW_ROW1_FIRST_(B)                                                                   \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlatb", "a1", "t0", "w01", "a0") TD_I4_("smlad", "a1", "t1", "w12", "a1")         \
    TD_I4_("smlad", "a2", "t1", "w01", "a0") TD_I4_("smlatb", "a3", "t1", "w01", "a0")         \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+8]\n\t"                                             \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w12", "a3")         \
    TD_I4_("smlad", "a4", "t0", "w01", "a0") TD_I4_("smlatb", "a5", "t0", "w01", "a0")         \
    TD_I4_("smlabt", "a4", "t1", "w12", "a4") TD_I4_("smlad", "a5", "t1", "w12", "a5")         \
    TD_I4_("smlad", "a6", "t1", "w01", "a0") TD_I4_("smlatb", "a7", "t1", "w01", "a0")         \
    "ldr %[t0], [%[xp], #%c[" B "]+16]\n\t"                                                    \
    TD_I4_("smlabt", "a6", "t0", "w12", "a6") TD_I4_("smlad", "a7", "t0", "w12", "a7")         \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0")
#define TD_DW_ROW1_(B)                                                                         \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlatb", "a1", "t0", "w01", "a1")         \
    TD_I4_("smlabt", "a0", "t1", "w12", "a0") TD_I4_("smlad", "a1", "t1", "w12", "a1")         \
    TD_I4_("smlad", "a2", "t1", "w01", "a2") TD_I4_("smlatb", "a3", "t1", "w01", "a3")         \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+8]\n\t"                                             \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w12", "a3")         \
    TD_I4_("smlad", "a4", "t0", "w01", "a4") TD_I4_("smlatb", "a5", "t0", "w01", "a5")         \
    TD_I4_("smlabt", "a4", "t1", "w12", "a4") TD_I4_("smlad", "a5", "t1", "w12", "a5")         \
    TD_I4_("smlad", "a6", "t1", "w01", "a6") TD_I4_("smlatb", "a7", "t1", "w01", "a7")         \
    "ldr %[t0], [%[xp], #%c[" B "]+16]\n\t"                                                    \
    TD_I4_("smlabt", "a6", "t0", "w12", "a6") TD_I4_("smlad", "a7", "t0", "w12", "a7")
#define TD_DW_ROW2_FIRST_(B)                                                                   \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+4]\n\t"                                             \
    TD_I4_("smlad", "a1", "t0", "w01", "a0") TD_I4_("smlabt", "a1", "t1", "w12", "a1")         \
    TD_I4_("smlad", "a2", "t1", "w01", "a0")                                                   \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+12]\n\t"                                            \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w01", "a0")         \
    TD_I4_("smlabt", "a3", "t1", "w12", "a3") TD_I4_("smlad", "a4", "t1", "w01", "a0")         \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+20]\n\t"                                            \
    TD_I4_("smlabt", "a4", "t0", "w12", "a4") TD_I4_("smlad", "a5", "t0", "w01", "a0")         \
    TD_I4_("smlabt", "a5", "t1", "w12", "a5") TD_I4_("smlad", "a6", "t1", "w01", "a0")         \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+28]\n\t"                                            \
    TD_I4_("smlabt", "a6", "t0", "w12", "a6") TD_I4_("smlad", "a7", "t0", "w01", "a0")         \
    TD_I4_("smlabt", "a7", "t1", "w12", "a7")                                                  \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0")
#define TD_DW_ROW2_(B)                                                                         \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0")         \
    TD_I4_("smlad", "a1", "t1", "w01", "a1")                                                   \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+8]\n\t"                                             \
    TD_I4_("smlabt", "a1", "t0", "w12", "a1") TD_I4_("smlad", "a2", "t0", "w01", "a2")         \
    TD_I4_("smlabt", "a2", "t1", "w12", "a2") TD_I4_("smlad", "a3", "t1", "w01", "a3")         \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+16]\n\t"                                            \
    TD_I4_("smlabt", "a3", "t0", "w12", "a3") TD_I4_("smlad", "a4", "t0", "w01", "a4")         \
    TD_I4_("smlabt", "a4", "t1", "w12", "a4") TD_I4_("smlad", "a5", "t1", "w01", "a5")         \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+24]\n\t"                                            \
    TD_I4_("smlabt", "a5", "t0", "w12", "a5") TD_I4_("smlad", "a6", "t0", "w01", "a6")         \
    TD_I4_("smlabt", "a6", "t1", "w12", "a6") TD_I4_("smlad", "a7", "t1", "w01", "a7")         \
    "ldr %[t0], [%[xp], #%c[" B "]+32]\n\t"                                                    \
    TD_I4_("smlabt", "a7", "t0", "w12", "a7")
/* Four outputs (SU == 1: words x[0..5]; SU == 2: x[0..9]). */
#define TD_DW4_ROW1_FIRST_(B)                                                                  \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlatb", "a1", "t0", "w01", "a0") TD_I4_("smlad", "a1", "t1", "w12", "a1")         \
    TD_I4_("smlad", "a2", "t1", "w01", "a0") TD_I4_("smlatb", "a3", "t1", "w01", "a0")         \
    "ldr %[t0], [%[xp], #%c[" B "]+8]\n\t"                                                     \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w12", "a3")         \
    "ldr %[t0], [%[xp], #%c[" B "]]\n\t"                                                       \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0")
#define TD_DW4_ROW1_(B)                                                                        \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlatb", "a1", "t0", "w01", "a1")         \
    TD_I4_("smlabt", "a0", "t1", "w12", "a0") TD_I4_("smlad", "a1", "t1", "w12", "a1")         \
    TD_I4_("smlad", "a2", "t1", "w01", "a2") TD_I4_("smlatb", "a3", "t1", "w01", "a3")         \
    "ldr %[t0], [%[xp], #%c[" B "]+8]\n\t"                                                     \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w12", "a3")
#define TD_DW4_ROW2_FIRST_(B)                                                                  \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+4]\n\t"                                             \
    TD_I4_("smlad", "a1", "t0", "w01", "a0") TD_I4_("smlabt", "a1", "t1", "w12", "a1")         \
    TD_I4_("smlad", "a2", "t1", "w01", "a0")                                                   \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+12]\n\t"                                            \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w01", "a0")         \
    TD_I4_("smlabt", "a3", "t1", "w12", "a3")                                                  \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0")
#define TD_DW4_ROW2_(B)                                                                        \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0")         \
    TD_I4_("smlad", "a1", "t1", "w01", "a1")                                                   \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+8]\n\t"                                             \
    TD_I4_("smlabt", "a1", "t0", "w12", "a1") TD_I4_("smlad", "a2", "t0", "w01", "a2")         \
    TD_I4_("smlabt", "a2", "t1", "w12", "a2") TD_I4_("smlad", "a3", "t1", "w01", "a3")         \
    "ldr %[t0], [%[xp], #%c[" B "]+16]\n\t"                                                    \
    TD_I4_("smlabt", "a3", "t0", "w12", "a3")

/* Six outputs (SU == 1: words x[0..7]; SU == 2: x[0..13]). */
#define TD_DW6_ROW1_FIRST_(B)                                                                  \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlatb", "a1", "t0", "w01", "a0") TD_I4_("smlad", "a1", "t1", "w12", "a1")         \
    TD_I4_("smlad", "a2", "t1", "w01", "a0") TD_I4_("smlatb", "a3", "t1", "w01", "a0")         \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+8]\n\t"                                             \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w12", "a3")         \
    TD_I4_("smlad", "a4", "t0", "w01", "a0") TD_I4_("smlatb", "a5", "t0", "w01", "a0")         \
    TD_I4_("smlabt", "a4", "t1", "w12", "a4") TD_I4_("smlad", "a5", "t1", "w12", "a5")         \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0")
#define TD_DW6_ROW1_(B)                                                                        \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlatb", "a1", "t0", "w01", "a1")         \
    TD_I4_("smlabt", "a0", "t1", "w12", "a0") TD_I4_("smlad", "a1", "t1", "w12", "a1")         \
    TD_I4_("smlad", "a2", "t1", "w01", "a2") TD_I4_("smlatb", "a3", "t1", "w01", "a3")         \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+8]\n\t"                                             \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w12", "a3")         \
    TD_I4_("smlad", "a4", "t0", "w01", "a4") TD_I4_("smlatb", "a5", "t0", "w01", "a5")         \
    TD_I4_("smlabt", "a4", "t1", "w12", "a4") TD_I4_("smlad", "a5", "t1", "w12", "a5")
#define TD_DW6_ROW2_FIRST_(B)                                                                  \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+4]\n\t"                                             \
    TD_I4_("smlad", "a1", "t0", "w01", "a0") TD_I4_("smlabt", "a1", "t1", "w12", "a1")         \
    TD_I4_("smlad", "a2", "t1", "w01", "a0")                                                   \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+12]\n\t"                                            \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w01", "a0")         \
    TD_I4_("smlabt", "a3", "t1", "w12", "a3") TD_I4_("smlad", "a4", "t1", "w01", "a0")         \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+20]\n\t"                                            \
    TD_I4_("smlabt", "a4", "t0", "w12", "a4") TD_I4_("smlad", "a5", "t0", "w01", "a0")         \
    TD_I4_("smlabt", "a5", "t1", "w12", "a5")                                                  \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0")
#define TD_DW6_ROW2_(B)                                                                        \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0")         \
    TD_I4_("smlad", "a1", "t1", "w01", "a1")                                                   \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+8]\n\t"                                             \
    TD_I4_("smlabt", "a1", "t0", "w12", "a1") TD_I4_("smlad", "a2", "t0", "w01", "a2")         \
    TD_I4_("smlabt", "a2", "t1", "w12", "a2") TD_I4_("smlad", "a3", "t1", "w01", "a3")         \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+16]\n\t"                                            \
    TD_I4_("smlabt", "a3", "t0", "w12", "a3") TD_I4_("smlad", "a4", "t0", "w01", "a4")         \
    TD_I4_("smlabt", "a4", "t1", "w12", "a4") TD_I4_("smlad", "a5", "t1", "w01", "a5")         \
    "ldr %[t0], [%[xp], #%c[" B "]+24]\n\t"                                                    \
    TD_I4_("smlabt", "a5", "t0", "w12", "a5")

/* Five outputs (a row of width 5, 13, ...; SU == 1: words x[0..3]; SU == 2:
 * x[0..5]): the six-output rows without output 5. */
#define TD_DW5_ROW1_FIRST_(B)                                                                  \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlatb", "a1", "t0", "w01", "a0") TD_I4_("smlad", "a1", "t1", "w12", "a1")         \
    TD_I4_("smlad", "a2", "t1", "w01", "a0") TD_I4_("smlatb", "a3", "t1", "w01", "a0")         \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+8]\n\t"                                             \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w12", "a3")         \
    TD_I4_("smlad", "a4", "t0", "w01", "a0") TD_I4_("smlabt", "a4", "t1", "w12", "a4")         \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0")
#define TD_DW5_ROW1_(B)                                                                        \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlatb", "a1", "t0", "w01", "a1")         \
    TD_I4_("smlabt", "a0", "t1", "w12", "a0") TD_I4_("smlad", "a1", "t1", "w12", "a1")         \
    TD_I4_("smlad", "a2", "t1", "w01", "a2") TD_I4_("smlatb", "a3", "t1", "w01", "a3")         \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+8]\n\t"                                             \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w12", "a3")         \
    TD_I4_("smlad", "a4", "t0", "w01", "a4") TD_I4_("smlabt", "a4", "t1", "w12", "a4")
#define TD_DW5_ROW2_FIRST_(B)                                                                  \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+4]\n\t"                                             \
    TD_I4_("smlad", "a1", "t0", "w01", "a0") TD_I4_("smlabt", "a1", "t1", "w12", "a1")         \
    TD_I4_("smlad", "a2", "t1", "w01", "a0")                                                   \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+12]\n\t"                                            \
    TD_I4_("smlabt", "a2", "t0", "w12", "a2") TD_I4_("smlad", "a3", "t0", "w01", "a0")         \
    TD_I4_("smlabt", "a3", "t1", "w12", "a3") TD_I4_("smlad", "a4", "t1", "w01", "a0")         \
    "ldr %[t0], [%[xp], #%c[" B "]+20]\n\t"                                                    \
    TD_I4_("smlabt", "a4", "t0", "w12", "a4")                                                  \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0")
#define TD_DW5_ROW2_(B)                                                                        \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]]\n\t"                                               \
    TD_I4_("smlad", "a0", "t0", "w01", "a0") TD_I4_("smlabt", "a0", "t1", "w12", "a0")         \
    TD_I4_("smlad", "a1", "t1", "w01", "a1")                                                   \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+8]\n\t"                                             \
    TD_I4_("smlabt", "a1", "t0", "w12", "a1") TD_I4_("smlad", "a2", "t0", "w01", "a2")         \
    TD_I4_("smlabt", "a2", "t1", "w12", "a2") TD_I4_("smlad", "a3", "t1", "w01", "a3")         \
    "ldrd %[t0], %[t1], [%[xp], #%c[" B "]+16]\n\t"                                            \
    TD_I4_("smlabt", "a3", "t0", "w12", "a3") TD_I4_("smlad", "a4", "t0", "w01", "a4")         \
    TD_I4_("smlabt", "a4", "t1", "w12", "a4")

#define TD_DW_W_(off) "ldrd %[w01], %[w12], [%[wp], #" off "]\n\t"
#define TD_DW_B_(off) "ldr %[w12], [%[wp], #" off "]\n\tsxtb16 %[w01], %[w12]\n\t"             \
    "sxtb16 %[w12], %[w12], ror #8\n\t"
#define TD_DW_D1_ "add %[xp], %[xp], %[d1]\n\t"
#define TD_DW_D2_ "add %[xp], %[xp], %[d2]\n\t"
/* Row r's loads are at byte offset b<r> from xp: NEAR (every offset within the
 * LDR / LDRD immediates) b1 = D1, b2 = D1 + D2; else xp steps by D1 and D2
 * (S1, S2 = TD_DW_D1_, TD_DW_D2_) and b1 = b2 = 0. */
#define TD_DW_IN_CT : [wp] "r"(wp), [d1] "i"(D1), [d2] "i"(D2), [b0] "i"(0),                   \
    [b1] "i"(NEAR ? D1 : 0), [b2] "i"(NEAR ? D1 + D2 : 0) : "memory"
/* Run-time D1, D2 (td_arm_dw_layer_rt): no register is left for them, so each step
 * reads its own from memory into t0, which is free between kernel rows. */
#define TD_DW_IN_RT : [wp] "r"(wp), [d1] "m"(d1m), [d2] "m"(d2m), [b0] "i"(0), [b1] "i"(0),    \
    [b2] "i"(0) : "memory"
#define TD_DW_D1_RT_ "ldr %[t0], %[d1]\n\tadd %[xp], %[xp], %[t0]\n\t"
#define TD_DW_D2_RT_ "ldr %[t0], %[d2]\n\tadd %[xp], %[xp], %[t0]\n\t"
#define TD_DW_OPS8_(IN) : [a0] "+r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3),       \
    [a4] "=&r"(a4), [a5] "=&r"(a5), [a6] "=&r"(a6), [a7] "=&r"(a7), [t0] "=&r"(t0),            \
    [t1] "=&r"(t1), [w01] "=&r"(w01), [w12] "=&r"(w12), [xp] "+r"(xp) TD_DW_IN_##IN
#define TD_DW_OPS6_(IN) : [a0] "+r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3),       \
    [a4] "=&r"(a4), [a5] "=&r"(a5), [t0] "=&r"(t0), [t1] "=&r"(t1), [w01] "=&r"(w01),          \
    [w12] "=&r"(w12), [xp] "+r"(xp) TD_DW_IN_##IN
#define TD_DW_OPS5_(IN) : [a0] "+r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3),       \
    [a4] "=&r"(a4), [t0] "=&r"(t0), [t1] "=&r"(t1), [w01] "=&r"(w01), [w12] "=&r"(w12),        \
    [xp] "+r"(xp) TD_DW_IN_##IN
#define TD_DW_OPS4_(IN) : [a0] "+r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3),       \
    [t0] "=&r"(t0), [t1] "=&r"(t1), [w01] "=&r"(w01), [w12] "=&r"(w12), [xp] "+r"(xp) TD_DW_IN_##IN

/* A channel's starting accumulator: its bias, below which packed records (PK,
 * TD_ARM_RQ_PACKED) keep the requantization shift. */
TD_ARM_AI int32_t td_arm_dw_bias(const int32_t *wp, const int PK)
{
    return PK ? wp[0] >> TD_ARM_PACK_BITS : wp[0];
}

/* NB (8, 6, 5 or 4) outputs of one channel: bias + three kernel rows; the second
 * row starts D1 bytes after the first, the third D2 after the second (ring
 * slots).  wp: the channel's stream (ASH > 0: int8 weights). */
#if TD_ARM_DW_ASM
#define TD_DW_BLK_ASM_(W1, W2, W3, S1, S2, IN)                                                 \
    if (NB == 8 && SU == 1) {                                                                  \
        __asm__ volatile(W1 TD_DW_ROW1_FIRST_("b0") S1 W2 TD_DW_ROW1_("b1")                    \
                         S2 W3 TD_DW_ROW1_("b2") TD_DW_OPS8_(IN));                             \
    } else if (NB == 8) {                                                                      \
        __asm__ volatile(W1 TD_DW_ROW2_FIRST_("b0") S1 W2 TD_DW_ROW2_("b1")                    \
                         S2 W3 TD_DW_ROW2_("b2") TD_DW_OPS8_(IN));                             \
    } else if (NB == 6 && SU == 1) {                                                           \
        __asm__ volatile(W1 TD_DW6_ROW1_FIRST_("b0") S1 W2 TD_DW6_ROW1_("b1")                  \
                         S2 W3 TD_DW6_ROW1_("b2") TD_DW_OPS6_(IN));                            \
    } else if (NB == 6) {                                                                      \
        __asm__ volatile(W1 TD_DW6_ROW2_FIRST_("b0") S1 W2 TD_DW6_ROW2_("b1")                  \
                         S2 W3 TD_DW6_ROW2_("b2") TD_DW_OPS6_(IN));                            \
    } else if (NB == 5 && SU == 1) {                                                           \
        __asm__ volatile(W1 TD_DW5_ROW1_FIRST_("b0") S1 W2 TD_DW5_ROW1_("b1")                  \
                         S2 W3 TD_DW5_ROW1_("b2") TD_DW_OPS5_(IN));                            \
    } else if (NB == 5) {                                                                      \
        __asm__ volatile(W1 TD_DW5_ROW2_FIRST_("b0") S1 W2 TD_DW5_ROW2_("b1")                  \
                         S2 W3 TD_DW5_ROW2_("b2") TD_DW_OPS5_(IN));                            \
    } else if (SU == 1) {                                                                      \
        __asm__ volatile(W1 TD_DW4_ROW1_FIRST_("b0") S1 W2 TD_DW4_ROW1_("b1")                  \
                         S2 W3 TD_DW4_ROW1_("b2") TD_DW_OPS4_(IN));                            \
    } else {                                                                                   \
        __asm__ volatile(W1 TD_DW4_ROW2_FIRST_("b0") S1 W2 TD_DW4_ROW2_("b1")                  \
                         S2 W3 TD_DW4_ROW2_("b2") TD_DW_OPS4_(IN));                            \
    }
TD_ARM_AI void td_arm_dw_blk(int32_t *acc, const int16_t *x, const int32_t *wp, const int NB,
                             const int SU, const int D1, const int D2, const int ASH,
                             const int PK)
{
    const int16_t *xp = x;
    int32_t a0 = td_arm_dw_bias(wp, PK), a1, a2, a3, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    uint32_t t0, t1, w01, w12;
    /* non-first rows load at b + 8 .. b + 32: LDR reaches -255, LDRD +-1020 */
    const int NEAR = D1 % 4 == 0 && D2 % 4 == 0 && D1 >= -260 && D1 <= 988 &&
                     D1 + D2 >= -260 && D1 + D2 <= 988;
    if (!(__builtin_constant_p(D1) && __builtin_constant_p(D2))) {
        /* the ring's row offsets as run-time data (td_arm_dw_layer_rt) */
        const int32_t d1m = D1, d2m = D2;
        if (ASH) {
            TD_DW_BLK_ASM_(TD_DW_B_("4"), TD_DW_B_("8"), TD_DW_B_("12"), TD_DW_D1_RT_,
                           TD_DW_D2_RT_, RT)
        } else {
            TD_DW_BLK_ASM_(TD_DW_W_("4"), TD_DW_W_("12"), TD_DW_W_("20"), TD_DW_D1_RT_,
                           TD_DW_D2_RT_, RT)
        }
    } else if (ASH && NEAR) {
        TD_DW_BLK_ASM_(TD_DW_B_("4"), TD_DW_B_("8"), TD_DW_B_("12"), "", "", CT)
    } else if (ASH) {
        TD_DW_BLK_ASM_(TD_DW_B_("4"), TD_DW_B_("8"), TD_DW_B_("12"), TD_DW_D1_, TD_DW_D2_, CT)
    } else if (NEAR) {
        TD_DW_BLK_ASM_(TD_DW_W_("4"), TD_DW_W_("12"), TD_DW_W_("20"), "", "", CT)
    } else {
        TD_DW_BLK_ASM_(TD_DW_W_("4"), TD_DW_W_("12"), TD_DW_W_("20"), TD_DW_D1_, TD_DW_D2_, CT)
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    if (NB >= 5) {
        acc[4] = a4;
    }
    if (NB >= 6) {
        acc[5] = a5;
    }
    if (NB == 8) {
        acc[6] = a6;
        acc[7] = a7;
    }
}
#undef TD_DW_BLK_ASM_
#endif

/* Kernel row r's weight pairs W01, W12 from the channel stream. */
TD_ARM_AI void td_arm_dw_wrow(const int32_t *wp, const int r, const int ASH, int32_t *w01,
                              int32_t *w12)
{
    if (ASH) {
        const uint32_t v = (uint32_t)wp[1 + r];
        *w01 = (int32_t)__sxtb16((int8x4_t)v);
        *w12 = (int32_t)td_arm_sxtb16_ror8(v);
    } else {
        *w01 = wp[1 + 2 * r];
        *w12 = wp[2 + 2 * r];
    }
}

/* One or two outputs of one channel (the row's tail), in C. */
TD_ARM_AI void td_arm_dw_tail(int32_t *a, const int16_t *x, const int32_t *wp, const int NO,
                              const int SU, const int D1, const int D2, const int ASH,
                              const int PK)
{
    const char *xb = (const char *)(const void *)x;
    int r;
    a[0] = a[1] = td_arm_dw_bias(wp, PK);
#pragma GCC unroll 3
    for (r = 0; r < 3; ++r) {
        const td_s32a *xr = (const td_s32a *)(const void *)(xb + (r > 0 ? D1 : 0) + (r > 1 ? D2 : 0));
        int32_t w01, w12;
        td_arm_dw_wrow(wp, r, ASH, &w01, &w12);
        if (SU == 1) {
            const int32_t p = xr[0], q = xr[1];
            a[0] = __smlabt(q, w12, __smlad(p, w01, a[0]));
            if (NO > 1) {
                a[1] = __smlad(q, w12, __smlatb(p, w01, a[1]));
            }
        } else {
            a[0] = __smlabt(xr[1], w12, __smlad(xr[0], w01, a[0]));
            if (NO > 1) {
                a[1] = __smlabt(xr[2], w12, __smlad(xr[1], w01, a[1]));
            }
        }
    }
}

#if !TD_ARM_DW_ASM
/* clang, or GCC at -O0 (see td_arm_common.h): the NB outputs two at a time, in C (the
 * assembly above needs fourteen registers, r7 among them). */
TD_ARM_AI void td_arm_dw_blk(int32_t *acc, const int16_t *x, const int32_t *wp, const int NB,
                             const int SU, const int D1, const int D2, const int ASH,
                             const int PK)
{
    int j;
#pragma GCC unroll 4
    for (j = 0; j < NB; j += 2) {
        td_arm_dw_tail(acc + j, x + j * SU, wp, 2, SU, D1, D2, ASH, PK);
    }
}
#endif

/* One output row of a group of C channels from three ring slots (phase:
 * D1, D2 are the byte steps between the slots of its kernel rows).  Slot
 * layout: [C][PU] int16.  OC: the output's pixel stride (all channels). */
TD_ARM_AI void td_arm_dw_row(const int16_t *x0, const int32_t *stream, int8_t *o, const int C,
                             const int OC, const int OU, const int SU, const int PU,
                             const int D1, const int D2, const int ASH, TD_ARM_RQ_ARGS)
{
    const int WW = ASH ? 3 : 6;  /* weight words per channel */
    const int CS = 1 + WW + RS; /* words per channel in the stream: bias, weights, record */
    const int PK = E == TD_ARM_RQ_PACKED; /* the record's shift in the bias word */
    int c, u, j;
    for (c = 0; c < C; ++c) {
        const int32_t *st = stream + c * CS;
        const int16_t *xc = x0 + c * PU;
        int8_t *oc = o + c;
        const td_arm_rec k = PK ? td_arm_rec_load_packed(st + 1 + WW, st[0], RS, FIX, FOLD, ZP)
                                : td_arm_rec_load(st + 1 + WW, RS, E, FIX, FOLD, ZP);
        for (u = 0; u + 8 <= OU; u += 8) {
            int32_t acc[8];
            td_arm_dw_blk(acc, xc + u * SU, st, 8, SU, D1, D2, ASH, PK);
#pragma GCC unroll 8
            for (j = 0; j < 8; ++j) {
                acc[j] = TD_ARM_RQ(td_arm_lsl(acc[j], ASH), k.r);
            }
#pragma GCC unroll 8
            for (j = 0; j < 8; ++j) {
                oc[(u + j) * OC] = (int8_t)acc[j];
            }
        }
        if (OU % 8 > 2) {
            /* the rest: one block of 4, 5, 6 or 8 storing 3..7 */
            const int NB = OU % 8 > 6 ? 8 : (OU % 8 > 4 ? OU % 8 : 4);
            int32_t acc[8];
            if (!__builtin_constant_p(D1)) {
                /* td_arm_dw_layer_rt's run-time NB: the outputs a block of 4 leaves,
                 * zeroed for the compiler's sake */
                acc[4] = acc[5] = acc[6] = acc[7] = 0;
            }
            td_arm_dw_blk(acc, xc + u * SU, st, NB, SU, D1, D2, ASH, PK);
#pragma GCC unroll 8
            for (j = 0; j < OU % 8; ++j) {
                acc[j] = TD_ARM_RQ(td_arm_lsl(acc[j], ASH), k.r);
            }
#pragma GCC unroll 8
            for (j = 0; j < OU % 8; ++j) {
                oc[(u + j) * OC] = (int8_t)acc[j];
            }
        } else if (OU % 8) {
            int32_t acc[2];
            td_arm_dw_tail(acc, xc + u * SU, st, OU % 8, SU, D1, D2, ASH, PK);
            oc[u * OC] = (int8_t)TD_ARM_RQ(td_arm_lsl(acc[0], ASH), k.r);
            if (OU % 8 > 1) {
                oc[(u + 1) * OC] = (int8_t)TD_ARM_RQ(td_arm_lsl(acc[1], ASH), k.r);
            }
        }
    }
}

/* Load channels 0 .. nc - 1 of input row iy (pixel stride c; the zero
 * point outside the image) into a ring slot [nc][PU] int16 at columns
 * PL .. PL + IW - 1 (the border columns are filled once by
 * td_arm_dw_ring_init). */
void td_arm_dw_fill(const int8_t *in, int16_t *slot, int iy, int ih, int iw, int c, int nc,
                    int pu, int pl, int zp);
/* All three slots: zero point everywhere. */
void td_arm_dw_ring_init(int16_t *ring, int n, int zp);

/* td_arm_dw_fill for a valid row with compile-time shapes (NC % 4 == 0):
 * two pixels x four channels per step, LDR + SXTB16 + PKH + STR. */
TD_ARM_AI void td_arm_dw_fill_t(const int8_t *src, int16_t *slot, const int IW, const int C,
                                const int NC, const int PU, const int PL)
{
    int b, k;
    int16_t *dst = slot + PL;
    for (b = 0; b + 2 <= IW; b += 2) {
        const int8_t *p0 = src + b * C;
        int16_t *d = dst + b;
#pragma GCC unroll 16
        for (k = 0; k < NC; k += 4) {
            const uint32_t v0 = *(const td_u32u *)(const void *)(p0 + k);
            const uint32_t v1 = *(const td_u32u *)(const void *)(p0 + C + k);
            const uint32_t e0 = (uint32_t)__sxtb16((int8x4_t)v0), o0 = td_arm_sxtb16_ror8(v0);
            const uint32_t e1 = (uint32_t)__sxtb16((int8x4_t)v1), o1 = td_arm_sxtb16_ror8(v1);
            *(td_u32u *)(void *)(d + k * PU) = td_arm_pkhbt16(e0, e1);
            *(td_u32u *)(void *)(d + (k + 1) * PU) = td_arm_pkhbt16(o0, o1);
            *(td_u32u *)(void *)(d + (k + 2) * PU) = td_arm_pkhtb16(e1, e0);
            *(td_u32u *)(void *)(d + (k + 3) * PU) = td_arm_pkhtb16(o1, o0);
        }
    }
    if (IW & 1) {
        /* the last pixel: four channels per LDR */
        const int8_t *p0 = src + (IW - 1) * C;
        int16_t *d = dst + IW - 1;
#pragma GCC unroll 16
        for (k = 0; k < NC; k += 4) {
            const uint32_t v = *(const td_u32u *)(const void *)(p0 + k);
            const uint32_t e = (uint32_t)__sxtb16((int8x4_t)v), o = td_arm_sxtb16_ror8(v);
            d[k * PU] = (int16_t)e;
            d[(k + 1) * PU] = (int16_t)o;
            d[(k + 2) * PU] = (int16_t)(e >> 16);
            d[(k + 3) * PU] = (int16_t)(o >> 16);
        }
    }
}

/* Input row iy (channels 0 .. NC - 1) into a ring slot: the unrolled
 * compile-time fill for rows inside the image, else the general one. */
TD_ARM_AI void td_arm_dw_load(const int8_t *in, int16_t *slot, int iy, const int IH,
                              const int IW, const int C, const int NC, const int PU,
                              const int PL, const int IZP)
{
    /* (a run-time NC: the out-of-line fill, whose code every layer shares) */
    if (__builtin_constant_p(NC) && NC % 4 == 0 && iy >= 0 && iy < IH) {
        td_arm_dw_fill_t(in + iy * IW * C, slot, IW, C, NC, PU, PL);
    } else {
        td_arm_dw_fill(in, slot, iy, IH, IW, C, NC, PU, PL, IZP);
    }
}

/* The ring of K slots of NC * PU int16 (K = kernel height): input rows are
 * loaded in order (decreasing for DIR < 0) into slots taken in rotation; *nx:
 * the next row to load, *ns: the slot of the next load.  Loads the rows from
 * iy0 to iy0 + K - 1 the ring lacks and returns ph: row iy0 then sits in slot
 * ph and iy0 + r in (ph + r) % K. */
TD_ARM_AI int td_arm_dw_ring_rows(const int8_t *in, int16_t *ring, int *nx, int *ns, const int iy0,
                                  const int K, const int IH, const int IW, const int C,
                                  const int NC, const int PU, const int PL, const int IZP,
                                  const int DIR)
{
    int x = *nx, s = *ns;
    if (DIR >= 0) {
        x = x < iy0 ? iy0 : x;
        for (; x <= iy0 + K - 1; ++x, s = s == K - 1 ? 0 : s + 1) {
            td_arm_dw_load(in, ring + s * NC * PU, x, IH, IW, C, NC, PU, PL, IZP);
        }
        *nx = x;
        *ns = s;
        return s;
    }
    x = x > iy0 + K - 1 ? iy0 + K - 1 : x;
    for (; x >= iy0; --x, s = s == 0 ? K - 1 : s - 1) {
        td_arm_dw_load(in, ring + s * NC * PU, x, IH, IW, C, NC, PU, PL, IZP);
    }
    *nx = x;
    *ns = s;
    return s == K - 1 ? 0 : s + 1;
}

/* Channels c0 .. c0 + NC - 1 of the layer (see td_arm_dw_layer): three ring
 * slots of NC * PU int16 hold the kernel rows of the current output row. */
#define TD_DW_SLOT_ (NC * PU * 2)
TD_ARM_AI void td_arm_dw3x3_group(const int8_t *in, int16_t *ring, const int32_t *stream,
                                  int8_t *out, const int IH, const int IW, const int C,
                                  const int NC, const int OH, const int OW, const int SV,
                                  const int SU, const int PT, const int PL, const int PU,
                                  const int IZP, const int DIR, const int ASH, TD_ARM_RQ_ARGS)
{
    /* td_arm_dw_ring_rows with K = 3, written out: through the helper GCC allocates
     * this loop's registers differently (vww on the M7: 2,640 instructions more) */
    int nx = DIR >= 0 ? -PT : (OH - 1) * SV - PT + 2; /* the next row to load */
    int ns = 0, n;
    for (n = 0; n < OH; ++n) {
        const int oy = DIR >= 0 ? n : OH - 1 - n;
        const int iy0 = oy * SV - PT;
        int ph;
        if (DIR >= 0) {
            nx = nx < iy0 ? iy0 : nx;
            for (; nx <= iy0 + 2; ++nx, ns = ns == 2 ? 0 : ns + 1) {
                td_arm_dw_load(in, ring + ns * NC * PU, nx, IH, IW, C, NC, PU, PL, IZP);
            }
            ph = ns;
        } else {
            nx = nx > iy0 + 2 ? iy0 + 2 : nx;
            for (; nx >= iy0; --nx, ns = ns == 0 ? 2 : ns - 1) {
                td_arm_dw_load(in, ring + ns * NC * PU, nx, IH, IW, C, NC, PU, PL, IZP);
            }
            ph = ns == 2 ? 0 : ns + 1;
        }
        {
            const int16_t *x0 = ring + ph * NC * PU;
            int8_t *o = out + oy * OW * C;
            if (!__builtin_constant_p(NC)) {
                /* a run-time shape (td_arm_dw_layer_rt): D1, D2 are run-time data anyway,
                 * so one row call (inlined once) serves the three phases */
                td_arm_dw_row(x0, stream, o, NC, C, OW, SU, PU,
                              ph == 2 ? -2 * TD_DW_SLOT_ : TD_DW_SLOT_,
                              ph == 1 ? -2 * TD_DW_SLOT_ : TD_DW_SLOT_, ASH, TD_ARM_RQ_PASS);
            } else if (ph == 0) {
                td_arm_dw_row(x0, stream, o, NC, C, OW, SU, PU, TD_DW_SLOT_, TD_DW_SLOT_,
                              ASH, TD_ARM_RQ_PASS);
            } else if (ph == 1) {
                td_arm_dw_row(x0, stream, o, NC, C, OW, SU, PU, TD_DW_SLOT_, -2 * TD_DW_SLOT_,
                              ASH, TD_ARM_RQ_PASS);
            } else {
                td_arm_dw_row(x0, stream, o, NC, C, OW, SU, PU, -2 * TD_DW_SLOT_, TD_DW_SLOT_,
                              ASH, TD_ARM_RQ_PASS);
            }
        }
    }
}
#undef TD_DW_SLOT_

/* ---------------------------------------------------------------------- */
/* Depthwise 5x5 (depth multiplier 1, int8 weights)                        */
/* ---------------------------------------------------------------------- */
/* The same ring of channel-major int16 rows as the 3x3 (td_arm_dw_load), five
 * slots.  A kernel row (5 taps) gives two outputs u, u + 1 (SU == 1) from the
 * words X0 = (x[u], x[u+1]), X1, X2 with the weight pairs W01 = (w0, w1),
 * W23, W12, W34:
 *   u:     smlad(X0, W01) + smlad(X1, W23) + smlabt(X2, W34)
 *   u + 1: smlatb(X0, W01) + smlad(X1, W12) + smlad(X2, W34)
 * and for SU == 2 output u from (x[2u] .. x[2u+4]) = X0, X1, low half of X2:
 * smlad(X0, W01) + smlad(X1, W23) + smlabt(X2, W34).  The channel stream: the
 * plain bias, per kernel row the bytes (w0, w2, w1, w3) and (w1, w3, w2, w4)
 * (SXTB16 and SXTB16 ROR 8 give W01, W23 and W12, W34), then the record; the
 * accumulator is shifted by ASH before the requantization (see td_arm_gemm_block). */

/* Outputs u (and u + 1 when TWO) of one channel: a[0], a[1] from the bias. */
TD_ARM_AI void td_arm_dw5_pair(int32_t *a, const int16_t *const *xr, const int32_t *st,
                               const int u, const int SU, const int TWO)
{
    int32_t a0 = st[0], a1 = st[0];
    int r;
#pragma GCC unroll 5
    for (r = 0; r < 5; ++r) {
        const uint32_t wa = (uint32_t)st[1 + 2 * r], wb = (uint32_t)st[2 + 2 * r];
        const int32_t w01 = (int32_t)__sxtb16((int8x4_t)wa), w23 = (int32_t)td_arm_sxtb16_ror8(wa);
        const int32_t w34 = (int32_t)td_arm_sxtb16_ror8(wb);
        const td_s32a *x = (const td_s32a *)(const void *)(xr[r] + u * SU);
        a0 = __smlabt(x[2], w34, __smlad(x[1], w23, __smlad(x[0], w01, a0)));
        if (TWO && SU == 1) {
            const int32_t w12 = (int32_t)__sxtb16((int8x4_t)wb);
            a1 = __smlad(x[2], w34, __smlad(x[1], w12, __smlatb(x[0], w01, a1)));
        } else if (TWO) {
            a1 = __smlabt(x[3], w34, __smlad(x[2], w23, __smlad(x[1], w01, a1)));
        }
    }
    a[0] = a0;
    a[1] = a1;
}

/* One output row of a group of C channels; rows[r]: kernel row r's ring slot
 * ([C][PU] int16).  OC: the output's pixel stride (all channels). */
TD_ARM_AI void td_arm_dw5_row(const int16_t *const *rows, const int32_t *stream, int8_t *o,
                              const int C, const int OC, const int OU, const int SU,
                              const int PU, const int ASH, TD_ARM_RQ_ARGS)
{
    const int CS = 11 + RS; /* stream words per channel: bias, weights, record */
    int c, u, r;
    for (c = 0; c < C; ++c) {
        const int32_t *st = stream + c * CS;
        const td_arm_rec k = td_arm_rec_load(st + 11, RS, E, FIX, FOLD, ZP);
        const int16_t *xr[5];
        int8_t *oc = o + c;
        int32_t a[2];
#pragma GCC unroll 5
        for (r = 0; r < 5; ++r) {
            xr[r] = rows[r] + c * PU;
        }
        for (u = 0; u + 2 <= OU; u += 2) {
            td_arm_dw5_pair(a, xr, st, u, SU, 1);
            oc[u * OC] = (int8_t)TD_ARM_RQ(td_arm_lsl(a[0], ASH), k.r);
            oc[(u + 1) * OC] = (int8_t)TD_ARM_RQ(td_arm_lsl(a[1], ASH), k.r);
        }
        if (OU & 1) {
            td_arm_dw5_pair(a, xr, st, u, SU, 0);
            oc[u * OC] = (int8_t)TD_ARM_RQ(td_arm_lsl(a[0], ASH), k.r);
        }
    }
}

/* Channels c0 .. c0 + NC - 1 (see td_arm_dw_layer): five ring slots of NC * PU
 * int16 (td_arm_dw_ring_rows). */
TD_ARM_AI void td_arm_dw5x5_group(const int8_t *in, int16_t *ring, const int32_t *stream,
                                  int8_t *out, const int IH, const int IW, const int C,
                                  const int NC, const int OH, const int OW, const int SV,
                                  const int SU, const int PT, const int PL, const int PU,
                                  const int IZP, const int DIR, const int ASH, TD_ARM_RQ_ARGS)
{
    int nx = DIR >= 0 ? -PT : (OH - 1) * SV - PT + 4; /* the next row to load */
    int ns = 0, n, r;
    for (n = 0; n < OH; ++n) {
        const int oy = DIR >= 0 ? n : OH - 1 - n;
        const int ph = td_arm_dw_ring_rows(in, ring, &nx, &ns, oy * SV - PT, 5, IH, IW, C, NC,
                                           PU, PL, IZP, DIR);
        const int16_t *rows[5];
#pragma GCC unroll 5
        for (r = 0; r < 5; ++r) {
            rows[r] = ring + ((ph + r) % 5) * NC * PU;
        }
        td_arm_dw5_row(rows, stream, out + oy * OW * C, NC, C, OW, SU, PU, ASH, TD_ARM_RQ_PASS);
    }
}

/* One ring group of NC channels through the kernel of its size. */
TD_ARM_AI void td_arm_dw_group(const int8_t *in, int16_t *ring, const int32_t *stream,
                               int8_t *out, const int K, const int IH, const int IW, const int C,
                               const int NC, const int OH, const int OW, const int SV,
                               const int SU, const int PT, const int PL, const int PU,
                               const int IZP, const int DIR, const int ASH, TD_ARM_RQ_ARGS)
{
    if (K == 5) {
        td_arm_dw5x5_group(in, ring, stream, out, IH, IW, C, NC, OH, OW, SV, SU, PT, PL, PU, IZP,
                           DIR, ASH, TD_ARM_RQ_PASS);
    } else {
        td_arm_dw3x3_group(in, ring, stream, out, IH, IW, C, NC, OH, OW, SV, SU, PT, PL, PU, IZP,
                           DIR, ASH, TD_ARM_RQ_PASS);
    }
}

/* The layer: depthwise K x K (3 or 5), depth multiplier 1, OH x OW outputs, input
 * IH x IW x C, strides SV (rows), SU (columns), padding PT/PL.  The
 * channels go in groups of CG (the ring holds K x CG x PU int16); per group
 * the output rows go in increasing (DIR > 0) or decreasing order, each
 * written after all of its inputs were read.  Safe for in-place "window"
 * with one group; with several, out may EQUAL in where every output row is
 * written over input rows already read (kernels_arm.alias_safe). */
TD_ARM_AI void td_arm_dw_layer(const int8_t *in, int16_t *ring, const int32_t *stream, int8_t *out,
                               const td_arm_dw_cfg *cfg, const int K)
{
    TD_ARM_RQ_LOCALS(&cfg->rq);
    const int IH = cfg->win.in_h, IW = cfg->win.in_w, C = cfg->win.in_c, CG = cfg->group_c;
    const int OH = cfg->win.out_h, OW = cfg->win.out_w, SV = cfg->win.stride_h;
    const int SU = cfg->win.stride_w, PT = cfg->win.pad_top, PL = cfg->win.pad_left;
    const int PU = cfg->ring_w, IZP = cfg->win.in_zero_point, DIR = cfg->dir;
    const int ASH = cfg->acc_shift;
    /* stream words per channel: the bias, the weights (3x3: three int8 words or six
     * int16 pairs; 5x5: ten int8 words), the record */
    const int CS = (K == 5 ? 11 : ASH ? 4 : 7) + RS;
    int c0;
    td_arm_dw_ring_init(ring, K * CG * PU, IZP);
    for (c0 = 0; c0 + CG <= C; c0 += CG) {
        td_arm_dw_group(in + c0, ring, stream + c0 * CS, out + c0, K, IH, IW, C, CG, OH, OW, SV,
                        SU, PT, PL, PU, IZP, DIR, ASH, TD_ARM_RQ_PASS);
    }
    if (C % CG) {
        td_arm_dw_ring_init(ring, K * (C % CG) * PU, IZP);
        td_arm_dw_group(in + c0, ring, stream + c0 * CS, out + c0, K, IH, IW, C, C % CG, OH, OW,
                        SV, SU, PT, PL, PU, IZP, DIR, ASH, TD_ARM_RQ_PASS);
    }
}

/* td_arm_dw_layer with the layer's shape as run-time data (--optimize size: one
 * function for the K x K layers of one stride along x, weight format and
 * requantization flags): the window, ring group and width, direction, output zero
 * point and clamp bounds from s; K, SU (the stride along x), ASH and the flags
 * compile-time. */
TD_ARM_AI void td_arm_dw_layer_rt(const int8_t *in, int16_t *ring, const int32_t *stream,
                                  int8_t *out, const td_arm_dw_shape *s, const int K,
                                  const int SU, const int ASH, const int FIX, const int RS,
                                  const int E, const int FOLD, const int CLAMP)
{
    const int ZP = s->out_zero_point, LO = s->act_min, HI = s->act_max;
    const int IH = s->in_h, IW = s->in_w, C = s->in_c, CG = s->group_c;
    const int OH = s->out_h, OW = s->out_w, SV = s->stride_h;
    const int PT = s->pad_top, PL = s->pad_left, PU = s->ring_w;
    const int IZP = s->in_zero_point, DIR = s->dir;
    const int CS = (K == 5 ? 11 : ASH ? 4 : 7) + RS; /* as in td_arm_dw_layer */
    int c0;
    for (c0 = 0; c0 < C; c0 += CG) {
        const int NC = C - c0 < CG ? C - c0 : CG;
        if (c0 == 0 || NC != CG) { /* the padding columns of the slots' layout */
            td_arm_dw_ring_init(ring, K * NC * PU, IZP);
        }
        td_arm_dw_group(in + c0, ring, stream + c0 * CS, out + c0, K, IH, IW, C, NC, OH, OW, SV,
                        SU, PT, PL, PU, IZP, DIR, ASH, TD_ARM_RQ_PASS);
    }
}

/* The 3x3 (int16 or int8 weights) and the 5x5 (int8 weights) layers. */
TD_ARM_AI void td_arm_dw3x3(const int8_t *in, int16_t *ring, const int32_t *stream, int8_t *out,
                            const td_arm_dw_cfg *cfg)
{
    td_arm_dw_layer(in, ring, stream, out, cfg, 3);
}

TD_ARM_AI void td_arm_dw5x5(const int8_t *in, int16_t *ring, const int32_t *stream, int8_t *out,
                            const td_arm_dw_cfg *cfg)
{
    td_arm_dw_layer(in, ring, stream, out, cfg, 5);
}

#endif /* __ARM_FEATURE_DSP */

#ifdef __cplusplus
}
#endif

#endif
