"""Mean against TFLite's reference kernel (LiteRT, BUILTIN_REF) on the committed single-op
fixtures, against a scalar loop oracle for arbitrary parameters, and its argument checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litert_ops import fixture_ids, input_cases, load
from scalar_oracle import mbqm, wrap32

from edgeconv.layers import Mean


@pytest.mark.parametrize("fixture_id", fixture_ids("MEAN"))
def test_bit_exact_with_tflite_reference(fixture_id: str) -> None:
    fx = load(fixture_id)
    (x_t, _axis_t), out_t = fx.op_inputs, fx.output
    layer = Mean.from_quantization(
        input_scale=x_t.scale, input_zero_point=x_t.zero_point, output_scale=out_t.scale,
        output_zero_point=out_t.zero_point, activation_dtype=fx.dtype,
        axis=fx.info["axis"], keep_dims=fx.info["keep_dims"])
    distinct = set()
    cases = input_cases(fx, n_random=4, seed=len(fixture_id))
    rng = np.random.default_rng(7)
    info = np.iinfo(fx.dtype)
    for lo, hi in ((info.min, info.min + 40), (info.max - 40, info.max), (-3, 3)):
        cases.append([rng.integers(lo, hi, size=x_t.shape, endpoint=True, dtype=fx.dtype)])
    for inputs in cases:
        (x, _), want = fx.run(inputs)
        got = layer(x)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want, err_msg=fixture_id)
        distinct |= set(np.unique(want).tolist())
    assert len(distinct) > 8, "fixture outputs too uniform to test anything"


def test_fixtures_cover_keep_dims_and_int16() -> None:
    fixtures = [load(i) for i in fixture_ids("MEAN")]
    assert {f.info["keep_dims"] for f in fixtures} == {True, False}
    assert {f.dtype for f in fixtures} == {np.dtype(np.int8), np.dtype(np.int16)}
    assert any(f.op_inputs[0].scale != f.output.scale for f in fixtures)


def _oracle(layer: Mean, x: np.ndarray) -> np.ndarray:
    """Loop over the kept positions, summing the reduced ones, as TFLite's reference."""
    axes = layer.resolve_axis(x.ndim)
    kept = [i for i in range(x.ndim) if i not in axes]
    n = int(np.prod([x.shape[a] for a in axes]))
    k = min(n.bit_length() - 1, 32, 31 + layer.output_shift)
    mult = (layer.output_multiplier << k) // n
    shift = layer.output_shift - k
    lo, hi = np.iinfo(x.dtype).min, np.iinfo(x.dtype).max
    out = np.zeros(layer.output_shape_for(x.shape), np.int64)
    for pos in itertools.product(*(range(x.shape[i]) for i in kept)):
        total = 0
        for red in itertools.product(*(range(x.shape[a]) for a in axes)):
            idx = [0] * x.ndim
            for i, p in zip(kept, pos, strict=True):
                idx[i] = p
            for a, r in zip(axes, red, strict=True):
                idx[a] = r
            total = wrap32(total + int(x[tuple(idx)]))
        y = mbqm(wrap32(total - layer.input_zero_point * n), mult, shift, layer.rounding)
        full = list(pos)
        if layer.keep_dims:
            full = [0 if i in axes else pos[kept.index(i)] for i in range(x.ndim)]
        out[tuple(full)] = min(max(y + layer.output_zero_point, lo), hi)
    return out.astype(x.dtype)


@settings(max_examples=60, deadline=None)
@given(dt=st.sampled_from([np.int8, np.int16]), data=st.data())
def test_matches_scalar_oracle(dt, data) -> None:
    shape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=1, max_size=4)))
    ndim = len(shape)
    axis = data.draw(st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=3))
    zp = st.integers(-128, 127) if dt == np.int8 else st.just(0)
    layer = Mean(output_multiplier=data.draw(st.integers(1 << 30, (1 << 31) - 1)),
                 output_shift=data.draw(st.integers(-31, 4)), axis=axis,
                 keep_dims=data.draw(st.booleans()), input_zero_point=data.draw(zp),
                 output_zero_point=data.draw(zp), activation_dtype=dt,
                 rounding=data.draw(st.sampled_from(["double", "single"])))
    info = np.iinfo(dt)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)
    np.testing.assert_array_equal(layer(x), _oracle(layer, x))


def test_axis_forms() -> None:
    x = np.arange(24, dtype=np.int8).reshape(2, 3, 4)
    want = Mean(output_multiplier=1 << 30, output_shift=1, axis=(1, 2))(x)
    for axis in ([1, 2], np.array([1, 2], np.int32), (-2, -1), (2, 1, -1)):
        layer = Mean(output_multiplier=1 << 30, output_shift=1, axis=axis)
        np.testing.assert_array_equal(layer(x), want)
    assert want.tolist() == [6, 18]  # means of 0..11 and 12..23, halves rounded away
    assert Mean(output_multiplier=1 << 30, output_shift=1, axis=np.int64(0),
                keep_dims=True).output_shape_for((2, 3, 4)) == (1, 3, 4)


def test_int16_sum_wraps_like_int32() -> None:
    # 70,000 elements at 32767 exceed 2**31 in the int32 sum; TFLite wraps (UB in C but
    # two's complement in practice), so does the reference model.
    layer = Mean(output_multiplier=1 << 30, output_shift=1, axis=(0,),
                 activation_dtype=np.int16)
    x = np.full((70_000, 1), 32767, np.int16)
    np.testing.assert_array_equal(layer(x), _oracle(layer, x))


_OK = {"output_multiplier": 1 << 30, "output_shift": 0}


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"axis": 6}, r"axis=6: must be an integer or a sequence of integers in \[-6, 5\]"),
    ({"axis": (1, "2")}, r"axis=\(1, '2'\)"),
    ({"keep_dims": 1}, r"keep_dims=1: must be a bool"),
    ({"output_shift": -32}, r"output_shift=-32"),
    ({"output_multiplier": -1}, r"output_multiplier=-1"),
    ({"input_zero_point": 128}, r"input_zero_point=128"),
    ({"activation_dtype": np.int16, "output_zero_point": -1}, r"output_zero_point=-1"),
    ({"rounding": "floor"}, r"rounding='floor'"),
])
def test_rejects_bad_parameters(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        Mean(**(_OK | kwargs))


def test_rejects_bad_quantization_and_inputs() -> None:
    q = {"input_scale": 0.1, "input_zero_point": 0, "output_scale": 0.05,
         "output_zero_point": 0}
    with pytest.raises(ValueError, match=r"output_scale=-1: must be a finite float > 0"):
        Mean.from_quantization(**(q | {"output_scale": -1}))
    with pytest.raises(ValueError, match=r"activation='RELU': allowed are 'NONE'"):
        Mean.from_quantization(**q, activation="RELU")
    layer = Mean.from_quantization(**q, axis=(1, 2))
    with pytest.raises(ValueError, match=r"axis=\(1, 2\): axis 2 out of range for an input "
                                         r"of 2 dims"):
        layer(np.zeros((2, 3), np.int8))
    with pytest.raises(ValueError, match=r"x: dtype float64 not allowed"):
        layer(np.zeros((1, 2, 2, 1)))
    with pytest.raises(ValueError, match=r"x: shape \(0, 2, 2, 1\) is empty"):
        layer(np.zeros((0, 2, 2, 1), np.int8))
