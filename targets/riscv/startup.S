/* Start-up code for the RISC-V targets (QEMU virt, machine mode, -bios none):
 * _start must be the first code at 0x80000000. */
#define MSTATUS_FS_INITIAL 0x2000
#define MSTATUS_VS_INITIAL 0x0200

    .section .text.start, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    la sp, __tdh_stack_top
    la t0, tdh_trap_entry
    csrw mtvec, t0
    /* A locked PMP region without permissions guards the 4 KB below the
     * stack, so that an overflow traps (in machine mode too). NAPOT
     * encoding: (base | (size/2 - 1)) >> 2. */
    la t0, __tdh_stack_guard
    srli t0, t0, 2
    ori t0, t0, 511
    csrw pmpaddr0, t0
    li t0, 0x98 /* L | A=NAPOT, no R/W/X */
    csrw pmpcfg0, t0
#if defined(__riscv_flen)
    li t0, MSTATUS_FS_INITIAL
    csrs mstatus, t0
#endif
#if defined(__riscv_vector)
    /* vector instructions trap until mstatus.VS is non-zero */
    li t0, MSTATUS_VS_INITIAL
    csrs mstatus, t0
#endif
    la a0, __tdh_tdata_load
    la a1, __tdh_tdata_start
    la a2, __tdh_tdata_end
    call tdh_copy_words
    la a0, __tdh_data_load
    la a1, __tdh_data_start
    la a2, __tdh_data_end
    call tdh_copy_words
    la a0, __tdh_bss_start
    la a1, __tdh_bss_end
1:  bgeu a0, a1, 2f
    sw zero, 0(a0)
    addi a0, a0, 4
    j 1b
2:  la tp, __tdh_tdata_start /* picolibc keeps errno in thread-local storage */
    call main
    call tdh_exit

/* copy words from a0 to [a1, a2) */
tdh_copy_words:
    bgeu a1, a2, 1f
    lw t0, 0(a0)
    sw t0, 0(a1)
    addi a0, a0, 4
    addi a1, a1, 4
    j tdh_copy_words
1:  ret

/* Any trap is unexpected: report it and exit, on the fault stack since the
 * main one may be what broke. */
    .balign 4
tdh_trap_entry:
    csrr a0, mcause
    csrr a1, mepc
    csrr a2, mtval
    mv a3, sp
    la sp, tdh_fault_stack + 512
    j tdh_trap

/* uint64_t tdh_time_begin(void), tdh_time_end(void): minstret, re-read if
 * the high half changed in between (the ilp32 ABI returns the low word in
 * a0); exact, so both ends of an interval use the same read. */
    .section .text.tdh_time_begin, "ax"
    .globl tdh_time_begin
    .globl tdh_time_end
tdh_time_begin:
tdh_time_end:
    csrr a1, minstreth
    csrr a0, minstret
    csrr t0, minstreth
    bne a1, t0, tdh_time_begin
    ret

/* int tdh_semihost(int op, const void *arg): the semihosting trap is this
 * exact three-instruction sequence, uncompressed and within one page. */
    .section .text.tdh_semihost, "ax"
    .globl tdh_semihost
    .balign 16
    .option push
    .option norvc
tdh_semihost:
    slli zero, zero, 0x1f
    ebreak
    srai zero, zero, 7
    ret
    .option pop
