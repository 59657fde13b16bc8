"""Instruction counts of the whole-model ops' kernels (edgeconv.codegen.kernels.nnops) on
the fixture models' layers, one per op and input shape, on a target (default
qemu:mps2-an386), each output checked bit-exact against the reference; plus the
autoencoder's first FC written as a 1x1 Conv2D for comparison.

    python scripts/bench_nnops.py [TARGET]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import edgeconv.targets
from edgeconv.layers import Conv2D
from edgeconv.model import Model

MODELS = Path(__file__).resolve().parent.parent / "tests" / "models"
STEMS = ("fc_autoencoder", "ds_cnn", "resnet8", "misc_ops", "small_cnn_float_io",
         "concat_requantize")
CONV_LIKE = ("Conv2D", "DepthwiseConv2D", "MaxPool2D", "AvgPool2D")


def picks() -> list[tuple[str, object]]:
    """(model stem, layer) for each distinct non-conv op and input shape."""
    out = []
    for m, stem in enumerate(STEMS):
        seen = set()
        for node in Model.from_tflite(MODELS / f"{stem}.tflite").nodes:
            layer = node.layer
            if layer is None or type(layer).__name__ in CONV_LIKE:
                continue
            key = (type(layer).__name__, tuple(layer.input_shape))
            if key not in seen:
                seen.add(key)
                layer.name = f"m{m}_{layer.name}"[:31]
                out.append((stem, layer))
    return out


def main(spec: str) -> None:
    chosen = picks()
    fc = chosen[0][1]
    conv = Conv2D(weights=fc.weights.reshape(fc.out_channels, 1, 1, fc.in_features),
                  bias=fc.bias, output_multiplier=fc.output_multiplier,
                  output_shift=fc.output_shift, input_zero_point=fc.input_zero_point,
                  output_zero_point=fc.output_zero_point, activation_min=fc.activation_min,
                  activation_max=fc.activation_max, rounding="single", name="fc_as_conv1x1",
                  input_shape=(1, 1, fc.in_features))
    chosen.append(("fc_autoencoder", conv))
    rng = np.random.default_rng(0)
    with edgeconv.targets.open(spec, [layer for _, layer in chosen]) as session:
        for stem, layer in chosen:
            shape, dt = tuple(layer.input_shape), np.dtype(layer.activation_dtype)
            if dt.kind == "f":
                x = rng.normal(0, 1, shape).astype(np.float32)
            else:
                x = rng.integers(np.iinfo(dt).min, int(np.iinfo(dt).max) + 1, shape).astype(dt)
            y = session.run(layer.name, x)
            assert np.array_equal(y.view(np.uint8), layer(x).view(np.uint8)), layer.name
            kind = type(layer).__name__
            count = session.last_count
            per = (f"{count / layer.macs():.2f}/MAC" if kind in ("FullyConnected", "Conv2D")
                   else f"{count / int(np.prod(layer.output_shape)):.1f}/output")
            print(f"{stem:20s} {kind:15s} {str(shape):14s} -> {str(layer.output_shape):14s} "
                  f"{count:8d} {session.count_unit}  {per}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "qemu:mps2-an386")
