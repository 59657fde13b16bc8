"""The benchmark layer set and a quick run of ``python -m edgeconv.bench reference``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import edgeconv
from edgeconv.bench import benchmark_input, benchmark_layers

EXPECTED = {  # name: (op, input_shape, output_shape, dtype)
    "L1": (edgeconv.Conv2D, (32, 32, 3), (32, 32, 16), np.int8),
    "L2": (edgeconv.Conv2D, (16, 16, 32), (16, 16, 32), np.int8),
    "L3": (edgeconv.Conv2D, (16, 16, 64), (16, 16, 64), np.int8),
    "L4": (edgeconv.DepthwiseConv2D, (16, 16, 64), (16, 16, 64), np.int8),
    "L5": (edgeconv.Conv2D, (49, 10, 1), (25, 5, 64), np.int8),
    "L6": (edgeconv.Conv2D, (16, 16, 32), (16, 16, 32), np.int16),
    "L7": (edgeconv.Conv2D, (5, 5, 3), (3, 3, 2), np.int8),
}


def test_benchmark_layers_are_fixed_and_named() -> None:
    layers = benchmark_layers()
    assert list(layers) == list(EXPECTED)
    for name, (op, in_shape, out_shape, dtype) in EXPECTED.items():
        layer = layers[name]
        assert type(layer) is op and layer.name == name
        assert layer.input_shape == in_shape and layer.output_shape == out_shape
        assert layer.activation_dtype == dtype
    assert layers["L5"].weights.shape == (64, 10, 4, 1) and layers["L5"].stride == (2, 2)
    assert layers["L7"].padding == ((1, 1), (1, 1))
    again = benchmark_layers()
    for name, layer in layers.items():  # deterministic: same seed, same parameters
        assert layer.spec() == again[name].spec()
    x = benchmark_input(layers["L7"], batch=3)
    assert x.shape == (3, 5, 5, 3)
    np.testing.assert_array_equal(layers["L7"](x), layers["L7"](x, method="direct"))
    assert layers["L7"]._dense(5, 5, 3) is not None  # the small-layer path is taken
    assert layers["L7"]._table is not None  # ... with table requantization
    assert layers["L1"]._dense(32, 32, 3) is None and layers["L1"]._table is None


def test_bench_reference_command_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "edgeconv.bench", "reference", "--repeat", "1", "--no-tflite",
         "--batch", "1", "2"],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(" (")[0] for line in lines if line.startswith("batch ")] == [
        "batch 1", "batch 2"]
    rows = [line.split() for line in lines if line[:2] in {f"L{i}" for i in range(1, 8)}]
    assert [r[0] for r in rows] == list(EXPECTED) * 2
    macs = {name: layer.macs() for name, layer in benchmark_layers().items()}
    for i, r in enumerate(rows):
        assert int(r[1]) == macs[r[0]] * (1 if i < len(EXPECTED) else 2)  # per batch call
        assert float(r[2]) > 0  # MAC/s column
    assert "TFLite comparison skipped" in proc.stdout


def test_bench_rejects_bad_batch() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "edgeconv.bench", "reference", "--no-tflite", "--batch", "0"],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "--batch=0" in proc.stderr
