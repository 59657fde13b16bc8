# Arm MPS2 mps2-an385: Cortex-M3 (also runs CPU=cortex-m0 code), CMSDK UART0, FPGAIO counter.
CPU_DEFAULT := cortex-m3
EC_MAX_PAYLOAD := 1024
EC_RX_RING := 2048
EC_UART_IRQ := 0
DRIVERS := cmsdk_uart fpgaio_counter
BOARD_DEFS := -DCMSDK_UART_BASE=0x40004000u -DFPGAIO_COUNTER_ADDR=0x40028018u
include $(FW_DIR)/arch/cortex-m/cortexm.mk
