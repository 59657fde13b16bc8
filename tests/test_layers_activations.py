"""Softmax and Logistic against TFLite's reference kernels (LiteRT, BUILTIN_REF) on the
committed single-op fixtures, the gemmlowp-style primitives they use against real
arithmetic, and their argument checks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litert_ops import fixture_ids, input_cases, load

from edgeconv import fixedpoint as fp
from edgeconv.layers import Add, Logistic, Mean, Mul, Softmax
from edgeconv.layers.activations import sigmoid_table_uint16, softmax_int16_tables


def _quant_kwargs(fx) -> dict:
    x_t, out_t = fx.op_inputs[0], fx.output
    return {"input_scale": x_t.scale, "input_zero_point": x_t.zero_point,
            "output_scale": out_t.scale, "output_zero_point": out_t.zero_point,
            "activation_dtype": fx.dtype}


def _softmax_cases(fx) -> list[list[np.ndarray]]:
    """Random rows, the saturating corners, rows with one dominant entry over a spread of
    smaller ones (many distinct probabilities), narrow rows and constant rows."""
    rng = np.random.default_rng(len(fx.id))
    info = np.iinfo(fx.dtype)
    shape = fx.model_inputs[0].shape
    cases = input_cases(fx, n_random=6, seed=len(fx.id))
    for spread in (4, 30, 200, 3000):
        spread = min(spread, int(info.max) - int(info.min))
        top = rng.integers(info.min + spread, info.max, endpoint=True)
        x = top - rng.integers(0, spread, size=shape, endpoint=True)
        cases.append([x.astype(fx.dtype)])
    cases.append([np.full(shape, 5, fx.dtype)])
    return cases


@pytest.mark.parametrize("fixture_id", fixture_ids("SOFTMAX"))
def test_softmax_bit_exact_with_tflite_reference(fixture_id: str) -> None:
    fx = load(fixture_id)
    layer = Softmax.from_quantization(beta=fx.info["beta"], output_dtype=fx.output.dtype,
                                      **_quant_kwargs(fx))
    distinct = set()
    for inputs in _softmax_cases(fx):
        (x,), want = fx.run(inputs)
        got = layer(x)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want, err_msg=fixture_id)
        distinct |= set(np.unique(want).tolist())
    assert len(distinct) > 20, "fixture outputs too uniform to test anything"


def test_softmax_int8_to_int16_many_rows() -> None:
    # 16 output bits expose the last bits of the gemmlowp exp and reciprocal: 2,000 rows
    # of spread-out inputs, every output element equal.
    fx = load("softmax_i8_i16out")
    layer = Softmax.from_quantization(beta=fx.info["beta"], output_dtype=np.int16,
                                      **_quant_kwargs(fx))
    rng = np.random.default_rng(3)
    shape = fx.model_inputs[0].shape
    for k in range(500):
        spread = (4, 30, 100, 255)[k % 4]
        x = (127 - rng.integers(0, spread, size=shape, endpoint=True)).astype(np.int8)
        (x,), want = fx.run([x])
        np.testing.assert_array_equal(layer(x), want)


def test_softmax_fixtures_cover_betas_scales_and_int16() -> None:
    fixtures = [load(i) for i in fixture_ids("SOFTMAX")]
    assert any(f.dtype != f.output.dtype for f in fixtures)  # int8 in, int16 out
    for dt in (np.int8, np.int16):
        of_dtype = [f for f in fixtures if f.dtype == dt]
        assert {f.info["beta"] for f in of_dtype} >= {0.5, 1.0, 2.0}
        assert len({f.op_inputs[0].scale for f in of_dtype}) >= 3
    # one int8 fixture drops differences below diff_min (a wide input scale)
    wide = load("softmax_i8_wide")
    assert Softmax.from_quantization(beta=1.0, **_quant_kwargs(wide)).diff_min > -255


@pytest.mark.parametrize("fixture_id", fixture_ids("LOGISTIC"))
def test_logistic_bit_exact_with_tflite_reference_on_every_input(fixture_id: str) -> None:
    fx = load(fixture_id)
    layer = Logistic.from_quantization(**_quant_kwargs(fx))
    info = np.iinfo(fx.dtype)
    shape = fx.model_inputs[0].shape
    size = int(np.prod(shape))
    every = np.arange(int(info.min), int(info.max) + 1)
    every = np.concatenate([every, np.zeros(-every.size % size, np.int64)])
    wants = []
    for chunk in every.astype(fx.dtype).reshape(-1, *shape):
        (x,), want = fx.run([chunk])
        np.testing.assert_array_equal(layer(x), want, err_msg=fixture_id)
        wants.append(want)
    assert len(np.unique(np.stack(wants))) > 30


def test_logistic_fixtures_cover_the_power_of_two_path() -> None:
    pot = load("logistic_i16_pot")
    assert pot.op_inputs[0].scale == 2.0**-12
    assert Logistic.from_quantization(**_quant_kwargs(pot)).input_multiplier == 0
    # logistic_i16's scale 8/32767 is within CheckedLog2's tolerance of 2**-12, so TFLite
    # takes the power-of-two path there too; the narrow and wide ones take the general one.
    multipliers = {fid: Logistic.from_quantization(**_quant_kwargs(load(fid))).input_multiplier
                   for fid in fixture_ids("LOGISTIC") if "i16" in fid}
    assert multipliers["logistic_i16"] == 0
    assert multipliers["logistic_i16_narrow"] > 0 and multipliers["logistic_i16_wide"] > 0


def test_logistic_int16_power_of_two_scale() -> None:
    # Input scale 2**-12: TFLite's power-of-two case, multiplier 3 without shift.
    layer = Logistic.from_quantization(input_scale=2.0**-12, input_zero_point=0,
                                       output_scale=2.0**-15, output_zero_point=0,
                                       activation_dtype=np.int16)
    assert (layer.input_multiplier, layer.input_left_shift) == (0, 0)
    x = np.arange(-32768, 32768, dtype=np.int16)
    got = layer(x).astype(np.float64) / 32768
    real = 1.0 / (1.0 + np.exp(-x.astype(np.float64) * 2.0**-12))
    assert np.abs(got - real).max() < 3e-4  # table step 1/24 interpolated, Q0.15 output


# --------------------------------------------------------- primitives vs real math

@settings(max_examples=200, deadline=None)
@given(raw=st.integers(-(1 << 31), 0), bits=st.sampled_from([0, 1, 5, 12]))
def test_exp_on_negative_values_is_exp(raw: int, bits: int) -> None:
    got = int(fp.exp_on_negative_values(raw, bits)) / 2**31
    assert abs(got - math.exp(raw / 2 ** (31 - bits))) < 5e-7  # about 2**-21


@settings(max_examples=200, deadline=None)
@given(raw=st.integers(0, (1 << 31) - 1))
def test_one_over_one_plus_x(raw: int) -> None:
    got = int(fp.one_over_one_plus_x_for_x_in_0_1(raw)) / 2**31
    assert abs(got - 1.0 / (1.0 + raw / 2**31)) < 5e-9


@settings(max_examples=200, deadline=None)
@given(x=st.integers(1, (1 << 31) - 1), digits=st.integers(0, 20))
def test_get_reciprocal(x: int, digits: int) -> None:
    raw, bits_over_unit = fp.get_reciprocal(x, digits)
    real = x / 2 ** (31 - digits)
    assert int(fp.count_leading_zeros32(x)) == 32 - x.bit_length()
    assert abs(int(raw) / 2**31 * 2.0 ** -int(bits_over_unit) * real - 1) <= 1e-8


def test_saturating_rounding_multiply_by_pot() -> None:
    x = np.array([-(1 << 31), -5, -3, 3, 5, (1 << 29), (1 << 31) - 1])
    assert fp.saturating_rounding_multiply_by_pot(x, -1).tolist() == [
        -(1 << 30), -3, -2, 2, 3, 1 << 28, 1 << 30]
    assert fp.saturating_rounding_multiply_by_pot(x, 2).tolist() == [
        -(1 << 31), -20, -12, 12, 20, (1 << 31) - 1, (1 << 31) - 1]
    with pytest.raises(ValueError, match=r"exponent=32: allowed is an integer in \[-31, 31\]"):
        fp.saturating_rounding_multiply_by_pot(x, 32)


def test_lut_lookup_int16_interpolates() -> None:
    lut = (np.arange(513) * 64 - 16384).astype(np.int16)  # a straight line, slope 1/2
    v = np.arange(-32768, 32768, 97)
    # x / 2 with the interpolation's rounding: halves upwards
    assert fp.lut_lookup_int16(v, lut).tolist() == [(x + 1) >> 1 for x in v.tolist()]
    with pytest.raises(ValueError, match=r"lut: shape \(512,\)"):
        fp.lut_lookup_int16(v, lut[:512])


def test_int16_tables_follow_their_functions() -> None:
    exp_lut, recip_lut = softmax_int16_tables()
    x = np.linspace(-10.0, 0.0, 513)
    assert np.abs(exp_lut - np.exp(x) * 32767.5).max() <= 1.5
    assert np.abs(recip_lut - 32767.5 / (1 + np.linspace(0.0, 1.0, 513))).max() <= 1.5
    sig = sigmoid_table_uint16()
    assert np.abs(sig - 65536 / (1 + np.exp(-np.arange(256) / 24))).max() < 1.5
    assert sig[0] == 32768 and sig[-1] == 65535 and np.all(np.diff(sig) >= 0)


# ------------------------------------------------------------------ argument checks

_SOFTMAX_Q8 = {"input_scale": 0.05, "input_zero_point": 3, "output_scale": 1 / 256,
               "output_zero_point": -128}


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"output_zero_point": 0}, r"output_zero_point=0: TFLite's int8 softmax needs output "
                               r"scale 1/256 and zero point -128"),
    ({"output_scale": 1 / 200}, r"output_scale=0.005, output_zero_point=-128: TFLite's int8"),
    ({"beta": 0.0}, r"beta=0.0: must be a finite float > 0"),
    ({"input_scale": 1e-12}, r"beta \* input_scale \* 2\*\*26 = .* must be > 1"),
    ({"activation": "RELU"}, r"activation='RELU': allowed are 'NONE'"),
    ({"activation_dtype": np.int16, "input_zero_point": 0},
     r"output_zero_point=-128: TFLite's int16 softmax needs output scale 1/32768"),
])
def test_softmax_from_quantization_rejects(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        Softmax.from_quantization(**(_SOFTMAX_Q8 | kwargs))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"input_left_shift": -1}, r"input_left_shift=-1: .*\[0, 30\]"),
    ({"diff_min": None}, r"diff_min=None: int8 softmax needs diff_min"),
    ({"diff_min": 1}, r"diff_min=1: .*\[-2147483647, 0\]"),
    ({"input_left_shift": 20, "diff_min": -4096}, r"diff_min=-4096: .*\[-2047, 0\]"),
    ({"input_multiplier": 1 << 31}, r"input_multiplier=2147483648"),
    ({"activation_dtype": np.int16}, r"diff_min=-10: int16 softmax takes no diff_min"),
])
def test_softmax_rejects_bad_parameters(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        Softmax(**({"input_multiplier": 1 << 30, "input_left_shift": 0, "diff_min": -10}
                   | kwargs))


def test_softmax_rejects_bad_inputs() -> None:
    layer = Softmax.from_quantization(**_SOFTMAX_Q8)
    with pytest.raises(ValueError, match=r"x: dtype int16 not allowed, must be a numpy int8"):
        layer(np.zeros(4, np.int16))
    with pytest.raises(ValueError, match=r"x: shape \(\), must have at least 1 dim"):
        layer(np.array(3, dtype=np.int8))
    with pytest.raises(ValueError, match=r"x: shape \(2, 0\)"):
        layer(np.zeros((2, 0), np.int8))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"output_scale": 1 / 255}, r"output_scale=.*: TFLite's int8 logistic needs output scale "
                                r"1/256 exactly"),
    ({"activation_dtype": np.int16, "input_zero_point": 1}, r"input_zero_point=1"),
    ({"activation_dtype": np.int16, "input_zero_point": 0, "output_zero_point": 0},
     r"output_scale=0.00390625: TFLite's int16 logistic needs output scale 1/32768"),
    ({"activation_dtype": np.int16, "input_zero_point": 0, "output_zero_point": 0,
      "output_scale": 2.0**-15, "input_scale": 8.0}, r"input_scale=8.0: the input multiplier"),
])
def test_logistic_from_quantization_rejects(kwargs, match) -> None:
    q = {"input_scale": 0.05, "input_zero_point": 3, "output_scale": 1 / 256,
         "output_zero_point": -128}
    with pytest.raises(ValueError, match=match):
        Logistic.from_quantization(**(q | kwargs))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({}, r"lut=None: int8 logistic needs lut"),
    ({"lut": np.zeros(255, np.int8)}, r"lut: shape \(255,\) not allowed, must be \(256,\)"),
    ({"lut": np.full(256, 300, np.int16)}, r"lut \(int8\): value 300 out of range"),
    ({"lut": np.zeros(256, np.int8), "input_multiplier": 3},
     r"input_multiplier=3, input_left_shift=None: int8 logistic takes a lut only"),
    ({"activation_dtype": np.int16, "input_multiplier": 70000, "input_left_shift": 0},
     r"input_multiplier=70000: .*\[0, 65535\]"),
    ({"activation_dtype": np.int16, "input_multiplier": 3, "input_left_shift": 32},
     r"input_left_shift=32"),
    ({"activation_dtype": np.int16, "lut": np.zeros(256, np.int8)}, r"lut: int16 logistic"),
])
def test_logistic_rejects_bad_parameters(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        Logistic(**kwargs)


def test_every_new_op_has_a_json_spec_op_and_name() -> None:
    q = {"input_scale": 0.05, "input_zero_point": 0, "output_scale": 1 / 256,
         "output_zero_point": -128}
    q2 = {"input1_scale": 0.1, "input1_zero_point": 3, "input2_scale": 0.05,
          "input2_zero_point": -7, "output_scale": 0.2, "output_zero_point": 1}
    layers = [Add.from_quantization(**q2, name="add1"), Mul.from_quantization(**q2, name="m"),
              Mean.from_quantization(**q, name="gap"), Softmax.from_quantization(**q, name="sm"),
              Logistic.from_quantization(**q, name="sig")]
    for layer in layers:
        spec = json.loads(json.dumps(layer.spec()))
        assert spec["op"] == layer.op == type(layer).__name__
        assert layer.name is not None and layer.name in repr(layer)
