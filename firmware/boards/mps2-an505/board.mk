# Arm MPS2 mps2-an505: Cortex-M33, CMSDK UART0 and FPGAIO counter (20 MHz, the IoT Kit
# system clock in QEMU; measured: 6.25 instructions per tick under -icount shift=3) at
# their Secure aliases.
CPU_DEFAULT := cortex-m33
EC_MAX_PAYLOAD := 1024
EC_RX_RING := 2048
EC_UART_IRQ := 32
DRIVERS := cmsdk_uart fpgaio_counter
BOARD_DEFS := -DCMSDK_UART_BASE=0x50200000u -DFPGAIO_COUNTER_ADDR=0x50302018u \
              -DFPGAIO_COUNTER_HZ=20000000u
include $(FW_DIR)/arch/cortex-m/cortexm.mk
