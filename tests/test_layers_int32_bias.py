"""16x8 Conv2D / DepthwiseConv2D with an int32 bias (issue 11, item 10).

TFLite's ``ConvPerChannel<int32_t>`` (the converter's int32-bias option) and CMSIS-NN's
``arm_convolve_s16`` with ``is_int32_bias`` (its int16xint8xint32 unit tests) sum int16
inputs times int8 weights into an int32, add the int32 bias and requantize with the
32-bit multiplier (double rounding, or single with CMSIS_NN_USE_SINGLE_ROUNDING), not
the 64-bit one with the multiplier rounded to 16 bits.  The oracle below is written
from that description in plain Python integers; the TFLite vectors are in
tests/golden/*_b32_*.npz (tests/test_tflite_golden.py).
"""

from __future__ import annotations

import numpy as np
import pytest

import edgeconv

RNG = np.random.default_rng(1032)


def _requantize_32(acc: int, multiplier: int, shift: int, rounding: str) -> int:
    """CMSIS-NN ``arm_nn_requantize`` on an int32 accumulator, both rounding modes."""
    if rounding == "single":
        # (acc * mult) >> (31 - shift), rounding half up
        total = 31 - shift
        return ((acc * multiplier) >> (total - 1)) + 1 >> 1
    value = acc * (1 << max(shift, 0))
    assert -(1 << 31) <= value < 1 << 31  # the shifts used here keep it in int32
    prod = value * multiplier
    nudge = (1 << 30) if prod >= 0 else 1 - (1 << 30)
    high = int((prod + nudge) / (1 << 31))  # truncating division, as C's int64 '/'
    right = max(-shift, 0)
    if not right:
        return high
    # rounding divide by 2**right, half away from zero
    mask = (1 << right) - 1
    remainder, threshold = high & mask, (mask >> 1) + (high < 0)
    return (high >> right) + (remainder > threshold)


def _wrap32(value: int) -> int:
    return (value + (1 << 31)) % (1 << 32) - (1 << 31)


def _oracle(x: np.ndarray, taps: list[list[tuple[int, int, int]]], bias: np.ndarray,
            mult: np.ndarray, shift: np.ndarray, rounding: str, amin: int,
            amax: int) -> np.ndarray:
    """``taps[pixel][o]``: the (flat input index, weight) pairs of output channel ``o``'s
    in-image taps at one output pixel; returns the outputs, one row per pixel."""
    out = []
    for pixel in taps:
        row = []
        for o, terms in enumerate(pixel):
            acc = _wrap32(sum(int(x.flat[i]) * w for i, w in terms) + int(bias[o]))
            y = _requantize_32(acc, int(mult[o]), int(shift[o]), rounding)
            row.append(min(max(y, amin), amax))
        out.append(row)
    return np.array(out, np.int64)


def _conv_taps(weights: np.ndarray, in_shape: tuple[int, int, int],
               pad: int) -> list[list[list[tuple[int, int]]]]:
    """Stride-1 Conv2D with ``pad`` zeros on every side: per output pixel, per channel."""
    h, w, c = in_shape
    o, kh, kw, _ = weights.shape
    pixels = []
    for oy in range(h + 2 * pad - kh + 1):
        for ox in range(w + 2 * pad - kw + 1):
            inside = [(ky, kx) for ky in range(kh) for kx in range(kw)
                      if 0 <= oy + ky - pad < h and 0 <= ox + kx - pad < w]
            pixels.append([[(((oy + ky - pad) * w + ox + kx - pad) * c + i,
                              int(weights[oc, ky, kx, i]))
                             for ky, kx in inside for i in range(c)] for oc in range(o)])
    return pixels


def _layer_args(n_out: int) -> dict:
    return dict(bias=RNG.integers(-(1 << 20), 1 << 20, n_out, dtype=np.int32),
                output_multiplier=RNG.integers(1 << 30, (1 << 31) - 1, n_out),
                output_shift=RNG.integers(-12, 3, n_out), activation_dtype=np.int16)


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_conv2d_int32_bias_matches_loop_oracle(rounding: str) -> None:
    weights = RNG.integers(-128, 128, (5, 3, 3, 3))
    args = _layer_args(5)
    layer = edgeconv.Conv2D(weights=weights, padding="same", rounding=rounding,
                            activation_min=-30000, activation_max=31000, **args)
    x = RNG.integers(-32768, 32768, (6, 5, 3)).astype(np.int16)
    want = _oracle(x, _conv_taps(weights, x.shape, 1), args["bias"],
                   args["output_multiplier"], args["output_shift"], rounding, -30000, 31000)
    assert layer.accumulator_dtype == np.int32
    for method in ("im2col", "direct"):
        got = layer.requantize(layer.accumulate(x, method=method)) if method == "direct" \
            else layer(x)
        np.testing.assert_array_equal(got.reshape(-1, 5), want)


def test_depthwise_int32_bias_matches_loop_oracle_as_grouped_conv() -> None:
    """DepthwiseConv2D (multiplier 2) = the grouped conv whose output channel c*2+m reads
    input channel c, with the same int32 kernel."""
    dw = RNG.integers(-128, 128, (1, 3, 3, 6))
    args = _layer_args(6)
    layer = edgeconv.DepthwiseConv2D(weights=dw, depth_multiplier=2, padding="same", **args)
    x = RNG.integers(-32768, 32768, (4, 5, 3)).astype(np.int16)
    dense = np.zeros((6, 3, 3, 3), np.int64)  # (O, KH, KW, C) with zeros off the group
    for o in range(6):
        dense[o, :, :, o // 2] = dw[0, :, :, o]
    want = _oracle(x, _conv_taps(dense, x.shape, 1), args["bias"], args["output_multiplier"],
                   args["output_shift"], "double", -32768, 32767)
    np.testing.assert_array_equal(layer(x).reshape(-1, 6), want)


def test_int32_accumulator_wraps() -> None:
    """576 taps of 32767 * 127 exceed int32: the sum wraps (as SMLAD's does), where the
    int64-bias kernel would not."""
    weights = np.full((2, 3, 3, 64), 127)
    args = _layer_args(2) | {"output_shift": np.array([-9, -1]),
                             "bias": np.array([1 << 20, 1 << 29], np.int32)}
    layer = edgeconv.Conv2D(weights=weights, padding="valid", **args)
    x = np.full((3, 3, 64), 32767, np.int16)
    want = _oracle(x, _conv_taps(weights, x.shape, 0), args["bias"], args["output_multiplier"],
                   args["output_shift"], "double", -32768, 32767)
    exact = 576 * 32767 * 127 + args["bias"].astype(np.int64)
    assert np.all(exact > np.iinfo(np.int32).max)
    np.testing.assert_array_equal(layer(x).reshape(-1, 2), want)


def test_int32_bias_takes_the_int8_shift_range() -> None:
    """The 32-bit multiplier path allows left shifts up to 30, as int8; the int64 one 7."""
    weights = RNG.integers(-128, 128, (2, 1, 1, 2))
    kwargs = dict(weights=weights, output_multiplier=np.full(2, 1 << 30),
                  output_shift=np.array([20, 0]), activation_dtype=np.int16)
    layer = edgeconv.Conv2D(bias=np.zeros(2, np.int32), **kwargs)
    assert layer.output_shift.tolist() == [20, 0]
    with pytest.raises(ValueError, match=r"output_shift: value 20 out of range, must be in "
                                         r"\[-31, 7\]"):
        edgeconv.Conv2D(bias=np.zeros(2, np.int64), **kwargs)
