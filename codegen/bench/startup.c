/* Bare-metal start-up for the on-target benchmark (MPS2/MPS3 under QEMU): vector table,
 * .data/.bss initialisation, FPU/MVE enable, semihosting console and exit. */
#include <stdint.h>

extern uint32_t __etext, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern uint32_t __stack_top__;
int main(void);
void bench_write(const char *text);
void bench_exit(int code);
void bench_reset(void);
void bench_fault(void);

static int bench_semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void bench_write(const char *text)
{
    (void)bench_semihost(0x04, text); /* SYS_WRITE0 */
}

void bench_exit(int code)
{
    const uint32_t block[2] = {0x20026u, (uint32_t)code}; /* ADP_Stopped_ApplicationExit */
    (void)bench_semihost(0x20, block);                      /* SYS_EXIT_EXTENDED */
    for (;;) {
    }
}

void bench_reset(void)
{
    const uint32_t *src = &__etext;
    uint32_t *dst = &__data_start__;
    /* first: GCC may vectorise even the copy loops below (MVE) */
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10/CP11 full access */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    while (dst < &__data_end__) {
        *dst++ = *src++;
    }
    for (dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0;
    }
    bench_exit(main());
}

void bench_fault(void)
{
    bench_write("FAULT\n");
    bench_exit(99);
}

__attribute__((section(".vectors"), used)) static void (*const bench_vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&__stack_top__, bench_reset, bench_fault, bench_fault,
    bench_fault, bench_fault, bench_fault};
