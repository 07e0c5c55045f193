/* Minimal start-up code for the STM32F746 (Cortex-M7): the vector table and
 * Reset_Handler. No vendor files needed.
 *
 * Reset_Handler: enable the FPU (the model's code may use it), copy .data
 * from flash to RAM, zero .bss (the model's arena lives there), enable the
 * instruction cache, call main(). */
#include <stdint.h>

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _estack[];
int main(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_CCR (*(volatile uint32_t *)0xE000ED14u)
#define SCB_ICIALLU (*(volatile uint32_t *)0xE000EF50u)
#define SCB_CCR_IC (1u << 17)

static void barrier(void)
{
    __asm volatile("dsb\n\tisb" ::: "memory");
}

void Default_Handler(void)
{
    for (;;) {
    }
}

void Reset_Handler(void)
{
    SCB_CPACR |= 0xFu << 20; /* CP10 and CP11: full access to the FPU */
    barrier();

    volatile uint32_t *dst = _sdata;
    const volatile uint32_t *src = _sidata;
    while (dst < _edata) {
        *dst++ = *src++;
    }
    for (dst = _sbss; dst < _ebss;) {
        *dst++ = 0;
    }

    SCB_ICIALLU = 0; /* invalidate, then enable the instruction cache */
    barrier();
    SCB_CCR |= SCB_CCR_IC;
    barrier();

    (void)main();
    for (;;) {
    }
}

void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));

typedef void (*vector_t)(void);
#define N_IRQ 98 /* STM32F74x/75x: IRQ 0 (WWDG) .. 97 (DMA2D) */

/* Initial stack pointer, 15 system exceptions, then the interrupts (all on
 * Default_Handler here; define a handler with the vendor's name and put it in
 * this table when you use one). */
__attribute__((section(".isr_vector"), used))
const vector_t vector_table[16 + N_IRQ] = {
    (vector_t)(uintptr_t)_estack,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0, 0, 0, 0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
    [16 ... 16 + N_IRQ - 1] = Default_Handler,
};
