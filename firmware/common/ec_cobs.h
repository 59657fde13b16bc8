/* Consistent Overhead Byte Stuffing (COBS): frames never contain 0x00. */
#ifndef EC_COBS_H
#define EC_COBS_H

#include <stddef.h>
#include <stdint.h>

/* Worst-case encoded size of n bytes (without the 0x00 delimiter). */
#define EC_COBS_MAX_ENCODED(n) ((n) + (n) / 254u + 1u)

/* Encodes n bytes of src into dst; returns the encoded length. */
size_t ec_cobs_encode(const uint8_t *src, size_t n, uint8_t *dst);

/* Decodes n bytes (no delimiter) of src into dst, which may equal src.
 * Returns the decoded length, or -1 when the input is not valid COBS. */
long ec_cobs_decode(const uint8_t *src, size_t n, uint8_t *dst);

#endif
