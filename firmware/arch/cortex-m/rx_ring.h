/* Interrupt-driven UART receive into a ring buffer, with flow control: when the ring is
 * full the board's handler leaves the byte in the UART and calls ec_rx_pause(), which
 * masks the UART interrupt; board_getc() unmasks it (and pends it, so the waiting byte is
 * picked up) once it has taken a byte out. */
#ifndef EC_RX_RING_H
#define EC_RX_RING_H

#include <stdint.h>

int ec_rx_space(void);   /* nonzero while the ring can take a byte */
void ec_rx_put(uint8_t c); /* only after ec_rx_space() said yes; from the UART handler */
void ec_rx_pause(void);  /* ring full: mask the UART interrupt until there is room */
/* For the fault handler, where the UART interrupt cannot run: calls the UART handler by
 * hand until a byte has arrived or `polls` calls were made; nonzero if a byte came. */
int ec_rx_wait_polled(uint32_t polls);

#endif
