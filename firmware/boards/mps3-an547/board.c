/* Arm MPS3 AN547: Cortex-M55 with MVE; boots in the Secure state, so the Secure
 * aliases of the peripherals (0x5xxxxxxx) are used. */
#include "cmsdk_uart.h"
#include "cortexm.h"
#include "ec_board.h"

__attribute__((section(".vectors"), used)) const ec_vector_t ec_vectors[16 + 96] = {
    EC_CORE_VECTORS,
    [16 + 33] = cmsdk_uart_irq, /* UART0 receive */
};

void board_init(void) { cmsdk_uart_init(); }
