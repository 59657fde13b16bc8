/* CRC-32/ISO-HDLC (IEEE 802.3, zlib.crc32): reflected poly 0xEDB88320,
 * init 0xFFFFFFFF, final xor 0xFFFFFFFF. */
#ifndef EC_CRC32_H
#define EC_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: start with crc = 0 (like zlib.crc32(data, crc)). */
uint32_t ec_crc32(uint32_t crc, const uint8_t *p, size_t n);

#endif
