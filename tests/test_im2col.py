"""im2col against a naive gather; col2im is its adjoint and counts window coverage."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import edgeconv


def naive_im2col(x: np.ndarray, k: tuple[int, int], s: tuple[int, int], pads: tuple,
                 d: tuple[int, int], pad_value: int) -> np.ndarray:
    h, w, c = x.shape
    (top, bottom), (left, right) = pads
    oh = (h + top + bottom - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (w + left + right - d[1] * (k[1] - 1) - 1) // s[1] + 1
    out = np.empty((oh, ow, k[0] * k[1] * c), dtype=x.dtype)
    for oy in range(oh):
        for ox in range(ow):
            row = []
            for ky in range(k[0]):
                for kx in range(k[1]):
                    iy, ix = oy * s[0] - top + ky * d[0], ox * s[1] - left + kx * d[1]
                    inside = 0 <= iy < h and 0 <= ix < w
                    row.extend(x[iy, ix] if inside else [pad_value] * c)
            out[oy, ox] = row
    return out


@st.composite
def geometries(draw: st.DrawFn) -> tuple:
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(2))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6)),
             draw(st.integers(1, 3)))
    for axis in range(2):
        assume(shape[1 + axis] + sum(pads[axis]) >= d[axis] * (k[axis] - 1) + 1)
    return k, s, pads, d, shape, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=80, deadline=None)
@given(geometries())
def test_im2col_matches_naive_gather(geo: tuple) -> None:
    k, s, pads, d, shape, seed = geo
    x = np.random.default_rng(seed).integers(-128, 128, size=shape).astype(np.int8)
    cols = edgeconv.im2col(x, k, s, pads, d, pad_value=-3)
    assert cols.dtype == np.int8
    for n in range(shape[0]):
        np.testing.assert_array_equal(cols[n], naive_im2col(x[n], k, s, pads, d, -3))
    np.testing.assert_array_equal(edgeconv.im2col(x[0], k, s, pads, d, -3), cols[0])


@settings(max_examples=80, deadline=None)
@given(geometries())
def test_col2im_is_the_adjoint(geo: tuple) -> None:
    """<im2col(x), y> == <x, col2im(y)> exactly (integers)."""
    k, s, pads, d, shape, seed = geo
    rng = np.random.default_rng(seed)
    x = rng.integers(-50, 50, size=shape)
    cols = edgeconv.im2col(x, k, s, pads, d)
    y = rng.integers(-50, 50, size=cols.shape)
    back = edgeconv.col2im(y, shape, k, s, pads, d)
    assert back.shape == shape and back.dtype == np.int64
    assert int(np.sum(cols * y)) == int(np.sum(x * back))


def test_col2im_sums_overlapping_patches() -> None:
    """3x3 stride 1 pad 1 on 4x4: col2im(ones) counts the windows covering each pixel."""
    cols = np.ones((4, 4, 9), dtype=np.float64)
    cover = edgeconv.col2im(cols, (4, 4, 1), 3, 1, ((1, 1), (1, 1)))
    expected = np.array([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]])
    np.testing.assert_array_equal(cover[:, :, 0], expected)
    assert cover.dtype == np.float64


def test_unpadded_1x1_returns_a_copy() -> None:
    x = np.arange(12, dtype=np.int16).reshape(2, 2, 3)
    cols = edgeconv.im2col(x, 1)
    cols[0, 0, 0] = 99
    assert x[0, 0, 0] == 0


@pytest.mark.parametrize(("call", "argument"), [
    (lambda x: edgeconv.im2col(x, 0), "kernel_size"),
    (lambda x: edgeconv.im2col(x, 2, stride=(1, 0)), "stride"),
    (lambda x: edgeconv.im2col(x, 2, dilation=-1), "dilation"),
    (lambda x: edgeconv.im2col(x, 2, pads=((0, -1), (0, 0))), "pads"),
    (lambda x: edgeconv.im2col(x, 2, pads=(1, 1, 1)), "pads"),
    (lambda x: edgeconv.im2col(x[0], 2), r"^x: shape \(3, 1\)"),
    (lambda x: edgeconv.im2col(x, 5), r"^x: spatial shape \(3, 3\)"),
    (lambda x: edgeconv.col2im(np.zeros((2, 2, 4)), (3, 3, 1), 2, 2), "cols"),
])
def test_bad_arguments(call: Callable[[np.ndarray], object], argument: str) -> None:
    x = np.zeros((3, 3, 1), dtype=np.int8)
    with pytest.raises(ValueError, match=argument):
        call(x)
