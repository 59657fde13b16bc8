"""Generated C for MatchTemplate (edgeconv/codegen/kernels/match2d.py): which kernel
codegen picks, the portable kernel and the row kernel's C body bit-exact on the host
against the reference model (under UBSan) on images where the template is found exactly,
negated, scaled, on flat images and at the dtype's extremes, and the Cortex-M builds
warning-clean. The golden suite runs them on the emulated boards."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest
from test_filter2d_codegen import WARNINGS, arm_build_is_clean, host_library

from edgeconv import codegen
from edgeconv.codegen import kernels
from edgeconv.signal2d import MatchTemplate, match_template

DTYPES = {"q7": np.int8, "q15": np.int16}


def _layer(name: str, tshape: tuple[int, int], fmt: str, method: str,
           shape: tuple[int, int] = (9, 14), seed: int = 0,
           limit: int | None = None) -> MatchTemplate:
    info = np.iinfo(DTYPES[fmt])
    lo, hi = (info.min, info.max) if limit is None else (-limit, limit)
    tpl = np.random.default_rng(seed).integers(lo, hi, size=tshape, endpoint=True)
    return MatchTemplate(tpl.astype(DTYPES[fmt]), method=method, input_shape=shape,
                         name=name)


def cases() -> list[MatchTemplate]:
    """Every method and format; template widths with and without a tail of taps taken
    one by one (q7: tw % 4, q15: tw % 2); q15 NCC needing a 64-bit cross term; a
    template as large as the image; a one-row template (a pattern in a signal)."""
    return [
        _layer("n7a", (3, 5), "q7", "ncc", seed=1),
        _layer("n7b", (4, 8), "q7", "ncc", shape=(12, 20), seed=2),
        _layer("n15a", (3, 3), "q15", "ncc", seed=3),
        _layer("n15b", (2, 4), "q15", "ncc", seed=4, limit=3000),  # 32-bit cross term
        _layer("n7full", (5, 6), "q7", "ncc", shape=(5, 6), seed=5),
        _layer("n7row", (1, 7), "q7", "ncc", shape=(1, 30), seed=6),
        _layer("s7a", (3, 6), "q7", "ssd", seed=7),
        _layer("s15a", (1, 1), "q15", "ssd", seed=8, limit=100),
        _layer("d7a", (4, 7), "q7", "sad", seed=9),
        _layer("d7b", (2, 4), "q7", "sad", seed=10),
        _layer("d15a", (3, 5), "q15", "sad", seed=11),
    ]


def _images(layer: MatchTemplate, rng: np.random.Generator) -> list[np.ndarray]:
    """Random, the template planted (exactly, negated, scaled by 1/2 plus an offset),
    flat images at the dtype's ends, and an image of extremes."""
    dt = layer.activation_dtype
    info = np.iinfo(dt)
    shape, (th, tw) = layer.input_shape, layer.template.shape
    tpl = layer.template.astype(np.int64)
    out = [rng.integers(info.min, info.max, shape, endpoint=True),
           np.full(shape, info.min), np.full(shape, info.max),
           rng.choice([info.min, info.max], shape)]
    for patch in (tpl, np.clip(-tpl, info.min, info.max), tpl // 2 + 3):
        x = rng.integers(info.min, info.max, shape, endpoint=True)
        r, c = rng.integers(0, shape[0] - th + 1), rng.integers(0, shape[1] - tw + 1)
        x[r:r + th, c:c + tw] = patch
        out.append(x)
    return [x.astype(dt) for x in out]


def test_plans() -> None:
    for layer in cases():
        for cpu in ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"):
            plan = kernels.fast_plan(layer, cpu)
            assert plan is not None and plan.strategy == "match_rows", (layer.name, cpu)
        for cpu in ("generic", "cortex-m0", "cortex-m3"):
            assert kernels.fast_plan(layer, cpu) is None
    plans = {la.name: kernels.fast_plan(la, "cortex-m4") for la in cases()}
    assert [n for n, p in plans.items() if p.context.acc64] == ["n15a"]
    assert plans["n7b"].scratch_bytes == 8 * 20 and plans["n15a"].scratch_bytes == 12 * 14
    assert plans["s7a"].scratch_bytes == 4 * 14 and plans["d7a"].scratch_bytes == 0
    wide = MatchTemplate(np.ones((2, 65), np.int8), input_shape=(3, 70))
    assert kernels.fast_plan(wide, "cortex-m4") is None


def test_header_names_the_strategy(tmp_path: Path) -> None:
    layer = _layer("find", (8, 8), "q7", "ncc", shape=(32, 40))
    header = codegen.generate([layer], tmp_path, "net", cpu="cortex-m4").header.read_text()
    assert '#define FIND_STRATEGY "match_rows"' in header
    assert "#define FIND_SCRATCH_BYTES 320u" in header


@pytest.mark.parametrize("cpu", ["generic", "cortex-m4"])
def test_host_bodies_bit_exact(cpu: str, tmp_path: Path) -> None:
    """The portable kernel (generic) and the row kernel's C body (the Cortex-M code built
    for the host: SMLAD/SMLALD/USADA8 in plain C) equal the reference."""
    layers = cases()
    gen = codegen.generate(layers, tmp_path, "tm", cpu=cpu)
    dll = host_library(gen.source, *WARNINGS)
    rng = np.random.default_rng(12)
    seen = set()
    for layer, info in zip(layers, gen.layers, strict=True):
        for x in _images(layer, rng):
            y = np.full(layer.output_shape, 77, layer.output_dtype)
            scratch = np.full(max(1, info.scratch_bytes // 8), 0x5A5A5A5A5A5A5A5A, np.uint64)
            rc = getattr(dll, layer.name)(ctypes.c_void_p(x.ctypes.data),
                                          ctypes.c_void_p(y.ctypes.data),
                                          ctypes.c_void_p(scratch.ctypes.data))
            assert rc == 0
            want = layer(x)
            np.testing.assert_array_equal(y, want, err_msg=f"{cpu} {layer.name}")
            if layer.method == "ncc":
                seen.update({int(want.max()), int(want.min())} & {32767, -32768, 0})
    assert seen == {32767, -32768, 0}  # exact match, negated match and flat windows hit


@pytest.mark.parametrize("estimate", [False, True])
def test_ncc_rounding_at_every_bit(estimate: bool, tmp_path: Path) -> None:
    """edgeconv_tm_ncc_q15 against the reference's _ncc_q15 on numerators and
    denominators from 0 to the 2**62 ends, ties of the rounding included, from both
    estimates the exact corrections start from: the integer square root of a float
    ratio, and a float square root (the path of cores with VSQRT, here the host's)."""
    from edgeconv.signal2d import _ncc_q15

    layer = _layer("probe", (2, 2), "q7", "ncc")
    gen = codegen.generate([layer], tmp_path, "tm")
    src = tmp_path / "probe.c"
    src.write_text(gen.source.read_text() + "\nint16_t probe_ncc(int64_t num, int64_t a, "
                   "int64_t b) { return edgeconv_tm_ncc_q15(num, a, b); }\n")
    fn = host_library(src, *(["-DEDGECONV_TM_HOST_SQRTF"] if estimate else [])).probe_ncc
    fn.restype, fn.argtypes = ctypes.c_int16, [ctypes.c_int64] * 3
    rng = np.random.default_rng(3)
    triples = [(0, 0, 5), (3, 1, 9), (-3, 1, 9), (1 << 61, 1 << 61, 1 << 61),
               (-(1 << 61), 1 << 61, 1 << 61), ((1 << 61) - 1, 1 << 61, 1 << 61)]
    for _ in range(400):
        a = int(rng.integers(1, 1 << int(rng.integers(1, 62))))
        b = int(rng.integers(1, 1 << int(rng.integers(1, 62))))
        bound = int(np.sqrt(float(a) * b))
        while bound * bound > a * b:
            bound -= 1
        triples.append((int(rng.integers(-bound, bound + 1)), a, b))
    # ties: num / sqrt(a b) = (2k + 1) / 2**16 exactly (a b a square)
    triples += [((2 * k + 1) * 3, 3 << 16, 3 << 16) for k in (0, 1, 777, 32767)]
    # 2**16 |num| / sqrt(a b) = k exactly (a b a square), or k - 1 / scale just below:
    # float estimates land below k and at k, so both corrections (up, down) are needed
    for i in range(800):
        scale = 2 * int(rng.integers(1, 1 << int(rng.integers(1, 28)))) + 1
        k = int(rng.integers(1, (1 << 16) + 1))
        u = k * scale - i % 2
        triples.append((u * int(rng.choice([-1, 1])), scale << 16, scale << 16))
    nums = np.array([t[0] for t in triples], dtype=object)
    dens = np.array([t[1] * t[2] for t in triples], dtype=object)
    want = _ncc_q15(nums, dens)
    got = np.array([fn(*t) for t in triples], np.int16)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("cpu,opts", [
    ("cortex-m4", ["-O3"]), ("cortex-m4", ["-O0"]), ("cortex-m7", ["-Os"]),
    ("cortex-m33", ["-O2"]), ("cortex-m55", ["-O3"]), ("cortex-m0", ["-O2"])])
def test_arm_builds_warning_clean(cpu: str, opts: list[str], tmp_path: Path) -> None:
    arm_build_is_clean(cases(), cpu, opts, tmp_path)


def test_layer_matches_match_template_and_checks_its_arguments() -> None:
    layer = _layer("ok", (3, 4), "q7", "ssd")
    x = np.random.default_rng(1).integers(-128, 128, (2, 9, 14)).astype(np.int8)
    got = layer(x)
    assert got.dtype == np.int32 and got.shape == (2, 7, 11)
    np.testing.assert_array_equal(got[1], match_template(x[1], layer.template, "ssd").scores)
    assert layer.macs() == 7 * 11 * 12
    with pytest.raises(ValueError, match="method='ssd'.*reach"):
        MatchTemplate(np.zeros((1, 2), np.int16), method="ssd", input_shape=(4, 4))
    with pytest.raises(ValueError, match="template: dtype uint8"):
        MatchTemplate(np.zeros((2, 2), np.uint8), input_shape=(4, 4))
    with pytest.raises(ValueError, match="larger than input_shape"):
        MatchTemplate(np.zeros((2, 5), np.int8), input_shape=(4, 4))
    with pytest.raises(ValueError, match="at most 32768"):
        MatchTemplate(np.zeros((2, 20000), np.int8), input_shape=(4, 20000))
    with pytest.raises(ValueError, match="method='x'"):
        MatchTemplate(np.zeros((2, 2), np.int8), method="x", input_shape=(4, 4))
    with pytest.raises(ValueError, match="x: dtype int16"):
        layer(x.astype(np.int16))
