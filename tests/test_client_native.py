"""The firmware harness compiled for the host (native target) driven by the client."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURE_DIR, FIXTURE_HASH, fixture_layers, open_fixture

import edgeconv.targets
from edgeconv.targets.client import ClientError, DeviceError, StaleFirmwareError
from edgeconv.targets.protocol import CounterKind, ErrorCode, Msg

LAYERS = {layer.name: layer for layer in fixture_layers()}


def test_hello(native_session):
    hello = native_session.hello
    assert (hello.board, hello.cpu, hello.layer_hash) == ("native", "generic",
                                                          "f1f2f3f4f5f6f7f8")
    assert hello.layer_count == 5 and hello.counter_kind == CounterKind.NS
    assert hello.input_capacity >= 1200 and hello.max_payload == 4096


@pytest.mark.parametrize("name,dtype", [("add_one", np.int8), ("negate16", np.int16),
                                        ("sum8", np.int8)])
def test_run_matches_independent_expectation(native_session, name, dtype):
    layer = LAYERS[name]
    info = np.iinfo(dtype)
    x = np.random.default_rng(1).integers(info.min, info.max + 1, (3, *layer.input_shape),
                                          dtype=dtype)
    x[0, 0] = info.min
    x[1, 0] = info.max
    y = native_session.run(name, x)
    np.testing.assert_array_equal(y, layer.expected(x))
    assert y.shape == (3, *layer.output_shape)
    assert native_session.count_unit == "ns" and native_session.last_count > 0
    single = native_session.run(name, x[2])
    np.testing.assert_array_equal(single, layer.expected(x[2]))


def test_input_checks(native_session):
    with pytest.raises(ValueError, match="name='nope'"):
        native_session.run("nope", np.zeros(16, np.int8))
    with pytest.raises(ValueError, match=r"x.shape=\(15,\)"):
        native_session.run("sum8", np.zeros(15, np.int8))
    with pytest.raises(ValueError, match="outside int8"):
        native_session.run("sum8", np.full(16, 300))
    assert native_session.run("sum8", np.ones(16, np.int64))[0] == 16


def test_device_errors_are_raised(native_session):
    client = native_session.client
    with pytest.raises(DeviceError, match="BAD_INDEX") as exc:
        client.info(99)
    assert exc.value.code == ErrorCode.BAD_INDEX
    with pytest.raises(DeviceError, match="INPUT_SIZE"):
        client.run(0, bytes(10))
    with pytest.raises(DeviceError, match="UNKNOWN_TYPE"):
        client.request(0x7F)
    with pytest.raises(DeviceError, match="OUT_OF_RANGE"):
        client.request(Msg.WRITE, (5000).to_bytes(4, "little") + b"x")


def test_lost_input_is_written_again(native_session, monkeypatch):
    """A device whose input no longer matches what was written (it restarted and the BOOT
    frame was lost) answers RUN with INPUT_CRC; run() handshakes and repeats the run."""
    client = native_session.client
    request = client.request
    wiped = []

    def wipe_before_first_run(msg_type, body=b"", **kw):
        if msg_type == Msg.RUN and not wiped:
            wiped.append(request(Msg.WRITE, (0).to_bytes(4, "little") + bytes(16)))
        return request(msg_type, body, **kw)

    monkeypatch.setattr(client, "request", wipe_before_first_run)
    x = np.arange(1, 17, dtype=np.int8)
    assert native_session.run("sum8", x)[0] == 136
    assert len(wiped) == 1


def test_stale_firmware_refused():
    with pytest.raises(StaleFirmwareError, match="0123456789abcdef.*stale"):
        open_fixture(expected_hash="0123456789abcdef")


def test_host_layer_mismatch_detected():
    layers = fixture_layers()
    layers[2].input_shape = (17,)
    with edgeconv.targets.open("native", layers, gen_dir=FIXTURE_DIR,
                               expected_hash=FIXTURE_HASH) as s:
        with pytest.raises(ClientError, match="firmware layer 2"):
            s.run("sum8", np.zeros(17, np.int8))


def test_closed_session_refuses_and_process_exits():
    session = open_fixture()
    proc = session.process
    session.close()
    assert proc.proc.returncode == 0
    with pytest.raises(ClientError, match="closed"):
        session.run("sum8", np.zeros(16, np.int8))
