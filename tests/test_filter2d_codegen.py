"""Generated C for SignalFilter2D (edgeconv/codegen/kernels/filter2d.py): which kernel
codegen picks, the strip height in the header, the portable bodies bit-exact on the host
against the reference model (under UBSan), and the Cortex-M builds warning-clean where
registers are scarce. The golden suite runs them on the emulated boards."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeconv import codegen
from edgeconv.codegen import kernels
from edgeconv.codegen.cpus import CPUS
from edgeconv.codegen.kernels import filter2d
from edgeconv.signal2d import SignalFilter2D, demo_kernels

WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion",
            "-Wsign-conversion", "-Wshadow", "-Wcast-align", "-Werror"]
DTYPES = {"q7": np.int8, "q15": np.int16, "q31": np.int32}


def host_library(source: Path, *flags: str) -> ctypes.CDLL:
    """``source`` built for the host as a shared library under UBSan (any undefined
    behaviour aborts), with ``flags``; loaded."""
    lib = source.with_suffix(".so")
    proc = subprocess.run(["gcc", *flags, "-O1", "-fsanitize=undefined",
                           "-fno-sanitize-recover=all", "-fPIC", "-shared", str(source),
                           "-o", str(lib), "-lm"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return ctypes.CDLL(str(lib))


def _layer(name: str, ksize: tuple[int, int], fmt: str = "q7", *, limit: int | None = None,
           shape: tuple[int, int] = (7, 13), seed: int = 0, **opts) -> SignalFilter2D:
    info = np.iinfo(DTYPES[fmt])
    limit = min(int(info.max), 60000 // (ksize[0] * ksize[1])) if limit is None else limit
    kernel = np.random.default_rng(seed).integers(-limit, limit + 1, size=ksize)
    return SignalFilter2D(kernel.astype(DTYPES[fmt]), fmt=fmt, input_shape=shape, name=name,
                          separable=False, **opts)


def cases() -> list[SignalFilter2D]:
    """Row kernel in C (small kernels) and in assembly (5x5, 4x5, 5x3), every boundary,
    tails, one output column block, strips of a few rows, the C requantization paths."""
    return [
        _layer("c3q7", (3, 3), mode="same", boundary="symmetric", seed=1),
        _layer("c3q15", (3, 3), "q15", mode="full", boundary="wrap", rounding="nearest",
               seed=2),
        _layer("a5q15", (5, 5), "q15", mode="same", boundary="fill", fillvalue=-7,
               shape=(9, 21), seed=3),
        _layer("a45q7", (4, 5), mode="valid", shape=(8, 14), seed=4),
        _layer("a53q15", (5, 3), "q15", kind="correlate", mode="same", boundary="wrap",
               rounding="nearest", shape=(6, 9), seed=5),
        _layer("a5tall", (5, 5), "q15", mode="same", boundary="symmetric", shape=(60, 36),
               seed=6),  # several strips
        _layer("c1x4", (1, 4), mode="full", shape=(3, 4), seed=7),  # one block, tail 3
        _layer("c2q7w", (2, 2), saturate=False, accumulator=20, mode="same", seed=8),
        _layer("c5wrap", (5, 5), "q15", saturate=False, mode="same", shape=(6, 8), seed=9),
    ]


def test_plans() -> None:
    for layer in cases():
        for cpu in ("cortex-m0", "cortex-m3", "cortex-m4", "cortex-m55"):
            assert kernels.fast_plan(layer, cpu).strategy == "filter2d_rows"
        assert kernels.fast_plan(layer, "generic") is None
    asm = {layer.name: kernels.fast_plan(layer, "cortex-m4").context.asm for layer in cases()}
    assert [name for name, on in asm.items() if on] == ["a5q15", "a45q7", "a53q15", "a5tall"]
    # Helium rows: blocks of eight outputs, the plain requantization or a wrap
    mve = {layer.name: kernels.fast_plan(layer, "cortex-m55").context.mve for layer in cases()}
    assert [name for name, on in mve.items() if not on] == ["c1x4", "c2q7w"]
    # q31, and q15 taps whose sums need more than 32 bits: the portable kernel
    assert kernels.fast_plan(_layer("q31", (3, 3), "q31"), "cortex-m4") is None
    big = _layer("big", (3, 3), "q15", limit=32767, seed=1)
    assert 32768 * int(np.abs(big.kernel.astype(np.int64)).sum()) > 2**31 - 1
    assert kernels.fast_plan(big, "cortex-m4") is None
    assert kernels.fast_plan(_layer("k11", (11, 11), shape=(12, 12)), "cortex-m4") is not None
    assert kernels.fast_plan(_layer("k12", (11, 12), shape=(12, 12)), "cortex-m4") is None


def test_strip_height_and_scratch_in_the_header(tmp_path: Path) -> None:
    layer = SignalFilter2D(demo_kernels()["blur"], mode="same", boundary="symmetric",
                           fmt="q15", input_shape=(128, 128), name="blur")
    gen = codegen.generate([layer], tmp_path, "net", cpu="cortex-m4")
    plan = kernels.fast_plan(layer, "cortex-m4")
    row_bytes = 4 * ((128 + 5 + 3) // 2)  # (out_w + n2 + 3) // 2 words a row
    strip = filter2d.STRIP_SCRATCH_BUDGET // row_bytes - 4
    assert plan.context.strip_rows == strip
    assert plan.scratch_bytes == (strip + 4) * row_bytes <= filter2d.STRIP_SCRATCH_BUDGET
    header = gen.header.read_text()
    assert f"#define BLUR_STRIP_ROWS {strip}u" in header
    assert f"#define BLUR_SCRATCH_BYTES {plan.scratch_bytes}u" in header
    assert "#define BLUR_STRATEGY \"filter2d_rows\"" in header
    generic = codegen.generate([layer], tmp_path / "g", "net").header.read_text()
    assert "STRIP_ROWS" not in generic and "#define BLUR_SCRATCH_BYTES 0u" in generic


@pytest.mark.parametrize("cpu", ["generic", "cortex-m4"])
def test_host_bodies_bit_exact(cpu: str, tmp_path: Path) -> None:
    """The portable kernel (generic) and the row kernel's C body (built for the host from
    the Cortex-M code) equal the reference on random and extreme images."""
    layers = [*cases(), _layer("q31", (3, 2), "q31", mode="same", boundary="symmetric",
                               rounding="nearest", accumulator=100)]
    gen = codegen.generate(layers, tmp_path, "f2d", cpu=cpu)
    dll = host_library(gen.source, *WARNINGS)
    rng = np.random.default_rng(11)
    for layer, info in zip(layers, gen.layers, strict=True):
        dt = layer.activation_dtype
        lo, hi = np.iinfo(dt).min, np.iinfo(dt).max
        for x in (rng.integers(lo, hi, layer.input_shape, endpoint=True),
                  np.full(layer.input_shape, lo), np.full(layer.input_shape, hi)):
            x = x.astype(dt)
            y = np.full(layer.output_shape, 77, dt)
            scratch = np.full(max(1, info.scratch_bytes // 4), 0x5A5A5A5A, np.uint32)
            rc = getattr(dll, layer.name)(ctypes.c_void_p(x.ctypes.data),
                                          ctypes.c_void_p(y.ctypes.data),
                                          ctypes.c_void_p(scratch.ctypes.data))
            assert rc == 0
            np.testing.assert_array_equal(y, layer(x), err_msg=f"{cpu} {layer.name}")


@pytest.mark.parametrize("cpu,opts", [
    ("cortex-m4", ["-O0"]), ("cortex-m4", ["-Os", "-fno-omit-frame-pointer"]),
    ("cortex-m7", ["-O3", "-fno-omit-frame-pointer", "-ffixed-r9"]),
    ("cortex-m33", ["-O2"]), ("cortex-m55", ["-O1"]), ("cortex-m55", ["-O0"]),
    ("cortex-m55", ["-O3", "-fno-omit-frame-pointer"]), ("cortex-m0", ["-O2"]),
    ("cortex-m3", ["-Os"])])
def test_arm_builds_warning_clean(cpu: str, opts: list[str], tmp_path: Path) -> None:
    arm_build_is_clean(cases(), cpu, opts, tmp_path)


def arm_build_is_clean(layers: list, cpu: str, opts: list[str], tmp_path: Path) -> None:
    """The layers' generated C compiles for ``cpu`` with ``opts`` and no warning."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    gen = codegen.generate(layers, tmp_path, "net", cpu=cpu)
    proc = subprocess.run(["arm-none-eabi-gcc", *CPUS[cpu].gcc_flags(), *WARNINGS, *opts,
                           "-c", str(gen.source), "-o", str(tmp_path / "net.o")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _random_layers(count: int, seed: int) -> list[SignalFilter2D]:
    """Seeded random filters: shapes from 1x1 to 6x6 on images from 1x1 to 9x17, every
    kind, mode, boundary and fill value, q7/q15 (taps small enough for the row kernel half
    of the time), both roundings, saturate or wrap, 16- to 64-bit accumulators."""
    rng = np.random.default_rng(seed)
    layers = []
    while len(layers) < count:
        fmt = ("q7", "q15")[int(rng.integers(2))]
        info = np.iinfo(DTYPES[fmt])
        ksize = (int(rng.integers(1, 7)), int(rng.integers(1, 7)))
        shape = (int(rng.integers(1, 10)), int(rng.integers(1, 18)))
        mode = str(rng.choice(["full", "same", "valid"]))
        if mode == "valid" and not (all(m >= n for m, n in zip(shape, ksize, strict=True))
                                    or all(m <= n for m, n in zip(shape, ksize, strict=True))):
            continue
        limit = int(info.max) if rng.random() < 0.5 else max(1, 60000 // (ksize[0] * ksize[1]))
        kernel = rng.integers(-limit, limit + 1, size=ksize).astype(DTYPES[fmt])
        layers.append(SignalFilter2D(
            kernel, fmt=fmt, kind=str(rng.choice(["convolve", "correlate"])), mode=mode,
            boundary=str(rng.choice(["fill", "symmetric", "wrap"])),
            fillvalue=int(rng.integers(info.min, int(info.max) + 1)), input_shape=shape,
            rounding=str(rng.choice(["floor", "nearest"])), saturate=bool(rng.random() < 0.7),
            accumulator=int(rng.choice([16, 24, 32, 40, 64])), separable=False,
            name=f"r{len(layers)}"))
    return layers


@pytest.mark.parametrize("cpu", ["generic", "cortex-m4"])
def test_host_random_filters_bit_exact(cpu: str, tmp_path: Path) -> None:
    layers = _random_layers(60, seed=2026)
    gen = codegen.generate(layers, tmp_path, "rnd", cpu=cpu)
    if cpu != "generic":
        assert sum(info.strategy == "filter2d_rows" for info in gen.layers) >= 20
    lib = tmp_path / "rnd.so"
    proc = subprocess.run(["gcc", *WARNINGS, "-O1", "-fsanitize=undefined",
                           "-fno-sanitize-recover=all", "-fPIC", "-shared", str(gen.source),
                           "-o", str(lib)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    dll = ctypes.CDLL(str(lib))
    rng = np.random.default_rng(7)
    for layer, info in zip(layers, gen.layers, strict=True):
        dt = layer.activation_dtype
        x = rng.integers(np.iinfo(dt).min, np.iinfo(dt).max, layer.input_shape,
                         endpoint=True).astype(dt)
        y = np.zeros(layer.output_shape, dt)
        scratch = np.zeros(max(1, info.scratch_bytes // 4), np.uint32)
        assert getattr(dll, layer.name)(ctypes.c_void_p(x.ctypes.data),
                                        ctypes.c_void_p(y.ctypes.data),
                                        ctypes.c_void_p(scratch.ctypes.data)) == 0
        np.testing.assert_array_equal(y, layer(x), err_msg=f"{cpu} {layer.spec()}")
