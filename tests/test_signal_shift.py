"""``shift=n``: "shift right by n, round to nearest" on Q-format filters (1-D and 2-D),
against an integer recomputation written here with Python integers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeconv import signal
from edgeconv.signal import SignalFilter
from edgeconv.signal2d import SignalFilter2D

DTYPES = {"q7": np.int8, "q15": np.int16, "q31": np.int32}
DEFAULT_ACC = {"q7": 32, "q15": 64, "q31": 64}


def _requant(total: int, *, bits: int, shift: int, nearest: bool, saturate: bool,
             out_bits: int) -> int:
    """One exact sum to the output: rounding add and wrap in a ``bits``-bit register,
    arithmetic shift, then saturate or keep the low ``out_bits`` bits."""
    def wrap(v: int, width: int) -> int:
        v &= (1 << width) - 1
        return v - (1 << width) if v >> (width - 1) else v

    v = wrap(total, bits)
    if nearest and shift:
        v = wrap(v + (1 << (shift - 1)), bits)
    v >>= shift
    lo, hi = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1
    return max(lo, min(hi, v)) if saturate else wrap(v, out_bits)


def _full_1d(x: list[int], h: list[int]) -> list[int]:
    out = [0] * (len(x) + len(h) - 1)
    for i, xv in enumerate(x):
        for j, hv in enumerate(h):
            out[i + j] += xv * hv
    return out


@settings(max_examples=60, deadline=None)
@given(fmt=st.sampled_from(list(DTYPES)), data=st.data())
def test_convolve_shift_matches_an_integer_recomputation(fmt: str, data) -> None:
    info = np.iinfo(DTYPES[fmt])
    x = data.draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=1,
                           max_size=9))
    h = data.draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=1,
                           max_size=5))
    bits = DEFAULT_ACC[fmt]
    shift = data.draw(st.integers(0, 63))
    nearest = data.draw(st.booleans())
    saturate = fmt != "q31"
    got = signal.convolve(np.array(x, DTYPES[fmt]), np.array(h, DTYPES[fmt]), shift=shift,
                          rounding="nearest" if nearest else "floor")
    out_bits = np.iinfo(DTYPES[fmt]).bits
    want = [_requant(t, bits=bits, shift=shift, nearest=nearest, saturate=saturate,
                     out_bits=out_bits) for t in _full_1d(x, h)]
    assert got.tolist() == want


def test_q15_through_q14_taps_rounds_to_nearest() -> None:
    """The README's case: a q15 signal through Q1.14 taps [0.5, 1.0, 0.5]."""
    x = np.array([1000, -2001, 3], np.int16)
    h = np.array([8192, 16384, 8192], np.int16)  # 0.5, 1.0, 0.5 in Q1.14
    got = signal.convolve(x, h, shift=14, rounding="nearest")
    # exact values 500, -0.5, -1499.5, -997.5, 1.5: ties round up (toward +infinity)
    assert got.tolist() == [500, 0, -1499, -997, 2]


def test_default_shift_is_the_fraction_bits_and_keeps_specs() -> None:
    x = np.arange(-8, 8, dtype=np.int16) * 1000
    h = np.array([300, -200, 100], np.int16)
    np.testing.assert_array_equal(signal.convolve(x, h), signal.convolve(x, h, shift=15))
    plain = SignalFilter(h, fmt="q15", input_length=16)
    same = SignalFilter(h, fmt="q15", input_length=16, shift=15)
    other = SignalFilter(h, fmt="q15", input_length=16, shift=12)
    assert plain.shift == 15 and "shift" not in plain.spec()
    assert same.spec() == plain.spec() and other.spec()["shift"] == 12
    np.testing.assert_array_equal(other(x), signal.convolve(x, h, shift=12))


def test_convolve2d_shift_matches_an_integer_recomputation() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (5, 6))
    h = rng.integers(-128, 128, (2, 3))
    for shift in (0, 1, 4, 12, 31):
        got = signal.convolve2d(x.astype(np.int8), h.astype(np.int8), shift=shift,
                                rounding="nearest")
        for i in range(5 + 2 - 1):
            for j in range(6 + 3 - 1):
                total = sum(int(x[i - k, j - m]) * int(h[k, m])
                            for k in range(2) for m in range(3)
                            if 0 <= i - k < 5 and 0 <= j - m < 6)
                assert got[i, j] == _requant(total, bits=32, shift=shift, nearest=True,
                                             saturate=True, out_bits=8), (shift, i, j)


def test_filter2d_layer_takes_shift() -> None:
    kernel = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.int8)
    layer = SignalFilter2D(kernel, fmt="q7", input_shape=(6, 6), mode="same",
                           rounding="nearest", shift=4)
    x = np.random.default_rng(0).integers(-128, 128, (6, 6)).astype(np.int8)
    np.testing.assert_array_equal(layer(x), signal.convolve2d(
        x, kernel, "same", rounding="nearest", shift=4))
    assert layer.spec()["shift"] == 4


@pytest.mark.parametrize("call, message", [
    (lambda: signal.convolve(np.ones(3, np.int16), np.ones(2, np.int16), shift=-1),
     r"shift=-1: allowed range is \[0, 63\]"),
    (lambda: signal.convolve(np.ones(3, np.int8), np.ones(2, np.int8), shift=64),
     r"shift=64: allowed range is \[0, 63\]"),
    (lambda: signal.convolve(np.ones(3, np.int32), np.ones(2, np.int32), shift=96,
                             accumulator=96), r"shift=96: allowed range is \[0, 95\]"),
    (lambda: signal.convolve(np.ones(3), np.ones(2), shift=3),
     r"shift=3: only for integer \(Q-format\) inputs"),
    (lambda: SignalFilter(np.ones(2, np.int16), input_length=4, shift=True),
     r"shift=True: must be an integer"),
    (lambda: SignalFilter2D(np.ones((2, 2), np.int8), fmt="q7", input_shape=(3, 3),
                            accumulator=16, shift=64),
     r"shift=64: allowed range is \[0, 63\]"),
])
def test_bad_shift_is_one_clear_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
