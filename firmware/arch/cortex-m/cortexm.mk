# Toolchain and flags shared by the Cortex-M boards; a board.mk sets CPU_DEFAULT,
# EC_MAX_PAYLOAD, EC_RX_RING, EC_UART_IRQ, DRIVERS and BOARD_DEFS, then includes this.
CROSS ?= arm-none-eabi-
CC = $(CROSS)gcc
OBJCOPY = $(CROSS)objcopy
SIZE = $(CROSS)size
CM_DIR := $(FW_DIR)/arch/cortex-m
FLOAT_cortex-m4 := -mfpu=fpv4-sp-d16 -mfloat-abi=hard
FLOAT_cortex-m7 := -mfpu=fpv5-d16 -mfloat-abi=hard
FLOAT_cortex-m33 := -mfpu=fpv5-sp-d16 -mfloat-abi=hard
FLOAT_cortex-m55 := -mfloat-abi=hard
ARCH_CFLAGS = -mthumb -mcpu=$(CPU) $(FLOAT_$(CPU)) -ffunction-sections -fdata-sections \
              -DEC_EXIT_$(EXIT) -DEC_RX_RING=$(EC_RX_RING)u -DEC_UART_IRQ=$(EC_UART_IRQ)u \
              $(BOARD_DEFS)
ARCH_INCLUDES = -I$(CM_DIR) -I$(FW_DIR)/drivers
ARCH_SRCS = $(wildcard $(CM_DIR)/*.c) $(patsubst %,$(FW_DIR)/drivers/%.c,$(DRIVERS))
LDSCRIPT = $(BOARD_DIR)/link.ld
ARCH_LDFLAGS = -nostartfiles --specs=nano.specs -Wl,--gc-sections -L$(CM_DIR) -T$(LDSCRIPT) \
               -Wl,-Map=$(BUILD_DIR)/firmware.map
TARGET = $(BUILD_DIR)/firmware.elf
EXTRA_OUTPUTS = $(BUILD_DIR)/firmware.bin $(BUILD_DIR)/firmware.hex
