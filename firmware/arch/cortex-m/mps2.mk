# The Arm MPS2 boards QEMU models alike (mps2-an385, mps2-an386, mps2-an500): CMSDK UART0
# at 0x40004000 (polled), FPGAIO counter at 0x40028018. A board.mk sets CPU_DEFAULT, then
# includes this.
EC_MAX_PAYLOAD := 1024
EC_RX_RING := 2048
EC_UART_IRQ := 0
DRIVERS := cmsdk_uart fpgaio_counter
BOARD_DEFS := -DCMSDK_UART_BASE=0x40004000u -DFPGAIO_COUNTER_ADDR=0x40028018u
include $(FW_DIR)/arch/cortex-m/cortexm.mk
