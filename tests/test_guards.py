"""Guards on the device (firmware/PROTOCOL.md, "Guards"): a kernel that writes outside
the input, output or scratch bytes its registry entry states, or changes its const
input, fails the run with BufferOverrunError, even though the harness's buffers are
sized for a larger layer; an output element the kernel never writes reads back as the
sentinel, not as a stale value.

The kernels are hand-written and broken on purpose (tests/firmware_guard_fixture), each
one byte outside its sizes; they run on the native firmware and on an emulated M4.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import edgeconv.targets
from edgeconv.targets.client import BufferOverrunError, DeviceError
from edgeconv.targets.protocol import ErrorCode

GUARD_FIXTURE_DIR = Path(__file__).parent / "firmware_guard_fixture"
GUARD_FIXTURE_HASH = "9a9b9c9d9e9f0a0b"
N = 8  # elements of each broken layer (int8), as in the fixture's C
SENTINEL = np.int8(-91)  # 0xA5, the byte the harness fills the output with
BROKEN = ["out_past", "out_before", "scratch_past", "in_past", "in_change", "out_skip"]


def _layers() -> list[SimpleNamespace]:
    """Host descriptions of the fixture's layers, in its registry order."""
    return [SimpleNamespace(name="copy", input_shape=(64,), output_shape=(64,)),
            *(SimpleNamespace(name=name, input_shape=(N,), output_shape=(N,))
              for name in BROKEN)]


@pytest.fixture(scope="module", params=["native", "qemu:mps2-an386"])
def session(request: pytest.FixtureRequest):
    if request.param.startswith("qemu:") and (shutil.which("arm-none-eabi-gcc") is None
                                              or shutil.which("qemu-system-arm") is None):
        pytest.skip("arm-none-eabi-gcc or qemu-system-arm not installed")
    with edgeconv.targets.open(request.param, _layers(), gen_dir=GUARD_FIXTURE_DIR,
                               expected_hash=GUARD_FIXTURE_HASH) as s:
        yield s


def _input(size: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, size).astype(np.int8)


@pytest.mark.parametrize("name, buffer, offset, size", [
    ("out_past", "output", N, N),       # one byte after the output
    ("out_before", "output", -1, N),    # one byte before it
    ("scratch_past", "scratch", N, N),  # one byte after the scratch it states
    ("in_past", "input", N, N),         # one byte after the input
    ("in_change", "input", None, None),  # its own const input
])
def test_overrun_is_its_own_error(session, name: str, buffer: str, offset: int | None,
                                  size: int | None) -> None:
    x = _input(64)
    np.testing.assert_array_equal(session.run("copy", x), x)  # buffers hold 64 bytes
    with pytest.raises(BufferOverrunError) as info:
        session.run(name, x[:N])
    err = info.value
    assert isinstance(err, DeviceError) and err.code == ErrorCode.GUARD
    assert (err.buffer, err.offset, err.size) == (buffer, offset, size), str(err)
    # the harness refilled its guards: a correct layer runs clean right after
    np.testing.assert_array_equal(session.run("copy", x), x)


def test_unwritten_output_reads_the_sentinel(session) -> None:
    """out_skip leaves its last element alone. Before, it kept the previous run's byte,
    which here is the right value (the same input just went through copy)."""
    x = _input(64, seed=2)
    np.testing.assert_array_equal(session.run("copy", x), x)
    got = session.run("out_skip", x[:N])
    np.testing.assert_array_equal(got[:-1], x[:N - 1])
    assert got[-1] == SENTINEL, got


def test_guard_detail_is_parsed() -> None:
    """BufferOverrunError reads buffer, offset and size out of the device's detail."""
    err = BufferOverrunError(ErrorCode.GUARD, "scratch overrun at byte -16 of 4294967295")
    assert (err.buffer, err.offset, err.size) == ("scratch", -16, 4294967295)
    assert "device error GUARD" in str(err)
