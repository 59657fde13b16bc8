/* BBC micro:bit v1: nRF51822, Cortex-M0, 256 KB flash, 16 KB RAM. */
#include "cortexm.h"
#include "ec_board.h"
#include "nrf51_uart.h"

__attribute__((section(".vectors"), used)) const ec_vector_t ec_vectors[16 + 32] = {
    EC_CORE_VECTORS,
    [16 + 2] = nrf51_uart_irq, /* UART0 */
};

void board_init(void) { nrf51_uart_init(); }
