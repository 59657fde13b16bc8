"""A small EC_MAX_PAYLOAD (issue 11, item 6): the HELLO message must fit tx_msg, so a
payload smaller than HELLO is refused when the firmware is compiled, and the smallest one
accepted boots cleanly under AddressSanitizer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import serial
from conftest import FIXTURE_DIR, FIXTURE_HASH

from edgeconv import resources
from edgeconv.targets.client import Client
from edgeconv.targets.process import PtyProcess
from edgeconv.targets.protocol import Msg


def _make(build_dir: Path, board: str, payload: int | None, extra_cflags: str = "") \
        -> subprocess.CompletedProcess:
    cmd = ["make", "-s", "-C", str(resources.firmware_dir()), f"BOARD={board}",
           f"GEN_DIR={FIXTURE_DIR}", f"BUILD_DIR={build_dir}", f"EXTRA_CFLAGS={extra_cflags}"]
    if payload is not None:
        cmd.append(f"EC_MAX_PAYLOAD={payload}")
    return subprocess.run(cmd, capture_output=True, text=True)


def _hello_bytes(image: Path) -> int:
    """Size of the HELLO reply message (header included, CRC excluded) ``image`` sends."""
    proc = PtyProcess([str(image)])
    try:
        port = serial.serial_for_url(proc.wait_pty(), timeout=0.05)
        try:
            client = Client(port, expected_hash=FIXTURE_HASH, timeout=0.5)
            reply = client.request(Msg.HELLO, during_handshake=True)
            client.shutdown(0)
        finally:
            port.close()
        proc.wait(2.0)
    finally:
        proc.stop()
    return 3 + len(reply.body)


@pytest.mark.parametrize("board", ["native", "mps2-an386"])
def test_a_payload_smaller_than_hello_is_refused_at_compile_time(tmp_path, board):
    if board != "native" and not shutil.which("arm-none-eabi-gcc"):
        pytest.skip("arm-none-eabi-gcc not installed")
    res = _make(tmp_path, board, 64)
    assert res.returncode != 0, "built with EC_MAX_PAYLOAD=64, HELLO does not fit"
    assert "EC_MAX_PAYLOAD_is_smaller_than_the_HELLO_message" in res.stderr, res.stderr


def test_the_smallest_accepted_payload_boots_under_asan(tmp_path):
    asan = "-fsanitize=address -fno-omit-frame-pointer"
    probe = _make(tmp_path / "probe", "native", None, asan)
    assert probe.returncode == 0, probe.stderr
    need = _hello_bytes(tmp_path / "probe" / "firmware")
    assert 64 < need < 256, need
    assert _make(tmp_path / "short", "native", need - 1, asan).returncode != 0
    exact = _make(tmp_path / "exact", "native", need, asan)
    assert exact.returncode == 0, exact.stderr
    # The firmware exits on SHUTDOWN; an ASan report would abort it before the HELLO.
    assert _hello_bytes(tmp_path / "exact" / "firmware") == need
