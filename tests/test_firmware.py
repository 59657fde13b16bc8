"""Firmware on every board: builds warning-free with plain make, boots in QEMU, moves
tensors larger than a frame, counts instructions, reports HardFaults, survives garbage."""

from __future__ import annotations

import struct
import subprocess
import time

import numpy as np
import pytest
from conftest import FIXTURE_DIR, fixture_layers, open_fixture

from edgeconv import resources
from edgeconv.targets.boards import BOARDS
from edgeconv.targets.client import DeviceFaultError
from edgeconv.targets.protocol import Msg

LAYERS = {layer.name: layer for layer in fixture_layers()}
# (board, cpu, end of RAM = initial stack pointer)
ARM_BUILDS = [
    ("mps2-an385", "cortex-m3", 0x20400000),
    ("mps2-an385", "cortex-m0", 0x20400000),
    ("mps2-an386", "cortex-m4", 0x20400000),
    ("mps2-an500", "cortex-m7", 0x20400000),
    ("mps2-an505", "cortex-m33", 0x38400000),
    ("mps3-an547", "cortex-m55", 0x20080000),
    ("netduinoplus2", "cortex-m4", 0x20020000),
    ("microbit", "cortex-m0", 0x20004000),
]
QEMU_SPECS = ["qemu:mps2-an385", "qemu:mps2-an385:cortex-m0", "qemu:mps2-an386",
              "qemu:mps2-an500", "qemu:mps2-an505", "qemu:mps3-an547", "qemu:netduinoplus2",
              "qemu:microbit"]


@pytest.mark.parametrize("board,cpu,stack_top", ARM_BUILDS,
                         ids=[f"{b}-{c}" for b, c, _ in ARM_BUILDS])
def test_plain_make_builds_a_bootable_image(tmp_path, board, cpu, stack_top):
    subprocess.run(["make", "-s", "-C", str(resources.firmware_dir()), f"BOARD={board}",
                    f"CPU={cpu}", f"GEN_DIR={FIXTURE_DIR}", f"BUILD_DIR={tmp_path}"],
                   check=True, capture_output=True)
    for name in ("firmware.elf", "firmware.bin", "firmware.hex"):
        assert (tmp_path / name).stat().st_size > 0
    sp, reset = struct.unpack("<II", (tmp_path / "firmware.bin").read_bytes()[:8])
    assert sp == stack_top and reset & 1  # Thumb entry point
    flags = subprocess.run(["arm-none-eabi-readelf", "-A", str(tmp_path / "firmware.elf")],
                           check=True, capture_output=True, text=True).stdout
    arch = {"cortex-m0": "v6S-M", "cortex-m3": "v7", "cortex-m4": "v7E-M",
            "cortex-m7": "v7E-M", "cortex-m33": "v8-M.mainline",
            "cortex-m55": "v8.1-M.mainline"}[cpu]
    assert f"Tag_CPU_arch: {arch}" in flags


def test_native_builds_with_make(tmp_path):
    subprocess.run(["make", "-s", "-C", str(resources.firmware_dir()), "BOARD=native",
                    f"GEN_DIR={FIXTURE_DIR}", f"BUILD_DIR={tmp_path}"],
                   check=True, capture_output=True)
    assert (tmp_path / "firmware").stat().st_size > 0


def test_make_rejects_unknown_board():
    res = subprocess.run(["make", "-C", str(resources.firmware_dir()), "BOARD=pdp11",
                          f"GEN_DIR={FIXTURE_DIR}"], capture_output=True, text=True)
    assert res.returncode != 0 and "unknown BOARD 'pdp11'" in res.stderr


@pytest.fixture(scope="module", params=QEMU_SPECS)
def qemu_session(request):
    # -icount shift=3 everywhere (the default on MPS2/MPS3 only): deterministic counts.
    with open_fixture(request.param, icount=True) as session:
        yield session


def _random(name: str, batch: int, seed: int) -> np.ndarray:
    dtype = np.int16 if name == "negate16" else np.int8
    info = np.iinfo(dtype)
    shape = (batch, *LAYERS[name].input_shape)
    return np.random.default_rng(seed).integers(info.min, info.max + 1, shape, dtype=dtype)


def test_hello_describes_the_board(qemu_session):
    spec = qemu_session.spec.split(":")
    hello = qemu_session.hello
    assert hello.board == spec[1]
    assert hello.cpu == (spec[2] if len(spec) > 2 else BOARDS[spec[1]].cpu)
    assert hello.layer_count == 5
    assert hello.max_payload == (256 if hello.board == "microbit" else 1024)


@pytest.mark.parametrize("name", ["add_one", "negate16", "sum8"])
def test_tensors_across_many_frames(qemu_session, name):
    # 1000- and 1200-byte tensors: 5 frames each way on the micro:bit, 2 elsewhere.
    x = _random(name, 3, seed=len(name))
    np.testing.assert_array_equal(qemu_session.run(name, x), LAYERS[name].expected(x))


def test_instruction_count_of_a_known_loop(qemu_session):
    """spin(n) executes exactly 2n loop instructions; the count adds a small constant.

    Timers of known rate (FPGAIO, nRF51 TIMER0) give instructions under icount, and so
    does the netduinoplus2's SysTick, which counts QEMU's 168 MHz processor clock (1.344
    ticks per 8 ns instruction; the session converts)."""
    assert qemu_session.count_unit == "instructions"
    for n in (1000, 50000):
        qemu_session.run("spin", np.array([n], np.int32))
        instructions = qemu_session.last_count
        assert 2 * n <= instructions <= 2 * n + 40, (n, qemu_session.last_count)


def test_garbage_longer_than_the_ring_is_survived(qemu_session):
    client = qemu_session.client
    bad_before = client.stats.bad_frames
    client.port.write(bytes(range(1, 256)) * 24 + b"\x00")  # 6 KB without a delimiter
    hello = client.handshake()
    assert hello.layer_hash == qemu_session.hello.layer_hash
    x = _random("add_one", 1, seed=9)
    np.testing.assert_array_equal(qemu_session.run("add_one", x), LAYERS["add_one"].expected(x))
    assert client.stats.bad_frames > bad_before  # the FRAME_TOO_LONG notice was seen


def test_unknown_message_is_answered(qemu_session):
    with pytest.raises(Exception, match="UNKNOWN_TYPE"):
        qemu_session.client.request(0x7F)
    assert qemu_session.client.request(Msg.HELLO).type == Msg.HELLO_REPLY


@pytest.mark.parametrize("spec,cfsr", [("qemu:mps2-an386", 0x10000), ("qemu:mps3-an547", 0x10000),
                                       ("qemu:mps2-an500", 0x10000),
                                       ("qemu:mps2-an505", 0x10000), ("qemu:microbit", None)])
def test_hardfault_is_reported_and_qemu_exits(spec, cfsr):
    session = open_fixture(spec)
    with pytest.raises(DeviceFaultError, match="HardFault") as exc:
        session.run("crash", np.zeros(1, np.int8))
    session.close()
    regs = exc.value.registers
    assert regs["pc"] & 0xFFFFFFFE and regs["xpsr"] & (1 << 24)  # Thumb state
    if cfsr is None:
        assert "cfsr" not in regs  # ARMv6-M has no fault status registers
    else:
        assert regs["cfsr"] & cfsr  # UNDEFINSTR
    assert session.machine.process.proc.returncode == 3


def test_faulted_device_waits_for_the_host(monkeypatch):
    """After FAULT the firmware keeps QEMU (and so the pty and the unread report) alive
    until the host sends a byte; only then does it exit with code 3."""
    session = open_fixture("qemu:mps2-an386")
    monkeypatch.setattr(session.client, "_answer_fault", lambda: None)
    try:
        with pytest.raises(DeviceFaultError):
            session.run("crash", np.zeros(1, np.int8))
        proc = session.machine.process.proc
        time.sleep(0.5)
        assert proc.poll() is None, "exited before the host answered the FAULT frame"
        session.client.port.write(b"\x00")
        assert proc.wait(timeout=5) == 3
    finally:
        session.close()
