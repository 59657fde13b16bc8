"""The layer sets: the benchmark layers L1-L7 (the one definition codegen, the firmware
demo, the target benchmark and the reference-model benchmark all use) and the seed's
layers (``seed_layers``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeconv.layers import Conv2D, DepthwiseConv2D
from edgeconv.layers._validate import dtype_range
from edgeconv.signal import SignalFilter

SEED = 2024


@dataclass(frozen=True)
class BenchSpec:
    """Float definition of one benchmark layer (weights in the integer layout: OHWI for
    Conv2D, 1HWC for DepthwiseConv2D)."""

    name: str
    description: str
    op: type[Conv2D] | type[DepthwiseConv2D]
    input_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    out_channels: int
    stride: int
    padding: str | int
    dtype: type[np.signedinteger]
    activation: str | None

    def weights_shape(self) -> tuple[int, ...]:
        kh, kw = self.kernel
        if self.op is DepthwiseConv2D:
            return (1, kh, kw, self.out_channels)
        return (self.out_channels, kh, kw, self.input_shape[2])


SPECS = (
    BenchSpec("L1", "32x32x3 conv 3x3 s1 same -> 16", Conv2D, (32, 32, 3), (3, 3), 16, 1,
              "same", np.int8, "relu"),
    BenchSpec("L2", "16x16x32 conv 3x3 s1 same -> 32", Conv2D, (16, 16, 32), (3, 3), 32, 1,
              "same", np.int8, "relu6"),
    BenchSpec("L3", "16x16x64 conv 1x1 -> 64", Conv2D, (16, 16, 64), (1, 1), 64, 1, "valid",
              np.int8, None),
    BenchSpec("L4", "16x16x64 depthwise 3x3 s1 same", DepthwiseConv2D, (16, 16, 64), (3, 3),
              64, 1, "same", np.int8, "relu"),
    BenchSpec("L5", "49x10x1 conv 10x4 s2 same -> 64", Conv2D, (49, 10, 1), (10, 4), 64, 2,
              "same", np.int8, "relu"),
    BenchSpec("L6", "L2 with int16 activations (16x8)", Conv2D, (16, 16, 32), (3, 3), 32, 1,
              "same", np.int16, "relu6"),
    BenchSpec("L7", "5x5x3 conv 3x3 s2 pad 1 -> 2", Conv2D, (5, 5, 3), (3, 3), 2, 2, 1,
              np.int8, None),
)


def float_params(spec: BenchSpec) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic float weights (fan-in scaled) and bias for ``spec``."""
    rng = np.random.default_rng([SEED, int(spec.name[1:])])
    shape = spec.weights_shape()
    fan_in = int(np.prod(shape[1:])) if spec.op is Conv2D else spec.kernel[0] * spec.kernel[1]
    weights = rng.normal(size=shape) / np.sqrt(fan_in)
    return weights, rng.normal(scale=0.1, size=spec.out_channels)


def _scales(spec: BenchSpec) -> tuple[float, int, float, int]:
    """Input floats span [-1, 1], outputs about [-4, 4]: ``(s_in, zp_in, s_out, zp_out)``."""
    if spec.dtype == np.int16:
        return 1 / 32768, 0, 4 / 32768, 0
    return 1 / 128, -1, 4 / 128, 3


def benchmark_layer(spec: BenchSpec) -> Conv2D | DepthwiseConv2D:
    """The quantized layer for ``spec`` (``name`` and ``input_shape`` set)."""
    weights, bias = float_params(spec)
    s_in, zp_in, s_out, zp_out = _scales(spec)
    return spec.op.from_float(weights, bias, input_scale=s_in, input_zero_point=zp_in,
                              output_scale=s_out, output_zero_point=zp_out,
                              activation=spec.activation, activation_dtype=spec.dtype,
                              stride=spec.stride, padding=spec.padding, name=spec.name,
                              input_shape=spec.input_shape)


def benchmark_layers() -> dict[str, Conv2D | DepthwiseConv2D]:
    """Layers L1-L7 by name, built with ``from_float`` from a fixed seed."""
    return {spec.name: benchmark_layer(spec) for spec in SPECS}


def benchmark_input(layer: Conv2D | DepthwiseConv2D, seed: int = 0,
                    batch: int | None = None) -> np.ndarray:
    """A deterministic random input over the full range of the layer's activation dtype
    (unbatched, or ``(batch, *input_shape)`` when ``batch`` is given)."""
    lo, hi = dtype_range(layer.activation_dtype)
    rng = np.random.default_rng(seed)
    shape = layer.input_shape if batch is None else (batch, *layer.input_shape)
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(layer.activation_dtype)


def seed_layers(*, with_bench: bool = True) -> list:
    """The seed's layers: the 1D filter w=(1,-1,2) in every mode and the 5x5x3 conv (L7),
    followed (``with_bench``) by the benchmark layers L1-L6."""
    w = np.array([1, -1, 2], dtype=np.int16)
    filters = [
        SignalFilter(w, kind="convolve", mode=mode, fmt="q15", input_length=5,
                            name=f"seed_conv1d_{mode}")
        for mode in ("full", "same", "valid")
    ]
    bench = benchmark_layers()
    rest = [layer for name, layer in bench.items() if name != "L7"] if with_bench else []
    return [*filters, bench["L7"], *rest]
