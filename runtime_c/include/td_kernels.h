/* tinydeploy runtime: what every generated file uses.  The kernel headers
 * a model needs (td_kernels_f32.h, td_kernels_s8.h, td_arm_gemm.h, ...) are
 * included one by one by its generated NAME.c, and only those are copied
 * into the output folder. */
#ifndef TD_KERNELS_H
#define TD_KERNELS_H

#if defined(__GNUC__) || defined(__clang__)
#define TD_ALIGNED(n) __attribute__((aligned(n)))
#else
#define TD_ALIGNED(n)
#endif

#endif
