/* Wire format shared with edgeconv/protocol.py; described in firmware/PROTOCOL.md. */
#ifndef EC_PROTOCOL_H
#define EC_PROTOCOL_H

#define EC_PROTOCOL_VERSION 1u
#define EC_HEADER_BYTES 3u /* type u8, seq u16 LE */
#define EC_CRC_BYTES 4u
#define EC_SEQ_UNSOLICITED 0xFFFFu

/* Host -> device requests; the reply has the same seq. */
#define EC_MSG_HELLO 0x01u
#define EC_MSG_INFO 0x02u
#define EC_MSG_WRITE 0x03u
#define EC_MSG_RUN 0x04u
#define EC_MSG_READ 0x05u
#define EC_MSG_SHUTDOWN 0x06u

/* Device -> host. */
#define EC_MSG_HELLO_REPLY 0x81u
#define EC_MSG_INFO_REPLY 0x82u
#define EC_MSG_WRITE_ACK 0x83u
#define EC_MSG_OUTPUT 0x84u
#define EC_MSG_DATA 0x85u
#define EC_MSG_SHUTDOWN_ACK 0x86u
#define EC_MSG_RUN_STARTED 0x87u /* RUN accepted, kernel running; OUTPUT follows */
#define EC_MSG_BOOT 0x90u  /* unsolicited, seq 0xFFFF: the device (re)started */
#define EC_MSG_FAULT 0x91u /* unsolicited, seq 0xFFFF: HardFault register dump */
#define EC_MSG_ERROR 0xEEu

/* ERROR codes. */
#define EC_ERR_BAD_FRAME 1u     /* COBS or CRC invalid (seq 0xFFFF) */
#define EC_ERR_FRAME_TOO_LONG 2u /* more bytes than the receive buffer (seq 0xFFFF) */
#define EC_ERR_UNKNOWN_TYPE 3u
#define EC_ERR_BAD_LENGTH 4u
#define EC_ERR_BAD_INDEX 5u
#define EC_ERR_OUT_OF_RANGE 6u
#define EC_ERR_INPUT_SIZE 7u
#define EC_ERR_INPUT_CRC 8u
#define EC_ERR_NO_OUTPUT 9u
#define EC_ERR_GUARD 10u /* RUN: the kernel wrote outside its input/output/scratch */

/* Counter kinds reported in HELLO. */
#define EC_COUNTER_NONE 0u
#define EC_COUNTER_FPGAIO 1u      /* MPS2/MPS3 FPGAIO COUNTER: ticks (instructions under icount) */
#define EC_COUNTER_SYSTICK_CPU 2u /* SysTick on the processor clock: cycles */
#define EC_COUNTER_DWT_CYCCNT 3u  /* DWT cycle counter: cycles */
#define EC_COUNTER_NS 4u          /* host clock_gettime(CLOCK_MONOTONIC): nanoseconds */
#define EC_COUNTER_TIMER 5u       /* a peripheral timer (nRF51 TIMER0): ticks */

#endif
