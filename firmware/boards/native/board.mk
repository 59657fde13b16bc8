# The harness compiled for the host (a process serving the protocol on a pty).
CC = $(HOST_CC)
CPU_DEFAULT = generic
EC_MAX_PAYLOAD = 4096
ARCH_CFLAGS =
ARCH_LDFLAGS =
ARCH_SRCS =
TARGET = $(BUILD_DIR)/firmware
