/* Platform layer used by the firmware harness: console output, exit and an
 * instruction counter. Implemented once per architecture (arm, riscv, host). */
#ifndef TDH_PLATFORM_H
#define TDH_PLATFORM_H

#include <stdint.h>

/* Write a NUL-terminated string to the host's stdout. */
void tdh_puts(const char *s);

/* Stop the program with an exit status visible to the host. */
void tdh_exit(int code) __attribute__((noreturn));

/* Start the free-running counter (idempotent). */
void tdh_counter_init(void);

/* Emulated instructions executed so far (under QEMU's -icount shift=0 one
 * instruction takes 1 ns), for timing an interval: tdh_time_begin() is the
 * time at which it returns, tdh_time_end() the time at which it was called.
 * Both may include a constant offset, which calibration removes. */
uint64_t tdh_time_begin(void);
uint64_t tdh_time_end(void);

/* Stack bounds for the high-water mark (both 0 when unknown). */
uintptr_t tdh_stack_limit(void);
uintptr_t tdh_stack_top(void);

#define TDH_STACK_PAINT 0xA5A5A5A5u

#endif
