/* Reset, fault reporting and exit for every Cortex-M board. */
#include <stdint.h>
#include <string.h>

#include "cortexm.h"
#include "ec_board.h"
#include "ec_harness.h"
#include "rx_ring.h"

#ifndef EC_FAULT_WAIT_POLLS
/* UART handler calls to wait for the host after a fault: 1-2 s on silicon and on the
 * micro:bit in QEMU, 7-12 s on the other emulated boards (only when no host answers). */
#define EC_FAULT_WAIT_POLLS 20000000u
#endif

extern uint32_t __data_load__, __data_start__, __data_end__, __bss_start__, __bss_end__;
int main(void);

void Reset_Handler(void)
{
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* CP10/CP11 full access: FPU (and MVE on Cortex-M55) before any such instruction. */
    SCB_CPACR |= 0xFu << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    memcpy(&__data_start__, &__data_load__,
           (size_t)((uintptr_t)&__data_end__ - (uintptr_t)&__data_start__));
    memset(&__bss_start__, 0, (size_t)((uintptr_t)&__bss_end__ - (uintptr_t)&__bss_start__));
    main();
    board_exit(0);
}

/* Called by HardFault_Handler with the stacked exception frame. */
void ec_fault_report(const uint32_t *frame) __attribute__((used, noreturn));
void ec_fault_report(const uint32_t *frame)
{
    uint32_t words[12];
    for (int i = 0; i < 8; i++)
        words[i] = frame[i];
#if EC_HAS_FAULT_STATUS
    words[8] = SCB_CFSR;
    words[9] = SCB_HFSR;
    words[10] = SCB_MMFAR;
    words[11] = SCB_BFAR;
    ec_report_fault(words, 12);
#else
    ec_report_fault(words, 8);
#endif
    /* Stop only once the host has answered (any byte) or after a bounded wait: QEMU's exit
     * closes the pty and drops what the host has not read yet, and a reset on silicon
     * would cut the frame still in the UART. */
    (void)ec_rx_wait_polled(EC_FAULT_WAIT_POLLS);
    board_exit(3);
}

/* Finds the stacked frame (MSP or PSP, EXC_RETURN bit 2) and reports it; ARMv6-M safe. */
__attribute__((naked)) void HardFault_Handler(void)
{
    __asm volatile("movs r0, #4\n\t"
                   "mov r1, lr\n\t"
                   "tst r0, r1\n\t"
                   "beq 1f\n\t"
                   "mrs r0, psp\n\t"
                   "b 2f\n"
                   "1:\n\t"
                   "mrs r0, msp\n"
                   "2:\n\t"
                   "ldr r1, =ec_fault_report\n\t"
                   "bx r1\n\t"
                   ".ltorg\n");
}

#if defined(EC_EXIT_reset)
void board_exit(int code)
{
    (void)code;
    __asm volatile("dsb" ::: "memory");
    SCB_AIRCR = 0x05FA0004u; /* SYSRESETREQ */
    for (;;)
        ;
}
#else
/* Semihosting SYS_EXIT_EXTENDED: QEMU (-semihosting-config enable=on) exits with code. */
void board_exit(int code)
{
    static uint32_t block[2];
    block[0] = 0x20026u; /* ADP_Stopped_ApplicationExit */
    block[1] = (uint32_t)code;
    register uint32_t r0 __asm("r0") = 0x20u;
    register uint32_t *r1 __asm("r1") = block;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    for (;;)
        ;
}
#endif

/* Boards whose counter does not use SysTick never enable it; a stray one is a fault. */
void SysTick_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
