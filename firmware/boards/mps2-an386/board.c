/* Arm MPS2 mps2-an386: Cortex-M4F. */
#include "cmsdk_uart.h"
#include "cortexm.h"
#include "ec_board.h"

__attribute__((section(".vectors"), used)) const ec_vector_t ec_vectors[16 + 32] = {
    EC_CORE_VECTORS,
    [16 + 0] = cmsdk_uart_irq, /* UART0 receive */
};

void board_init(void) { cmsdk_uart_init(); }
