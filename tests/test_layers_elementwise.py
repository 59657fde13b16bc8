"""Add and Mul against TFLite's reference kernels (LiteRT, BUILTIN_REF) on the committed
single-op fixtures, against a scalar loop oracle for arbitrary integer parameters, and
their argument checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litert_ops import fixture_ids, input_cases, load
from scalar_oracle import mbqm

from edgeconv.layers import Add, Mul

LAYERS = {"ADD": Add, "MUL": Mul}


def _from_fixture(fx):
    a, b = fx.op_inputs
    return LAYERS[fx.info["op"]].from_quantization(
        input1_scale=a.scale, input1_zero_point=a.zero_point, input2_scale=b.scale,
        input2_zero_point=b.zero_point, output_scale=fx.output.scale,
        output_zero_point=fx.output.zero_point, activation_dtype=fx.dtype,
        activation=fx.info["fused_activation"])


@pytest.mark.parametrize("fixture_id", fixture_ids("ADD") + fixture_ids("MUL"))
def test_bit_exact_with_tflite_reference(fixture_id: str) -> None:
    fx = load(fixture_id)
    layer = _from_fixture(fx)
    assert layer.activation_dtype == fx.dtype
    distinct = set()
    for inputs in input_cases(fx, n_random=6, seed=len(fixture_id)):
        (x1, x2), want = fx.run(inputs)
        got = layer(x1, x2)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want, err_msg=fixture_id)
        distinct |= set(np.unique(want).tolist())
    assert len(distinct) > 20, "fixture outputs too uniform to test anything"


def test_fixtures_cover_broadcasting_activations_and_int16() -> None:
    ids = fixture_ids("ADD") + fixture_ids("MUL")
    fixtures = [load(i) for i in ids]
    assert {f.info["fused_activation"] for f in fixtures} == {
        "NONE", "RELU", "RELU6", "RELU_N1_TO_1"}
    assert any(f.op_inputs[0].shape != f.op_inputs[1].shape for f in fixtures)
    assert {f.dtype for f in fixtures} == {np.dtype(np.int8), np.dtype(np.int16)}
    assert any(f.op_inputs[0].scale != f.op_inputs[1].scale for f in fixtures)


# ------------------------------------------------------------- scalar loop oracle

def _oracle(layer, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    shape = np.broadcast_shapes(x1.shape, x2.shape)
    a, b = np.broadcast_to(x1, shape).ravel(), np.broadcast_to(x2, shape).ravel()
    out = []
    for u, w in zip(a.tolist(), b.tolist(), strict=True):
        u -= layer.input1_zero_point
        w -= layer.input2_zero_point
        r = layer.rounding
        if isinstance(layer, Add):
            s = mbqm(u << layer.left_shift, layer.input1_multiplier, layer.input1_shift, r) \
                + mbqm(w << layer.left_shift, layer.input2_multiplier, layer.input2_shift, r)
            y = mbqm(s, layer.output_multiplier, layer.output_shift, r)
        else:
            y = mbqm(u * w, layer.output_multiplier, layer.output_shift, r)
        y += layer.output_zero_point
        out.append(min(max(y, layer.activation_min), layer.activation_max))
    return np.array(out, dtype=layer.activation_dtype).reshape(shape)


_DT = st.sampled_from([np.dtype(np.int8), np.dtype(np.int16)])
_MULT = st.integers(1 << 30, (1 << 31) - 1) | st.just(0)


@st.composite
def _case(draw, op):
    dt = draw(_DT)
    info = np.iinfo(dt)
    zp = st.integers(-128, 127) if dt == np.int8 else st.just(0)
    kw = {"input1_zero_point": draw(zp), "input2_zero_point": draw(zp),
          "output_zero_point": draw(zp), "activation_dtype": dt,
          "rounding": draw(st.sampled_from(["double", "single"]))}
    lo = draw(st.integers(int(info.min), int(info.max)))
    kw["activation_min"], kw["activation_max"] = lo, draw(st.integers(lo, int(info.max)))
    if op is Add:
        for key in ("input1", "input2", "output"):
            kw[f"{key}_multiplier"] = draw(_MULT)
            kw[f"{key}_shift"] = draw(st.integers(-31, 0))
    else:
        kw["output_multiplier"] = draw(_MULT)
        kw["output_shift"] = draw(st.integers(-31, 2))
    shapes = draw(st.sampled_from([((3, 4), (3, 4)), ((2, 1, 4), (3, 1)), ((5,), ()),
                                   ((1, 2, 3, 1, 1, 2), (3, 1, 4, 1))]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    xs = [rng.integers(info.min, info.max, size=s, endpoint=True, dtype=dt) for s in shapes]
    return op(**kw), xs


@pytest.mark.parametrize("op", [Add, Mul])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_matches_scalar_oracle(op, data) -> None:
    layer, (x1, x2) = data.draw(_case(op))
    np.testing.assert_array_equal(layer(x1, x2), _oracle(layer, x1, x2))


# ------------------------------------------------------------------ argument checks

_ADD_OK = {"input1_multiplier": 1 << 30, "input1_shift": 0, "input2_multiplier": 1 << 30,
           "input2_shift": -1, "output_multiplier": 1 << 30, "output_shift": -20}
_QUANT_OK = {"input1_scale": 0.1, "input1_zero_point": 3, "input2_scale": 0.05,
             "input2_zero_point": -7, "output_scale": 0.2, "output_zero_point": 1}


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"input1_shift": 1}, r"input1_shift=1: .*\[-31, 0\]"),
    ({"output_multiplier": -5}, r"output_multiplier=-5"),
    ({"left_shift": 21}, r"left_shift=21: .*\[0, 20\]"),
    ({"input2_zero_point": 200}, r"input2_zero_point=200"),
    ({"activation_dtype": np.int32}, r"activation_dtype="),
    ({"activation_min": 5, "activation_max": 4}, r"activation_min=5 > activation_max=4"),
    ({"rounding": "nearest"}, r"rounding='nearest'"),
    ({"name": "1abc"}, r"name='1abc'"),
    ({"activation_dtype": np.int16, "output_zero_point": 1}, r"output_zero_point=1"),
])
def test_add_rejects_bad_parameters(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        Add(**(_ADD_OK | kwargs))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"output_shift": 31}, r"output_shift=31: .*\[-31, 30\]"),
    ({"output_multiplier": 1 << 31}, r"output_multiplier=2147483648"),
    ({"input1_zero_point": 1.5}, r"input1_zero_point=1.5"),
])
def test_mul_rejects_bad_parameters(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        Mul(**({"output_multiplier": 1 << 30, "output_shift": -3} | kwargs))


@pytest.mark.parametrize("op", [Add, Mul])
@pytest.mark.parametrize(("kwargs", "match"), [
    ({"input1_scale": 0.0}, r"input1_scale=0.0: must be a finite float > 0"),
    ({"output_scale": float("nan")}, r"output_scale=nan"),
    ({"activation": "relu"}, r"activation='relu': allowed are 'NONE', 'RELU'"),
    ({"activation_dtype": "int16"}, r"output_zero_point=1: .*\[0, 0\]"),
])
def test_from_quantization_rejects_bad_parameters(op, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        op.from_quantization(**(_QUANT_OK | kwargs))


def test_add_refuses_output_scale_too_small_and_pot_int16() -> None:
    with pytest.raises(ValueError, match=r"output_scale=1e-09: the output rescale"):
        Add.from_quantization(**(_QUANT_OK | {"output_scale": 1e-9}))
    pot = {"input1_scale": 2.0**-10, "input1_zero_point": 0, "input2_scale": 2.0**-12,
           "input2_zero_point": 0, "output_scale": 2.0**-9, "output_zero_point": 0,
           "activation_dtype": np.int16}
    with pytest.raises(ValueError, match=r"pot_scale_int16=True with power-of-two scales"):
        Add.from_quantization(**pot, pot_scale_int16=True)
    assert Add.from_quantization(**pot).left_shift == 15  # the general path is fine


@pytest.mark.parametrize("op", [Add, Mul])
def test_call_rejects_bad_inputs(op) -> None:
    layer = op.from_quantization(**_QUANT_OK)
    x = np.zeros((2, 3), np.int8)
    with pytest.raises(ValueError, match=r"x1: dtype int16 not allowed, must be a numpy int8"):
        layer(x.astype(np.int16), x)
    with pytest.raises(ValueError, match=r"x2: dtype list not allowed"):
        layer(x, [[0, 0, 0]])
    with pytest.raises(ValueError, match=r"x1.shape=\(2, 3\), x2.shape=\(4,\): the shapes must "
                                         r"broadcast"):
        layer(x, np.zeros(4, np.int8))
    with pytest.raises(ValueError, match=r"x1: shape \(1, 1, 1, 1, 1, 1, 1\) has 7 dims"):
        layer(np.zeros((1,) * 7, np.int8), x)
