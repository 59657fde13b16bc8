# Arm MPS2 mps2-an500: Cortex-M7, CMSDK UART0, FPGAIO counter (as AN385/AN386 in QEMU).
CPU_DEFAULT := cortex-m7
EC_MAX_PAYLOAD := 1024
EC_RX_RING := 2048
EC_UART_IRQ := 0
DRIVERS := cmsdk_uart fpgaio_counter
BOARD_DEFS := -DCMSDK_UART_BASE=0x40004000u -DFPGAIO_COUNTER_ADDR=0x40028018u
include $(FW_DIR)/arch/cortex-m/cortexm.mk
