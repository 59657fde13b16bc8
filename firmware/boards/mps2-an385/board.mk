# Arm MPS2 mps2-an385: Cortex-M3 (also runs CPU=cortex-m0 code), CMSDK UART0, FPGAIO counter.
CPU_DEFAULT := cortex-m3
include $(FW_DIR)/arch/cortex-m/mps2.mk
