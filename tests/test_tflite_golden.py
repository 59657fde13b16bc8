"""The reference layers against TFLite golden vectors (tests/golden/*.npz).

The goldens come from TFLite's reference kernels (see tests/golden/README.md). Here the
stored TFLite tensor parameters (float scales, zero points, fused activation) are turned
into layer arguments exactly as the TFLite runtime does it, and every output element of
the edgeconv layer must equal TFLite's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edgeconv
from edgeconv.fixedpoint import quantize_multiplier

GOLDEN_DIR = Path(__file__).parent / "golden"
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.npz"))
DTYPES = {"int8": np.dtype(np.int8), "int16": np.dtype(np.int16)}


@dataclass(frozen=True)
class Golden:
    """One golden configuration: metadata plus the stored arrays."""

    id: str
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def config(self) -> dict[str, Any]:
        return self.meta["config"]

    @property
    def dtype(self) -> np.dtype:
        return DTYPES[self.config["dtype"]]


@cache
def load(path: Path) -> Golden:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "meta"}
        meta = json.loads(str(z["meta"]))
    return Golden(meta["config"]["id"], meta, arrays)


# ------------------------------------------------ TFLite parameters -> layer arguments

def tflite_quantize(scale: np.float32, zero_point: int, real: float) -> int:
    """TFLite ``Quantize`` (kernel_util.h): ``zp + (int)TfLiteRound(real / scale)``, with the
    division in float32 and rounding half away from zero."""
    q = float(np.float32(real) / np.float32(scale))  # float32 quotient, held exactly
    rounded = math.floor(abs(q) + 0.5)  # exact in float64 for any float32 below 2**29
    return int(zero_point) + int(math.copysign(rounded, q))


def activation_range(activation: str, dtype: np.dtype, scale: np.float32,
                     zero_point: int) -> tuple[int, int]:
    """TFLite ``CalculateActivationRangeQuantized`` for the fused activation."""
    info = np.iinfo(dtype)
    qmin, qmax = int(info.min), int(info.max)
    if activation == "none":
        return qmin, qmax
    lo, hi = {"relu": (0.0, None), "relu6": (0.0, 6.0), "relu_n1_to_1": (-1.0, 1.0)}[activation]
    act_min = max(qmin, tflite_quantize(scale, zero_point, lo))
    act_max = qmax if hi is None else min(qmax, tflite_quantize(scale, zero_point, hi))
    return act_min, act_max


def requant_params(input_scale: np.float32, filter_scales: np.ndarray,
                   output_scale: np.float32) -> tuple[np.ndarray, np.ndarray]:
    """TFLite ``PopulateConvolutionQuantizationParams``: per channel,
    ``double(input_scale) * double(filter_scale) / double(output_scale)`` through
    ``QuantizeMultiplier``."""
    mults, shifts = [], []
    for fs in np.asarray(filter_scales, dtype=np.float32):
        eff = float(np.float64(input_scale)) * float(np.float64(fs)) / float(
            np.float64(output_scale))
        m, s = quantize_multiplier(eff)
        mults.append(m)
        shifts.append(s)
    return np.array(mults, dtype=np.int32), np.array(shifts, dtype=np.int32)


def conv_kwargs(g: Golden) -> dict[str, Any]:
    """Keyword arguments shared by Conv2D / DepthwiseConv2D / Conv1D for golden ``g``."""
    a, m = g.arrays, g.meta
    mult, shift = requant_params(a["input_scale"], a["filter_scales"], a["output_scale"])
    act_min, act_max = activation_range(m["fused_activation"], g.dtype, a["output_scale"],
                                        int(a["output_zero_point"]))
    return {
        "bias": a.get("bias"), "padding": m["padding"], "activation_dtype": g.dtype,
        "input_zero_point": int(a["input_zero_point"]),
        "output_zero_point": int(a["output_zero_point"]),
        "output_multiplier": mult, "output_shift": shift,
        "activation_min": act_min, "activation_max": act_max,
    }


def build_layer(g: Golden) -> Any:
    """The edgeconv layer equivalent to golden ``g``'s TFLite op."""
    m, op = g.meta, g.config["op"]
    stride = tuple(m["stride"])
    if op in ("maxpool", "avgpool"):
        cls = edgeconv.MaxPool2D if op == "maxpool" else edgeconv.AvgPool2D
        act_min, act_max = activation_range(m["fused_activation"], g.dtype,
                                            g.arrays["output_scale"],
                                            int(g.arrays["output_zero_point"]))
        return cls(pool_size=tuple(m["pool_size"]), stride=stride, padding=m["padding"],
                   activation_min=act_min, activation_max=act_max, activation_dtype=g.dtype)
    kwargs = conv_kwargs(g) | {"weights": g.arrays["weights"], "stride": stride,
                               "dilation": tuple(m["dilation"])}
    if op == "depthwise":
        return edgeconv.DepthwiseConv2D(depth_multiplier=m["depth_multiplier"], **kwargs)
    return edgeconv.Conv2D(groups=m["groups"], **kwargs)


def assert_exact(got: np.ndarray, expected: np.ndarray, gid: str) -> None:
    """Every element equal; on failure name the config and the first mismatches."""
    assert got.shape == expected.shape, f"{gid}: shape {got.shape} != {expected.shape}"
    assert got.dtype == expected.dtype, f"{gid}: dtype {got.dtype} != {expected.dtype}"
    bad = np.argwhere(got != expected)
    detail = "; ".join(f"[{', '.join(map(str, idx))}] expected {expected[tuple(idx)]} "
                       f"got {got[tuple(idx)]}" for idx in bad[:5])
    np.testing.assert_array_equal(
        got, expected,
        err_msg=f"golden {gid}: {len(bad)}/{expected.size} elements differ (index "
                f"[sample, y, x, c]): {detail}")


# --------------------------------------------------------------------------- tests

def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


CONV1D_FILES = [p for p in GOLDEN_FILES if load(p).config["conv1d_equivalent"]]


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=_ids(GOLDEN_FILES))
def test_layer_matches_tflite(path: Path) -> None:
    g = load(path)
    layer = build_layer(g)
    assert_exact(layer(g.arrays["input"]), g.arrays["output"], g.id)


@pytest.mark.parametrize("path", CONV1D_FILES, ids=_ids(CONV1D_FILES))
def test_conv1d_matches_tflite_conv2d_with_height_1(path: Path) -> None:
    """TFLite lowers Conv1D to a height-1 CONV_2D: the same golden drives edgeconv.Conv1D."""
    g = load(path)
    weights = g.arrays["weights"]
    assert weights.shape[1] == 1 and g.arrays["input"].shape[1] == 1
    layer = edgeconv.Conv1D(weights=weights[:, 0], stride=(g.meta["stride"][1],),
                            dilation=(g.meta["dilation"][1],), **conv_kwargs(g))
    assert_exact(layer(g.arrays["input"][:, 0]), g.arrays["output"][:, 0], g.id)


def test_goldens_are_stamped_and_varied() -> None:
    goldens = [load(p) for p in GOLDEN_FILES]
    assert len(goldens) >= 30
    assert len(CONV1D_FILES) >= 3  # else test_conv1d_matches_... has no case and skips
    for g in goldens:
        stamp = g.meta["stamp"]
        assert stamp["tensorflow"] and stamp["numpy"] and stamp["script_version"], g.id
        assert stamp["op_resolver"] == "BUILTIN_REF", g.id
        assert g.arrays["input"].dtype == g.dtype == g.arrays["output"].dtype, g.id
        assert g.arrays["input"].shape[1:] == tuple(g.config["input_shape"]), g.id
    combos = {(g.config["op"], g.config["dtype"]) for g in goldens}
    assert combos == {(op, dt) for op in ("conv2d", "depthwise", "maxpool", "avgpool")
                      for dt in DTYPES}
    convs = [g for g in goldens if "weights" in g.arrays]
    assert {s for g in goldens for s in g.meta["stride"]} >= {1, 2, 3}
    assert {g.meta["padding"] for g in goldens} == {"same", "valid"}
    assert any(g.meta["dilation"] == [2, 2] for g in convs)
    assert any(g.meta.get("depth_multiplier", 1) > 1 for g in convs)
    assert {g.config["dtype"] for g in convs if g.meta.get("groups", 1) > 1} == set(DTYPES)
    assert {g.config["input_shape"][2] for g in convs} >= {3, 5, 7}
    assert {g.meta["fused_activation"] for g in convs} >= {"none", "relu", "relu6"}
    kernels = {tuple(g.arrays["weights"].shape[1:3]) for g in convs}
    assert any(kh == 1 < kw for kh, kw in kernels) and any(kw == 1 < kh for kh, kw in kernels)
    assert any(int(g.arrays["input_zero_point"]) not in (0, -1) for g in convs)
    for dt in DTYPES:
        assert {g.id for g in goldens} >= {f"conv2d_i{dt[3:]}_L2", f"dw_i{dt[3:]}_L4"}
        assert np.any(load(GOLDEN_DIR / f"conv2d_i{dt[3:]}_L2.npz").arrays["bias"]), dt


INT32_BIAS_16X8 = [p for p in GOLDEN_FILES if load(p).config.get("bias_type") == "int32"]


def test_int32_bias_16x8_goldens_select_their_own_kernel() -> None:
    """16x8 goldens with an int32 bias (Conv2D and DepthwiseConv2D) exist, the layer built
    from them takes TFLite's int32-accumulator kernel, and the same layer on the int64-bias
    kernel (bias widened to int64) differs from TFLite: the vectors tell the two apart."""
    assert {load(p).config["op"] for p in INT32_BIAS_16X8} == {"conv2d", "depthwise"}
    for path in INT32_BIAS_16X8:
        g = load(path)
        assert g.config["dtype"] == "int16" and g.arrays["bias"].dtype == np.int32, g.id
        layer = build_layer(g)
        assert layer.accumulator_dtype == np.int32 and layer.spec()["bias_dtype"] == "int32"
        wide = build_layer(Golden(g.id, g.meta, g.arrays | {
            "bias": g.arrays["bias"].astype(np.int64)}))
        assert wide.accumulator_dtype == np.int64 and "bias_dtype" not in wide.spec()
        assert np.any(wide(g.arrays["input"]) != g.arrays["output"]), g.id


@pytest.mark.parametrize("path", INT32_BIAS_16X8, ids=_ids(INT32_BIAS_16X8))
def test_int32_bias_16x8_direct_loop_matches_tflite(path: Path) -> None:
    """The reference loop nest (``method='direct'``) on the int32-bias goldens too."""
    g = load(path)
    layer = build_layer(g)
    assert_exact(layer.requantize(layer.accumulate(g.arrays["input"], method="direct")),
                 g.arrays["output"], g.id)


@pytest.mark.parametrize("dtype", DTYPES)
def test_goldens_saturate(dtype: str) -> None:
    """Many conv outputs clip at both type limits (not only via a fused ReLU)."""
    info = np.iinfo(DTYPES[dtype])
    heavy = 0
    for g in (load(p) for p in GOLDEN_FILES):
        if g.config["dtype"] != dtype or "weights" not in g.arrays:
            continue
        out = g.arrays["output"]
        at_max, at_min = np.mean(out == info.max), np.mean(out == info.min)
        heavy += at_max > 0.05 and at_min > 0.05 and int(g.arrays["output_zero_point"]) > info.min
    assert heavy >= 2, f"{dtype}: only {heavy} goldens saturate at both limits"


@pytest.mark.parametrize(("activation", "scale", "zp", "dtype", "expected"), [
    ("none", 0.1, 3, "int8", (-128, 127)),
    ("relu", 0.1, 3, "int8", (3, 127)),
    ("relu6", 0.05, -128, "int8", (-128, -8)),  # 6 / 0.05 = 120
    ("relu6", 0.01, 0, "int8", (0, 127)),  # 600 clamps to qmax
    ("relu_n1_to_1", 0.004, 0, "int16", (-250, 250)),
    ("relu", 0.001, 0, "int16", (0, 32767)),
])
def test_activation_range(activation: str, scale: float, zp: int, dtype: str,
                          expected: tuple[int, int]) -> None:
    assert activation_range(activation, DTYPES[dtype], np.float32(scale), zp) == expected


def test_tflite_quantize_rounds_half_away_from_zero() -> None:
    assert tflite_quantize(np.float32(0.5), 0, 1.25) == 3  # 2.5 -> 3
    assert tflite_quantize(np.float32(0.5), 0, -1.25) == -3  # -2.5 -> -3
    assert tflite_quantize(np.float32(0.5), 4, 0.7) == 5  # 1.4 -> 1
