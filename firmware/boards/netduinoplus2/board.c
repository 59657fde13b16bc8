/* Netduino Plus 2: STM32F405RG, Cortex-M4F at the 16 MHz HSI reset clock. */
#include "cortexm.h"
#include "ec_board.h"
#include "stm32_usart.h"

__attribute__((section(".vectors"), used)) const ec_vector_t ec_vectors[16 + 82] = {
    EC_CORE_VECTORS,
    [16 + 37] = stm32_usart_irq, /* USART1 */
};

void board_init(void) { stm32_usart_init(); }
