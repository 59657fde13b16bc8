"""targets: spec parsing, limits, layer fitting, build cache, and cleanup on errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import open_fixture

import edgeconv.targets as targets
from edgeconv.bench import benchmark_layers
from edgeconv.targets.client import ClientError, StaleFirmwareError


def _children() -> list[str]:
    """Processes (zombies included) whose parent is this test process."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            found.append(f"{stat.parent.name} {(stat.parent / 'cmdline').read_bytes()!r}")
    return found


@pytest.mark.parametrize("spec,kind,board,cpu,port,baud", [
    ("native", "native", "native", "generic", None, 115200),
    ("qemu:mps2-an386", "qemu", "mps2-an386", "cortex-m4", None, 115200),
    ("qemu:mps2-an385:cortex-m0", "qemu", "mps2-an385", "cortex-m0", None, 115200),
    ("qemu:microbit", "qemu", "microbit", "cortex-m0", None, 115200),
    ("serial:/dev/ttyACM0@921600", "serial", None, None, "/dev/ttyACM0", 921600),
    ("serial:socket://127.0.0.1:4000", "serial", None, None, "socket://127.0.0.1:4000", 115200),
])
def test_parse_spec(spec, kind, board, cpu, port, baud):
    t = targets.parse_spec(spec)
    assert (t.kind, t.board.name if t.board else None, t.cpu, t.port, t.baud) == (
        kind, board, cpu, port, baud)


@pytest.mark.parametrize("spec,message", [
    ("qemu:nope", "board='nope' unknown; known: native, mps2-an385"),
    ("qemu:mps2-an386:cortex-m0", "cpu='cortex-m0' not supported on mps2-an386"),
    ("qemu:native", "does not run in QEMU"),
    ("serial:", "spec='serial:' must be"),
    ("tcp:1234", "spec='tcp:1234' must be"),
])
def test_parse_spec_rejects(spec, message):
    with pytest.raises(ValueError, match=message):
        targets.parse_spec(spec)


def test_limits():
    assert targets.limits("qemu:microbit") == targets.TargetLimits(10 << 10, "cortex-m0",
                                                                    "microbit")
    assert targets.limits("qemu:mps2-an385:cortex-m0").cpu == "cortex-m0"
    assert targets.limits("serial:/dev/ttyUSB0", board_name="netduinoplus2").ram_bytes == 96 << 10
    with pytest.raises(ValueError, match="board=''"):
        targets.limits("serial:/dev/ttyUSB0")


def test_fitting_layers_respects_ram():
    layers = list(benchmark_layers().values())
    kept, skipped = targets.fitting_layers("qemu:microbit", layers)
    assert kept and skipped and len(kept) + len(skipped) == len(layers)
    peaks = [max(targets.buffer_bytes(layer, "cortex-m0")[i] for layer in kept)
             for i in range(3)]
    assert sum(peaks) <= 10 << 10
    assert targets.fitting_layers("qemu:mps2-an386", layers) == (layers, [])


def test_unknown_option_leaves_no_process():
    with pytest.raises(ValueError, match="unknown options for native: colour"):
        open_fixture(colour="red")
    # The native process was started before the option check: it must be gone.
    assert not _children()


def test_stale_firmware_on_qemu_leaves_no_qemu():
    with pytest.raises(StaleFirmwareError, match="0000000000000000.*stale"):
        open_fixture("qemu:microbit", expected_hash="0000000000000000")
    assert not _children()


def test_exception_inside_session_shuts_qemu_down():
    with pytest.raises(RuntimeError, match="boom"):
        with open_fixture("qemu:mps2-an386") as session:
            pid = session.machine.process.pid
            raise RuntimeError("boom")
    assert not Path(f"/proc/{pid}").exists()
    assert session.machine.process.proc.returncode == 0  # semihosting exit after SHUTDOWN
    with pytest.raises(ClientError, match="closed"):
        session.run("sum8", np.zeros(16, np.int8))


def test_build_cache_reuses_firmware(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECONV_CACHE_DIR", str(tmp_path))
    layer = benchmark_layers()["L7"]
    x = np.arange(75, dtype=np.int8).reshape(layer.input_shape)
    with targets.open("native", [layer]) as first:
        image = first.process.argv[0]
        np.testing.assert_array_equal(first.run("L7", x), layer(x))
    stamp = os.stat(image).st_mtime_ns
    with targets.open("native", [layer]) as second:
        assert second.process.argv[0] == image
        assert second.hello.layer_hash == first.hello.layer_hash
    assert os.stat(image).st_mtime_ns == stamp
    assert len(list((tmp_path / "firmware").iterdir())) == 1


def test_serial_target_against_a_qemu_started_by_hand():
    """``serial:<pty>`` drives an already running board: no build, hash checked."""
    from conftest import FIXTURE_DIR, FIXTURE_HASH, fixture_layers

    from edgeconv.targets import build
    from edgeconv.targets.boards import BOARDS
    from edgeconv.targets.qemu import QemuMachine

    board = BOARDS["mps2-an385"]
    image = build.build_prebuilt(FIXTURE_DIR, board, "cortex-m0")
    machine = QemuMachine(board, image)
    try:
        machine.start()
        spec = f"serial:{machine.pty}@115200"
        with pytest.raises(StaleFirmwareError, match=f"{FIXTURE_HASH}.*0123456789abcdef"):
            targets.open(spec, fixture_layers(), expected_hash="0123456789abcdef")
        with targets.open(spec, fixture_layers(), expected_hash=FIXTURE_HASH,
                          icount=True) as session:
            assert (session.hello.board, session.hello.cpu) == ("mps2-an385", "cortex-m0")
            x = np.arange(-500, 500, dtype=np.int16).astype(np.int8)
            np.testing.assert_array_equal(session.run("add_one", x), (x + 1).astype(np.int8))
            assert session.count_unit == "instructions"
        assert machine.process.wait(0) is None  # a serial session leaves the board running
    finally:
        machine.stop(grace=0)
    assert not _children()


def test_cpu_option_equals_cpu_in_spec():
    with open_fixture("qemu:mps2-an385", cpu="cortex-m0") as session:
        assert session.hello.cpu == "cortex-m0"
    with pytest.raises(ValueError, match="cpu='cortex-m7' not supported on mps2-an385"):
        open_fixture("qemu:mps2-an385", cpu="cortex-m7")
