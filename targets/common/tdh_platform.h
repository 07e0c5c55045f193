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

/* Monotonic counter value in ticks (see TDH_COUNTER_HZ). */
uint64_t tdh_counter_read(void);

/* Ticks per second of emulated time; under QEMU's -icount shift=0 one
 * instruction takes 1 ns, so instructions = ticks * 1e9 / TDH_COUNTER_HZ. */
#ifndef TDH_COUNTER_HZ
#define TDH_COUNTER_HZ 1000000000u
#endif

/* Stack bounds for the high-water mark (both 0 when unknown). */
uintptr_t tdh_stack_limit(void);
uintptr_t tdh_stack_top(void);

#define TDH_STACK_PAINT 0xA5A5A5A5u

#endif
