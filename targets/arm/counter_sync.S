/* Edge-synchronised reads of a down-counting timer register. A timer tick
 * spans many instructions (40 at 25 MHz under -icount shift=0); waiting for
 * the next tick edge, and counting how long that took in a loop of known
 * length, places a reading to within a few instructions. */
    .syntax unified
    .thumb

/* uint32_t tdh_sync_begin(const volatile uint32_t *reg): wait for *reg to
 * change and return the new value; returns within 3 instructions (one loop
 * iteration) of the tick edge. */
    .section .text.tdh_sync_begin, "ax"
    .globl tdh_sync_begin
    .type tdh_sync_begin, %function
    .thumb_func
tdh_sync_begin:
    ldr r1, [r0]
1:  ldr r2, [r0]
    cmp r2, r1
    beq 1b
    mov r0, r2
    bx lr
    .size tdh_sync_begin, . - tdh_sync_begin

/* uint64_t tdh_sync_end(const volatile uint32_t *reg): the same, returning
 * the new value in the low word and the iterations of its 4-instruction
 * loop in the high word (r1). */
    .section .text.tdh_sync_end, "ax"
    .globl tdh_sync_end
    .type tdh_sync_end, %function
    .thumb_func
tdh_sync_end:
    movs r1, #0
    ldr r2, [r0]
1:  adds r1, r1, #1
    ldr r3, [r0]
    cmp r3, r2
    beq 1b
    mov r0, r3
    bx lr
    .size tdh_sync_end, . - tdh_sync_end
