#include "ec_cobs.h"

size_t ec_cobs_encode(const uint8_t *src, size_t n, uint8_t *dst)
{
    size_t code_pos = 0, out = 1;
    uint8_t code = 1;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == 0) {
            dst[code_pos] = code;
            code_pos = out++;
            code = 1;
            continue;
        }
        dst[out++] = src[i];
        if (++code == 0xFF) {
            dst[code_pos] = code;
            code_pos = out++;
            code = 1;
        }
    }
    dst[code_pos] = code;
    return out;
}

long ec_cobs_decode(const uint8_t *src, size_t n, uint8_t *dst)
{
    size_t in = 0, out = 0;
    while (in < n) {
        uint8_t code = src[in++];
        if (code == 0 || in + code - 1u > n)
            return -1;
        for (uint8_t k = 1; k < code; k++) {
            if (src[in] == 0)
                return -1;
            dst[out++] = src[in++];
        }
        if (code != 0xFF && in < n)
            dst[out++] = 0;
    }
    return (long)out;
}
