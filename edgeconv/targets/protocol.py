"""Host side of the edgeconv serial protocol (wire format: firmware/PROTOCOL.md).

A frame is ``COBS(header + body + CRC-32) + b"\\x00"``; the header is the message type
(u8) and a sequence number (u16 LE); the CRC is CRC-32/ISO-HDLC (IEEE 802.3, the one
``zlib.crc32`` computes) over header and body, little-endian.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

from cobs import cobs

PROTOCOL_VERSION = 1
HEADER = struct.Struct("<BH")
CRC_BYTES = 4
SEQ_UNSOLICITED = 0xFFFF


class Msg(IntEnum):
    """Message types (requests < 0x80, replies and events >= 0x80)."""

    HELLO = 0x01
    INFO = 0x02
    WRITE = 0x03
    RUN = 0x04
    READ = 0x05
    SHUTDOWN = 0x06
    HELLO_REPLY = 0x81
    INFO_REPLY = 0x82
    WRITE_ACK = 0x83
    OUTPUT = 0x84
    DATA = 0x85
    SHUTDOWN_ACK = 0x86
    RUN_STARTED = 0x87
    BOOT = 0x90
    FAULT = 0x91
    ERROR = 0xEE


class ErrorCode(IntEnum):
    """Codes carried by ERROR messages."""

    BAD_FRAME = 1
    FRAME_TOO_LONG = 2
    UNKNOWN_TYPE = 3
    BAD_LENGTH = 4
    BAD_INDEX = 5
    OUT_OF_RANGE = 6
    INPUT_SIZE = 7
    INPUT_CRC = 8
    NO_OUTPUT = 9
    GUARD = 10


class CounterKind(IntEnum):
    """What the kernel count in OUTPUT measures."""

    NONE = 0
    FPGAIO = 1
    SYSTICK_CPU = 2
    DWT_CYCCNT = 3
    NS = 4
    TIMER = 5


class FrameError(ValueError):
    """A received frame is not valid COBS, is too short or fails its CRC."""


@dataclass(frozen=True)
class Frame:
    """One decoded message."""

    type: int
    seq: int
    body: bytes


def crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC (IEEE 802.3, zlib) of ``data``."""
    return zlib.crc32(data) & 0xFFFFFFFF


def encode_frame(msg_type: int, seq: int, body: bytes = b"") -> bytes:
    """The bytes on the wire for one message, delimiter included."""
    if not 0 <= seq <= 0xFFFF:
        raise ValueError(f"seq={seq} out of range 0..65535")
    payload = HEADER.pack(msg_type, seq) + body
    return cobs.encode(payload + struct.pack("<I", crc32(payload))) + b"\x00"


def decode_frame(raw: bytes) -> Frame:
    """Decodes one frame given without its 0x00 delimiter."""
    try:
        data = cobs.decode(raw)
    except cobs.DecodeError as exc:
        raise FrameError(f"bad COBS: {exc}") from None
    if len(data) < HEADER.size + CRC_BYTES:
        raise FrameError(f"frame of {len(data)} bytes is shorter than header + CRC")
    payload, (crc,) = data[:-CRC_BYTES], struct.unpack("<I", data[-CRC_BYTES:])
    if crc32(payload) != crc:
        raise FrameError(f"CRC mismatch: frame says {crc:08x}, data gives {crc32(payload):08x}")
    msg_type, seq = HEADER.unpack_from(payload)
    return Frame(msg_type, seq, bytes(payload[HEADER.size :]))


def max_wire_frame(max_payload: int) -> int:
    """Largest encoded frame (delimiter included) for messages of ``max_payload`` bytes."""
    n = max_payload + CRC_BYTES
    return n + n // 254 + 2


class FrameSplitter:
    """Splits a byte stream at 0x00 delimiters; drops runs longer than ``limit`` (garbage)."""

    def __init__(self, limit: int = 1 << 20) -> None:
        self._buf = bytearray()
        self._limit = limit
        self.dropped_bytes = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Adds received bytes; returns the complete non-empty frames (no delimiter)."""
        self._buf += data
        *frames, rest = self._buf.split(b"\x00")
        self._buf = bytearray(rest)
        if len(self._buf) > self._limit:
            self.clear()
        return [bytes(f) for f in frames if f]

    @property
    def partial(self) -> bool:
        """True while bytes of an unfinished frame are held."""
        return bool(self._buf)

    def clear(self) -> None:
        """Drops the unfinished frame (counted in ``dropped_bytes``)."""
        self.dropped_bytes += len(self._buf)
        self._buf.clear()


def _take_str(body: bytes, pos: int, what: str) -> tuple[str, int]:
    """The length-prefixed string at ``pos`` and the position after it."""
    if pos >= len(body) or pos + 1 + body[pos] > len(body):
        raise FrameError(f"malformed {what} body ({len(body)} bytes): a string at byte {pos} "
                         "runs past the end")
    n = body[pos]
    return body[pos + 1 : pos + 1 + n].decode("utf-8", "replace"), pos + 1 + n


def _check_length(body: bytes, what: str, need: int, *, exact: bool = True) -> None:
    """FrameError unless ``body`` has ``need`` bytes (at least ``need`` if not ``exact``)."""
    if len(body) < need or (exact and len(body) != need):
        raise FrameError(f"malformed {what} body: {len(body)} bytes, must be "
                         f"{'' if exact else 'at least '}{need}")


@dataclass(frozen=True)
class Hello:
    """What the firmware reports about itself (HELLO reply and BOOT event)."""

    protocol_version: int
    counter_kind: CounterKind
    max_payload: int
    counter_hz: int
    input_capacity: int
    output_capacity: int
    layer_count: int
    layer_hash: str
    firmware_version: str
    board: str
    cpu: str
    numerics: str

    @classmethod
    def parse(cls, body: bytes) -> Hello:
        """Decodes a HELLO/BOOT body."""
        _check_length(body, "HELLO", 36, exact=False)
        version, kind, max_payload, hz, icap, ocap, count = struct.unpack_from("<BBHIIII", body)
        if version != PROTOCOL_VERSION:
            raise FrameError(
                f"firmware speaks protocol version {version}, this host speaks "
                f"{PROTOCOL_VERSION}: rebuild the firmware"
            )
        try:
            layer_hash = body[20:36].decode("ascii")
        except UnicodeDecodeError:
            raise FrameError(f"malformed HELLO body: layer hash {body[20:36]!r} is not "
                             "ASCII") from None
        strings, pos = [], 36
        for _ in range(4):
            text, pos = _take_str(body, pos, "HELLO")
            strings.append(text)
        if pos != len(body):
            raise FrameError(f"malformed HELLO body: {len(body) - pos} bytes after its fields")
        if kind not in CounterKind._value2member_map_:
            raise FrameError(f"malformed HELLO body: counter kind {kind} unknown, known: "
                             + ", ".join(f"{k.value} ({k.name})" for k in CounterKind))
        if max_payload <= HEADER.size + OFFSET.size:
            raise FrameError(f"malformed HELLO body: max_payload={max_payload} leaves no room "
                             "for data")
        return cls(version, CounterKind(kind), max_payload, hz, icap, ocap, count, layer_hash,
                   *strings)


@dataclass(frozen=True)
class LayerInfo:
    """One registry entry as the firmware reports it (INFO reply)."""

    index: int
    input_count: int
    output_count: int
    input_elem_bytes: int
    output_elem_bytes: int
    scratch_bytes: int
    name: str

    @classmethod
    def parse(cls, body: bytes) -> LayerInfo:
        """Decodes an INFO reply body."""
        head = struct.Struct("<IIIBBI")
        _check_length(body, "INFO", head.size + 1, exact=False)
        fields = head.unpack_from(body)
        name, end = _take_str(body, head.size, "INFO")
        if end != len(body):
            raise FrameError(f"malformed INFO body: {len(body) - end} bytes after its fields")
        for what, size in (("input", fields[3]), ("output", fields[4])):
            if size not in ELEMENT_BYTES:
                raise FrameError(f"malformed INFO body: {what} element size {size} bytes, "
                                 f"must be one of {ELEMENT_BYTES}")
        return cls(*fields, name)


ELEMENT_BYTES = (1, 2, 4, 8)  # activation element sizes a layer may have
OUTPUT_HEAD = struct.Struct("<iQII")  # status, count, output bytes, output CRC
OFFSET = struct.Struct("<I")
RUN_BODY = struct.Struct("<III")  # layer index, input bytes, input CRC
READ_BODY = struct.Struct("<IH")  # offset, length
ACK_BODY = struct.Struct("<II")  # offset, length
ERROR_HEAD = struct.Struct("<H")
FAULT_NAMES = ("r0", "r1", "r2", "r3", "r12", "lr", "pc", "xpsr", "cfsr", "hfsr", "mmfar",
               "bfar")


def parse_error(body: bytes) -> tuple[int, str]:
    """(code, detail) of an ERROR body."""
    _check_length(body, "ERROR", ERROR_HEAD.size, exact=False)
    (code,) = ERROR_HEAD.unpack_from(body)
    detail, end = (_take_str(body, ERROR_HEAD.size, "ERROR") if len(body) > ERROR_HEAD.size
                   else ("", ERROR_HEAD.size))
    if end != len(body):
        raise FrameError(f"malformed ERROR body: {len(body) - end} bytes after its fields")
    return code, detail


def parse_fault(body: bytes) -> dict[str, int]:
    """Register dump of a FAULT event, by name (8 words, or 12 with the fault status
    registers of ARMv7-M/ARMv8-M.main)."""
    if len(body) not in (32, 48):
        raise FrameError(f"malformed FAULT body: {len(body)} bytes, must be 32 or 48")
    words = struct.unpack(f"<{len(body) // 4}I", body)
    return dict(zip(FAULT_NAMES, words, strict=False))


def parse_ack(body: bytes) -> tuple[int, int]:
    """(offset, length) of a WRITE ack."""
    _check_length(body, "WRITE ack", ACK_BODY.size)
    return ACK_BODY.unpack(body)


def parse_output(body: bytes) -> tuple[int, int, int, int, bytes]:
    """(status, count, output bytes, output CRC, first output chunk) of an OUTPUT body."""
    _check_length(body, "OUTPUT", OUTPUT_HEAD.size, exact=False)
    status, count, out_bytes, out_crc = OUTPUT_HEAD.unpack_from(body)
    chunk = body[OUTPUT_HEAD.size :]
    if len(chunk) > out_bytes:
        raise FrameError(f"malformed OUTPUT body: {len(chunk)} output bytes, more than the "
                         f"{out_bytes} announced")
    return status, count, out_bytes, out_crc, chunk


def parse_data(body: bytes, offset: int, length: int) -> bytes:
    """The output bytes of a DATA reply to ``READ offset length``."""
    _check_length(body, "DATA", OFFSET.size + length)
    (got,) = OFFSET.unpack_from(body)
    if got != offset:
        raise FrameError(f"DATA for offset {got}, READ asked for offset {offset}")
    return body[OFFSET.size :]
