/* MPS2/MPS3 FPGAIO COUNTER: 32 bits at FPGAIO_COUNTER_HZ (MPS2: 25 MHz). Under QEMU
 * -icount shift=3 (8 ns per instruction) one 25 MHz tick is 5 instructions, which the
 * host reports as an instruction count. */
#include "cortexm.h"
#include "ec_board.h"
#include "ec_protocol.h"

#ifndef FPGAIO_COUNTER_ADDR
#error "FPGAIO_COUNTER_ADDR must be defined by the board"
#endif

static uint32_t start;

#ifndef FPGAIO_COUNTER_HZ
#define FPGAIO_COUNTER_HZ 25000000u
#endif

uint8_t board_counter_kind(void) { return EC_COUNTER_FPGAIO; }

uint32_t board_counter_hz(void) { return FPGAIO_COUNTER_HZ; }

void board_counter_start(void) { start = EC_REG(FPGAIO_COUNTER_ADDR); }

uint64_t board_counter_stop(void) { return (uint32_t)(EC_REG(FPGAIO_COUNTER_ADDR) - start); }
