/* Arm MPS2 mps2-an505: Cortex-M33 (ARMv8-M Mainline with TrustZone) in the IoT Kit
 * subsystem. It boots in the Secure state with the vector table at 0x10000000, so the
 * Secure aliases of memory (0x1xxxxxxx, 0x3xxxxxxx) and peripherals (0x5xxxxxxx) are
 * used. UART0 receive is expansion interrupt 0, NVIC interrupt 32. */
#include "cmsdk_uart.h"
#include "cortexm.h"
#include "ec_board.h"

__attribute__((section(".vectors"), used)) const ec_vector_t ec_vectors[16 + 64] = {
    EC_CORE_VECTORS,
    [16 + 32] = cmsdk_uart_irq, /* UART0 receive */
};

void board_init(void) { cmsdk_uart_init(); }
