# BBC micro:bit v1: nRF51822 (Cortex-M0, 16 KB RAM), UART0, TIMER0 at 16 MHz.
CPU_DEFAULT := cortex-m0
EC_MAX_PAYLOAD := 256
EC_RX_RING := 512
EC_UART_IRQ := 2
DRIVERS := nrf51_uart nrf51_timer
BOARD_DEFS :=
include $(FW_DIR)/arch/cortex-m/cortexm.mk
