/* Portable harness entry points used by board code. */
#ifndef EC_HARNESS_H
#define EC_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#ifndef EC_MAX_PAYLOAD
#error "EC_MAX_PAYLOAD (largest message, header included, CRC excluded) must be defined"
#endif

/* Largest frame on the wire: COBS of payload + CRC, plus the 0x00 delimiter. */
#define EC_MAX_WIRE_FRAME (EC_MAX_PAYLOAD + 4u + (EC_MAX_PAYLOAD + 4u) / 254u + 2u)

/* Sends an unsolicited FAULT frame with n 32-bit words (fault handlers). */
void ec_report_fault(const uint32_t *words, size_t n);

/* The protocol loop: never returns. */
void ec_harness_run(void) __attribute__((noreturn));

#endif
