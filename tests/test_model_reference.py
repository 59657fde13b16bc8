"""Whole .tflite models in the reference model, against the LiteRT interpreter.

Oracle: the LiteRT interpreter (``ai-edge-litert``) with the ``BUILTIN_REF`` op resolver
(TFLite's reference kernels) and ``experimental_preserve_all_tensors=True``; every tensor
edgeconv computes must equal the interpreter's element for element.  The fixtures are
built by ``tests/models/generate_models.py`` (see tests/models/README.md).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import tflite
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from hypothesis import given, settings
from hypothesis import strategies as st
from tflite_builder import Spec, single_op_model

import edgeconv
from edgeconv.layers.dense import FullyConnected, round_once_wide
from edgeconv.model import Model, compare_with_tflite, first_difference, read_tflite
from edgeconv.model.graph import _Builder

MODELS = Path(__file__).parent / "models"
OPS = Path(__file__).parent / "golden" / "ops"
FIXTURES = ["ds_cnn", "resnet8", "mobilenet_v1_025", "fc_autoencoder", "misc_ops",
            "small_cnn_16x8", "small_cnn_float_io", "concat_requantize"]
SEEDS = (0, 1, 2)


def _path(stem: str) -> Path:
    return MODELS / f"{stem}.tflite"


def _random_input(detail: dict, rng: np.random.Generator) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return rng.normal(0.0, 2.0, size=detail["shape"]).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=detail["shape"], endpoint=True, dtype=dtype)


def _interpreter_run(path: Path, seed: int) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """Seeded random inputs and every non-constant tensor of the LiteRT reference run,
    by tensor name."""
    interp = Interpreter(model_path=str(path),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                         experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    rng = np.random.default_rng(seed)
    xs = []
    for detail in interp.get_input_details():
        xs.append(_random_input(detail, rng))
        interp.set_tensor(detail["index"], xs[-1])
    interp.invoke()
    # the file's non-constant tensors (kernels may add temporaries after them, e.g. MEAN)
    wanted = {t.index for t in read_tflite(path).tensors if not t.is_constant}
    tensors = {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_tensor_details()
               if d["index"] in wanted}
    return xs, tensors


def _check_trace(path: Path, seeds: tuple[int, ...] = SEEDS) -> None:
    model = edgeconv.load(path)
    for seed in seeds:
        xs, expected = _interpreter_run(path, seed)
        x = xs[0] if len(xs) == 1 else xs
        trace = model.trace(x)
        assert set(trace) == set(expected), "trace keys differ from the interpreter's tensors"
        for name, want in expected.items():
            got = trace[name]
            assert got.dtype == want.dtype and got.shape == want.shape, name
            bad = int(np.count_nonzero(got != want))
            assert bad == 0, f"seed {seed}: {name}: {bad} of {want.size} elements differ"
        (out_name,) = [t.name for t in model.outputs]
        np.testing.assert_array_equal(model(x), expected[out_name])


# ----------------------------------------------------------------- whole models

@pytest.mark.parametrize("stem", FIXTURES)
def test_every_tensor_bit_exact(stem: str) -> None:
    _check_trace(_path(stem))


@pytest.mark.parametrize("path", sorted(OPS.glob("*.tflite")), ids=lambda p: p.stem)
def test_single_op_models_bit_exact(path: Path) -> None:
    """The single-op fixtures of tests/golden/ops/ (ADD, MUL, MEAN, SOFTMAX, LOGISTIC with
    broadcasting, fused activations, int16) loaded as whole models."""
    _check_trace(path, seeds=(0,))


@pytest.mark.parametrize("stem", FIXTURES)
def test_each_op_on_the_interpreter_inputs(stem: str) -> None:
    """Op by op: every operator, fed the interpreter's own input tensors, gives the
    interpreter's output tensor (an error does not propagate into later tensors)."""
    info = read_tflite(_path(stem))
    builder = _Builder(info)
    nodes = [builder.build(op) for op in info.operators]
    for seed in SEEDS:
        _, expected = _interpreter_run(_path(stem), seed)
        for node in nodes:
            inputs = [expected[info.tensors[i].name] for i in node.inputs]
            want = expected[info.tensors[node.output].name]
            got = node.kernel(inputs)
            assert got.dtype == want.dtype and got.shape == want.shape
            bad = int(np.count_nonzero(got != want))
            assert bad == 0, (f"seed {seed}: {node.operator.opcode} (operator "
                              f"{node.operator.index}): {bad} of {want.size} elements differ")


def test_fixture_op_coverage() -> None:
    """The fixtures hold every op the issue lists (so the tests above cover them)."""
    ops = {op.opcode for stem in FIXTURES for op in read_tflite(_path(stem)).operators}
    assert ops >= {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D",
                   "AVERAGE_POOL_2D", "MEAN", "ADD", "MUL", "RESHAPE", "PAD",
                   "CONCATENATION", "SOFTMAX", "LOGISTIC", "QUANTIZE", "DEQUANTIZE"}
    quantize = [op for op in read_tflite(_path("concat_requantize")).operators
                if op.opcode == "QUANTIZE"]
    assert len(quantize) == 1  # int8 -> int8 requantization in front of a CONCATENATION
    dtypes = {t.type_name for t in read_tflite(_path("small_cnn_16x8")).tensors
              if not t.is_constant}
    assert dtypes == {"INT16"}


# ------------------------------------------------------------- compare_with_tflite

def test_compare_with_tflite_reports_bit_exact() -> None:
    results = compare_with_tflite(_path("fc_autoencoder"), seed=3)
    assert len(results) == 11 and results[0].operator is None
    assert all(r.equal for r in results) and first_difference(results) is None
    assert [r.opcode for r in results[1:]] == ["FULLY_CONNECTED"] * 10


def test_compare_with_tflite_finds_the_first_difference() -> None:
    """A model whose operator 4 has a different bias: the comparison names that tensor."""
    path = _path("fc_autoencoder")
    info = read_tflite(path)
    bias_index = info.operators[4].inputs[2]
    tensors = list(info.tensors)
    bias = tensors[bias_index]
    tensors[bias_index] = dataclasses.replace(bias, data=bias.data + 5000)
    tampered = Model(dataclasses.replace(info, tensors=tuple(tensors)))
    results = compare_with_tflite(path, model=tampered)
    first = first_difference(results)
    assert first is not None and first.operator == 4 and first.opcode == "FULLY_CONNECTED"
    assert first.name == info.tensors[info.operators[4].outputs[0]].name
    assert first.mismatches > 0 and "differ" in str(first)


# --------------------------------------------------------------------- errors

def test_unsupported_op_is_refused_in_one_line() -> None:
    info = read_tflite(_path("unsupported_tanh"))
    tanh = info.operators[1]
    with pytest.raises(ValueError) as err:
        edgeconv.load(_path("unsupported_tanh"))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("TANH (operator 1,")
    for i in (*tanh.inputs, *tanh.outputs):
        assert info.tensors[i].name in msg
    assert "not supported" in msg and "CONV_2D" in msg  # lists what is supported


def test_bad_path(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.tflite"
    with pytest.raises(ValueError, match=r"path=.*nothing\.tflite.*cannot read"):
        edgeconv.Model.from_tflite(missing)
    with pytest.raises(ValueError, match="path=.*cannot read"):
        edgeconv.load(tmp_path)  # a directory


def test_not_a_tflite_file(tmp_path: Path) -> None:
    junk = tmp_path / "model.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match=r"not a TFLite flatbuffer .*TFL3"):
        edgeconv.load(junk)
    truncated = tmp_path / "cut.tflite"
    truncated.write_bytes(_path("ds_cnn").read_bytes()[:200])
    with pytest.raises(ValueError, match="corrupt TFLite flatbuffer"):
        edgeconv.load(truncated)


def _with_tensor(info, index: int, **changes):
    tensors = list(info.tensors)
    tensors[index] = dataclasses.replace(tensors[index], **changes)
    return dataclasses.replace(info, tensors=tuple(tensors))


def test_quantization_mismatch_is_refused() -> None:
    info = read_tflite(_path("misc_ops"))
    pool = next(op for op in info.operators if op.opcode == "MAX_POOL_2D")
    out = info.tensors[pool.outputs[0]]
    q = dataclasses.replace(out.quantization, scale=out.quantization.scale * 2)
    with pytest.raises(ValueError) as err:
        Model(_with_tensor(info, out.index, quantization=q))
    msg = str(err.value)
    assert msg.startswith(f"MAX_POOL_2D (operator {pool.index},") and "\n" not in msg
    assert "quantization mismatch" in msg and out.name in msg


def test_unsupported_dtype_is_refused() -> None:
    info = read_tflite(_path("fc_autoencoder"))
    first = info.tensors[info.inputs[0]]
    with pytest.raises(ValueError, match=r"FULLY_CONNECTED \(operator 0,.*UINT8.*allowed are "
                                         r"int8 or int16"):
        Model(_with_tensor(info, first.index, dtype=np.dtype(np.uint8), type_name="UINT8"))


def test_semantics_and_input_checks() -> None:
    with pytest.raises(ValueError, match=r"semantics='tflite micro': allowed are 'tflite'"):
        edgeconv.load(_path("fc_autoencoder"), semantics="tflite micro")
    model = edgeconv.load(_path("fc_autoencoder"))
    with pytest.raises(ValueError, match="x: dtype float64 not allowed"):
        model(np.zeros((1, 640)))
    with pytest.raises(ValueError, match=r"x: shape \(639,\) not allowed.*\(1, 640\)"):
        model(np.zeros(639, np.int8))
    # the leading batch dimension of 1 may be left out
    x = np.arange(640).astype(np.int8)
    np.testing.assert_array_equal(model(x), model(x[None]))


# ------------------------------------------------------------- FullyConnected

def _round_once_oracle(acc: int, m: int, shift: int) -> int:
    total = 31 - shift
    return (acc * m + (1 << (total - 1))) >> total  # Python ints: exact, floor shift


@settings(max_examples=200, deadline=None)
@given(acc=st.integers(-(1 << 47), (1 << 47) - 1), m=st.integers(0, (1 << 31) - 1),
       shift=st.integers(-31, 7))
def test_round_once_wide_exact(acc: int, m: int, shift: int) -> None:
    got = round_once_wide(np.array([acc]), np.array([m]), np.array([shift]))
    assert int(got[0]) == _round_once_oracle(acc, m, shift)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.int8, np.int16]),
       per_channel=st.booleans(), rounding=st.sampled_from(["single", "int64", "double"]))
def test_fully_connected_matches_loop_oracle(data, dtype, per_channel: bool,
                                             rounding: str) -> None:
    """The vectorized layer against a Python-int loop with the rounding spelled out."""
    if dtype == np.int16 and rounding == "double":
        rounding = "single"
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    n_out, depth, batch = (data.draw(st.integers(1, 9)) for _ in range(3))
    info = np.iinfo(dtype)
    weights = rng.integers(-127, 128, (n_out, depth), dtype=np.int8)
    bias_dtype = np.int64 if dtype == np.int16 else np.int32
    bias = rng.integers(-50000, 50000, n_out).astype(bias_dtype)
    count = n_out if per_channel else 1
    mult = rng.integers(1 << 30, 1 << 31, count).astype(np.int32)
    shift = rng.integers(-12, 1, count).astype(np.int32)
    in_zp = 0 if dtype == np.int16 else int(rng.integers(-128, 128))
    out_zp = 0 if dtype == np.int16 else int(rng.integers(-128, 128))
    layer = FullyConnected(
        weights=weights, bias=bias, output_multiplier=mult if per_channel else int(mult[0]),
        output_shift=shift if per_channel else int(shift[0]), input_zero_point=in_zp,
        output_zero_point=out_zp, activation_min=info.min + 3, activation_max=info.max - 2,
        activation_dtype=dtype, rounding=rounding)
    x = rng.integers(info.min, info.max, (batch, depth), endpoint=True, dtype=dtype)
    expected = np.empty((batch, n_out), dtype)
    for b in range(batch):
        for o in range(n_out):
            acc = int(bias[o]) + sum(int(weights[o, k]) * (int(x[b, k]) - in_zp)
                                     for k in range(depth))
            m, s = int(mult[o % count]), int(shift[o % count])
            if rounding == "single":
                scaled = _round_once_oracle(acc, m, s)
            elif rounding == "int64":
                reduced = 0x7FFF if m >= 0x7FFF0000 else (m + (1 << 15)) >> 16
                scaled = (acc * reduced + (1 << (14 - s))) >> (15 - s)
            else:  # gemmlowp: saturating rounding doubling high mul, rounding divide by 2^r
                left, right = max(s, 0), max(-s, 0)
                p = (acc << left) * m
                high = (p + (1 << 30)) >> 31 if p >= 0 else -((-p + (1 << 30) - 1) >> 31)
                mask = (1 << right) - 1
                threshold = (mask >> 1) + (1 if high < 0 else 0)
                scaled = (high >> right) + (1 if (high & mask) > threshold else 0)
            expected[b, o] = min(max(scaled + out_zp, info.min + 3), info.max - 2)
    np.testing.assert_array_equal(layer(x), expected)
    np.testing.assert_array_equal(layer(x, method="direct"), expected)
    np.testing.assert_array_equal(layer(x[0]), expected[0])


def test_fully_connected_errors() -> None:
    w = np.ones((3, 4), np.int8)
    # any integer dtype whose values fit int8 is taken (issue 11); values that do not fit
    # are refused
    FullyConnected(weights=w.astype(np.int16), output_multiplier=1 << 30, output_shift=0)
    with pytest.raises(ValueError, match=r"weights \(int8\): value 200 out of range"):
        FullyConnected(weights=w.astype(np.int16) * 200, output_multiplier=1 << 30,
                       output_shift=0)
    with pytest.raises(ValueError, match=r"output_shift: shape \(2,\) not allowed"):
        FullyConnected(weights=w, output_multiplier=1 << 30, output_shift=np.zeros(2, np.int32))
    with pytest.raises(ValueError, match=r"rounding='double' with activation_dtype=int16"):
        FullyConnected(weights=w, output_multiplier=1 << 30, output_shift=0,
                       activation_dtype=np.int16, rounding="double")
    with pytest.raises(ValueError, match=r"rounding='nearest': allowed are"):
        FullyConnected(weights=w, output_multiplier=1 << 30, output_shift=0, rounding="nearest")
    layer = FullyConnected(weights=w, output_multiplier=1 << 30, output_shift=0)
    with pytest.raises(ValueError, match=r"x: shape \(5,\) not allowed, must be \(4,\)"):
        layer(np.zeros(5, np.int8))
    with pytest.raises(ValueError, match=r"method='im2col': allowed are 'gemm', 'direct'"):
        layer(np.zeros(4, np.int8), method="im2col")


def test_fully_connected_from_float_is_close_to_float() -> None:
    rng = np.random.default_rng(7)
    w, b = rng.normal(size=(6, 20)), rng.normal(size=6) * 0.1
    x = rng.normal(size=(8, 20))
    s_in, s_out = 4.0 / 127, float(np.abs(x @ w.T + b).max()) / 100
    layer = FullyConnected.from_float(w, b, input_scale=s_in, output_scale=s_out)
    q = np.clip(np.round(x / s_in), -128, 127).astype(np.int8)
    y = layer(q).astype(np.float64) * s_out
    np.testing.assert_allclose(y, (q * s_in) @ w.T + b, atol=3 * s_out)


# -------------------------------------------------------------------- reader

def test_reader_against_the_keras_definition() -> None:
    """What generate_models.py built: DS-CNN's first layer is a 10x4 stride-2 SAME conv
    to 64 channels with a fused ReLU and per-channel filter scales."""
    info = read_tflite(_path("ds_cnn"))
    assert [info.tensors[i].shape for i in info.inputs] == [(1, 49, 10, 1)]
    assert [info.tensors[i].shape for i in info.outputs] == [(1, 12)]
    conv = info.operators[0]
    assert conv.opcode == "CONV_2D"
    assert conv.options["padding"] == "same" and conv.options["fused_activation_function"] == "RELU"
    assert (conv.options["stride_h"], conv.options["stride_w"]) == (2, 2)
    x, w, b = (info.tensors[i] for i in conv.inputs)
    assert w.shape == (64, 10, 4, 1) and w.data.dtype == np.int8 and w.is_constant
    assert w.quantization.per_channel and w.quantization.scale.shape == (64,)
    assert b.data.dtype == np.int32 and b.shape == (64,)
    assert not x.is_constant and x.quantization.scale.dtype == np.float32
    assert info.tensors[conv.outputs[0]].shape == (1, 25, 5, 64)
    pool = info.operators[9]
    assert pool.opcode == "AVERAGE_POOL_2D"
    assert (pool.options["filter_height"], pool.options["filter_width"]) == (25, 5)
    softmax = info.operators[-1]
    assert softmax.opcode == "SOFTMAX" and softmax.options["beta"] == 1.0


def test_quantize_rounds_ties_away_from_zero_like_litert() -> None:
    """Float inputs exactly halfway between two quantization steps (and beyond the int8
    range): the model-input QUANTIZE agrees with LiteRT on every one; rounding half to
    even would not (so the inputs really are ties)."""
    path = _path("small_cnn_float_io")
    model = edgeconv.load(path)
    quantize = model.nodes[0]
    out = model.tensors[quantize.output]
    scale, zp = np.float32(out.quantization.scale[0]), int(out.quantization.zero_point[0])
    k = np.arange(-150, 150, dtype=np.float32)
    ties = ((k + np.float32(0.5)) * scale).astype(np.float32)
    assert np.array_equal(ties / scale, k + np.float32(0.5))  # exact in float32
    x = np.resize(ties, model.inputs[0].shape).astype(np.float32)
    interp = Interpreter(model_path=str(path),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                         experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    want = interp.get_tensor(quantize.output)
    np.testing.assert_array_equal(model.trace(x)[out.name], want)
    half_even = np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)
    assert np.count_nonzero(half_even != want) > 0


# ------------------------------------------------- hand-built single-op models

def test_squeeze_model_bit_exact(tmp_path: Path) -> None:
    """SQUEEZE (the converter turns it into RESHAPE, so the model is written directly)."""
    blob = single_op_model(
        "SQUEEZE", [Spec("x", (1, 1, 3, 6), scale=0.1, zero_point=3)],
        [Spec("y", (3, 6), scale=0.1, zero_point=3)],
        options=("SqueezeOptions", {"SqueezeDims": [0, 1]}))
    path = tmp_path / "squeeze.tflite"
    path.write_bytes(blob)
    assert [op.opcode for op in read_tflite(path).operators] == ["SQUEEZE"]
    _check_trace(path)


def test_concatenation_of_different_scales_is_refused(tmp_path: Path) -> None:
    """TFLite's int8 CONCATENATION copies raw integers and its Prepare refuses inputs
    quantized unlike the output; edgeconv refuses them in one line too (the converter
    inserts a requantizing QUANTIZE instead, see the concat_requantize fixture)."""
    blob = single_op_model(
        "CONCATENATION", [Spec("a", (1, 2, 2, 2), scale=0.1, zero_point=3),
                          Spec("b", (1, 2, 2, 2), scale=0.3, zero_point=3)],
        [Spec("y", (1, 2, 2, 4), scale=0.1, zero_point=3)],
        options=("ConcatenationOptions", {"Axis": 3}))
    path = tmp_path / "concat.tflite"
    path.write_bytes(blob)
    interp = Interpreter(model_path=str(path),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    with pytest.raises(RuntimeError, match="CONCATENATION"):
        interp.allocate_tensors()
    with pytest.raises(ValueError) as err:
        edgeconv.load(path)
    msg = str(err.value)
    assert msg.startswith("CONCATENATION (operator 0, inputs ['a', 'b'], outputs ['y']): "
                          "quantization mismatch: 'b'") and "\n" not in msg


def _conv_case(rng: np.random.Generator, *, depthwise: bool, dtype: str,
               activation: int, bias_type: str | None = None,
               declared: str | None = None) -> bytes:
    """A CONV_2D (groups 2, dilation 2) or DEPTHWISE_CONV_2D (multiplier 2, dilation 2,
    stride 2) with per-channel filter scales and a fused activation, written directly:
    variants the converter seldom emits. ``bias_type``: default INT64 for 16x8, else
    INT32; ``declared``: CONV_2D's ``quantized_bias_type`` (default unset)."""
    int16 = dtype == "INT16"
    bias_type = bias_type or ("INT64" if int16 else "INT32")
    zp_in, zp_out = (0, 0) if int16 else (-7, 5)
    c_in, c_out = 4, 8
    shape_w = (1, 3, 3, c_out) if depthwise else (c_out, 3, 3, c_in // 2)
    weights = rng.integers(-127, 128, shape_w).astype(np.int8)
    bias = rng.integers(-3000, 3000, c_out).astype(np.dtype(bias_type.lower()))
    w_scales = list(rng.uniform(0.002, 0.02, c_out))
    out_hw = (3, 3) if depthwise else (5, 5)
    if depthwise:
        options = ("DepthwiseConv2DOptions", {
            "Padding": 0, "StrideW": 2, "StrideH": 2, "DepthMultiplier": 2,
            "FusedActivationFunction": activation, "DilationWFactor": 2,
            "DilationHFactor": 2})
    else:
        options = ("Conv2DOptions", {
            "Padding": 0, "StrideW": 1, "StrideH": 1, "FusedActivationFunction": activation,
            "DilationWFactor": 2, "DilationHFactor": 2,
            "QuantizedBiasType": getattr(tflite.TensorType, declared or "FLOAT32")})
    return single_op_model(
        "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D",
        [Spec("x", (1, 5, 6, c_in), dtype, scale=0.05, zero_point=zp_in),
         Spec("w", shape_w, "INT8", scale=w_scales, data=weights,
              axis=3 if depthwise else 0),
         Spec("b", (c_out,), bias_type, data=bias,
              scale=[0.05 * s for s in w_scales])],
        [Spec("y", (1, *out_hw[:1], 6 // (2 if depthwise else 1), c_out), dtype,
              scale=0.02, zero_point=zp_out)],
        options=options)


@pytest.mark.parametrize("dtype", ["INT8", "INT16"])
@pytest.mark.parametrize("depthwise", [False, True], ids=["conv_groups", "depthwise_m2"])
@pytest.mark.parametrize("activation", [2, 3], ids=["relu_n1_to_1", "relu6"])
def test_conv_variants_bit_exact(tmp_path: Path, dtype: str, depthwise: bool,
                                 activation: int) -> None:
    path = tmp_path / "conv.tflite"
    path.write_bytes(_conv_case(np.random.default_rng(11), depthwise=depthwise, dtype=dtype,
                                activation=activation))
    model = edgeconv.load(path)
    layer = model.nodes[0].layer
    assert (layer.groups == 2) if not depthwise else (layer.depth_multiplier == 2)
    _check_trace(path)


def test_16x8_conv_with_int32_bias_bit_exact(tmp_path: Path) -> None:
    """A 16x8 CONV_2D with an int32 bias declared by ``quantized_bias_type`` (what the
    converter's int32-bias option writes) loads (TFLite's ConvPerChannel<int32_t>) and
    equals LiteRT on every tensor; the layer took the int32-bias kernel."""
    path = tmp_path / "conv.tflite"
    path.write_bytes(_conv_case(np.random.default_rng(12), depthwise=False, dtype="INT16",
                                activation=3, bias_type="INT32", declared="INT32"))
    layer = edgeconv.load(path).nodes[0].layer
    assert layer.bias.dtype == np.int32 and layer.accumulator_dtype == np.int32
    _check_trace(path)


def test_16x8_conv_with_undeclared_int32_bias_refused(tmp_path: Path) -> None:
    """Without ``quantized_bias_type`` INT32, LiteRT reads a 16x8 CONV_2D's int32 bias as
    int64 (two entries a value, past the buffer's end): loading refuses, in one line."""
    path = tmp_path / "conv.tflite"
    path.write_bytes(_conv_case(np.random.default_rng(12), depthwise=False, dtype="INT16",
                                activation=3, bias_type="INT32"))
    with pytest.raises(ValueError, match=r"^CONV_2D \(operator 0.*bias 'b' has type INT32 "
                                         r"but the options' quantized_bias_type is not INT32"):
        edgeconv.load(path)


def test_16x8_depthwise_with_int32_bias_refused_like_litert(tmp_path: Path) -> None:
    """LiteRT's DEPTHWISE_CONV_2D refuses an int32 bias for 16x8 at Prepare; loading does
    too, in one line (a DepthwiseConv2D layer built directly takes it)."""
    path = tmp_path / "dw.tflite"
    path.write_bytes(_conv_case(np.random.default_rng(12), depthwise=True, dtype="INT16",
                                activation=3, bias_type="INT32"))
    with pytest.raises(RuntimeError, match="kTfLiteInt64"):
        interp = Interpreter(model_path=str(path),
                             experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        interp.allocate_tensors()
    with pytest.raises(ValueError, match=r"^DEPTHWISE_CONV_2D \(operator 0.*bias 'b' has "
                                         r"type INT32, allowed: int64$"):
        edgeconv.load(path)
