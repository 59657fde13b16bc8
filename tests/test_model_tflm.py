"""``semantics="tflm"``: whole models as TFLite Micro computes them.

Oracle: TFLite Micro's interpreter from the ``tflite-micro`` package (TFLM's reference
kernels compiled for the host) in its ``kPreserveAllTensors`` configuration, so every
intermediate tensor can be read after ``invoke()``.  Every tensor edgeconv computes with
``semantics="tflm"`` must equal TFLM's element for element, on every fixture model under
tests/ (the whole-model fixtures and the single-op ones of tests/golden/ops/); the
generated C of a ``tflm`` model must give TFLM's output on the host and on the M4.
docs/semantics.md says which op differs how.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_network import _run_on_host
from tflite_micro.python.tflite_micro import runtime

import edgeconv
from edgeconv import targets
from edgeconv.model import compare_with_tflite, first_difference
from edgeconv.model.compare import random_input, tflm_tensors

MODELS = Path(__file__).parent / "models"
OPS = Path(__file__).parent / "golden" / "ops"
FIXTURES = ["conv_chain", "ds_cnn", "resnet8", "mobilenet_v1_025", "fc_autoencoder",
            "misc_ops", "small_cnn_16x8", "small_cnn_float_io", "concat_requantize"]
SEEDS = (0, 1, 2)


def _path(stem: str) -> Path:
    return MODELS / f"{stem}.tflite"


def _tflm_invoke(path: Path, x: np.ndarray) -> np.ndarray:
    """TFLM's output for ``x``, written independently of ``tflm_tensors`` (default
    allocation-recording configuration, output read through ``get_output``)."""
    interp = runtime.Interpreter.from_file(str(path), arena_size=1 << 20)
    interp.set_input(x.reshape(interp.get_input_details(0)["shape"]), 0)
    interp.invoke()
    return interp.get_output(0)


def _assert_bit_exact(results: list) -> None:
    first = first_difference(results)
    assert first is None, str(first)


# ------------------------------------------------------------ reference model

@pytest.mark.parametrize("stem", FIXTURES)
def test_every_tensor_bit_exact_with_tflm(stem: str) -> None:
    model = edgeconv.load(_path(stem), semantics="tflm")
    for seed in SEEDS:
        results = compare_with_tflite(_path(stem), seed=seed, model=model)
        # every tensor the model computes was compared (inputs and operator outputs)
        assert len(results) == len(model.nodes) + len(model.inputs)
        _assert_bit_exact(results)


@pytest.mark.parametrize("path", sorted(OPS.glob("*.tflite")), ids=lambda p: p.stem)
def test_single_op_models_bit_exact_with_tflm(path: Path) -> None:
    """ADD, MUL, MEAN, SOFTMAX, LOGISTIC (broadcasting, fused activations, int16)."""
    model = edgeconv.load(path, semantics="tflm")
    for seed in (0, 1):
        _assert_bit_exact(compare_with_tflite(path, seed=seed, model=model))


@pytest.mark.parametrize("stem", FIXTURES)
def test_each_op_on_tflm_inputs(stem: str) -> None:
    """Op by op: every operator, fed TFLM's own input tensors, gives TFLM's output tensor
    (a difference does not hide behind an earlier one)."""
    path = _path(stem)
    model = edgeconv.load(path, semantics="tflm")
    computed = [t.index for t in model.inputs] + [n.output for n in model.nodes]
    for seed in SEEDS:
        inputs = [a.reshape(t.shape) for a, t in zip(random_input(model, seed), model.inputs,
                                                     strict=True)]
        values = tflm_tensors(path, inputs, computed)
        for node in model.nodes:
            xs = [values[i].reshape(model.tensors[i].shape) for i in node.inputs]
            want = values[node.output].reshape(model.tensors[node.output].shape)
            got = node.kernel(xs)
            bad = int(np.count_nonzero(got != want))
            assert bad == 0, (f"seed {seed}: {node.operator.opcode} (operator "
                              f"{node.operator.index}): {bad} of {want.size} elements differ")


def test_tflm_output_read_two_ways_agrees() -> None:
    """``tflm_tensors`` (every tensor preserved) reads the same output as a plain TFLM
    invoke, so the comparisons above test against what TFLM computes on a device."""
    path = _path("fc_autoencoder")
    model = edgeconv.load(path, semantics="tflm")
    (x,) = random_input(model, 5)
    out = model.outputs[0].index
    np.testing.assert_array_equal(tflm_tensors(path, [x], [out])[out], _tflm_invoke(path, x))


def test_the_two_runtimes_differ_on_the_fc_autoencoder() -> None:
    """On the FC autoencoder (ten FULLY_CONNECTED) LiteRT and TFLM disagree, so the option
    matters: fed the same (TFLM's) inputs, the two semantics' FC kernels differ by at most
    one LSB, and over whole inferences the default semantics misses TFLM's output while
    ``tflm`` gives it.  (That the other ops agree: each op equals TFLM's here with
    ``tflm`` and LiteRT's in test_model_reference.py with the default, and the two
    semantics build the same layers for every op but FULLY_CONNECTED.)"""
    path = _path("fc_autoencoder")
    tflite_model, tflm_model = (edgeconv.load(path, semantics=s) for s in ("tflite", "tflm"))
    computed = [tflm_model.inputs[0].index] + [n.output for n in tflm_model.nodes]
    differing, default_misses = 0, 0
    for seed in range(4):
        x = random_input(tflm_model, seed)
        micro = tflm_tensors(path, x, computed)
        for lite_node, micro_node in zip(tflite_model.nodes, tflm_model.nodes, strict=True):
            fed = [micro[i] for i in micro_node.inputs]
            a = lite_node.kernel(fed).astype(np.int32)
            b = micro_node.kernel(fed).astype(np.int32)
            assert int(np.abs(a - b).max()) <= 1
            differing += int(np.count_nonzero(a != b))
        want = _tflm_invoke(path, x[0]).ravel()
        np.testing.assert_array_equal(tflm_model(x[0]).ravel(), want)
        default_misses += not np.array_equal(tflite_model(x[0]).ravel(), want)
    assert differing > 0 and default_misses > 0


def test_semantics_is_checked() -> None:
    with pytest.raises(ValueError, match=r"semantics='micro': allowed are 'tflite'.*'tflm'"):
        edgeconv.load(_path("fc_autoencoder"), semantics="micro")
    model = edgeconv.load(_path("fc_autoencoder"))
    with pytest.raises(ValueError, match=r"semantics='tflm': the model was loaded with "
                                         r"semantics='tflite'"):
        compare_with_tflite(_path("fc_autoencoder"), model=model, semantics="tflm")


def test_fully_connected_rounding_per_semantics() -> None:
    """int8 FC rounds twice under TFLM, once under LiteRT; 16x8 takes the int64 path."""
    for stem, dtype in (("fc_autoencoder", "int8"), ("small_cnn_16x8", "int16")):
        for semantics, want in (("tflite", "single"),
                                ("tflm", "double" if dtype == "int8" else "int64")):
            model = edgeconv.load(_path(stem), semantics=semantics)
            fcs = [n.layer for n in model.nodes if n.operator.opcode == "FULLY_CONNECTED"]
            assert fcs and {fc.rounding for fc in fcs} == {want}


# ----------------------------------------------------------------- generated C

# FULLY_CONNECTED fixtures (int8, 16x8) whose output differs between the two runtimes: the
# portable FC kernel (generic) and a fast conv kernel running the FC as a 1x1 conv (the
# M4's int8 one runs on qemu:mps2-an386 below)
@pytest.mark.parametrize("stem, cpu", [
    ("fc_autoencoder", "generic"), ("small_cnn_16x8", "generic"),
    ("small_cnn_16x8", "cortex-m4")])
def test_generated_c_gives_tflm_output_on_the_host(tmp_path: Path, stem: str,
                                                   cpu: str) -> None:
    """net_run of a ``tflm`` model, compiled for the host under ASan/UBSan, equals TFLM's
    interpreter output."""
    path = _path(stem)
    model = edgeconv.load(path, semantics="tflm")
    xs = [random_input(model, seed)[0].reshape(model.inputs[0].shape[1:]) for seed in SEEDS]
    got = _run_on_host(tmp_path, model, cpu, xs)
    for x, y in zip(xs, got, strict=True):
        np.testing.assert_array_equal(y, _tflm_invoke(path, x).ravel())


def test_tflm_model_on_the_m4() -> None:
    """On qemu:mps2-an386 (the M4's FC runs its fast 1x1 conv kernel with the double
    rounding) the FC autoencoder's output is TFLM's."""
    path = _path("fc_autoencoder")
    model = edgeconv.load(path, semantics="tflm")
    x = random_input(model, 11)[0].reshape(model.inputs[0].shape[1:])
    with targets.open("qemu:mps2-an386", model, nodes=False) as session:
        y = session.run(x)
    np.testing.assert_array_equal(y.ravel(), _tflm_invoke(path, x).ravel())


def test_check_and_generate_take_the_semantics(tmp_path: Path) -> None:
    """``edgeconv check --semantics tflm`` compares against TFLM and passes where the
    default comparison (against LiteRT) of the same model also passes; ``generate
    --semantics tflm`` writes the double-rounding FC."""
    from edgeconv.cli import main

    path = str(_path("fc_autoencoder"))
    assert main(["check", path, "--semantics", "tflm", "--seed", "1"]) == 0
    assert main(["check", path, "--seed", "1"]) == 0
    for semantics in ("tflite", "tflm"):
        out = tmp_path / semantics
        assert main(["generate", path, "-o", str(out), "--semantics", semantics]) == 0
        source = (out / "net.c").read_text()
        assert ("edgeconv_mbqm_double" in source) == (semantics == "tflm")


def test_only_fully_connected_changes_with_the_semantics() -> None:
    """Every node but FULLY_CONNECTED gets the same layer (same spec) in both semantics."""
    for stem in FIXTURES:
        lite, micro = (edgeconv.load(_path(stem), semantics=s) for s in ("tflite", "tflm"))
        for a, b in zip(lite.nodes, micro.nodes, strict=True):
            if a.layer is None or a.operator.opcode == "FULLY_CONNECTED":
                continue
            assert a.layer.spec() == b.layer.spec(), (stem, a.operator.index)
