"""Host framing: COBS + CRC-32 (IEEE) + header, splitting a byte stream."""

from __future__ import annotations

import struct
import zlib

import pytest
from cobs import cobs
from hypothesis import given
from hypothesis import strategies as st

from edgeconv.targets import protocol as p


def test_crc_is_ieee_802_3_check_value():
    # The published check value of CRC-32/ISO-HDLC over "123456789".
    assert p.crc32(b"123456789") == 0xCBF43926


def test_frame_layout_by_hand():
    wire = p.encode_frame(p.Msg.RUN, 0x1234, b"\x00\x01")
    assert wire.endswith(b"\x00") and b"\x00" not in wire[:-1]
    raw = cobs.decode(wire[:-1])
    assert raw[:5] == bytes([0x04, 0x34, 0x12, 0x00, 0x01])
    assert raw[5:] == struct.pack("<I", zlib.crc32(raw[:5]))


@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=3000))
def test_roundtrip(msg_type, seq, body):
    frame = p.decode_frame(p.encode_frame(msg_type, seq, body)[:-1])
    assert (frame.type, frame.seq, frame.body) == (msg_type, seq, body)


@given(st.binary(min_size=1, max_size=300), st.data())
def test_any_single_byte_corruption_is_rejected(body, data):
    wire = bytearray(p.encode_frame(p.Msg.WRITE, 7, body)[:-1])
    i = data.draw(st.integers(0, len(wire) - 1))
    wire[i] ^= data.draw(st.integers(1, 255))
    if 0 in wire:  # the splitter would cut the frame there; check both halves
        parts = [bytes(x) for x in bytes(wire).split(b"\x00") if x]
    else:
        parts = [bytes(wire)]
    for part in parts:
        with pytest.raises(p.FrameError):
            p.decode_frame(part)


def test_short_frame_rejected():
    with pytest.raises(p.FrameError, match="shorter"):
        p.decode_frame(cobs.encode(b"\x01\x02"))


def test_seq_range_checked():
    with pytest.raises(ValueError, match="seq=65536"):
        p.encode_frame(1, 65536)


def test_splitter_resyncs_after_garbage_and_split_reads():
    a = p.encode_frame(p.Msg.DATA, 1, b"abc")
    b = p.encode_frame(p.Msg.DATA, 2, bytes(300))
    stream = b"\x17\x99garbage\x00" + a + b
    splitter = p.FrameSplitter()
    frames = []
    for i in range(0, len(stream), 7):
        frames += splitter.feed(stream[i : i + 7])
    decoded = []
    for raw in frames:
        try:
            decoded.append(p.decode_frame(raw))
        except p.FrameError:
            decoded.append(None)
    assert decoded[0] is None
    assert [(f.seq, f.body) for f in decoded[1:]] == [(1, b"abc"), (2, bytes(300))]


def test_splitter_drops_overlong_garbage():
    splitter = p.FrameSplitter(limit=100)
    assert splitter.feed(b"\x55" * 150) == []
    assert splitter.dropped_bytes == 150
    frame = p.encode_frame(p.Msg.HELLO, 3)
    assert [p.decode_frame(f).seq for f in splitter.feed(frame)] == [3]


def test_hello_parse_rejects_other_protocol_version():
    body = struct.pack("<BBHIIII", 9, 0, 256, 0, 1, 1, 1) + b"0" * 16 + b"\x00" * 4
    with pytest.raises(p.FrameError, match="protocol version 9"):
        p.Hello.parse(body)
