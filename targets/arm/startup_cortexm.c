/* Start-up code for the Cortex-M targets: vector table, Reset_Handler and
 * fault handlers that report the faulting PC over semihosting. */
#include <stdint.h>
#include "tdh_platform.h"

/* linker script symbols: only their addresses mean something */
extern uint32_t __tdh_data_load[], __tdh_data_start[], __tdh_data_end[];
extern uint32_t __tdh_bss_start[], __tdh_bss_end[];
extern uint32_t __tdh_stack_limit[], __tdh_stack_top[];

int main(void);
void Reset_Handler(void) __attribute__((noreturn));
void tdh_fault_entry(void);
void SysTick_Handler(void) __attribute__((weak, alias("tdh_fault_entry")));

/* The fault handler runs on its own stack: the main one may be what broke. */
uint32_t tdh_fault_stack[128] __attribute__((aligned(8)));

#define TDH_NUM_IRQS 48u
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

__attribute__((section(".vectors"), used))
const uintptr_t tdh_vectors[16 + TDH_NUM_IRQS] = {
    [0] = (uintptr_t)__tdh_stack_top,
    [1] = (uintptr_t)Reset_Handler,
    [2 ... 14] = (uintptr_t)tdh_fault_entry,
    [15] = (uintptr_t)SysTick_Handler,
    [16 ... 16 + TDH_NUM_IRQS - 1] = (uintptr_t)tdh_fault_entry,
};

static void tdh_enable_fpu(void)
{
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* CP10 and CP11 full access; MVE uses the same enable bits. */
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
}

void Reset_Handler(void)
{
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
    /* Armv8-M checks the stack limit in hardware: overflow faults at once */
    __asm__ volatile("msr msplim, %0" ::"r"(__tdh_stack_limit));
#endif
    tdh_enable_fpu();
    /* sizes from addresses: the symbols are distinct objects to the compiler */
    uintptr_t data_words = ((uintptr_t)__tdh_data_end - (uintptr_t)__tdh_data_start) / 4u;
    uintptr_t bss_words = ((uintptr_t)__tdh_bss_end - (uintptr_t)__tdh_bss_start) / 4u;
    for (uintptr_t i = 0; i < data_words; ++i)
        __tdh_data_start[i] = __tdh_data_load[i];
    for (uintptr_t i = 0; i < bss_words; ++i)
        __tdh_bss_start[i] = 0;
    tdh_exit(main());
}

/* Every unexpected exception lands here: r0 = the stacked frame, then a
 * switch to the fault stack. */
__attribute__((naked)) void tdh_fault_entry(void)
{
    __asm__ volatile(
        "mrs r0, msp\n\t"
        "ldr r1, =tdh_fault_stack + 512\n\t"
        "mov sp, r1\n\t"
        "ldr r1, =tdh_fault\n\t"
        "bx r1\n\t"
        ".ltorg");
}

static char *tdh_put_hex(char *out, const char *label, uint32_t value)
{
    static const char digits[] = "0123456789abcdef";
    while (*label)
        *out++ = *label++;
    for (int shift = 28; shift >= 0; shift -= 4)
        *out++ = digits[(value >> shift) & 0xFu];
    return out;
}

static char *tdh_put_text(char *out, const char *text)
{
    while (*text)
        *out++ = *text++;
    return out;
}

/* Report the exception number, faulting PC/LR and fault status, then exit.
 * The frame is the one pushed on exception entry: r0-r3, r12, lr, pc, xpsr;
 * it is only read when it lies within the stack. */
void tdh_fault(const uint32_t *frame) __attribute__((noreturn, used));
void tdh_fault(const uint32_t *frame)
{
    uint32_t ipsr;
    char line[128];
    char *p = line;
    uintptr_t sp = (uintptr_t)frame;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    p = tdh_put_hex(p, "\nFAULT exception=", ipsr & 0x1FFu);
    if (sp >= (uintptr_t)__tdh_stack_limit && sp + 32u <= (uintptr_t)__tdh_stack_top) {
        p = tdh_put_hex(p, " pc=", frame[6]);
        p = tdh_put_hex(p, " lr=", frame[5]);
    } else {
        p = tdh_put_text(p, " stack overflow");
        p = tdh_put_hex(p, " sp=", (uint32_t)sp);
    }
#if __ARM_ARCH >= 7 || defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
    uint32_t cfsr = *(volatile uint32_t *)0xE000ED28u;
    if (cfsr & (1u << 20)) /* UsageFault STKOF: Armv8-M stack limit hit */
        p = tdh_put_text(p, " stack overflow");
    p = tdh_put_hex(p, " cfsr=", cfsr);
    p = tdh_put_hex(p, " hfsr=", *(volatile uint32_t *)0xE000ED2Cu);
#endif
    *p++ = '\n';
    *p = '\0';
    tdh_puts(line);
    tdh_exit(0x7F);
}
