# Netduino Plus 2: STM32F405 (Cortex-M4F), USART1, DWT or SysTick cycle counter.
CPU_DEFAULT := cortex-m4
EC_MAX_PAYLOAD := 1024
EC_RX_RING := 2048
EC_UART_IRQ := 37
DRIVERS := stm32_usart cycle_counter
BOARD_DEFS :=
include $(FW_DIR)/arch/cortex-m/cortexm.mk
