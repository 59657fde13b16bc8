"""Generated C compiles without a single warning under gcc, clang and arm-none-eabi-gcc
(five Cortex-M CPUs) with the strict flag set (-c only)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeconv import codegen
from edgeconv.layers import AvgPool2D, Conv1D, Conv2D, DepthwiseConv2D, MaxPool2D
from edgeconv.resources import firmware_dir
from edgeconv.signal import SignalFilter

STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion",
          "-Wsign-conversion", "-Wshadow", "-Wcast-align", "-Werror"]
ARM_FPU = ["-mfloat-abi=hard", "-mfpu=auto"]
TOOLCHAINS = [
    ("gcc", "generic", []),
    ("clang", "generic", []),
    ("arm-none-eabi-gcc", "cortex-m0", ["-mthumb", "-mcpu=cortex-m0"]),
    ("arm-none-eabi-gcc", "cortex-m4", ["-mthumb", "-mcpu=cortex-m4", *ARM_FPU]),
    ("arm-none-eabi-gcc", "cortex-m7", ["-mthumb", "-mcpu=cortex-m7", *ARM_FPU]),
    ("arm-none-eabi-gcc", "cortex-m33", ["-mthumb", "-mcpu=cortex-m33", *ARM_FPU]),
    ("arm-none-eabi-gcc", "cortex-m55", ["-mthumb", "-mcpu=cortex-m55", *ARM_FPU]),
]


def representative_layers() -> list:
    """Every template and shared helper: each op, int8 and 16x8, both roundings, an
    accumulator that wraps, 1-D, pools, signal filters narrow and 128-bit, saturating
    and wrapping."""
    rng = np.random.default_rng(7)

    def q(n: int, shift: int = -8) -> dict:
        return dict(output_multiplier=np.full(n, 1 << 30, np.int32),
                    output_shift=np.full(n, shift, np.int32))

    w = rng.integers(-128, 128, size=(4, 3, 3, 2)).astype(np.int8)
    dw = rng.integers(-128, 128, size=(1, 3, 3, 4)).astype(np.int8)
    return [
        Conv2D(weights=w, padding="same", name="c8", input_shape=(6, 6, 2),
               input_zero_point=3, **q(4)),
        Conv2D(weights=w, stride=2, padding=((1, 0), (0, 2)), rounding="single",
               bias=np.full(4, (1 << 31) - 1, np.int32), name="c8wrap",
               input_shape=(6, 7, 2), **q(4)),
        Conv2D(weights=w[:, :, :, :1], groups=2, dilation=2, padding="same",
               activation_dtype=np.int16, bias=np.full(4, -(1 << 40), np.int64),
               name="c16", input_shape=(5, 5, 2), **q(4, 2)),
        Conv2D(weights=rng.integers(-128, 128, size=(8, 1, 1, 4)).astype(np.int8),
               name="c1x1", input_shape=(4, 4, 4), **q(8)),
        DepthwiseConv2D(weights=dw, depth_multiplier=2, padding="same",
                        name="dw8", input_shape=(5, 5, 2), **q(4)),
        DepthwiseConv2D(weights=dw[..., :2], activation_dtype=np.int16, name="dw16",
                        input_shape=(4, 4, 2), **q(2, -2)),
        Conv1D(weights=w[:, 0], stride=2, padding="same", name="c1d", input_shape=(9, 2),
               **q(4)),
        MaxPool2D(pool_size=3, stride=2, padding="same", name="mp", input_shape=(5, 5, 3)),
        AvgPool2D(pool_size=2, activation_dtype=np.int16, name="ap",
                  input_shape=(4, 4, 3)),
        SignalFilter(np.array([5, -7, 9], np.int8), fmt="q7", kind="correlate",
                     input_length=8, name="sq7"),
        SignalFilter(np.array([500, -700], np.int16), fmt="q15", mode="same",
                     rounding="nearest", saturate=False, input_length=8, name="sq15"),
        SignalFilter(np.array([1 << 30, -5], np.int32), fmt="q31", mode="valid",
                     accumulator=128, saturate=True, stride=2, input_length=8, name="sq31"),
        SignalFilter(np.array([1, 2], np.int32), fmt="q31", accumulator=24, input_length=4,
                     name="sq31n"),
    ]


@pytest.mark.parametrize("strategy", [None, "im2col"])
@pytest.mark.parametrize("compiler, cpu, flags", TOOLCHAINS,
                         ids=[f"{cc}-{cpu}" for cc, cpu, _ in TOOLCHAINS])
def test_no_warnings(tmp_path: Path, compiler: str, cpu: str, flags: list[str],
                     strategy: str | None) -> None:
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} not installed (scripts/sysdeps.sh installs it)")
    gen = codegen.generate(representative_layers(), tmp_path, cpu=cpu, strategy=strategy,
                           registry=True)
    for source in gen.sources:
        cmd = [compiler, *STRICT, *flags, "-I", str(tmp_path),
               "-I", str(firmware_dir() / "common"), "-c", str(source),
               "-o", str(tmp_path / (source.stem + ".o"))]
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 0 and not result.stderr, \
            f"{' '.join(cmd)}\n{result.stderr}"
