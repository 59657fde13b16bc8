"""Weights, bias, multipliers and shifts of any integer dtype whose values fit are accepted
(issue 11, item 11); values that do not fit, floats and booleans are still refused."""

from __future__ import annotations

import numpy as np
import pytest

import edgeconv

RNG = np.random.default_rng(11)
WEIGHTS = RNG.integers(-128, 128, (3, 2, 2, 4))
BIAS = RNG.integers(-5000, 5000, 3)
MULT = RNG.integers(1 << 29, (1 << 31) - 1, 3)
SHIFT = np.array([-3, 0, 2])


def _conv(weights, bias, mult, shift, **kwargs) -> edgeconv.Conv2D:
    return edgeconv.Conv2D(weights=weights, bias=bias, output_multiplier=mult,
                           output_shift=shift, padding="valid", input_shape=(4, 4, 4),
                           **kwargs)


def _loop_conv(x: np.ndarray, *, bias_zero: int = 0) -> np.ndarray:
    """A separately written int8 valid conv (TFLite per-channel semantics, double
    rounding): accumulate, multiply by the quantized multiplier, clamp."""
    out = np.zeros((3, 3, 3), np.int8)
    for oy in range(3):
        for ox in range(3):
            for o in range(3):
                acc = int(np.sum(WEIGHTS[o].astype(np.int64) * x[oy:oy + 2, ox:ox + 2, :]))
                acc += int(BIAS[o]) + bias_zero
                shift = int(SHIFT[o])
                value = acc * (1 << max(shift, 0))
                prod = value * int(MULT[o])
                # SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT
                nudge = (1 << 30) if prod >= 0 else 1 - (1 << 30)
                high = int((prod + nudge) / (1 << 31))
                right = max(-shift, 0)
                if right:
                    mask = (1 << right) - 1
                    rem = high & mask
                    thresh = (mask >> 1) + (1 if high < 0 else 0)
                    high = (high >> right) + (1 if rem > thresh else 0)
                out[oy, ox, o] = min(max(high, -128), 127)
    return out


def test_plain_int64_arrays_are_accepted_and_converted():
    layer = _conv(WEIGHTS, BIAS, MULT, SHIFT)  # all int64, as np.array / integers() give
    assert (layer.weights.dtype, layer.bias.dtype) == (np.int8, np.int32)
    assert (layer.output_multiplier.dtype, layer.output_shift.dtype) == (np.int32, np.int32)
    x = RNG.integers(-128, 128, (4, 4, 4)).astype(np.int8)
    np.testing.assert_array_equal(layer(x), _loop_conv(x))


@pytest.mark.parametrize("dtypes", [
    (np.int16, np.int64, np.uint32, np.int8),
    (np.int32, np.int16, np.int64, np.int16),
])
def test_other_integer_dtypes_are_accepted(dtypes):
    wdt, bdt, mdt, sdt = dtypes
    bias = BIAS if np.iinfo(bdt).max >= 5000 else BIAS // 10
    layer = _conv(WEIGHTS.astype(wdt), bias.astype(bdt), MULT.astype(mdt), SHIFT.astype(sdt))
    np.testing.assert_array_equal(layer.bias, bias)
    np.testing.assert_array_equal(layer.weights, WEIGHTS)


def test_uint8_weights_within_int8_and_16x8_int64_bias():
    weights = np.abs(WEIGHTS).clip(0, 127).astype(np.uint8)
    layer = edgeconv.DepthwiseConv2D(
        weights=weights[:1], bias=np.array([1, 2, 3, 4]),
        output_multiplier=np.full(4, 1 << 30), output_shift=np.zeros(4, int),
        activation_dtype=np.int16)
    assert layer.weights.dtype == np.int8 and layer.bias.dtype == np.int64


@pytest.mark.parametrize(("changes", "argument", "text"), [
    (dict(weights=WEIGHTS + 128), "weights", "out of range, must be in [-128, 127]"),
    (dict(weights=WEIGHTS.astype(np.float64)), "weights", "float64"),
    (dict(weights=WEIGHTS > 0), "weights", "bool"),
    (dict(bias=np.full(3, 1 << 31, np.uint64)), "bias", "2147483648"),
    (dict(mult=MULT + (1 << 31)), "output_multiplier", "out of range"),
    (dict(mult=-MULT), "output_multiplier", "must be in [0, 2147483647]"),
    (dict(shift=np.array([0, 31, 0])), "output_shift", "[-31, 30]"),
    (dict(shift=[0, 1, 2]), "output_shift", "numpy array"),
])
def test_values_that_do_not_fit_are_still_refused(changes, argument, text):
    args = dict(weights=WEIGHTS, bias=BIAS, mult=MULT, shift=SHIFT) | changes
    with pytest.raises(ValueError) as info:
        _conv(**args)
    assert argument in str(info.value) and text in str(info.value), str(info.value)


@pytest.mark.parametrize(("dtype", "accumulator"), [
    (np.int32, np.int32), (np.int64, np.int64), (np.int16, np.int64), (np.uint16, np.int64)])
def test_16x8_bias_dtype_selects_the_kernel(dtype, accumulator):
    """16x8: an int32 array selects TFLite's int32-bias kernel (tests/test_layers_int32_bias.py),
    any other integer dtype whose values fit the default int64-bias kernel."""
    bias = np.abs(BIAS).astype(dtype)
    layer = _conv(WEIGHTS, bias, MULT, SHIFT, activation_dtype=np.int16)
    assert layer.accumulator_dtype == accumulator
    assert layer.bias.dtype == accumulator


def test_activations_stay_strict_and_say_how_to_convert():
    layer = _conv(WEIGHTS, BIAS, MULT, SHIFT)
    with pytest.raises(ValueError, match=r"x: dtype int64 .*astype\(np.int8\).*\[-128, 127\]"):
        layer(np.zeros((4, 4, 4), np.int64))
