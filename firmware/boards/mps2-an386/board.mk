# Arm MPS2 mps2-an386: Cortex-M4F, CMSDK UART0, FPGAIO counter.
CPU_DEFAULT := cortex-m4
include $(FW_DIR)/arch/cortex-m/mps2.mk
