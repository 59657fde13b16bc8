# Arm MPS3 AN547: Cortex-M55 (Helium/MVE), CMSDK UART0, FPGAIO counter.
CPU_DEFAULT := cortex-m55
EC_MAX_PAYLOAD := 1024
EC_RX_RING := 2048
EC_UART_IRQ := 33
DRIVERS := cmsdk_uart fpgaio_counter
BOARD_DEFS := -DCMSDK_UART_BASE=0x59303000u -DFPGAIO_COUNTER_ADDR=0x59302018u \
              -DFPGAIO_COUNTER_HZ=20000000u \
              -DCMSDK_UART_BAUDDIV=278u
include $(FW_DIR)/arch/cortex-m/cortexm.mk
