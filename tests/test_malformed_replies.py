"""Malformed but CRC-valid replies (issue 11, item 5): every reply is length-checked and
every failure is a ClientError naming the frame, never a struct.error or a bare ValueError.

A scripted device answers each request correctly except for the one message type a test
replaces with a malformed body; the bodies are written by hand from firmware/PROTOCOL.md.
"""

from __future__ import annotations

import struct
from types import SimpleNamespace

import numpy as np
import pytest

from edgeconv.targets import protocol as p
from edgeconv.targets.client import Client, ClientError
from edgeconv.targets.session import Session

LAYER = SimpleNamespace(name="inc", input_shape=(4,), output_shape=(4,))


def _text(s: str) -> bytes:
    return bytes([len(s)]) + s.encode()


def hello_body(*, kind: int = 4, max_payload: int = 256, extra: bytes = b"") -> bytes:
    """version 1, counter kind, max_payload, counter_hz, capacities, 1 layer, hash, strings."""
    return (struct.pack("<BBHIIII", 1, kind, max_payload, 0, 64, 64, 1) + b"0123456789abcdef"
            + _text("fw") + _text("fake") + _text("generic") + _text("tflite") + extra)


def info_body(*, elem: int = 1) -> bytes:
    return struct.pack("<IIIBBI", 0, 4, 4, elem, elem, 0) + _text("inc")


class ScriptedDevice:
    """A pyserial-like port: each request frame written gets the reply ``script`` makes."""

    name = "scripted"

    def __init__(self, bad: dict[int, bytes | tuple[int, bytes]]) -> None:
        self.bad = bad  # request type -> malformed reply body (or (reply type, body))
        self.timeout = 0.05
        self.input = bytearray(4)
        self._out = bytearray()
        self._splitter = p.FrameSplitter()

    @property
    def in_waiting(self) -> int:
        return len(self._out)

    def read(self, n: int) -> bytes:
        data, self._out = bytes(self._out[:n]), self._out[n:]
        return data

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def write(self, data: bytes) -> int:
        for raw in self._splitter.feed(data):
            frame = p.decode_frame(raw)
            reply_type, body = self._reply(frame)
            events = (p.Msg.BOOT, p.Msg.FAULT)  # unsolicited, sent with seq 0xFFFF
            seq = p.SEQ_UNSOLICITED if reply_type in events else frame.seq
            self._out += p.encode_frame(reply_type, seq, body)
        return len(data)

    def _reply(self, frame: p.Frame) -> tuple[int, bytes]:
        if frame.type in self.bad:
            bad = self.bad[frame.type]
            return bad if isinstance(bad, tuple) else (frame.type | 0x80, bad)
        if frame.type == p.Msg.HELLO:
            return p.Msg.HELLO_REPLY, hello_body()
        if frame.type == p.Msg.INFO:
            return p.Msg.INFO_REPLY, info_body()
        if frame.type == p.Msg.WRITE:
            (offset,) = struct.unpack_from("<I", frame.body)
            piece = frame.body[4:]
            self.input[offset : offset + len(piece)] = piece
            return p.Msg.WRITE_ACK, struct.pack("<II", offset, len(piece))
        out = bytes((b + 1) & 0xFF for b in self.input)
        if frame.type == p.Msg.RUN:  # output sent through READ/DATA, not inline
            return p.Msg.OUTPUT, struct.pack("<iQII", 0, 7, len(out), p.crc32(out))
        offset, length = struct.unpack("<IH", frame.body)
        return p.Msg.DATA, struct.pack("<I", offset) + out[offset : offset + length]


def _run(bad: dict) -> np.ndarray:
    client = Client(ScriptedDevice(bad), timeout=0.2, retries=1)
    client.handshake()
    return Session("scripted", client, [LAYER]).run("inc", np.array([1, 2, 3, -1], np.int8))


def test_the_scripted_device_answers_correctly():
    np.testing.assert_array_equal(_run({}), np.array([2, 3, 4, 0], np.int8))


MALFORMED = {
    "short HELLO": ({p.Msg.HELLO: hello_body()[:10]}, "HELLO"),
    "unknown counter kind": ({p.Msg.HELLO: hello_body(kind=9)}, "HELLO.*counter kind 9"),
    "HELLO with trailing bytes": ({p.Msg.HELLO: hello_body(extra=b"xyz")}, "HELLO"),
    "HELLO string past the end": ({p.Msg.HELLO: hello_body()[:-3]}, "HELLO"),
    "max_payload too small": ({p.Msg.HELLO: hello_body(max_payload=4)}, "HELLO.*max_payload"),
    "short INFO": ({p.Msg.INFO: info_body()[:9]}, "INFO"),
    "INFO element size 3": ({p.Msg.INFO: info_body(elem=3)}, "INFO.*element size 3"),
    "short WRITE ack": ({p.Msg.WRITE: b"\0\0\0\0"}, "WRITE"),
    "long WRITE ack": ({p.Msg.WRITE: bytes(12)}, "WRITE"),
    "short OUTPUT": ({p.Msg.RUN: bytes(7)}, "OUTPUT"),
    "OUTPUT longer than announced": (
        {p.Msg.RUN: struct.pack("<iQII", 0, 0, 2, 0) + bytes(4)}, "OUTPUT"),
    "OUTPUT of the wrong size": (
        {p.Msg.RUN: struct.pack("<iQII", 0, 0, 2, p.crc32(b"\1\2")) + b"\1\2"}, "OUTPUT"),
    "short DATA": ({p.Msg.READ: b"\0\0"}, "DATA"),
    "DATA for another offset": ({p.Msg.READ: struct.pack("<I", 1) + bytes(4)}, "DATA"),
    "short ERROR": ({p.Msg.RUN: (p.Msg.ERROR, b"\1")}, "ERROR"),
    "ERROR detail past the end": ({p.Msg.RUN: (p.Msg.ERROR, b"\1\0\x09ab")}, "ERROR"),
    "short FAULT": ({p.Msg.RUN: (p.Msg.FAULT, bytes(5))}, "FAULT"),
    "short BOOT": ({p.Msg.RUN: (p.Msg.BOOT, bytes(12))}, "BOOT"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_reply_is_a_client_error_naming_the_frame(case):
    bad, frame_name = MALFORMED[case]
    with pytest.raises(ClientError, match=frame_name):
        _run(bad)
