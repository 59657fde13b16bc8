/* What a board (or the native host build) provides to the portable harness. */
#ifndef EC_BOARD_H
#define EC_BOARD_H

#include <stddef.h>
#include <stdint.h>

/* The board's name in HELLO: EC_BOARD_NAME, set by the Makefile to BOARD. */
extern const char ec_board_name[];

/* Clocks, UART (receive interrupt on), counter; called once before anything else. */
void board_init(void);
/* Blocking write of n bytes to the host. */
void board_write(const uint8_t *p, size_t n);
/* Blocking read of one byte from the host. */
uint8_t board_getc(void);
/* Kernel timing: kind is one of EC_COUNTER_*, hz its rate (0: unknown, e.g. the CPU
 * clock); start then stop returns elapsed units. */
uint8_t board_counter_kind(void);
uint32_t board_counter_hz(void);
void board_counter_start(void);
uint64_t board_counter_stop(void);
/* Ends the program (QEMU: semihosting exit with code; silicon: reset). */
void board_exit(int code) __attribute__((noreturn));

#endif
