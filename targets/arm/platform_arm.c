/* Cortex-M platform layer: Arm semihosting for output and exit, and the
 * instruction counter (CMSDK TIMER0 on mps2, SysTick elsewhere). */
#include <stdint.h>
#include "tdh_platform.h"

#define SYS_WRITE0 0x04
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static int tdh_semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

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

/* Both counters count down at TDH_COUNTER_HZ. tdh_elapsed() turns a raw value
 * into ticks modulo the counter's period and tdh_widen() extends that to 64
 * bits, which needs one reading per period: SysTick's wrap interrupt
 * guarantees it, the 32-bit CMSDK timer's period is minutes of emulated time.
 * Readings are synchronised to tick edges (counter_sync.S) for a resolution
 * of a few instructions instead of a tick. */
uint32_t tdh_sync_begin(const volatile uint32_t *reg);
uint64_t tdh_sync_end(const volatile uint32_t *reg);
#define TDH_SYNC_LOOP 4u /* instructions per iteration of tdh_sync_end */

static uint32_t tdh_last;
static uint64_t tdh_base;

#if defined(TDH_COUNTER_CMSDK_TIMER)
/* CMSDK APB TIMER0 of the mps2 machines */
#define TIMER0_CTRL (*(volatile uint32_t *)0x40000000u)
#define TIMER0_VALUE (*(volatile uint32_t *)0x40000004u)
#define TIMER0_RELOAD (*(volatile uint32_t *)0x40000008u)
#define TDH_COUNTER_REG (&TIMER0_VALUE)
#ifndef TDH_COUNTER_RELOAD /* smaller only to test the widening */
#define TDH_COUNTER_RELOAD 0xFFFFFFFFu
#endif

void tdh_counter_init(void)
{
    if (TIMER0_CTRL & 1u)
        return;
    TIMER0_RELOAD = TDH_COUNTER_RELOAD;
    TIMER0_VALUE = TDH_COUNTER_RELOAD;
    TIMER0_CTRL = 1u;
    tdh_last = TDH_COUNTER_RELOAD - TIMER0_VALUE;
}

static uint32_t tdh_irq_save(void)
{
    return 0;
}

static void tdh_irq_restore(uint32_t state)
{
    (void)state;
}

#elif defined(TDH_COUNTER_SYSTICK)
/* SysTick on the processor clock: a 24-bit counter */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define TDH_COUNTER_REG (&SYST_CVR)
#ifndef TDH_COUNTER_RELOAD /* smaller only to test the widening */
#define TDH_COUNTER_RELOAD 0xFFFFFFu
#endif

void tdh_counter_init(void)
{
    if (SYST_CSR & 1u)
        return;
    SYST_RVR = TDH_COUNTER_RELOAD;
    SYST_CVR = 0u;
    SYST_CSR = 7u; /* enable, wrap interrupt, processor clock */
    tdh_last = TDH_COUNTER_RELOAD - SYST_CVR;
}

/* Interrupts stay off while reading: a wrap interrupt in the middle would
 * both widen twice and stretch the synchronisation loop. */
static uint32_t tdh_irq_save(void)
{
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static void tdh_irq_restore(uint32_t state)
{
    __asm__ volatile("msr primask, %0" ::"r"(state) : "memory");
}

static uint64_t tdh_widen(uint32_t raw);

void SysTick_Handler(void)
{
    (void)tdh_widen(SYST_CVR);
}

#else
#error "define TDH_COUNTER_CMSDK_TIMER or TDH_COUNTER_SYSTICK"
#endif

#define TDH_PERIOD ((uint64_t)TDH_COUNTER_RELOAD + 1u)

/* ticks since the counter started, from a raw (down-counting) value */
static uint64_t tdh_widen(uint32_t raw)
{
    uint32_t now = TDH_COUNTER_RELOAD - raw;
    if (now < tdh_last)
        tdh_base += TDH_PERIOD;
    tdh_last = now;
    return tdh_base + now;
}

/* Emulated nanoseconds = instructions under -icount shift=0. A multiply
 * and a shift, not a division: Armv6-M divides in a library routine whose
 * data-dependent time would land inside the measured interval. */
#define TDH_NS_PER_TICK_Q8 (256000000000ull / TDH_COUNTER_HZ)
_Static_assert(TDH_NS_PER_TICK_Q8 * TDH_COUNTER_HZ == 256000000000ull,
               "1e9 / TDH_COUNTER_HZ must be a multiple of 1/256");

static uint64_t tdh_ticks_to_ns(uint64_t ticks)
{
    return (ticks * TDH_NS_PER_TICK_Q8) >> 8;
}

uint64_t tdh_time_begin(void)
{
    uint32_t irq = tdh_irq_save();
    uint64_t ticks = tdh_widen(tdh_sync_begin(TDH_COUNTER_REG));
    tdh_irq_restore(irq);
    return tdh_ticks_to_ns(ticks);
}

uint64_t tdh_time_end(void)
{
    uint32_t irq = tdh_irq_save();
    uint64_t sync = tdh_sync_end(TDH_COUNTER_REG);
    uint64_t ticks = tdh_widen((uint32_t)sync);
    tdh_irq_restore(irq);
    /* the call came this many loop iterations before the edge */
    return tdh_ticks_to_ns(ticks) - (sync >> 32) * TDH_SYNC_LOOP;
}

extern uint32_t __tdh_stack_limit[], __tdh_stack_top[];

uintptr_t tdh_stack_limit(void)
{
    return (uintptr_t)__tdh_stack_limit;
}

uintptr_t tdh_stack_top(void)
{
    return (uintptr_t)__tdh_stack_top;
}
