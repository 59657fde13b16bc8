"""The whole-model ops' C kernels (edgeconv.codegen.kernels.nnops) on the fixture models:
every operator of every fixture gets a kernel, each node's layer computes what the graph
computes (on the packed inputs codegen feeds it), and the generated C of the small
fixtures' layers reproduces the reference trace (itself bit-exact with LiteRT, see
tests/test_model_reference.py) layer by layer on the native build.

The kernels' own golden cases (every op and dtype, edge cases) are in
tests/golden_configs.py (``_nn_cases``) and run in tests/test_golden.py on native and on
the emulated boards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgeconv.targets
from edgeconv import codegen
from edgeconv.codegen.context import op_of
from edgeconv.codegen.kernels import nnops
from edgeconv.layers import (
    Add,
    Concatenation,
    Dequantize,
    Mul,
    Pad,
    Quantize,
    Requantize,
    Softmax,
)
from edgeconv.model import Model

MODELS = Path(__file__).parent / "models"
FIXTURES = sorted(p for p in MODELS.glob("*.tflite") if p.stem != "unsupported_tanh")
# RESHAPE / SQUEEZE move no data: the network's planner aliases their buffers.
ALIASES = {"RESHAPE", "SQUEEZE"}
# Small enough to build into one native firmware quickly (all their layers).
RUN_ON_NATIVE = ("concat_requantize", "fc_autoencoder", "misc_ops", "small_cnn_16x8",
                 "small_cnn_float_io")


def _input(model: Model, seed: int) -> np.ndarray:
    t = model.inputs[0]
    rng = np.random.default_rng(seed)
    if t.dtype == np.float32:
        return rng.normal(0, 1.5, t.shape).astype(np.float32)
    info = np.iinfo(t.dtype)
    return rng.integers(info.min, int(info.max) + 1, t.shape).astype(t.dtype)


def _packed(values: dict[int, np.ndarray], inputs: tuple[int, ...]) -> np.ndarray:
    """The node's fed input tensors as codegen's one input buffer holds them."""
    arrays = [values[i] for i in inputs]
    if len(arrays) == 1:
        return arrays[0]
    return np.concatenate([a.ravel() for a in arrays])


def _layer_cases(model: Model, seed: int) -> list[tuple[object, np.ndarray, np.ndarray]]:
    """(layer, input as the layer takes it, the graph's output) per node with a layer."""
    values = model._run(_input(model, seed))
    cases = []
    for node in model.nodes:
        if node.layer is None:
            continue
        layer = node.layer
        x = _packed(values, node.inputs).reshape(layer.input_shape)
        cases.append((layer, x, values[node.output].reshape(layer.output_shape)))
    return cases


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_every_fixture_op_has_a_kernel(tmp_path: Path, path: Path) -> None:
    model = Model.from_tflite(path)
    assert {n.operator.opcode for n in model.nodes if n.layer is None} <= ALIASES
    layers = [n.layer for n in model.nodes if n.layer is not None]
    gen = codegen.generate(layers, tmp_path, prefix="fixture")
    assert [info.name for info in gen.layers] == [layer.name for layer in layers]
    for info, layer in zip(gen.layers, layers, strict=True):
        if op_of(layer) in nnops.OPS:
            assert info.strategy == nnops.KERNEL[op_of(layer)].strategy
    # each node's layer, fed the packed inputs, computes the graph's tensor
    for layer, x, want in _layer_cases(model, seed=1):
        got = layer(x)
        assert got.dtype == want.dtype and got.shape == want.shape, layer
        assert np.array_equal(got.view(np.uint8), want.view(np.uint8)), layer


def test_fixture_layers_run_bit_exact_in_c() -> None:
    """Every layer of the small fixtures, as generated C on the native build, on the
    tensors of a reference trace (two inputs per model)."""
    cases = []
    for m, stem in enumerate(RUN_ON_NATIVE):
        model = Model.from_tflite(MODELS / f"{stem}.tflite")
        for node in model.nodes:
            if node.layer is not None:  # unique C names across the models
                node.layer.name = f"m{m}_{node.layer.name}"
        per_seed = [_layer_cases(model, seed) for seed in (3, 4)]
        for items in zip(*per_seed, strict=True):
            layer = items[0][0]
            cases.append((layer, np.stack([x for _, x, _ in items]),
                          np.stack([y for _, _, y in items])))
    ops = {op_of(layer) for layer, _, _ in cases}
    assert set(nnops.OPS) <= ops, f"fixtures lack {set(nnops.OPS) - ops}"
    with edgeconv.targets.open("native", [layer for layer, _, _ in cases]) as session:
        for layer, x, want in cases:
            got = session.run(layer.name, x)
            assert got.dtype == want.dtype and got.shape == want.shape, layer.name
            diff = np.flatnonzero(got.view(np.uint8) != want.view(np.uint8))
            assert diff.size == 0, f"{layer.name}: {diff.size} bytes differ"


# ------------------------------------------------------------------ layer contracts

def test_packed_call_equals_the_two_operand_call() -> None:
    rng = np.random.default_rng(5)
    layer = Add.from_quantization(input1_scale=0.05, input1_zero_point=2, input2_scale=0.1,
                                  input2_zero_point=-1, output_scale=0.08, output_zero_point=3,
                                  input1_shape=(2, 3), input2_shape=(3,))
    a = rng.integers(-128, 128, (2, 3)).astype(np.int8)
    b = rng.integers(-128, 128, (3,)).astype(np.int8)
    assert layer.input_shape == (9,) and layer.output_shape == (2, 3)
    packed = np.concatenate([a.ravel(), b])
    assert np.array_equal(layer(packed), layer(a, b))
    assert np.array_equal(layer(np.stack([packed, packed]))[1], layer(a, b))
    const = Mul.from_quantization(input1_scale=0.05, input1_zero_point=2, input2_scale=0.1,
                                  input2_zero_point=-1, output_scale=0.08, output_zero_point=3,
                                  input1_shape=(2, 3), constant2=b)
    assert const.input_shape == (2, 3) and np.array_equal(const(a), const(a, b))
    concat = Concatenation(input_shapes=((2, 3), (2, 1)), axis=1)
    c = rng.integers(-128, 128, (2, 1)).astype(np.int8)
    assert np.array_equal(concat(np.concatenate([a.ravel(), c.ravel()])),
                          np.concatenate([a, c], axis=1))


@pytest.mark.parametrize("make, match", [
    (lambda: Pad(paddings=((1, -1),)), "paddings="),
    (lambda: Pad(paddings=((1, 1),), input_shape=(2, 2)), "input_shape="),
    (lambda: Concatenation(input_shapes=((2, 3), (3, 3)), axis=1), r"input_shapes\[1\]"),
    (lambda: Concatenation(input_shapes=((2, 3),), axis=2), "axis="),
    (lambda: Quantize(scale=0.0), "scale="),
    (lambda: Dequantize(scale=0.1, zero_point=200), "zero_point="),
    (lambda: Requantize(multiplier=-1, shift=0), "multiplier="),
    (lambda: Add.from_quantization(input1_scale=0.1, input1_zero_point=0, input2_scale=0.1,
                                   input2_zero_point=0, output_scale=0.1, output_zero_point=0,
                                   input1_shape=(2, 3), input2_shape=(4,)), "broadcast"),
])
def test_bad_layer_arguments_name_the_argument(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_softmax_rows_beyond_the_q12_19_sum_are_refused(tmp_path: Path) -> None:
    layer = Softmax.from_quantization(input_scale=0.1, output_scale=1 / 256,
                                      output_zero_point=-128, name="sm",
                                      input_shape=(nnops.SOFTMAX_MAX_DEPTH,))
    with pytest.raises(ValueError, match="at most 4095"):
        codegen.generate([layer], tmp_path)
