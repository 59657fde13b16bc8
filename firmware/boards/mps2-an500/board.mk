# Arm MPS2 mps2-an500: Cortex-M7, CMSDK UART0, FPGAIO counter (as AN385/AN386 in QEMU).
CPU_DEFAULT := cortex-m7
include $(FW_DIR)/arch/cortex-m/mps2.mk
