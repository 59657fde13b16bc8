"""Fault injection: a relay between client and device corrupts, drops, duplicates and
injects bytes and restarts the device mid-run. The client must either return the
exact expected output or raise a ClientError; a wrong output must never come back."""

from __future__ import annotations

import os
import random
import select
import signal
import socket
import threading
import time
import tty

import numpy as np
import pytest
import serial
from conftest import FIXTURE_DIR, FIXTURE_HASH, fixture_layers, open_fixture

from edgeconv.targets import build
from edgeconv.targets.boards import BOARDS
from edgeconv.targets.client import Client, ClientError
from edgeconv.targets.process import PtyProcess
from edgeconv.targets.session import Session

LAYERS = {layer.name: layer for layer in fixture_layers()}


class FaultyRelay:
    """Forwards bytes between a TCP client and a device pty, damaging some bursts.

    Each burst read from either side is, with probability ``rate``, damaged in one of
    four ways: one byte flipped, one byte dropped, a slice duplicated, or random garbage
    (0x00 included) inserted. ``on_byte(n)`` is called with the running count of
    host -> device bytes (to trigger device restarts); ``before_forward(data)``, if set, is
    called with each host -> device burst before it is forwarded.
    """

    KINDS = ("corrupt", "drop", "duplicate", "garbage")

    def __init__(self, pty_path: str, *, rate: float, seed: int, on_byte=None) -> None:
        self.rate = rate
        self.rng = random.Random(seed)
        self.on_byte = on_byte
        self.before_forward = None
        self.injected = dict.fromkeys(self.KINDS, 0)
        self.to_device = 0
        self.dev = os.open(pty_path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.dev)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self.server.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _damage(self, data: bytes) -> bytes:
        if not data or self.rng.random() >= self.rate:
            return data
        kind = self.rng.choice(self.KINDS)
        self.injected[kind] += 1
        i = self.rng.randrange(len(data))
        if kind == "corrupt":
            return data[:i] + bytes([data[i] ^ (1 << self.rng.randrange(8))]) + data[i + 1 :]
        if kind == "drop":
            return data[:i] + data[i + 1 :]
        if kind == "duplicate":
            return data[: i + 1] + data[i : i + 1 + self.rng.randrange(8)] + data[i + 1 :]
        garbage = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 40)))
        return data[:i] + garbage + data[i:]

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while not self._stop.is_set():
                ready, _, _ = select.select([conn, self.dev], [], [], 0.05)
                if conn in ready:
                    data = conn.recv(65536)
                    if not data:
                        return
                    self.to_device += len(data)
                    if self.before_forward is not None:
                        self.before_forward(data)
                    try:
                        os.write(self.dev, self._damage(data))
                    except OSError:  # the device is gone: the client sees a timeout
                        return
                    if self.on_byte is not None:
                        self.on_byte(self.to_device)
                if self.dev in ready:
                    try:
                        data = os.read(self.dev, 65536)
                    except OSError:
                        return
                    conn.sendall(self._damage(data))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.server.close()
        os.close(self.dev)


@pytest.fixture
def device():
    """A native fixture device process (not connected to any client yet)."""
    image = build.build_prebuilt(FIXTURE_DIR, BOARDS["native"], "generic")
    proc = PtyProcess([str(image)])
    yield proc
    proc.stop()


def _session(relay: FaultyRelay, **client_options) -> Session:
    port = serial.serial_for_url(relay.url, timeout=0.05)
    client = Client(port, expected_hash=FIXTURE_HASH, timeout=0.3, **client_options)
    client.handshake()
    return Session("native-via-relay", client, fixture_layers())


def _check_runs(session: Session, runs: int, seed: int) -> tuple[int, int]:
    """(correct, failed-with-ClientError) over ``runs`` random runs; asserts no wrong one."""
    rng = np.random.default_rng(seed)
    correct = failed = 0
    for _ in range(runs):
        name = rng.choice(["add_one", "negate16", "sum8"])
        dtype = np.int16 if name == "negate16" else np.int8
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max + 1, LAYERS[name].input_shape, dtype=dtype)
        try:
            y = session.run(name, x)
        except ClientError:
            failed += 1
            continue
        np.testing.assert_array_equal(y, LAYERS[name].expected(x), err_msg=name)
        correct += 1
    return correct, failed


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_damaged_link_never_yields_a_wrong_output(device, seed):
    relay = FaultyRelay(device.wait_pty(), rate=0.15, seed=seed)
    try:
        session = _session(relay, retries=30)
        correct, failed = _check_runs(session, 40, seed)
        stats = session.client.stats
        session.client.port.close()
    finally:
        relay.close()
    assert sum(relay.injected.values()) >= 10, relay.injected
    assert stats.resends > 0 and stats.bad_frames > 0
    # With 30 resends per request every run gets through this damage rate.
    assert (correct, failed) == (40, 0), (relay.injected, stats)


def test_device_restarts_mid_run_are_recovered(device):
    restarts = []

    def restart(sent: int) -> None:
        # Reset the device (SIGUSR1: re-exec on the same pty) after 3 KB, 9 KB, 15 KB.
        if len(restarts) < 3 and sent >= 3000 + 6000 * len(restarts):
            restarts.append(sent)
            os.kill(device.pid, signal.SIGUSR1)

    relay = FaultyRelay(device.wait_pty(), rate=0.0, seed=0, on_byte=restart)
    try:
        session = _session(relay)
        correct, failed = _check_runs(session, 30, 7)
        stats = session.client.stats
        session.client.port.close()
    finally:
        relay.close()
    assert len(restarts) == 3
    assert stats.resets >= 1
    assert (correct, failed) == (30, 0)


@pytest.mark.parametrize("burst", [0, 1, 2])
def test_a_restart_during_any_request_is_recovered(device, burst):
    """The device restarts just before the ``burst``-th request after the handshake
    reaches it: 0 is the INFO sent by the layer's first Session.run(), 1 and 2 the
    WRITE/RUN requests that follow. The request meets a BOOT; the client repeats the
    handshake and the request (PROTOCOL.md, resets) and the output is exact."""
    relay = FaultyRelay(device.wait_pty(), rate=0.0, seed=0)
    bursts = []

    def restart_before(data: bytes) -> None:
        bursts.append(data)
        if len(bursts) == burst + 1:
            os.kill(device.pid, signal.SIGUSR1)
            time.sleep(0.2)  # the old program is gone: the request reaches the new one

    try:
        session = _session(relay)
        relay.before_forward = restart_before
        x = (np.arange(1000) % 256 - 128).astype(np.int8)
        y = session.run("add_one", x)
        stats = session.client.stats
        session.client.port.close()
    finally:
        relay.close()
    np.testing.assert_array_equal(y, LAYERS["add_one"].expected(x))
    assert stats.resets == 1, stats


def test_restart_loop_fails_with_a_clear_error(device):
    """A device that keeps resetting is reported, not papered over."""
    relay = FaultyRelay(device.wait_pty(), rate=0.0, seed=0,
                        on_byte=lambda sent: os.kill(device.pid, signal.SIGUSR1))
    port = serial.serial_for_url(relay.url, timeout=0.05)
    try:
        client = Client(port, expected_hash=FIXTURE_HASH, timeout=0.3, reset_retries=2)
        # The handshake itself may already meet a reset: either step must fail clearly.
        with pytest.raises(ClientError, match="reset|no valid reply"):
            client.handshake()
            Session("native-via-relay", client, fixture_layers()).run(
                "add_one", np.zeros(1000, np.int8))
    finally:
        port.close()
        relay.close()


def test_hopeless_link_fails_with_a_clear_error(device):
    relay = FaultyRelay(device.wait_pty(), rate=1.0, seed=5)
    try:
        port = serial.serial_for_url(relay.url, timeout=0.05)
        client = Client(port, expected_hash=FIXTURE_HASH, timeout=0.1, retries=3)
        with pytest.raises(ClientError, match="no valid reply to HELLO after 4 attempts"):
            client.handshake(timeout=0.1)
        port.close()
    finally:
        relay.close()


def test_qemu_reset_mid_run_is_recovered():
    """QMP system_reset while runs are in flight: the firmware reboots (BOOT), the client
    repeats the handshake and the run. On a loaded machine all three resets can land in
    one run, so the client may survive three per run (the default is two: a device
    resetting more often than that is reported, test_restart_loop_fails_with_a_clear_error)."""
    with open_fixture("qemu:mps2-an386", reset_retries=3) as session:
        stop = threading.Event()

        def resetter() -> None:
            for _ in range(3):
                if stop.wait(0.15):
                    return
                session.machine.reset()

        thread = threading.Thread(target=resetter)
        thread.start()
        try:
            correct, failed = _check_runs(session, 40, 11)
        finally:
            stop.set()
            thread.join()
        assert (correct, failed) == (40, 0)
        assert session.client.stats.resets >= 1
