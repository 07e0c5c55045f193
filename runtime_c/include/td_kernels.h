/* tinydeploy runtime: the one header generated code includes. */
#ifndef TD_KERNELS_H
#define TD_KERNELS_H

#if defined(__GNUC__) || defined(__clang__)
#define TD_ALIGNED(n) __attribute__((aligned(n)))
#else
#define TD_ALIGNED(n)
#endif

#include "td_kernels_f32.h"
#if __has_include("td_kernels_s8.h")
#include "td_kernels_s8.h"
#endif
#if defined(__riscv) && __has_include("td_kernels_riscv.h")
#include "td_kernels_riscv.h"
#endif
#if __has_include("td_kernels_inplace.h")
#include "td_kernels_inplace.h"
#endif
#if (defined(__ARM_FEATURE_DSP) || defined(__ARM_FEATURE_MVE)) && __has_include("td_kernels_arm.h")
#include "td_kernels_arm.h"
#endif

#endif
