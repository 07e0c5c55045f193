/* RISC-V platform layer: semihosting for output and exit, minstret as the
 * instruction counter (exact under QEMU's -icount shift=0). */
#include <stdint.h>
#include "tdh_platform.h"

#define SYS_WRITE0 0x04
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

int tdh_semihost(int op, const void *arg); /* startup.S */
void tdh_trap(uint32_t cause, uint32_t epc, uint32_t tval, uint32_t sp)
    __attribute__((noreturn));

/* The trap handler runs on its own stack (see startup.S). */
uint32_t tdh_fault_stack[128] __attribute__((aligned(16)));

extern uint32_t __tdh_stack_guard[], __tdh_stack_limit[], __tdh_stack_top[];

void tdh_puts(const char *s)
{
    tdh_semihost(SYS_WRITE0, s);
}

void tdh_exit(int code)
{
    const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    tdh_semihost(SYS_EXIT_EXTENDED, block);
    for (;;) /* not reached under QEMU */
        ;
}

void tdh_counter_init(void)
{
}

/* tdh_time_begin() and tdh_time_end() are in startup.S: minstret */

static char *tdh_put_hex(char *out, const char *label, uint32_t value)
{
    static const char digits[] = "0123456789abcdef";
    while (*label)
        *out++ = *label++;
    for (int shift = 28; shift >= 0; shift -= 4)
        *out++ = digits[(value >> shift) & 0xFu];
    return out;
}

void tdh_trap(uint32_t cause, uint32_t epc, uint32_t tval, uint32_t sp)
{
    static const char overflow[] = " stack overflow";
    char line[96];
    char *p = line;
    p = tdh_put_hex(p, "\nFAULT mcause=", cause);
    p = tdh_put_hex(p, " pc=", epc);
    p = tdh_put_hex(p, " mtval=", tval);
    p = tdh_put_hex(p, " sp=", sp);
    uintptr_t guard = (uintptr_t)__tdh_stack_guard, limit = (uintptr_t)__tdh_stack_limit;
    if (sp < limit || (tval >= guard && tval < limit))
        for (const char *q = overflow; *q; ++q)
            *p++ = *q;
    *p++ = '\n';
    *p = '\0';
    tdh_puts(line);
    tdh_exit(0x7F);
}

uintptr_t tdh_stack_limit(void)
{
    return (uintptr_t)__tdh_stack_limit;
}

uintptr_t tdh_stack_top(void)
{
    return (uintptr_t)__tdh_stack_top;
}
