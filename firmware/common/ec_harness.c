/* Portable harness: frames in, dispatch through edgeconv_registry, frames out. */
#include "ec_harness.h"

#include <string.h>

#include "ec_board.h"
#include "ec_cobs.h"
#include "ec_crc32.h"
#include "ec_protocol.h"
#include "edgeconv_registry.h"
#include "edgeconv_registry_config.h"

#ifndef EC_FIRMWARE_VERSION
#define EC_FIRMWARE_VERSION "0.1.0"
#endif
#ifndef EC_CPU
#define EC_CPU "generic"
#endif
#ifndef EC_BUILD_INFO
#define EC_BUILD_INFO ""
#endif
#ifdef EDGECONV_NUMERICS
#define EC_NUMERICS EDGECONV_NUMERICS ";" EC_BUILD_INFO
#else
#define EC_NUMERICS "cc=" __VERSION__ ";" EC_BUILD_INFO
#endif

#ifndef EC_BOARD_NAME
#error "EC_BOARD_NAME (the board's name as a string literal) must be defined"
#endif

#if EC_MAX_PAYLOAD < 64 || EC_MAX_PAYLOAD > 65535
#error "EC_MAX_PAYLOAD must be within 64..65535"
#endif

const char ec_board_name[] = EC_BOARD_NAME;

/* Bytes of the HELLO message: header, 36 bytes of fixed fields (version, counter kind,
 * max payload, counter rate, capacities, layer count, hash), then four length-prefixed
 * strings; the sizeof of a string literal counts its NUL, which stands for the length
 * byte. Every other message is bounded by EC_MAX_PAYLOAD at 64 already (INFO: 53 bytes
 * with a 31-character name, ERROR: 47 with the longest GUARD detail), but HELLO grows
 * with the compiler version. */
#define EC_HELLO_BYTES (EC_HEADER_BYTES + 36u + sizeof EC_FIRMWARE_VERSION \
                        + sizeof EC_BOARD_NAME + sizeof EC_CPU + sizeof EC_NUMERICS)
/* A C99 static assertion (glibc turns C11's _Static_assert into one without its message
 * under -std=c99): the compiler names this array when its size is negative. */
typedef char EC_MAX_PAYLOAD_is_smaller_than_the_HELLO_message
    [(EC_HELLO_BYTES <= EC_MAX_PAYLOAD) ? 1 : -1];

#define WORDS(bytes) (((bytes) + 3u) / 4u)

/* Guards (PROTOCOL.md, "Guards"). Each buffer is laid out as
 *     [EC_GUARD_BYTES lead][capacity: the largest layer's size][EC_GUARD_BYTES tail]
 * and the layer being run gets the n bytes right after the lead guard. Every other byte
 * of the buffer is a guard byte: RUN fills them with guard_byte() before the kernel and
 * checks them after it, so a kernel writing even one byte before or past the size its
 * registry entry states is caught, however large the buffer is for other layers. */
#define EC_GUARD_BYTES 16u
#define GUARDED_WORDS(bytes) WORDS(EC_GUARD_BYTES + (bytes) + EC_GUARD_BYTES)
/* Every output byte holds this before the kernel runs (and every scratch byte): an
 * element the kernel leaves unwritten reads back as 0xA5 bytes, not as a stale value
 * that may happen to be right. */
#define EC_OUTPUT_SENTINEL 0xA5u

static uint32_t input_buf[GUARDED_WORDS(EDGECONV_MAX_INPUT_BYTES)];
static uint32_t output_buf[GUARDED_WORDS(EDGECONV_MAX_OUTPUT_BYTES)];
static uint32_t scratch_buf[GUARDED_WORDS(EDGECONV_MAX_SCRATCH_BYTES)];
static uint32_t output_valid; /* bytes of output the last RUN produced */

/* Where a layer's data starts in each buffer (4-byte aligned, as the buffers are). */
#define INPUT_DATA ((uint8_t *)input_buf + EC_GUARD_BYTES)
#define OUTPUT_DATA ((uint8_t *)output_buf + EC_GUARD_BYTES)
#define SCRATCH_DATA ((uint8_t *)scratch_buf + EC_GUARD_BYTES)

static uint8_t rx_frame[EC_MAX_WIRE_FRAME];
static uint8_t tx_msg[EC_MAX_PAYLOAD + EC_CRC_BYTES];
static uint8_t tx_wire[EC_MAX_WIRE_FRAME];

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint8_t *put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}
static uint8_t *put32(uint8_t *p, uint32_t v)
{
    p = put16(p, (uint16_t)v);
    return put16(p, (uint16_t)(v >> 16));
}
static uint8_t *put_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    if (n > 255)
        n = 255;
    *p++ = (uint8_t)n;
    memcpy(p, s, n);
    return p + n;
}

/* Starts a message in tx_msg; returns where its body goes. */
static uint8_t *begin(uint8_t type, uint16_t seq)
{
    tx_msg[0] = type;
    put16(tx_msg + 1, seq);
    return tx_msg + EC_HEADER_BYTES;
}

/* Appends the CRC to the message ending at end, COBS-encodes it and sends it. */
static void send(const uint8_t *end)
{
    size_t n = (size_t)(end - tx_msg);
    put32(tx_msg + n, ec_crc32(0, tx_msg, n));
    size_t w = ec_cobs_encode(tx_msg, n + EC_CRC_BYTES, tx_wire);
    tx_wire[w++] = 0;
    board_write(tx_wire, w);
}

static void send_error(uint16_t seq, uint16_t code, const char *detail)
{
    uint8_t *p = begin(EC_MSG_ERROR, seq);
    p = put16(p, code);
    send(put_str(p, detail));
}

/* The guard byte at position i of a buffer: 0xE0..0xEF in turn, so neither 0x00, 0xFF
 * nor 0x7F/0x80 (the values a kernel most often writes) nor the sentinel. */
static uint8_t guard_byte(uint32_t i) { return (uint8_t)(0xE0u | (i & 0x0Fu)); }

/* Fills every byte of buf (size bytes) outside the data [EC_GUARD_BYTES, +n). */
static void guard_fill(uint8_t *buf, uint32_t size, uint32_t n)
{
    for (uint32_t i = 0; i < EC_GUARD_BYTES; i++)
        buf[i] = guard_byte(i);
    for (uint32_t i = EC_GUARD_BYTES + n; i < size; i++)
        buf[i] = guard_byte(i);
}

/* Checks the guard bytes guard_fill() wrote. Returns 1 and sets *at (relative to the
 * data start: >= n after it, < 0 before it) for the first changed byte past the data,
 * else the changed byte nearest before it; returns 0 when every guard byte is intact. */
static int guard_hit(const uint8_t *buf, uint32_t size, uint32_t n, int32_t *at)
{
    for (uint32_t i = EC_GUARD_BYTES + n; i < size; i++) {
        if (buf[i] != guard_byte(i)) {
            *at = (int32_t)(i - EC_GUARD_BYTES);
            return 1;
        }
    }
    for (uint32_t i = EC_GUARD_BYTES; i-- > 0;) {
        if (buf[i] != guard_byte(i)) {
            *at = (int32_t)i - (int32_t)EC_GUARD_BYTES;
            return 1;
        }
    }
    return 0;
}

/* Appends the decimal digits of v at p; returns the end. */
static char *put_dec(char *p, uint32_t v)
{
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n)
        *p++ = digits[--n];
    return p;
}

/* Sends the GUARD error "<what> overrun at byte <at> of <n>" (at < 0: before the data). */
static void send_overrun(uint16_t seq, const char *what, int32_t at, uint32_t n)
{
    char detail[48]; /* "scratch overrun at byte -16 of 4294967295" is 41 + NUL */
    char *p = detail;
    size_t len = strlen(what);
    memcpy(p, what, len);
    p += len;
    memcpy(p, " overrun at byte ", 17);
    p += 17;
    if (at < 0)
        *p++ = '-';
    p = put_dec(p, at < 0 ? (uint32_t)-at : (uint32_t)at);
    memcpy(p, " of ", 4);
    p = put_dec(p + 4, n);
    *p = '\0';
    send_error(seq, EC_ERR_GUARD, detail);
}

static void send_hello(uint8_t type, uint16_t seq)
{
    uint8_t *p = begin(type, seq);
    *p++ = EC_PROTOCOL_VERSION;
    *p++ = board_counter_kind();
    p = put16(p, (uint16_t)EC_MAX_PAYLOAD);
    p = put32(p, board_counter_hz());
    p = put32(p, EDGECONV_MAX_INPUT_BYTES);
    p = put32(p, EDGECONV_MAX_OUTPUT_BYTES);
    p = put32(p, edgeconv_registry_count);
    memcpy(p, edgeconv_registry_hash, 16);
    p += 16;
    p = put_str(p, EC_FIRMWARE_VERSION);
    p = put_str(p, ec_board_name);
    p = put_str(p, EC_CPU);
    send(put_str(p, EC_NUMERICS));
}

void ec_report_fault(const uint32_t *words, size_t n)
{
    uint8_t *p = begin(EC_MSG_FAULT, EC_SEQ_UNSOLICITED);
    for (size_t i = 0; i < n && i < (EC_MAX_PAYLOAD - EC_HEADER_BYTES) / 4u; i++)
        p = put32(p, words[i]);
    send(p);
}

static const edgeconv_layer_t *layer_at(uint16_t seq, uint32_t index)
{
    if (index < edgeconv_registry_count)
        return &edgeconv_registry[index];
    send_error(seq, EC_ERR_BAD_INDEX, "layer index out of range");
    return NULL;
}

static void on_info(uint16_t seq, const uint8_t *body, size_t n)
{
    if (n != 4) {
        send_error(seq, EC_ERR_BAD_LENGTH, "INFO body must be 4 bytes");
        return;
    }
    uint32_t index = get32(body);
    const edgeconv_layer_t *l = layer_at(seq, index);
    if (!l)
        return;
    uint8_t *p = begin(EC_MSG_INFO_REPLY, seq);
    p = put32(p, index);
    p = put32(p, l->input_count);
    p = put32(p, l->output_count);
    *p++ = l->input_elem_bytes;
    *p++ = l->output_elem_bytes;
    p = put32(p, l->scratch_bytes);
    send(put_str(p, l->name));
}

static void on_write(uint16_t seq, const uint8_t *body, size_t n)
{
    if (n < 4) {
        send_error(seq, EC_ERR_BAD_LENGTH, "WRITE body must hold a 4-byte offset");
        return;
    }
    uint32_t offset = get32(body);
    uint32_t len = (uint32_t)(n - 4);
    if (offset > EDGECONV_MAX_INPUT_BYTES || len > EDGECONV_MAX_INPUT_BYTES - offset) {
        send_error(seq, EC_ERR_OUT_OF_RANGE, "WRITE beyond the input buffer");
        return;
    }
    memcpy(INPUT_DATA + offset, body + 4, len);
    uint8_t *p = begin(EC_MSG_WRITE_ACK, seq);
    p = put32(p, offset);
    send(put32(p, len));
}

/* Largest data chunk in an OUTPUT or DATA reply. */
#define OUTPUT_HEAD 20u
#define DATA_HEAD 4u

static void on_run(uint16_t seq, const uint8_t *body, size_t n)
{
    if (n != 12) {
        send_error(seq, EC_ERR_BAD_LENGTH, "RUN body must be 12 bytes");
        return;
    }
    const edgeconv_layer_t *l = layer_at(seq, get32(body));
    if (!l)
        return;
    uint32_t in_bytes = l->input_count * l->input_elem_bytes;
    uint32_t out_bytes = l->output_count * l->output_elem_bytes;
    if (get32(body + 4) != in_bytes || in_bytes > EDGECONV_MAX_INPUT_BYTES ||
        out_bytes > EDGECONV_MAX_OUTPUT_BYTES || l->scratch_bytes > EDGECONV_MAX_SCRATCH_BYTES) {
        send_error(seq, EC_ERR_INPUT_SIZE, "input size differs from the layer's");
        return;
    }
    uint32_t in_crc = ec_crc32(0, INPUT_DATA, in_bytes);
    if (in_crc != get32(body + 8)) {
        send_error(seq, EC_ERR_INPUT_CRC, "input CRC mismatch: a WRITE was lost");
        return;
    }
    output_valid = 0;
    guard_fill((uint8_t *)input_buf, sizeof input_buf, in_bytes);
    guard_fill((uint8_t *)output_buf, sizeof output_buf, out_bytes);
    guard_fill((uint8_t *)scratch_buf, sizeof scratch_buf, l->scratch_bytes);
    memset(OUTPUT_DATA, EC_OUTPUT_SENTINEL, out_bytes);
    memset(SCRATCH_DATA, EC_OUTPUT_SENTINEL, l->scratch_bytes);
    send(begin(EC_MSG_RUN_STARTED, seq));
    board_counter_start();
    int status = l->run(INPUT_DATA, OUTPUT_DATA, SCRATCH_DATA);
    uint64_t count = board_counter_stop();
    int32_t at;
    if (guard_hit((const uint8_t *)output_buf, sizeof output_buf, out_bytes, &at)) {
        send_overrun(seq, "output", at, out_bytes);
        return;
    }
    if (guard_hit((const uint8_t *)scratch_buf, sizeof scratch_buf, l->scratch_bytes, &at)) {
        send_overrun(seq, "scratch", at, l->scratch_bytes);
        return;
    }
    if (guard_hit((const uint8_t *)input_buf, sizeof input_buf, in_bytes, &at)) {
        send_overrun(seq, "input", at, in_bytes);
        return;
    }
    if (ec_crc32(0, INPUT_DATA, in_bytes) != in_crc) {
        send_error(seq, EC_ERR_GUARD, "input changed by the kernel");
        return;
    }
    output_valid = out_bytes;
    uint32_t chunk = EC_MAX_PAYLOAD - EC_HEADER_BYTES - OUTPUT_HEAD;
    if (chunk > out_bytes)
        chunk = out_bytes;
    uint8_t *p = begin(EC_MSG_OUTPUT, seq);
    p = put32(p, (uint32_t)status);
    p = put32(p, (uint32_t)count);
    p = put32(p, (uint32_t)(count >> 32));
    p = put32(p, out_bytes);
    p = put32(p, ec_crc32(0, OUTPUT_DATA, out_bytes));
    memcpy(p, OUTPUT_DATA, chunk);
    send(p + chunk);
}

static void on_read(uint16_t seq, const uint8_t *body, size_t n)
{
    if (n != 6) {
        send_error(seq, EC_ERR_BAD_LENGTH, "READ body must be 6 bytes");
        return;
    }
    uint32_t offset = get32(body), len = get16(body + 4);
    if (output_valid == 0) {
        send_error(seq, EC_ERR_NO_OUTPUT, "READ before a successful RUN");
        return;
    }
    if (len > EC_MAX_PAYLOAD - EC_HEADER_BYTES - DATA_HEAD || offset > output_valid ||
        len > output_valid - offset) {
        send_error(seq, EC_ERR_OUT_OF_RANGE, "READ beyond the output or the frame");
        return;
    }
    uint8_t *p = begin(EC_MSG_DATA, seq);
    p = put32(p, offset);
    memcpy(p, OUTPUT_DATA + offset, len);
    send(p + len);
}

static void dispatch(const uint8_t *msg, size_t n)
{
    uint16_t seq = get16(msg + 1);
    const uint8_t *body = msg + EC_HEADER_BYTES;
    size_t len = n - EC_HEADER_BYTES;
    switch (msg[0]) {
    case EC_MSG_HELLO:
        send_hello(EC_MSG_HELLO_REPLY, seq);
        break;
    case EC_MSG_INFO:
        on_info(seq, body, len);
        break;
    case EC_MSG_WRITE:
        on_write(seq, body, len);
        break;
    case EC_MSG_RUN:
        on_run(seq, body, len);
        break;
    case EC_MSG_READ:
        on_read(seq, body, len);
        break;
    case EC_MSG_SHUTDOWN:
        send(begin(EC_MSG_SHUTDOWN_ACK, seq));
        board_exit(len ? body[0] : 0);
    default:
        send_error(seq, EC_ERR_UNKNOWN_TYPE, "unknown message type");
        break;
    }
}

/* Decodes and checks one received frame (without its delimiter), then dispatches it. */
static void on_frame(size_t n)
{
    long len = ec_cobs_decode(rx_frame, n, rx_frame);
    if (len < (long)(EC_HEADER_BYTES + EC_CRC_BYTES) ||
        ec_crc32(0, rx_frame, (size_t)len - EC_CRC_BYTES) != get32(rx_frame + len - EC_CRC_BYTES)) {
        send_error(EC_SEQ_UNSOLICITED, EC_ERR_BAD_FRAME, "bad COBS or CRC");
        return;
    }
    dispatch(rx_frame, (size_t)len - EC_CRC_BYTES);
}

void ec_harness_run(void)
{
    size_t n = 0;
    int overflow = 0;
    send_hello(EC_MSG_BOOT, EC_SEQ_UNSOLICITED);
    for (;;) {
        uint8_t c = board_getc();
        if (c != 0) {
            if (n < sizeof rx_frame)
                rx_frame[n++] = c;
            else
                overflow = 1;
            continue;
        }
        if (overflow)
            send_error(EC_SEQ_UNSOLICITED, EC_ERR_FRAME_TOO_LONG, "frame longer than the buffer");
        else if (n > 0)
            on_frame(n);
        n = 0;
        overflow = 0;
    }
}
