"""Layer configurations for the golden suite (tests/test_golden.py).

Deterministic: hand-picked edge cases plus configurations drawn from a seeded numpy RNG,
so one firmware build per target holds them all. Every config is a ``GoldenCase``: a
layer (unique C name), the strategy to force (None lets codegen choose, which includes
the Cortex-M fast paths), and inputs (one random, one at the dtype's extremes).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeconv import codegen
from edgeconv.backprop import (
    ConvBackward,
    DenseBackward,
    DenseTrainStep,
    FirTrainStep,
    LearningRate,
    PoolBackward,
    SGDUpdate,
    SignalBackward,
)
from edgeconv.codegen.context import op_of
from edgeconv.codegen.kernels import backward as backward_kernels
from edgeconv.codegen.kernels import generic, nnops
from edgeconv.layers import (
    Add,
    AvgPool2D,
    Concatenation,
    Conv1D,
    Conv2D,
    DepthwiseConv2D,
    Dequantize,
    FullyConnected,
    Logistic,
    MaxPool2D,
    Mean,
    Mul,
    Pad,
    Quantize,
    Requantize,
    Softmax,
)
from edgeconv.signal import SignalFilter
from edgeconv.signal2d import MatchTemplate, SignalFilter2D

SEED = 20261125
I32_MAX = (1 << 31) - 1


@dataclass(frozen=True)
class GoldenCase:
    """One layer of the golden firmware and how to drive it."""

    layer: Any
    strategy: str | None
    family: str

    @property
    def name(self) -> str:
        return self.layer.name

    def inputs(self) -> np.ndarray:
        """A batch of two inputs: uniform over the dtype, then all-min or all-max (float
        input: values around the quantization grid with exact ties, then huge ones)."""
        rng = np.random.default_rng(_stable_seed(self.name))
        shape = tuple(self.layer.input_shape)
        if np.dtype(self.layer.activation_dtype).kind == "f":
            return _float_inputs(rng, shape, float(self.layer.scale))
        info = np.iinfo(self.layer.activation_dtype)
        x = rng.integers(info.min, int(info.max) + 1, size=shape, dtype=np.int64)
        extreme = np.full(shape, info.min if rng.integers(2) else info.max, dtype=np.int64)
        return np.stack([x, extreme]).astype(self.layer.activation_dtype)

    def buffer_bytes(self, cpu: str = "generic") -> tuple[int, int, int]:
        """Input, output and scratch bytes of the layer as generated for ``cpu``."""
        item = np.dtype(self.layer.activation_dtype).itemsize
        out_item = np.dtype(getattr(self.layer, "output_dtype", None)
                            or self.layer.activation_dtype).itemsize
        plan = codegen.plan_layers([self.layer], strategy=self.strategy, cpu=cpu)[0].plan
        return (item * math.prod(self.layer.input_shape),
                out_item * math.prod(self.layer.output_shape), plan.scratch_bytes)


def _float_inputs(rng: np.random.Generator, shape: tuple[int, ...],
                  scale: float) -> np.ndarray:
    """float32 inputs of a QUANTIZE: half random around the int8/int16 grid, a quarter
    exact half-steps (ties of the rounding, in float32), the rest huge or tiny values;
    then a second input of extremes (+-1e30, +-3e9 * scale, 0, -0)."""
    n = math.prod(shape)
    s32 = np.float32(scale)
    x = (rng.normal(0, 200, n) * scale).astype(np.float32)
    ties = (rng.integers(-300, 300, n) + np.float32(0.5)).astype(np.float32) * s32
    x = np.where(rng.random(n) < 0.25, ties, x)
    x = np.where(rng.random(n) < 0.1, rng.choice([1e30, -1e30, 1e-30, -1e-30], n), x)
    extreme = rng.choice([1e30, -1e30, 3e9 * scale, -3e9 * scale, 0.0, -0.0, 1.5 * scale,
                          -2.5 * scale], n)
    return np.stack([x, extreme]).astype(np.float32).reshape((2, *shape))


def _stable_seed(name: str) -> int:
    return sum((i + 1) * ord(ch) for i, ch in enumerate(name)) + SEED


# -------------------------------------------------------------------- conv-like layers

def _quant(rng: np.random.Generator, n_out: int, taps: int, wide: bool,
           extreme: bool) -> dict[str, Any]:
    """Multipliers/shifts that keep typical outputs inside the range (or, when
    ``extreme``, the edges: 0, 1, INT32_MAX, shifts at both ends), bias, clamp."""
    if extreme:
        mult = rng.choice([0, 1, 1 << 30, I32_MAX, int(rng.integers(1 << 30, I32_MAX))],
                          size=n_out)
        shift = rng.choice([-31, -20, -1, 0, 1, 7] + ([] if wide else [15, 30]), size=n_out)
    else:
        # Typical |acc| ~ sqrt(taps) * 128 * 74 (uniform weights and inputs); aim the
        # outputs at ~ +-100 (int8) or +-10000 (16x8).
        acc = math.sqrt(taps) * 74 * (128 if not wide else 32768)
        scale = (10000 if wide else 100) / acc
        if rng.random() < 0.4:
            # A small multiplier and a right shift of 1..3: the final rounding step sees
            # many exact ties, positive and negative.
            shift = -rng.integers(1, 4, size=n_out)
            mult = np.minimum(scale * 2.0 ** (31 - shift) * rng.uniform(0.5, 2, n_out),
                              I32_MAX).astype(np.int64)
        else:
            mult = rng.integers(1 << 30, I32_MAX, size=n_out, endpoint=True)
            centre = int(math.floor(math.log2(scale)))
            shift = np.clip(centre + rng.integers(-1, 2, size=n_out), -31, 7 if wide else 30)
    quant: dict[str, Any] = dict(output_multiplier=np.asarray(mult, np.int32),
                                 output_shift=np.asarray(shift, np.int32))
    if rng.random() < 0.2:
        quant["bias"] = None
    elif wide:
        quant["bias"] = rng.integers(-(1 << 40), 1 << 40, size=n_out).astype(np.int64)
    elif extreme and rng.random() < 0.5:  # bias near the int32 edge: the sum wraps
        quant["bias"] = rng.choice([-(1 << 31), I32_MAX, I32_MAX - 5000], size=n_out)\
            .astype(np.int32)
    else:
        quant["bias"] = rng.integers(-taps * 128 * 64, taps * 128 * 64 + 1, size=n_out)\
            .astype(np.int32)
    if not wide:
        quant["input_zero_point"] = int(rng.integers(-128, 128))
        quant["output_zero_point"] = int(rng.integers(-128, 128))
        quant["rounding"] = str(rng.choice(["double", "single"]))
    else:
        quant["rounding"] = str(rng.choice(["double", "single"]))
    if rng.random() < 0.3:
        lo = int(rng.integers(-128, 0)) * (256 if wide else 1)
        quant["activation_min"] = lo
        quant["activation_max"] = lo + int(rng.integers(1, 128)) * (256 if wide else 1)
    return quant


def _padding(rng: np.random.Generator, extent: tuple[int, int], rank: int) -> Any:
    pick = rng.integers(3)
    if pick == 0:
        return "same"
    if pick == 1:
        return "valid"
    pads = tuple((int(rng.integers(e)), int(rng.integers(e))) for e in extent)
    return pads if rank == 2 else pads[1]


def _random_conv(rng: np.random.Generator, name: str, op: str, wide: bool,
                 extreme: bool, fast: bool = False) -> Any:
    """A random conv-like layer; ``fast`` draws the shapes the Cortex-M fast kernels take
    (no groups, depth multiplier 1, more channels, a quarter of them pointwise 1x1)."""
    dt = np.int16 if wide else np.int8
    kh = 1 if op == "conv1d" else int(rng.integers(1, 5))
    kw = int(rng.integers(1, 5))
    sh, sw = (int(s) for s in rng.integers(1, 4, size=2))
    dh, dw = (int(d) for d in rng.choice([1, 1, 2, 3], size=2))
    if op == "conv1d":
        sh = dh = 1
    pointwise = fast and op == "conv2d" and rng.random() < 0.25
    if pointwise:
        kh = kw = sh = sw = dh = dw = 1
    extent = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    padding = "valid" if pointwise else _padding(rng, extent, 1 if op == "conv1d" else 2)
    h = 1 if op == "conv1d" else int(rng.integers(extent[0], extent[0] + 6))
    w = int(rng.integers(extent[1], extent[1] + 6))
    common = dict(stride=(sh, sw) if op != "conv1d" else sw,
                  dilation=(dh, dw) if op != "conv1d" else dw, padding=padding,
                  activation_dtype=dt, name=name)
    if op == "depthwise":
        if fast:  # up to 33 channels: the Helium kernel's 16-channel groups and tails
            c = int(rng.choice([*range(1, 13), 16, 17, 20, 24, 31, 32, 33]))
        else:
            c = int(rng.integers(1, 6))
        dm = 1 if fast else int(rng.choice([1, 1, 2, 3]))
        n_out = c * dm
        weights = rng.integers(-128, 128, size=(1, kh, kw, n_out)).astype(np.int8)
        q = _quant(rng, n_out, kh * kw, wide, extreme)
        return DepthwiseConv2D(weights=weights, depth_multiplier=dm, input_shape=(h, w, c),
                               **common, **q)
    groups = 1 if fast else int(rng.choice([1, 1, 1, 2, 3]))
    if pointwise:
        per_group = int(rng.choice([3, 4, 8, 12, 16]))
    else:
        per_group = int(rng.choice([1, 2, 3, 4, 8, 12])) if fast else int(rng.integers(1, 4))
    c = groups * per_group
    n_out = groups * int(rng.integers(1, 10 if fast else 4))
    q = _quant(rng, n_out, kh * kw * per_group, wide, extreme)
    if op == "conv1d":
        weights = rng.integers(-128, 128, size=(n_out, kw, per_group)).astype(np.int8)
        return Conv1D(weights=weights, groups=groups, input_shape=(w, c), **common, **q)
    weights = rng.integers(-128, 128, size=(n_out, kh, kw, per_group)).astype(np.int8)
    return Conv2D(weights=weights, groups=groups, input_shape=(h, w, c), **common, **q)


def _random_pool(rng: np.random.Generator, name: str, op: str, wide: bool) -> Any:
    fh, fw = (int(k) for k in rng.integers(1, 5, size=2))
    sh, sw = (int(s) for s in rng.integers(1, 4, size=2))
    h, w = int(rng.integers(fh, fh + 5)), int(rng.integers(fw, fw + 5))
    dt = np.int16 if wide else np.int8
    kwargs: dict[str, Any] = {}
    if rng.random() < 0.3:
        info = np.iinfo(dt)
        lo = int(rng.integers(info.min, 0))
        kwargs = dict(activation_min=lo, activation_max=int(rng.integers(lo, info.max + 1)))
    cls = MaxPool2D if op == "max_pool" else AvgPool2D
    return cls(pool_size=(fh, fw), stride=(sh, sw), padding=_padding(rng, (fh, fw), 2),
               activation_dtype=dt, name=name, input_shape=(h, w, int(rng.integers(1, 6))),
               **kwargs)


# ---------------------------------------------------------------------- signal filters

_FMT_DTYPE = {"q7": np.int8, "q15": np.int16, "q31": np.int32}


def _signal_cases(rng: np.random.Generator) -> Iterator[GoldenCase]:
    """Every fmt x kind x mode, with default and overridden numerics options, and
    input/kernel lengths below, equal to and above each other."""
    index = 0
    lengths = [(9, 4), (4, 9), (6, 6), (1, 5), (7, 1), (16, 16)]
    options = [{}, {"rounding": "nearest"}, {"saturate": True}, {"saturate": False},
               {"accumulator": 16}, {"accumulator": 40}, {"accumulator": 128},
               {"stride": 3, "rounding": "nearest", "accumulator": 96}]
    for fmt, kind, mode in itertools.product(_FMT_DTYPE, ("convolve", "correlate"),
                                             ("full", "same", "valid")):
        for m, n in lengths[:4] if mode != "full" else lengths:
            opts = options[index % len(options)]
            info = np.iinfo(_FMT_DTYPE[fmt])
            kernel = rng.integers(info.min, int(info.max) + 1, size=n, dtype=np.int64)
            layer = SignalFilter(kernel.astype(_FMT_DTYPE[fmt]), kind=kind, mode=mode,
                                 fmt=fmt, input_length=m, name=f"sig{index}", **opts)
            index += 1
            yield GoldenCase(layer, None, "signal")


def _signal_edge_cases() -> Iterator[GoldenCase]:
    """Power-of-two taps with rounding 'nearest' (many exact ties) and full-scale q31
    taps with wide saturating accumulators (results beyond int64 after the shift)."""
    index = 0
    for fmt, kind in itertools.product(_FMT_DTYPE, ("convolve", "correlate")):
        bits = {"q7": 7, "q15": 15, "q31": 31}[fmt]
        taps = np.array([1 << (bits - 1), -(1 << (bits - 2)), 1 << (bits - 3)])
        yield GoldenCase(SignalFilter(taps.astype(_FMT_DTYPE[fmt]), kind=kind, mode="full",
                                      fmt=fmt, input_length=7, rounding="nearest",
                                      name=f"sedge{index}"), None, "signal")
        index += 1
    # shift=n instead of the fraction bits: "shift right by n, round to nearest"
    for fmt, taps, shift, opts in (
            ("q15", [8192, 16384, 8192], 14, {"rounding": "nearest"}),   # Q1.14 taps
            ("q7", [3, -5, 2], 3, {"rounding": "nearest", "kind": "correlate"}),
            ("q31", [1 << 20, -7], 0, {"mode": "same"}),                 # wraps
            ("q31", [-(1 << 31), (1 << 31) - 1], 40, {"accumulator": 128,
                                                    "saturate": True})):
        yield GoldenCase(SignalFilter(np.array(taps).astype(_FMT_DTYPE[fmt]), fmt=fmt,
                                      input_length=9, shift=shift, name=f"sedge{index}",
                                      **opts), None, "signal")
        index += 1
    for accumulator, mode in ((128, "full"), (96, "same"), (72, "valid")):
        for value in (-(1 << 31), (1 << 31) - 1):
            yield GoldenCase(SignalFilter(np.full(16, value, np.int32), fmt="q31",
                                          mode=mode, input_length=16, saturate=True,
                                          accumulator=accumulator, name=f"sedge{index}"),
                             None, "signal")
            index += 1


def _match_cases(rng: np.random.Generator) -> Iterator[GoldenCase]:
    """Template matching: ncc, ssd and sad in q7 and q15 with template widths that leave
    taps for one-by-one products (q7: tw % 4, q15: tw % 2) and ones that do not, a q15
    ncc whose cross term needs 64 bits, a template as large as the image and a one-row
    template (a pattern in a signal)."""
    shapes = [("ncc", "q7", (3, 5), (9, 14)), ("ncc", "q7", (4, 8), (10, 16)),
              ("ncc", "q15", (3, 3), (8, 11)), ("ncc", "q7", (5, 6), (5, 6)),
              ("ncc", "q7", (1, 7), (1, 24)), ("ssd", "q7", (3, 6), (7, 12)),
              ("sad", "q7", (4, 7), (8, 13)), ("sad", "q15", (3, 5), (6, 9)),
              ("ncc", "q15", (2, 4), (6, 10))]
    for index, (method, fmt, tshape, shape) in enumerate(shapes):
        info = np.iinfo(_FMT_DTYPE[fmt])
        limit = 3000 if index == len(shapes) - 1 else int(info.max)  # 32-bit cross term
        tpl = rng.integers(-limit, limit, size=tshape, endpoint=True)
        yield GoldenCase(MatchTemplate(tpl.astype(_FMT_DTYPE[fmt]), method=method,
                                       input_shape=shape, name=f"tm{index}"), None, "match")


def _signal2d_cases(rng: np.random.Generator) -> Iterator[GoldenCase]:
    """2-D filters: every mode x boundary in q7 and q15 with kernels the Cortex-M row
    kernel takes (sum|taps| small enough for int32 sums; odd and even kernel widths,
    output widths with and without a tail of < 4, kernels larger than the image), then
    the portable kernel's own cases: q31, q15 taps at full scale (64-bit sums), 16-, 40-
    and 128-bit accumulators, wrap instead of saturate, separable kernels."""
    index = 0

    def case(kernel: np.ndarray, fmt: str, shape: tuple[int, int], **opts: Any) -> GoldenCase:
        nonlocal index
        layer = SignalFilter2D(kernel.astype(_FMT_DTYPE[fmt]), fmt=fmt, input_shape=shape,
                               name=f"s2d{index}", **opts)
        index += 1
        return GoldenCase(layer, None, "signal2d")

    shapes = [((7, 9), (3, 3)), ((6, 11), (5, 4)), ((5, 6), (1, 2)), ((3, 4), (4, 5)),
              ((9, 8), (2, 5)), ((4, 13), (3, 1))]
    for i, (mode, boundary) in enumerate(itertools.product(("full", "same", "valid"),
                                                           ("fill", "symmetric", "wrap"))):
        for fmt in ("q7", "q15"):
            shape, ksize = shapes[(i + (fmt == "q15")) % len(shapes)]
            if mode == "valid" and not (shape[0] >= ksize[0] and shape[1] >= ksize[1]):
                shape = (ksize[0] + 2, ksize[1] + 6)
            info = np.iinfo(_FMT_DTYPE[fmt])
            limit = min(int(info.max), 60000 // (ksize[0] * ksize[1]))  # int32 sums
            kernel = rng.integers(-limit, limit + 1, size=ksize)
            yield case(kernel, fmt, shape, kind=("convolve", "correlate")[i % 2], mode=mode,
                       boundary=boundary, fillvalue=int(rng.integers(info.min, info.max + 1)),
                       rounding=("floor", "nearest")[(i // 2) % 2], separable=False)
    yield case(rng.integers(-100, 100, size=(4, 6)), "q7", (2, 3), mode="valid")  # h > x
    q31 = np.iinfo(np.int32)
    yield case(rng.integers(q31.min, q31.max, size=(3, 3), endpoint=True), "q31", (5, 7),
               mode="same", boundary="symmetric", rounding="nearest")
    yield case(rng.integers(q31.min, q31.max, size=(2, 3), endpoint=True), "q31", (4, 5),
               mode="full", saturate=True, accumulator=128)
    yield case(rng.integers(-32768, 32768, size=(3, 4)), "q15", (6, 6), mode="same",
               boundary="wrap", fillvalue=5)  # 64-bit sums: portable kernel
    yield case(rng.integers(-128, 128, size=(3, 3)), "q7", (5, 9), accumulator=16,
               boundary="symmetric", mode="same")
    yield case(rng.integers(-32768, 32768, size=(2, 2)), "q15", (5, 5), accumulator=40,
               saturate=False, boundary="fill", fillvalue=-32768)
    yield case(np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) * 128, "q15", (7, 10),
               mode="same", boundary="symmetric")  # separable (the demo's blur)
    yield case(np.outer([1, 2, 1], [1, 0, -1]) * 30, "q7", (6, 13), mode="same",
               boundary="symmetric", rounding="nearest", saturate=False)
    yield case(rng.integers(-3000, 3000, size=(3, 3)), "q15", (4, 17), mode="same",
               saturate=False)  # wrapping q15, two Helium blocks and a tail
    # shift=n instead of the fraction bits (Q1.14 taps, a gain, no shift at all)
    yield case(np.array([[4096, 8192, 4096], [8192, 16384, 8192], [4096, 8192, 4096]]),
               "q15", (5, 9), mode="same", boundary="symmetric", rounding="nearest",
               shift=16)
    yield case(np.array([[1, -2], [3, 1]]), "q7", (4, 6), rounding="nearest", shift=2)
    yield case(np.array([[7, -3]]), "q31", (3, 4), mode="valid", shift=0, saturate=True)


# ------------------------------------------------------------------------ backward

@dataclass(frozen=True)
class BackwardCase(GoldenCase):
    """A layer of edgeconv.backprop, driven by a batch of two inputs like every case.
    Gradient layers: a uniform input, then (by the name's seed) one at the dtype's
    extremes, all zeros (the all-zero gradient's format) or sparse small values (formats
    with frac_bits >= 0).  The SGD step: inputs in its
    working range (weights in their dtype, gradients with frac_bits in [-8, 24],
    velocities), then one at the extremes (huge shifts and saturation either way)."""

    def inputs(self) -> np.ndarray:
        layer = self.layer
        rng = np.random.default_rng(_stable_seed(self.name))
        if isinstance(layer, DenseTrainStep):
            return _dense_train_inputs(layer, rng)
        if not isinstance(layer, SGDUpdate):
            x = super().inputs()
            second = rng.integers(3)
            if second == 1:
                x[1] = 0
            elif second == 2:  # sparse values in [-2, 2]: small sums, exponents <= 0
                x[1] = np.where(rng.random(x[1].shape) < 0.1,
                                rng.integers(-2, 3, x[1].shape), 0).astype(x.dtype)
            return x
        n, info = layer.count, np.iinfo(layer.weight_dtype)
        w = rng.integers(info.min, int(info.max) + 1, n)
        g = rng.integers(-(1 << 15), 1 << 15, n)
        vel = rng.integers(-(1 << 22), 1 << 22, n)
        big = np.iinfo(np.int32)
        extremes = [np.concatenate([np.full(n, big.max), np.full(n, big.min), [-40],
                                    np.full(n, big.max)]),
                    np.concatenate([np.full(n, big.min), np.full(n, big.max), [big.max],
                                    np.full(n, big.min)])]
        rows = [np.concatenate([w, g, [rng.integers(-8, 25)], vel]),
                extremes[int(rng.integers(2))]]
        width = layer.input_shape[0]
        return np.asarray([r[:width] for r in rows], np.int64).astype(np.int32)


def _dense_train_inputs(layer: DenseTrainStep, rng: np.random.Generator) -> np.ndarray:
    """Two steps of a DenseTrainStep: parameters, velocities and learning rates in their
    working range with random features and labels; then one at the extremes (int16
    weights, int32 biases and velocities at their limits, features at -128/127, the
    largest learning rates: logits far beyond the target, saturating updates)."""
    o, k, b = layer.classes, layer.features, layer.batch
    n_par = o * k + o
    x = rng.integers(-128, 128, (b, k)).astype(np.int8)
    labels = rng.integers(0, o, b)
    state = np.concatenate([rng.integers(-3000, 3000, o * k), rng.integers(-1 << 20, 1 << 20, o)]
                           + ([rng.integers(-1 << 22, 1 << 22, n_par)]
                              if layer.momentum is not None else []))
    # learning rates that move weights and biases by up to a few hundred units
    lr_w = LearningRate(int(rng.integers(16384, 32768)), int(rng.integers(36, 44)))
    lr_b = LearningRate(20000, int(rng.integers(20, 28)))
    working = layer.pack(state.astype(np.int32), lr_w, lr_b, x, labels)
    big = np.iinfo(np.int32)
    sign = np.where(np.arange(n_par) % 2, 1, -1)
    ext = np.concatenate([np.where(np.arange(o * k) % 3, 32767, -32768),
                          np.where(np.arange(o) % 2, big.max, big.min)]
                         + ([np.where(sign > 0, big.max, big.min)]
                            if layer.momentum is not None else []))
    extreme = layer.pack(ext.astype(np.int32), LearningRate(32767, -31), LearningRate(32767, -31),
                         np.where(np.arange(b * k).reshape(b, k) % 2, 127, -128).astype(np.int8),
                         np.arange(b) % o)
    return np.stack([working, extreme])


def _backward_cases() -> Iterator[GoldenCase]:
    """Every backward kernel: the three parts of random conv-like layers (int8 and
    16x8, groups, depth multipliers, dilation, strides, every padding), max and average
    pool gradients (avg 'same' windows of several sizes: denominators > 1) and the SGD
    step with and without momentum, the FIR train step."""
    rng = np.random.default_rng(SEED + 9)
    for i, (op, wide) in enumerate([("conv2d", False), ("conv2d", True), ("depthwise", False),
                                    ("depthwise", True), ("conv1d", False),
                                    ("conv1d", True), ("conv2d", False)]):
        forward = _random_conv(rng, f"fw{i}", op, wide, extreme=False)
        for part in ("input", "weights", "bias"):
            if part == "bias" and (forward.bias is None or i % 2):
                continue
            yield BackwardCase(ConvBackward(forward, part=part, name=f"bw{i}{part[0]}"), None,
                               "backward")
    # Shaped for the DSP variants (groups 1): odd channel counts (pair padding, 2x2 block
    # tails), more output positions than one block of bwd_conv_weights_dsp, 16x8 (SMLALD),
    # one input channel (the 4x1 register block).
    w_rng = np.random.default_rng(SEED + 10)
    dsp_shaped = [
        Conv2D(weights=w_rng.integers(-128, 128, (5, 3, 3, 3)).astype(np.int8), padding="same",
               input_shape=(9, 8, 3), input_zero_point=-7, name="fwd_dsp0",
               output_multiplier=np.full(5, 1 << 30, np.int32),
               output_shift=np.full(5, -8, np.int32)),
        Conv2D(weights=w_rng.integers(-128, 128, (4, 2, 3, 6)).astype(np.int8), stride=(2, 1),
               dilation=(1, 2), padding=((1, 0), (2, 1)), input_shape=(7, 9, 6),
               activation_dtype=np.int16, name="fwd_dsp1",
               output_multiplier=np.full(4, 1 << 30, np.int32),
               output_shift=np.full(4, -8, np.int32)),
        Conv1D(weights=w_rng.integers(-128, 128, (3, 5, 1)).astype(np.int8), padding="same",
               input_shape=(40, 1), input_zero_point=5, name="fwd_dsp2",
               output_multiplier=np.full(3, 1 << 30, np.int32),
               output_shift=np.full(3, -8, np.int32))]
    # bwd_conv_input_dsp's unrolled dot products: 5 pairs (odd) with a block of four input
    # channels and a tail, and the largest unrolled 32 pairs (63 channels, one padding)
    dsp_shaped += [
        Conv2D(weights=w_rng.integers(-128, 128, (10, 2, 3, 5)).astype(np.int8),
               padding="same", input_shape=(4, 5, 5), input_zero_point=2, name="fwd_dsp3",
               output_multiplier=np.full(10, 1 << 30, np.int32),
               output_shift=np.full(10, -8, np.int32)),
        Conv2D(weights=w_rng.integers(-128, 128, (63, 2, 2, 4)).astype(np.int8), stride=2,
               padding="same", input_shape=(3, 4, 4), name="fwd_dsp4",
               output_multiplier=np.full(63, 1 << 30, np.int32),
               output_shift=np.full(63, -8, np.int32))]
    # bwd_conv_weights_small (out_c <= 2, out_c * in_c <= 8, int32 sums): L7's shape
    # with a zero point, and one output channel with a dilated tap and asymmetric padding
    dsp_shaped += [
        Conv2D(weights=w_rng.integers(-128, 128, (2, 3, 3, 3)).astype(np.int8), stride=2,
               padding=1, input_shape=(5, 5, 3), input_zero_point=-3, name="fwd_small0",
               output_multiplier=np.full(2, 1 << 30, np.int32),
               output_shift=np.full(2, -8, np.int32)),
        Conv2D(weights=w_rng.integers(-128, 128, (1, 2, 3, 4)).astype(np.int8),
               dilation=(2, 1), padding=((0, 1), (2, 1)), input_shape=(6, 7, 4),
               input_zero_point=9, name="fwd_small1",
               output_multiplier=np.full(1, 1 << 30, np.int32),
               output_shift=np.full(1, -8, np.int32)),
        # bwd_conv_input_dw_dsp (depthwise, multiplier 1, int8): 6 channels (one group of
        # four and two single ones), strides 2 and 1 with a dilated tap and odd padding; and
        # L4's 'same' 3x3 with 8 channels
        DepthwiseConv2D(weights=w_rng.integers(-128, 128, (1, 3, 2, 6)).astype(np.int8),
                        stride=(2, 1), dilation=(1, 2), padding=((1, 2), (0, 1)),
                        input_shape=(7, 6, 6), name="fwd_dw0",
                        output_multiplier=np.full(6, 1 << 30, np.int32),
                        output_shift=np.full(6, -8, np.int32)),
        DepthwiseConv2D(weights=w_rng.integers(-128, 128, (1, 3, 3, 8)).astype(np.int8),
                        padding="same", input_shape=(5, 4, 8), name="fwd_dw1",
                        output_multiplier=np.full(8, 1 << 30, np.int32),
                        output_shift=np.full(8, -8, np.int32))]
    for i, forward in enumerate(dsp_shaped):
        for part in ("input", "weights"):
            yield BackwardCase(ConvBackward(forward, part=part, name=f"bd{i}{part[0]}"), None,
                               "backward")
    pools = [MaxPool2D(pool_size=3, stride=2, padding="same", input_shape=(5, 6, 3)),
             MaxPool2D(pool_size=(2, 3), stride=1, padding=((1, 1), (0, 2)),
                       input_shape=(4, 4, 2), activation_dtype=np.int16),
             AvgPool2D(pool_size=3, stride=2, padding="same", input_shape=(6, 5, 2)),
             AvgPool2D(pool_size=(4, 3), stride=(3, 1), padding="same", input_shape=(7, 4, 2),
                       activation_dtype=np.int16),
             AvgPool2D(pool_size=2, input_shape=(4, 6, 3))]
    for i, pool in enumerate(pools):
        yield BackwardCase(PoolBackward(pool, name=f"bp{i}"), None, "backward")
    yield BackwardCase(SGDUpdate(9, lr=0.01, name="sgd0"), None, "backward")
    yield BackwardCase(SGDUpdate(9, lr=3e-5, momentum=29491, weight_dtype=np.int16,
                                 name="sgd1"), None, "backward")
    yield BackwardCase(SGDUpdate(5, lr=40.0, momentum=32767, velocity_frac_bits=4,
                                 name="sgd2"), None, "backward")
    # 1-D signal filters: both formats and kinds, every mode, strides, M < N and M > N
    # (the integer correlate 'full' layout's constant zeros).
    s_rng = np.random.default_rng(SEED + 11)
    for i, (fmt, kind, mode, (m, n), stride) in enumerate([
            ("q7", "convolve", "full", (9, 4), 1), ("q15", "correlate", "full", (4, 9), 2),
            ("q7", "correlate", "same", (7, 3), 1), ("q15", "convolve", "valid", (5, 8), 1),
            ("q15", "correlate", "full", (10, 3), 1), ("q7", "convolve", "same", (6, 6), 3)]):
        dt = np.int8 if fmt == "q7" else np.int16
        info = np.iinfo(dt)
        filt = SignalFilter(s_rng.integers(info.min, int(info.max) + 1, n).astype(dt),
                            kind=kind, mode=mode, fmt=fmt, input_length=m, stride=stride)
        yield BackwardCase(SignalBackward(filt, part=("input", "kernel")[i % 2],
                                          name=f"bs{i}"), None, "backward")
    # Full-range int16 inputs: outputs and errors saturate; the zero row: zero gradient.
    yield BackwardCase(FirTrainStep(5, 20, lr=0.5, name="fir0"), None, "backward")
    yield BackwardCase(FirTrainStep(1, 3, lr=1e-3, name="fir1"), None, "backward")
    # Fully connected layers as 1 x batch 1x1 convolutions: int8 with a zero point and a
    # bias, 16x8 (int64 sums: SMLALD), one input feature (the 4x1 register block) and a
    # batch past one block of bwd_conv_weights_dsp.
    f_rng = np.random.default_rng(SEED + 12)
    dense = [(FullyConnected(weights=f_rng.integers(-127, 128, (4, 7)).astype(np.int8),
                             bias=f_rng.integers(-1000, 1000, 4).astype(np.int32),
                             input_zero_point=-3, output_multiplier=1 << 30,
                             output_shift=-6), 5, ("input", "weights", "bias")),
             (FullyConnected(weights=f_rng.integers(-127, 128, (3, 10)).astype(np.int8),
                             bias=f_rng.integers(-1000, 1000, 3).astype(np.int64),
                             activation_dtype=np.int16, output_multiplier=1 << 30,
                             output_shift=-6), 3, ("input", "weights", "bias")),
             (FullyConnected(weights=f_rng.integers(-127, 128, (3, 1)).astype(np.int8),
                             output_multiplier=1 << 30, output_shift=-6), 37, ("weights",))]
    for i, (fc, batch, parts) in enumerate(dense):
        for part in parts:
            yield BackwardCase(DenseBackward(fc, part=part, batch=batch,
                                             name=f"bfc{i}{part[0]}"), None, "backward")
    # The classifier head's train step: plain SGD (int32 sums), momentum with a negative
    # velocity format, a batch past 257 (int64 sums), features not a multiple of 4.
    yield BackwardCase(DenseTrainStep(7, 3, 5, input_zero_point=-128, target=1 << 16,
                                      name="dts0"), None, "backward")
    yield BackwardCase(DenseTrainStep(6, 4, 3, input_zero_point=9, target=12345,
                                      momentum=29491, velocity_frac_bits=-6, name="dts1"),
                       None, "backward")
    yield BackwardCase(DenseTrainStep(3, 2, 300, input_zero_point=0, target=1 << 30,
                                      momentum=32767, velocity_frac_bits=5, name="dts2"),
                       None, "backward")


# ------------------------------------------------------------------------ edge cases

def _conv_edge_cases() -> Iterator[tuple[str, Callable[[str], Any]]]:
    """Hand-picked conv-like layers: (family, factory(name))."""
    rng = np.random.default_rng(SEED + 1)

    def w(*shape: int) -> np.ndarray:
        return rng.integers(-128, 128, size=shape).astype(np.int8)

    def per(n: int, value: int) -> np.ndarray:
        return np.full(n, value, np.int32)

    base = dict(output_multiplier=per(4, 1 << 30), output_shift=per(4, -10))
    yield "conv2d", lambda n: Conv2D(weights=w(4, 1, 7, 3), padding="same", name=n,
                                     input_shape=(3, 9, 3), **base)  # 1xN
    yield "conv2d", lambda n: Conv2D(weights=w(4, 7, 1, 3), padding="same", name=n,
                                     input_shape=(9, 3, 3), **base)  # Nx1
    yield "conv2d", lambda n: Conv2D(weights=w(4, 7, 7, 1), padding="valid", name=n,
                                     input_shape=(7, 7, 1), **base)  # kernel = image
    yield "conv2d", lambda n: Conv2D(weights=w(4, 5, 5, 2), stride=2, padding="same",
                                     name=n, input_shape=(8, 8, 2), **base)  # kernel > stride
    yield "conv2d", lambda n: Conv2D(weights=w(4, 2, 2, 1), stride=3, padding="valid",
                                     name=n, input_shape=(8, 8, 1), **base)  # stride > kernel
    yield "conv2d", lambda n: Conv2D(weights=w(4, 3, 3, 1), dilation=(2, 3),
                                     padding=((2, 0), (0, 3)), name=n, input_shape=(6, 7, 1),
                                     **base)  # dilation + asymmetric pads
    yield "conv2d", lambda n: Conv2D(weights=w(4, 1, 1, 5), name=n, input_shape=(3, 3, 5),
                                     input_zero_point=-128, output_zero_point=127, **base)
    yield "conv2d", lambda n: Conv2D(weights=w(6, 3, 3, 1), groups=3, padding="same",
                                     name=n, input_shape=(4, 4, 3),
                                     output_multiplier=per(6, I32_MAX),
                                     output_shift=per(6, 30))  # saturates everywhere
    yield "conv2d", lambda n: Conv2D(weights=w(4, 3, 3, 2), bias=per(4, I32_MAX), name=n,
                                     input_shape=(5, 5, 2), input_zero_point=100,
                                     output_multiplier=per(4, 1 << 30),
                                     output_shift=per(4, -31))  # int32 sum wraps
    yield "conv2d", lambda n: Conv2D(weights=w(4, 3, 3, 2), name=n, input_shape=(5, 5, 2),
                                     output_multiplier=per(4, 0), output_shift=per(4, 0),
                                     output_zero_point=-7)  # multiplier 0
    yield "conv2d", lambda n: Conv2D(weights=w(3, 3, 3, 3), padding="same", name=n,
                                     input_shape=(4, 5, 3), activation_min=0,
                                     activation_max=6, rounding="single",
                                     output_multiplier=per(3, 1 << 30),
                                     output_shift=per(3, -9))  # narrow clamp
    yield "conv2d16", lambda n: Conv2D(weights=w(4, 3, 3, 2), padding="same", name=n,
                                       input_shape=(4, 4, 2), activation_dtype=np.int16,
                                       bias=np.full(4, -(1 << 46) + (1 << 30), np.int64),
                                       output_multiplier=per(4, I32_MAX),
                                       output_shift=per(4, 7))  # 16x8 at its limits
    yield "conv2d16", lambda n: Conv2D(weights=w(2, 5, 1, 3), name=n, input_shape=(6, 2, 3),
                                       activation_dtype=np.int16, rounding="single",
                                       output_multiplier=per(2, 0x7FFF8000),
                                       output_shift=per(2, -10))  # reduced multiplier cap
    yield "conv2d16", lambda n: Conv2D(weights=w(3, 2, 2, 2), name=n, input_shape=(3, 3, 2),
                                       activation_dtype=np.int16,
                                       output_multiplier=per(3, 0x40008000),
                                       output_shift=per(3, -10))  # reduced multiplier tie
    yield "depthwise", lambda n: DepthwiseConv2D(weights=w(1, 3, 3, 3), depth_multiplier=3,
                                                 padding="same", name=n,
                                                 input_shape=(5, 4, 1),
                                                 output_multiplier=per(3, 1 << 30),
                                                 output_shift=per(3, -8))
    yield "depthwise", lambda n: DepthwiseConv2D(weights=w(1, 1, 5, 5), stride=(1, 2),
                                                 padding=((0, 0), (4, 1)), name=n,
                                                 input_shape=(2, 7, 5),
                                                 input_zero_point=-128,
                                                 output_multiplier=per(5, I32_MAX),
                                                 output_shift=per(5, -8))
    yield "depthwise16", lambda n: DepthwiseConv2D(weights=w(1, 3, 2, 4), depth_multiplier=2,
                                                   dilation=2, padding="same", name=n,
                                                   input_shape=(5, 5, 2),
                                                   activation_dtype=np.int16,
                                                   output_multiplier=per(4, 1 << 30),
                                                   output_shift=per(4, -6))
    yield "conv1d", lambda n: Conv1D(weights=w(3, 9, 2), padding="same", stride=2, name=n,
                                     input_shape=(11, 2), output_multiplier=per(3, 1 << 30),
                                     output_shift=per(3, -10))  # large 1-D kernel
    yield "conv1d16", lambda n: Conv1D(weights=w(4, 3, 1), groups=2, dilation=3,
                                       padding=(4, 0), name=n, input_shape=(8, 2),
                                       activation_dtype=np.int16,
                                       output_multiplier=per(4, 1 << 30),
                                       output_shift=per(4, -4))


def _int32_bias_quant(rng: np.random.Generator, n_out: int, taps: int, *,
                      rounding: str = "double") -> dict[str, Any]:
    """16x8 requantization with an int32 bias (TFLite's int32-bias kernel): outputs aimed
    at +-10000 from full-range int16 inputs."""
    acc = math.sqrt(taps) * 74 * 32768
    centre = int(math.floor(math.log2(10000 / acc)))
    shifts = centre + rng.integers(-1, 2, size=n_out)
    return dict(bias=rng.integers(-taps * 32768 * 64, taps * 32768 * 64 + 1, size=n_out)
                .astype(np.int32),
                output_multiplier=rng.integers(1 << 30, I32_MAX, size=n_out, endpoint=True)
                .astype(np.int32),
                output_shift=shifts.astype(np.int32), rounding=rounding,
                activation_dtype=np.int16)


def _int32_bias_cases() -> Iterator[tuple[str, str | None, Callable[[str], Any]]]:
    """16x8 layers with an int32 bias (issue 11, item 10): (family, strategy, factory).
    The generic kernels (each forced, and automatic), then shapes the Cortex-M fast
    kernels take (automatic); an int32 sum that wraps; left shifts up to 30."""
    rng = np.random.default_rng(SEED + 3)

    def w(*shape: int) -> np.ndarray:
        return rng.integers(-128, 128, size=shape).astype(np.int8)

    generic_cases: list[tuple[str, Callable[[str], Any]]] = [
        ("conv2d16", lambda n: Conv2D(weights=w(5, 3, 3, 2), padding="same", name=n,
                                      input_shape=(5, 6, 2), **_int32_bias_quant(rng, 5, 18))),
        ("conv2d16", lambda n: Conv2D(weights=w(4, 3, 2, 2), groups=2, name=n,
                                      input_shape=(4, 5, 4), activation_min=-3000,
                                      activation_max=9000,
                                      **_int32_bias_quant(rng, 4, 12, rounding="single"))),
        ("depthwise16", lambda n: DepthwiseConv2D(
            weights=w(1, 3, 3, 6), depth_multiplier=2, stride=2, name=n,
            input_shape=(5, 5, 3), **_int32_bias_quant(rng, 6, 9))),
        ("conv1d16", lambda n: Conv1D(weights=w(3, 5, 2), padding="same", name=n,
                                      input_shape=(9, 2),
                                      **_int32_bias_quant(rng, 3, 10, rounding="single"))),
        # 576 taps of 32767 * 127: the int32 sum wraps (C sums in int64 and wraps)
        ("conv2d16", lambda n: Conv2D(weights=np.full((2, 3, 3, 64), 127, np.int8), name=n,
                                      input_shape=(3, 3, 64),
                                      **_int32_bias_quant(rng, 2, 576) | {
                                          "bias": np.array([1 << 20, I32_MAX], np.int32)})),
        # left shifts (the int32 path allows up to 30; the product wraps as in C)
        ("conv2d16", lambda n: Conv2D(weights=w(3, 1, 2, 2), name=n, input_shape=(3, 3, 2),
                                      **_int32_bias_quant(rng, 3, 4) | {
                                          "output_shift": np.array([1, 12, 30], np.int32),
                                          "output_multiplier": np.array(
                                              [1 << 30, 3, 1], np.int32)})),
    ]
    for family, make in generic_cases:
        for strategy in (*_FORCED, None):
            yield family, strategy, make
    fast_cases: list[tuple[str, Callable[[str], Any]]] = [
        ("conv2d16", lambda n: Conv2D(weights=w(8, 3, 3, 4), padding="same", name=n,
                                      input_shape=(6, 6, 4), **_int32_bias_quant(rng, 8, 36))),
        ("conv2d16", lambda n: Conv2D(weights=w(6, 1, 1, 16), name=n, input_shape=(4, 4, 16),
                                      **_int32_bias_quant(rng, 6, 16, rounding="single"))),
        ("conv2d16", lambda n: Conv2D(weights=w(7, 2, 3, 3), stride=2, padding="same", name=n,
                                      input_shape=(7, 6, 3), activation_min=0,
                                      **_int32_bias_quant(rng, 7, 18))),
        ("depthwise16", lambda n: DepthwiseConv2D(
            weights=w(1, 3, 3, 20), padding="same", name=n, input_shape=(5, 5, 20),
            **_int32_bias_quant(rng, 20, 9))),
        ("depthwise16", lambda n: DepthwiseConv2D(
            weights=w(1, 3, 3, 17), name=n, input_shape=(4, 5, 17),
            **_int32_bias_quant(rng, 17, 9, rounding="single"))),
        # small multipliers with left shifts 1..3 (the left-shift path of the fast kernels)
        ("depthwise16", lambda n: DepthwiseConv2D(
            weights=w(1, 2, 2, 5), padding="same", name=n, input_shape=(4, 4, 5),
            **_int32_bias_quant(rng, 5, 4) | {
                "output_shift": rng.integers(1, 4, size=5).astype(np.int32),
                "output_multiplier": rng.integers(1 << 14, 1 << 16, size=5).astype(np.int32)})),
        ("conv2d16", lambda n: Conv2D(
            weights=w(5, 2, 2, 3), name=n, input_shape=(4, 4, 3),
            **_int32_bias_quant(rng, 5, 12) | {
                "output_shift": rng.integers(1, 4, size=5).astype(np.int32),
                "output_multiplier": rng.integers(1 << 14, 1 << 16, size=5).astype(np.int32)})),
    ]
    for family, make in fast_cases:
        yield family, None, make


def _pool_edge_cases() -> Iterator[tuple[str, Callable[[str], Any]]]:
    yield "pool", lambda n: MaxPool2D(pool_size=(3, 3), stride=1, padding="same", name=n,
                                      input_shape=(1, 1, 3))  # window > image
    yield "pool", lambda n: AvgPool2D(pool_size=(4, 4), stride=(3, 3), padding="same",
                                      name=n, input_shape=(5, 5, 2))
    yield "pool", lambda n: AvgPool2D(pool_size=(1, 1), stride=(2, 2), name=n,
                                      input_shape=(4, 5, 3), activation_min=-5,
                                      activation_max=5)
    yield "pool16", lambda n: AvgPool2D(pool_size=(2, 5), padding=((1, 1), (0, 4)), name=n,
                                        input_shape=(3, 6, 1), activation_dtype=np.int16)
    yield "pool16", lambda n: MaxPool2D(pool_size=(1, 4), stride=(1, 3), name=n,
                                        input_shape=(2, 9, 2), activation_dtype=np.int16)


# ------------------------------------------------------------------ whole-model ops

def _fc(rng: np.random.Generator, name: str, n_out: int, k: int, *, wide: bool = False,
        **kwargs: Any) -> FullyConnected:
    w = rng.integers(-128, 128, size=(n_out, k)).astype(np.int8)
    acc = math.sqrt(k) * 74 * (32768 if wide else 128)
    shift = int(math.floor(math.log2((10000 if wide else 100) / acc)))
    params: dict[str, Any] = dict(
        output_multiplier=rng.integers(1 << 30, I32_MAX, size=n_out).astype(np.int32),
        output_shift=np.full(n_out, shift, np.int32),
        bias=(rng.integers(-(1 << 24), 1 << 24, size=n_out).astype(np.int64) if wide
              else rng.integers(-20000, 20000, size=n_out).astype(np.int32)))
    if not wide:
        params.update(input_zero_point=int(rng.integers(-128, 128)),
                      output_zero_point=int(rng.integers(-128, 128)))
    params.update(kwargs)
    return FullyConnected(weights=w, activation_dtype=np.int16 if wide else np.int8,
                          name=name, input_shape=(k,), **params)


def _nn_cases() -> Iterator[tuple[str, Callable[[str], Any]]]:
    """The whole-model ops (kernels in edgeconv.codegen.kernels.nnops): (family,
    factory(name)), each op and dtype with its variants."""
    rng = np.random.default_rng(SEED + 2)
    i8, i16 = np.int8, np.int16
    # FULLY_CONNECTED: per-tensor, per-channel, every rounding, a wrapping int32 sum, 16x8
    yield "fc", lambda n: _fc(rng, n, 5, 13)
    yield "fc", lambda n: _fc(rng, n, 9, 32)  # K % 4 == 0: the DSP 1x1 conv path on M4
    yield "fc", lambda n: _fc(rng, n, 3, 40, rounding="double", activation_min=-20,
                              activation_max=90, output_multiplier=1 << 30,
                              output_shift=-9)  # per-tensor, clamp
    yield "fc", lambda n: _fc(rng, n, 4, 7, bias=np.full(4, I32_MAX - 100, np.int32),
                              output_shift=np.full(4, -24, np.int32))  # sum wraps int32
    yield "fc16", lambda n: _fc(rng, n, 6, 9, wide=True)
    yield "fc16", lambda n: _fc(rng, n, 3, 17, wide=True, rounding="int64")
    yield "fc16", lambda n: _fc(rng, n, 2, 5, wide=True, bias=np.full(2, -(1 << 46), np.int64),
                                output_multiplier=np.full(2, I32_MAX, np.int32),
                                output_shift=np.full(2, 7, np.int32))  # 16x8 limits
    # ADD / MUL: two fed operands, broadcasting (both ways), a folded constant, 16x8
    q8 = dict(input1_scale=0.05, input1_zero_point=-3, input2_scale=0.11,
              input2_zero_point=7, output_scale=0.09, output_zero_point=-10)
    q16 = dict(input1_scale=0.0004, input1_zero_point=0, input2_scale=0.0007,
               input2_zero_point=0, output_scale=0.001, output_zero_point=0,
               activation_dtype=i16)
    yield "add", lambda n: Add.from_quantization(**q8, name=n, input1_shape=(4, 5, 3),
                                                 input2_shape=(4, 5, 3))
    yield "add", lambda n: Add.from_quantization(**q8, activation="RELU6", name=n,
                                                 input1_shape=(3,), input2_shape=(2, 4, 3))
    yield "add", lambda n: Add.from_quantization(
        **q8, rounding="single", name=n, input1_shape=(3, 4, 2),
        constant2=rng.integers(-128, 128, size=(1, 4, 1)).astype(i8))
    yield "add16", lambda n: Add.from_quantization(**q16, name=n, input1_shape=(2, 3, 1),
                                                   input2_shape=(1, 3, 5))
    yield "mul", lambda n: Mul.from_quantization(**q8, name=n, input1_shape=(2, 3, 4),
                                                 input2_shape=(2, 1, 4))
    yield "mul", lambda n: Mul.from_quantization(
        **q8, activation="RELU", name=n, constant1=rng.integers(-128, 128, 4).astype(i8),
        input2_shape=(3, 2, 4))
    yield "mul", lambda n: Mul.from_quantization(
        **{**q8, "output_scale": 0.0004}, name=n, input1_shape=(2, 1, 3, 1, 2),
        input2_shape=(1, 2, 1, 2, 1))  # 5-D, both broadcast; saturates
    yield "mul16", lambda n: Mul.from_quantization(**q16, name=n, input1_shape=(3, 4),
                                                   input2_shape=(3, 4))
    # MEAN: global average pooling, keep_dims, other axes, 16x8
    m8 = dict(input_scale=0.07, input_zero_point=5, output_scale=0.05, output_zero_point=-4)
    yield "mean", lambda n: Mean.from_quantization(**m8, axis=(0, 1), name=n,
                                                   input_shape=(4, 5, 3))
    yield "mean", lambda n: Mean.from_quantization(**m8, axis=(-2,), keep_dims=True,
                                                   rounding="single", name=n,
                                                   input_shape=(3, 4, 2))
    yield "mean", lambda n: Mean.from_quantization(**{**m8, "output_scale": 0.01},
                                                   axis=(0, 2), name=n,
                                                   input_shape=(2, 3, 7))  # saturates
    yield "mean16", lambda n: Mean.from_quantization(
        input_scale=0.001, input_zero_point=0, output_scale=0.0007, output_zero_point=0,
        activation_dtype=i16, axis=(0, 1), keep_dims=True, name=n, input_shape=(3, 3, 4))
    # SOFTMAX: int8 -> int8 (two betas), int8 -> int16, int16
    yield "softmax", lambda n: Softmax.from_quantization(
        input_scale=0.1, input_zero_point=3, output_scale=1 / 256, output_zero_point=-128,
        name=n, input_shape=(3, 10))
    yield "softmax", lambda n: Softmax.from_quantization(
        input_scale=0.02, output_scale=1 / 256, output_zero_point=-128, beta=0.7, name=n,
        input_shape=(1, 37))
    yield "softmax", lambda n: Softmax.from_quantization(
        input_scale=0.5, output_scale=1 / 65536, output_zero_point=-32768,
        output_dtype=i16, name=n, input_shape=(2, 12))
    yield "softmax16", lambda n: Softmax.from_quantization(
        input_scale=0.0005, output_scale=1 / 32768, output_zero_point=0,
        activation_dtype=i16, name=n, input_shape=(2, 9))
    yield "softmax16", lambda n: Softmax.from_quantization(
        input_scale=0.00004, output_scale=1 / 32768, output_zero_point=0, beta=2.0,
        activation_dtype=i16, name=n, input_shape=(20,))
    # LOGISTIC: int8 tables, int16 general and power-of-two input scale
    yield "logistic", lambda n: Logistic.from_quantization(
        input_scale=0.05, input_zero_point=3, output_scale=1 / 256, output_zero_point=-128,
        name=n, input_shape=(3, 7))
    yield "logistic16", lambda n: Logistic.from_quantization(
        input_scale=0.0003, input_zero_point=0, output_scale=1 / 32768, output_zero_point=0,
        activation_dtype=i16, name=n, input_shape=(40,))
    yield "logistic16", lambda n: Logistic.from_quantization(
        input_scale=2.0**-12, input_zero_point=0, output_scale=1 / 32768, output_zero_point=0,
        activation_dtype=i16, name=n, input_shape=(5, 6))
    # PAD, CONCATENATION, QUANTIZE (int -> int)
    yield "movement", lambda n: Pad(paddings=((1, 0), (2, 1), (0, 0)), pad_value=-7, name=n,
                                    input_shape=(3, 4, 2))
    yield "movement", lambda n: Pad(paddings=((0, 0), (1, 2), (0, 3)), activation_dtype=i16,
                                    name=n, input_shape=(2, 3, 2))
    yield "movement", lambda n: Concatenation(input_shapes=((2, 3, 2), (2, 3, 1)), name=n)
    yield "movement", lambda n: Concatenation(input_shapes=((1, 4), (3, 4), (2, 4)), axis=0,
                                              activation_dtype=i16, name=n)
    yield "movement", lambda n: Concatenation(input_shapes=((2, 2, 3),), axis=1, name=n)
    yield "requantize", lambda n: Requantize.from_quantization(
        input_scale=0.05, input_zero_point=10, output_scale=0.031, output_zero_point=-20,
        name=n, input_shape=(4, 6))
    yield "requantize", lambda n: Requantize.from_quantization(
        input_scale=0.05, input_zero_point=-3, output_scale=0.0004, output_zero_point=0,
        output_dtype=i16, name=n, input_shape=(17,))
    yield "requantize", lambda n: Requantize.from_quantization(
        input_scale=0.00005, input_zero_point=0, output_scale=0.02, output_zero_point=5,
        activation_dtype=i16, output_dtype=i8, name=n, input_shape=(3, 5))
    # QUANTIZE float -> int, DEQUANTIZE int -> float
    yield "float", lambda n: Quantize(scale=0.0235, zero_point=-5, name=n,
                                      input_shape=(4, 8))
    yield "float", lambda n: Quantize(scale=0.00031, output_dtype=i16, name=n,
                                      input_shape=(19,))
    yield "float", lambda n: Dequantize(scale=0.0235, zero_point=-5, name=n,
                                        input_shape=(4, 8))
    yield "float", lambda n: Dequantize(scale=0.00031, activation_dtype=i16, name=n,
                                        input_shape=(19,))


def representative_layers() -> list:
    """Every template and shared helper: each op, int8 and 16x8, both roundings, an
    accumulator that wraps, 1-D, pools, signal filters narrow and 128-bit, saturating
    and wrapping, 2-D filters (the row kernel with and without blocks of four, the
    portable one with 64- and 128-bit sums), the whole-model ops and the backward layers
    of edgeconv.backprop."""
    rng = np.random.default_rng(7)

    def q(n: int, shift: int = -8) -> dict:
        return dict(output_multiplier=np.full(n, 1 << 30, np.int32),
                    output_shift=np.full(n, shift, np.int32))

    w = rng.integers(-128, 128, size=(4, 3, 3, 2)).astype(np.int8)
    dw = rng.integers(-128, 128, size=(1, 3, 3, 4)).astype(np.int8)
    layers = _representative_forward(rng, w, dw, q)
    c8, c8wrap, c16, dw8, c1d, mp, ap = (layers[i] for i in (0, 1, 2, 4, 6, 7, 8))
    backward = [ConvBackward(c8, part="input", name="bc8i"),
                ConvBackward(c8, part="weights", name="bc8w"),
                ConvBackward(c8wrap, part="bias", name="bc8b")] + \
        [ConvBackward(c16, part=p, name=f"bc16{p[0]}") for p in ("input", "weights", "bias")] + \
        [ConvBackward(dw8, part="input", name="bdw8i"),
         ConvBackward(dw8, part="weights", name="bdw8w"),
         ConvBackward(c1d, part="weights", name="bc1dw"),
         ConvBackward(Conv2D(weights=w, activation_dtype=np.int16, input_shape=(4, 5, 2),
                             **q(4)), part="weights", name="bc16g1w"),  # int64: SMLALD
         ConvBackward(Conv2D(weights=w[:2], stride=2, padding=1, input_shape=(5, 5, 2),
                             input_zero_point=-3, **q(2)), part="weights",
                      name="bc8sw"),  # bwd_conv_weights_small
         ConvBackward(DepthwiseConv2D(weights=dw, padding="same", input_shape=(4, 4, 4),
                                      **q(4)), part="input",
                      name="bdw8m1i"),  # bwd_conv_input_dw_dsp on DSP CPUs
         PoolBackward(mp, name="bmp"), PoolBackward(ap, name="bap"),
         SGDUpdate(6, lr=0.01, name="bsgd"),
         SGDUpdate(6, lr=1e-4, momentum=29491, weight_dtype=np.int16, name="bsgdm"),
         FirTrainStep(4, 12, lr=0.5, name="bfir"),
         DenseTrainStep(5, 3, 4, input_zero_point=-128, target=1 << 18, momentum=29491,
                        velocity_frac_bits=-8, name="bdts"),
         SignalBackward(layers[9], part="input", name="bsq7i"),
         SignalBackward(layers[10], part="kernel", name="bsq15k")]
    return layers + backward


def _representative_forward(rng: np.random.Generator, w: np.ndarray, dw: np.ndarray,
                            q: Callable[..., dict]) -> list:
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
        SignalFilter2D(np.array([[3, -5, 7], [1, 2, -9]], np.int8), fmt="q7", mode="same",
                       boundary="symmetric", input_shape=(5, 7), name="s2q7"),
        SignalFilter2D(np.array([[900, -2000], [30, 7], [-1, 1500]], np.int16),
                       kind="correlate", fmt="q15", boundary="wrap", rounding="nearest",
                       saturate=False, accumulator=24, input_shape=(4, 2), name="s2q15"),
        SignalFilter2D(np.full((2, 2), 30000, np.int16), fmt="q15", input_shape=(3, 3),
                       name="s2q15w"),
        SignalFilter2D(np.array([[1 << 30, -5]], np.int32), fmt="q31", accumulator=128,
                       saturate=True, input_shape=(3, 4), name="s2q31"),
        # the whole-model ops: every nnops template variant (int8/16x8, fed and constant
        # operands, int8 -> int16 softmax, float quantize/dequantize)
        *(make(f"rnn{i}") for i, (_, make) in enumerate(_nn_cases())),
    ]


# ------------------------------------------------------------------------------ build

_CONV_OPS = ("conv2d", "depthwise", "conv1d")
_FORCED = ("direct", "im2col")


def golden_cases(n_random: int = 150, n_fast: int = 120) -> list[GoldenCase]:
    """All golden cases: edge cases (each forced to every strategy and once automatic),
    ``n_random`` random conv-like layers (forced to every strategy, half also
    automatic), ``n_fast`` automatic ones shaped for the Cortex-M fast kernels, random
    pools, and the signal filters."""
    rng = np.random.default_rng(SEED)
    cases: list[GoldenCase] = []
    for i, (family, make) in enumerate(_conv_edge_cases()):
        for tag, strategy in (("d", "direct"), ("i", "im2col"), ("a", None)):
            cases.append(GoldenCase(make(f"edge{i}_{tag}"), strategy, family))
    for i, (family, make) in enumerate(_pool_edge_cases()):
        cases.append(GoldenCase(make(f"pedge{i}"), None, family))
    for i in range(n_random):
        op = _CONV_OPS[i % len(_CONV_OPS)]
        wide = i % 4 == 3
        extreme = i % 5 == 4
        seed = int(rng.integers(1 << 62))
        strategies = list(zip(("d", "i", "a"), (*_FORCED, None), strict=True))
        # Every op gets automatic cases too (i // 3 walks independently of the op).
        for tag, strategy in strategies if (i // 3) % 2 == 0 else strategies[:2]:
            layer = _random_conv(np.random.default_rng(seed), f"rc{i}_{tag}", op, wide, extreme)
            cases.append(GoldenCase(layer, strategy, op + ("16" if wide else "")))
    for i in range(n_fast):
        op = ("conv2d", "depthwise")[i % 2]
        wide = i % 6 >= 4
        layer = _random_conv(rng, f"fc{i}", op, wide, extreme=i % 7 == 6, fast=True)
        cases.append(GoldenCase(layer, None, op + ("16" if wide else "")))
    for i in range(60):
        op = ("max_pool", "avg_pool")[i % 2]
        wide = i % 3 == 2
        cases.append(GoldenCase(_random_pool(rng, f"rp{i}", op, wide), None,
                                "pool" + ("16" if wide else "")))
    cases.extend(_signal_cases(rng))
    cases.extend(_signal_edge_cases())
    cases.extend(_signal2d_cases(np.random.default_rng(SEED + 2)))
    cases.extend(_match_cases(np.random.default_rng(SEED + 3)))
    for i, (family, make) in enumerate(_nn_cases()):
        cases.append(GoldenCase(make(f"nn{i}"), None, family))
    cases.extend(_backward_cases())
    for i, (family, strategy, make) in enumerate(_int32_bias_cases()):
        cases.append(GoldenCase(make(f"b32_{i}"), strategy, family))
    return cases


def uses_fast_kernel(case: GoldenCase, cpu: str) -> bool:
    """True when codegen gives ``case`` one of ``cpu``'s fast kernels (not a generic
    kernel, not a backward one)."""
    planned = codegen.plan_layers([case.layer], strategy=case.strategy, cpu=cpu)[0]
    return planned.plan.kernel not in generic.KERNELS \
        and planned.plan.kernel not in backward_kernels.KERNELS


def uses_nn_kernel(case: GoldenCase) -> bool:
    """True for the whole-model ops (kernels of edgeconv.codegen.kernels.nnops)."""
    return op_of(case.layer) in nnops.OPS


CONV_FAMILIES = ("conv2d", "conv2d16", "depthwise", "depthwise16")


def select_for(cases: list[GoldenCase], ram_bytes: int, cpu: str,
               limit: int, *, compact: bool = False) -> list[GoldenCase]:
    """A subset for a small target: cases whose input, output and scratch each fit a
    third of ``ram_bytes`` (the harness sizes each buffer for the largest layer). Every
    case that runs one of ``cpu``'s fast kernels or a whole-model op's kernel is in, and
    every backward case (each backward kernel then runs on every board) and every
    template-matching case (its portable kernel on the boards without DSP); ``limit`` minus
    the backward cases more are spread evenly over the rest so every family stays
    represented (the total, and so the flash image, stays as without the backward cases).
    ``compact`` (a board with little flash, the micro:bit's 256 KB): only the conv and
    depthwise cases of the fast kernels are certain to be in, ``limit`` more spread over
    every other case."""
    fitting = [c for c in cases if max(c.buffer_bytes(cpu)) * 3 <= ram_bytes]
    if compact:
        fast = [c for c in fitting if c.family in CONV_FAMILIES and uses_fast_kernel(c, cpu)]
        rest = [c for c in fitting if c not in fast]
        step = max(len(rest) / limit, 1)
        return fast + [rest[int(i * step)] for i in range(min(limit, len(rest)))]
    fast = [c for c in fitting if uses_fast_kernel(c, cpu) or uses_nn_kernel(c)
            or c.family == "match"]  # its portable kernel too (M0, M3 boards)
    back = [c for c in fitting if c.family == "backward"]
    rest = [c for c in fitting if c not in fast and c not in back]
    limit = max(limit - len(back), 0)
    if limit == 0:
        rest = []
    elif len(rest) > limit:
        step = len(rest) / limit
        rest = [rest[int(i * step)] for i in range(limit)]
    return fast + back + rest
