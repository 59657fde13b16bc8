/* CPU cycles: DWT CYCCNT where it counts (silicon Cortex-M3 and up), else SysTick on the
 * processor clock extended to 64 bits by its wrap interrupt (QEMU reads DWT as 0). */
#include "cortexm.h"
#include "ec_board.h"
#include "ec_protocol.h"

static volatile uint32_t systick_wraps;
static uint64_t start;
static uint8_t kind;

void SysTick_Handler(void) { systick_wraps++; }

static int dwt_counts(void)
{
#if EC_HAS_FAULT_STATUS
    DEMCR |= 1u << 24;   /* TRCENA */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;      /* CYCCNTENA */
    for (volatile int i = 0; i < 16; i++)
        ;
    return DWT_CYCCNT != 0;
#else
    return 0;
#endif
}

static uint64_t now(void)
{
    if (kind == EC_COUNTER_DWT_CYCCNT)
        return DWT_CYCCNT;
    uint32_t wraps, value;
    do {
        wraps = systick_wraps;
        value = SYST_CVR;
    } while (wraps != systick_wraps);
    return ((uint64_t)wraps << 24) + (0xFFFFFFu - value);
}

uint8_t board_counter_kind(void)
{
    if (kind == 0) {
        if (dwt_counts()) {
            kind = EC_COUNTER_DWT_CYCCNT;
        } else {
            SYST_RVR = 0xFFFFFFu;
            SYST_CVR = 0;
            SYST_CSR = 7u; /* processor clock, wrap interrupt, enable */
            kind = EC_COUNTER_SYSTICK_CPU;
        }
    }
    return kind;
}

uint32_t board_counter_hz(void) { return 0; /* the CPU clock: board-specific */ }

void board_counter_start(void)
{
    board_counter_kind();
    start = now();
}

uint64_t board_counter_stop(void)
{
    uint64_t end = now();
    return kind == EC_COUNTER_DWT_CYCCNT ? (uint32_t)((uint32_t)end - (uint32_t)start)
                                         : end - start;
}
