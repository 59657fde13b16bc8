"""The reference-model benchmark.

``python -m edgeconv.bench reference`` times the Python reference model on each layer
(MAC/s) and, when TensorFlow is importable, TFLite's own reference kernels
(``BUILTIN_REF`` op resolver, one thread) on the same layer shape, side by side with the
ratio. Both run on one thread (the command restarts itself with
``OPENBLAS_NUM_THREADS=1``). ``--batch N [N ...]`` (default ``1 32``) runs both sides on
batches of N inputs (TFLite's input resized to ``[N, H, W, C]``) and prints one table per
batch size; MAC/s count every input of the batch.

TFLite quantizes its model itself (calibrated on random data), so its integer
parameters differ from ours; only the speed is compared here.  Bit-exactness against
TFLite is the job of the golden-vector tests.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial

import numpy as np

from edgeconv.bench.layers import (
    SEED,
    SPECS,
    BenchSpec,
    benchmark_input,
    benchmark_layer,
    float_params,
)
from edgeconv.im2col import same_pads
from edgeconv.layers import DepthwiseConv2D


def seconds_per_call(fn: Callable[[], object], repeat: int, rounds: int = 5) -> float:
    """Best over ``rounds`` of the mean time of ``repeat`` calls (robust on a busy host)."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


# ------------------------------------------------------------------------- TFLite

def _tflite_runner(spec: BenchSpec, tf: object
                   ) -> Callable[[int], Callable[[np.ndarray], np.ndarray]]:
    """Convert ``spec`` (same float weights) to a fully quantized TFLite model; return a
    function that, for a batch size N, resizes the model's input to ``[N, H, W, C]`` and
    returns a call running a batch of N inputs on TFLite's reference kernels with one
    thread."""
    weights, bias = float_params(spec)
    layer = benchmark_layer(spec)
    (top, bottom), (left, right) = layer.pads_for()
    h, w, c = spec.input_shape
    s = spec.stride
    same = layer.pads_for() == tuple(same_pads(n, k, s, 1) for n, k in
                                     zip(spec.input_shape[:2], spec.kernel, strict=True))
    if spec.op is DepthwiseConv2D:
        kernel = tf.constant(weights[0].reshape(*spec.kernel, c, -1), tf.float32)
    else:
        kernel = tf.constant(weights.transpose(1, 2, 3, 0), tf.float32)
    bias_t = tf.constant(bias, tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([1, h, w, c], tf.float32)])
    def model(x: object) -> object:
        if not same:
            x = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
        pad = "SAME" if same else "VALID"
        if spec.op is DepthwiseConv2D:
            y = tf.nn.depthwise_conv2d(x, kernel, [1, s, s, 1], pad)
        else:
            y = tf.nn.conv2d(x, kernel, s, pad)
        y = y + bias_t
        if spec.activation == "relu":
            y = tf.nn.relu(y)
        elif spec.activation == "relu6":
            y = tf.nn.relu6(y)
        return y

    rng = np.random.default_rng(SEED)

    def calibration() -> Iterator[list[np.ndarray]]:
        for _ in range(8):
            yield [rng.uniform(-1, 1, size=(1, h, w, c)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()],
                                                           model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = calibration
    if spec.dtype == np.int16:
        ops = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        conv.inference_input_type = conv.inference_output_type = tf.int16
    else:
        ops = tf.lite.OpsSet.TFLITE_BUILTINS_INT8
        conv.inference_input_type = conv.inference_output_type = tf.int8
    conv.target_spec.supported_ops = [ops]
    interp = tf.lite.Interpreter(
        model_content=conv.convert(), num_threads=1,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    inp = interp.get_input_details()[0]["index"]
    out = interp.get_output_details()[0]["index"]

    def run(x: np.ndarray) -> np.ndarray:
        interp.set_tensor(inp, x)
        interp.invoke()
        return interp.get_tensor(out)

    def for_batch(batch: int) -> Callable[[np.ndarray], np.ndarray]:
        interp.resize_tensor_input(inp, [batch, h, w, c])
        interp.allocate_tensors()
        return run

    return for_batch


def _import_tensorflow() -> object | None:
    try:
        import tensorflow as tf  # optional: only the comparison needs it
    except ImportError:
        return None
    return tf


def reference(repeat: int = 200, use_tflite: bool = True,
              batches: tuple[int, ...] = (1,)) -> list[dict[str, object]]:
    """Time the reference model (and TFLite's reference kernels when available) on L1-L7
    for every batch size in ``batches``; one row per layer and batch with MAC/s figures
    (MACs of the whole batch per second).  A timing round makes ``max(1, repeat // N)``
    calls of batch N."""
    tf = _import_tensorflow() if use_tflite else None
    rows = []
    for spec in SPECS:
        layer = benchmark_layer(spec)
        tflite = _tflite_runner(spec, tf) if tf is not None else None
        for batch in batches:
            x = benchmark_input(layer, batch=batch)
            calls = max(1, repeat // batch)
            macs = layer.macs() * batch
            row: dict[str, object] = {"layer": spec.name, "description": spec.description,
                                      "batch": batch, "macs": macs}
            row["edgeconv_macs_per_s"] = macs / seconds_per_call(partial(layer, x), calls)
            if tflite is not None:
                run = tflite(batch)
                row["tflite_macs_per_s"] = macs / seconds_per_call(partial(run, x), calls)
                row["ratio"] = row["edgeconv_macs_per_s"] / row["tflite_macs_per_s"]
            rows.append(row)
    return rows


def _print_rows(rows: list[dict[str, object]]) -> None:
    with_tf = "ratio" in rows[0]
    head = f"{'layer':5} {'MACs':>9} {'edgeconv MAC/s':>15}"
    if with_tf:
        head += f" {'TFLite ref MAC/s':>17} {'ratio':>6}"
    for batch in dict.fromkeys(r["batch"] for r in rows):
        print(f"batch {batch} (MACs per call of {batch} input{'s' if batch > 1 else ''}):")
        print(head + "  description")
        for r in (r for r in rows if r["batch"] == batch):
            line = f"{r['layer']:5} {r['macs']:>9} {r['edgeconv_macs_per_s']:>15.3e}"
            if with_tf:
                line += f" {r['tflite_macs_per_s']:>17.3e} {r['ratio']:>6.2f}"
            print(line + f"  {r['description']}")
        if with_tf:
            slow = [r["layer"] for r in rows if r["batch"] == batch and r["ratio"] < 0.5]
            print(f"below 0.5x TFLite at batch {batch}: {', '.join(slow) or 'none'}")
        print()
    if not with_tf:
        print("(TensorFlow not importable: TFLite comparison skipped)")


_SINGLE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def reexec_single_threaded() -> None:
    """Time everything on one thread, like TFLite's ``num_threads=1``: the BLAS thread
    count is fixed when numpy loads, so restart the interpreter with it set to 1 (small
    GEMMs also run faster and far steadier on one thread on a shared host)."""
    if all(os.environ.get(k) == v for k, v in _SINGLE_THREAD.items()):
        return
    env = {**os.environ, **_SINGLE_THREAD}
    os.execve(sys.executable, [sys.executable, "-m", "edgeconv.bench", *sys.argv[1:]], env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgeconv.bench",
                                     description="edgeconv benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    ref = sub.add_parser("reference", help="MAC/s of the Python reference model on L1-L7")
    ref.add_argument("--repeat", type=int, default=200,
                     help="calls per timing round (batch N: repeat // N calls)")
    ref.add_argument("--no-tflite", action="store_true", help="skip the TFLite comparison")
    ref.add_argument("--batch", type=int, nargs="+", default=[1, 32], metavar="N",
                     help="batch sizes to time, both sides (default: 1 32)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat={args.repeat}: must be an integer >= 1")
    for batch in args.batch:
        if batch < 1:
            parser.error(f"--batch={batch}: must be an integer >= 1")
    _print_rows(reference(args.repeat, not args.no_tflite, tuple(args.batch)))
    return 0
