/* nRF51 TIMER0 as a 32-bit counter at 16 MHz. */
#include "cortexm.h"
#include "ec_board.h"
#include "ec_protocol.h"

#define TIMER_BASE 0x40008000u
#define TASKS_START EC_REG(TIMER_BASE + 0x000u)
#define TASKS_STOP EC_REG(TIMER_BASE + 0x004u)
#define TASKS_CLEAR EC_REG(TIMER_BASE + 0x00Cu)
#define TASKS_CAPTURE0 EC_REG(TIMER_BASE + 0x040u)
#define MODE EC_REG(TIMER_BASE + 0x504u)
#define BITMODE EC_REG(TIMER_BASE + 0x508u)
#define PRESCALER EC_REG(TIMER_BASE + 0x510u)
#define CC0 EC_REG(TIMER_BASE + 0x540u)

uint8_t board_counter_kind(void) { return EC_COUNTER_TIMER; }

uint32_t board_counter_hz(void) { return 16000000u; }

void board_counter_start(void)
{
    MODE = 0u;      /* timer */
    BITMODE = 3u;   /* 32 bits */
    PRESCALER = 0u; /* 16 MHz */
    TASKS_CLEAR = 1u;
    TASKS_START = 1u;
}

uint64_t board_counter_stop(void)
{
    TASKS_CAPTURE0 = 1u;
    uint32_t ticks = CC0;
    TASKS_STOP = 1u;
    return ticks;
}
