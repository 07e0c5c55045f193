/* tinydeploy runtime: MultiplyByQuantizedMultiplier in RISC-V vector lanes, as
 * inline-assembly text for the vector kernels (rv_vector.c,
 * rvv_batch_matmul_s8.c, attention_rvv.c).
 *
 * TD_RVV_MBQM(reg, M, L, R): reg = td_mbqm(reg, multiplier M, left shift L,
 * right shift R) for every lane of the register group reg (any LMUL), with
 * scalar operands.  vsmul with vxrm = round-to-nearest-up (the kernel sets it)
 * is SaturatingRoundingDoublingHighMul (half up, as gemmlowp's nudge gives);
 * the rounding shift is applied to |reg| (half away from zero, as
 * RoundingDivideByPOT) and the sign restored through the mask v0. */
#ifndef TD_RVV_MBQM_H
#define TD_RVV_MBQM_H

#define TD_RVV_MBQM(reg, M, L, R)                                           \
    "vsll.vx " reg ", " reg ", " L "\n\t"                                   \
    "vsmul.vx " reg ", " reg ", " M "\n\t"                                  \
    "vmslt.vx v0, " reg ", zero\n\t"                                        \
    "vrsub.vi " reg ", " reg ", 0, v0.t\n\t"                                \
    "vssrl.vx " reg ", " reg ", " R "\n\t"                                  \
    "vrsub.vi " reg ", " reg ", 0, v0.t\n\t"

#endif
