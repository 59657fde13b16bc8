"""edgeconv.signal2d: float semantics vs scipy.signal, Q-format semantics vs a loop oracle
written here, exact separable passes, SignalFilter2D, match_template vs OpenCV and exact
rational NCC, the PNG pictures, bad input."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction

import cv2
import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from edgeconv import signal as sig
from edgeconv import signal2d as s2

FMT = {"q7": (np.int8, 7, 32, True), "q15": (np.int16, 15, 64, True),
       "q31": (np.int32, 31, 64, False)}
MODES, BOUNDARIES = ("full", "same", "valid"), ("fill", "symmetric", "wrap")
KINDS = ("convolve", "correlate")
# (image shape, kernel shape): odd and even kernels, 1-wide, kernel larger than the image
SHAPES = [((6, 7), (3, 3)), ((5, 6), (2, 4)), ((4, 5), (4, 5)), ((3, 4), (5, 6)),
          ((1, 5), (1, 2)), ((6, 1), (3, 1)), ((2, 3), (4, 3))]
SCIPY = {"convolve": scipy.signal.convolve2d, "correlate": scipy.signal.correlate2d}
OURS = {"convolve": sig.convolve2d, "correlate": sig.correlate2d}


def valid_ok(x_shape, h_shape) -> bool:
    return all(m >= n for m, n in zip(x_shape, h_shape, strict=True)) or all(
        m <= n for m, n in zip(x_shape, h_shape, strict=True))


# --------------------------------------------------------------------- loop oracle

def wrap_bits(v: int, bits: int) -> int:
    return ((v + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))


def sample(x, i: int, j: int, boundary: str, fill: int):
    """x read at (i, j), possibly outside, one index at a time."""
    rows, cols = len(x), len(x[0])
    if boundary == "fill":
        return x[i][j] if 0 <= i < rows and 0 <= j < cols else fill
    if boundary == "wrap":
        return x[i % rows][j % cols]

    def reflect(k: int, size: int) -> int:  # mirror about the edges until inside
        while not 0 <= k < size:
            k = -1 - k if k < 0 else 2 * size - 1 - k
        return k
    return x[reflect(i, rows)][reflect(j, cols)]


def oracle(kind, x, h, mode, boundary="fill", fill=0, fmt=None, rounding="floor",
           saturate=None, bits=None) -> np.ndarray:
    """Scalar 2-D convolution/correlation; with ``fmt``, every MAC wraps to ``bits`` and
    the sum is rounded, shifted and saturated/wrapped as the 1-D CMSIS-DSP loops do."""
    x = [[int(v) for v in row] for row in np.asarray(x)]
    h = [[int(v) for v in row] for row in np.asarray(h)]
    (m1, m2), (n1, n2) = (len(x), len(x[0])), (len(h), len(h[0]))
    if mode == "valid":
        boundary, fill = "fill", 0

    def start_len(m, n):
        if mode == "full":
            return 0, m + n - 1
        if mode == "same":
            return ((n - 1) // 2 if kind == "convolve" else n // 2), m
        return min(m, n) - 1, abs(m - n) + 1
    (r0, rows), (c0, cols) = start_len(m1, n1), start_len(m2, n2)
    out = np.zeros((rows, cols), dtype=object)
    for a, b in itertools.product(range(rows), range(cols)):
        i, j = a + r0, b + c0
        acc = 0
        for k, q in itertools.product(range(n1), range(n2)):
            if kind == "convolve":
                term = h[k][q] * sample(x, i - k, j - q, boundary, fill)
            else:
                term = h[k][q] * sample(x, i + k - (n1 - 1), j + q - (n2 - 1), boundary, fill)
            acc = acc + term if fmt is None else wrap_bits(acc + term, bits)
        if fmt is not None:
            dtype, shift, _, _ = FMT[fmt]
            if rounding == "nearest":
                acc = wrap_bits(acc + (1 << (shift - 1)), bits)
            acc >>= shift
            lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
            acc = min(max(acc, lo), hi) if saturate else wrap_bits(acc, 8 * np.dtype(dtype)
                                                                 .itemsize)
        out[a, b] = acc
    return out


def q_case(fmt, x_shape, h_shape, seed, full_scale=False):
    dtype = FMT[fmt][0]
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    lo, hi = (info.min, info.max + 1) if full_scale else (info.min // 4, info.max // 4)
    return (rng.integers(lo, hi, size=x_shape).astype(dtype),
            rng.integers(lo, hi, size=h_shape).astype(dtype),
            int(rng.integers(info.min, info.max + 1)))


# ------------------------------------------------------------------ float vs scipy

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("x_shape,h_shape", SHAPES)
def test_float_matches_scipy(kind, mode, boundary, x_shape, h_shape):
    rng = np.random.default_rng(hash((x_shape, h_shape)) % 2**32)
    x = rng.integers(-9, 10, size=x_shape).astype(np.float64)  # exact in float64
    h = rng.integers(-9, 10, size=h_shape).astype(np.float64)
    if mode == "valid" and not valid_ok(x_shape, h_shape):
        with pytest.raises(ValueError):
            SCIPY[kind](x, h, mode, boundary, 1.5)
        with pytest.raises(ValueError, match="mode='valid'"):
            OURS[kind](x, h, mode, boundary=boundary, fillvalue=1.5)
        return
    expected = SCIPY[kind](x, h, mode, boundary, 1.5)
    got = OURS[kind](x, h, mode, boundary=boundary, fillvalue=1.5)
    assert got.dtype == np.float64 and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    # the oracle used for the Q formats has the same geometry (integer data, no shift)
    if mode != "valid" or boundary == "fill":
        ints = oracle(kind, x.astype(int), h.astype(int), mode, boundary, 3)
        np.testing.assert_array_equal(ints.astype(np.float64),
                                      SCIPY[kind](x, h, mode, boundary, 3))


@settings(max_examples=60, deadline=None)
@given(st.tuples(st.integers(1, 7), st.integers(1, 7)),
       st.tuples(st.integers(1, 6), st.integers(1, 6)),
       st.sampled_from(KINDS), st.sampled_from(MODES), st.sampled_from(BOUNDARIES),
       st.integers(0, 2**32 - 1))
def test_float_property_scipy(x_shape, h_shape, kind, mode, boundary, seed):
    rng = np.random.default_rng(seed)
    x, h = rng.normal(size=x_shape), rng.normal(size=h_shape).astype(np.float32)
    if mode == "valid" and not valid_ok(x_shape, h_shape):
        return
    expected = SCIPY[kind](x, h, mode, boundary, -0.25)
    np.testing.assert_allclose(OURS[kind](x, h, mode, boundary=boundary, fillvalue=-0.25),
                               expected, rtol=1e-12, atol=1e-12)


def test_float_separable_pair_matches_scipy():
    x = np.random.default_rng(5).normal(size=(9, 8))
    col, row = np.array([1.0, 2.0, 1.0]), np.array([0.5, 0.0, -0.5, 0.25])
    for kind, mode, boundary in itertools.product(KINDS, MODES, BOUNDARIES):
        expected = SCIPY[kind](x, np.outer(col, row), mode, boundary)
        np.testing.assert_allclose(OURS[kind](x, (col, row), mode, boundary=boundary),
                                   expected, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------- Q formats vs oracle

@pytest.mark.parametrize("fmt", FMT)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_q_matches_oracle(fmt, kind, mode, boundary):
    _, _, bits, sat = FMT[fmt]
    for n, (x_shape, h_shape) in enumerate(SHAPES[:5]):
        x, h, fill = q_case(fmt, x_shape, h_shape, seed=n, full_scale=fmt == "q31")
        got = OURS[kind](x, h, mode, boundary=boundary, fillvalue=fill, separable=False)
        expected = oracle(kind, x, h, mode, boundary, fill, fmt, "floor", sat, bits)
        assert got.dtype == x.dtype
        np.testing.assert_array_equal(got, expected.astype(np.int64))


@pytest.mark.parametrize("fmt,rounding,saturate,accumulator", [
    ("q7", "nearest", True, 16),     # accumulator wraps
    ("q7", "floor", False, 20),      # output wraps
    ("q15", "nearest", False, 33),
    ("q15", "floor", True, 96),      # wider than 64 bits: exact Python integers
    ("q31", "nearest", True, 64),    # full-scale q31: int64 products, sums modulo 2**64
    ("q31", "floor", False, 128),
    ("q31", "nearest", True, 40),
])
def test_q_numerics_options(fmt, rounding, saturate, accumulator):
    for kind, mode, boundary in itertools.product(KINDS, MODES, BOUNDARIES):
        x, h, fill = q_case(fmt, (5, 6), (3, 4), seed=accumulator, full_scale=True)
        got = OURS[kind](x, h, mode, boundary=boundary, fillvalue=fill, rounding=rounding,
                         saturate=saturate, accumulator=accumulator)
        expected = oracle(kind, x, h, mode, boundary, fill, fmt, rounding, saturate,
                          accumulator)
        np.testing.assert_array_equal(got, expected.astype(np.int64))


def test_q_full_scale_q31_wraps_past_int64():
    """-2**31 everywhere: each product is 2**62, four of them pass 2**63."""
    x = np.full((3, 3), -2**31, dtype=np.int32)
    h = np.full((2, 2), -2**31, dtype=np.int32)
    for bits in (64, 65, 128):
        got = sig.convolve2d(x, h, "valid", accumulator=bits, saturate=True)
        acc = wrap_bits(4 * 2**62, bits)
        assert (got == min(max(acc >> 31, -2**31), 2**31 - 1)).all()


@settings(max_examples=50, deadline=None)
@given(st.tuples(st.integers(1, 6), st.integers(1, 6)),
       st.tuples(st.integers(1, 4), st.integers(1, 4)),
       st.sampled_from(list(FMT)), st.sampled_from(KINDS), st.sampled_from(MODES),
       st.sampled_from(BOUNDARIES), st.sampled_from(["floor", "nearest"]),
       st.integers(0, 2**32 - 1))
def test_q_property_oracle(x_shape, h_shape, fmt, kind, mode, boundary, rounding, seed):
    if mode == "valid" and not valid_ok(x_shape, h_shape):
        return
    _, _, bits, sat = FMT[fmt]
    x, h, fill = q_case(fmt, x_shape, h_shape, seed, full_scale=True)
    got = OURS[kind](x, h, mode, boundary=boundary, fillvalue=fill, rounding=rounding)
    expected = oracle(kind, x, h, mode, boundary, fill, fmt, rounding, sat, bits)
    np.testing.assert_array_equal(got, expected.astype(np.int64))


def test_q_kernel_1x1_and_1d_rows_match_1d_convolve():
    """A 1 x N kernel on a 1 x M image is the 1-D convolution (same numerics)."""
    rng = np.random.default_rng(11)
    x = rng.integers(-2**15, 2**15, size=(1, 40)).astype(np.int16)
    h = rng.integers(-2**15, 2**15, size=(1, 7)).astype(np.int16)
    for mode in ("full", "same", "valid"):
        np.testing.assert_array_equal(sig.convolve2d(x, h, mode, rounding="nearest")[0],
                                      sig.convolve(x[0], h[0], mode, rounding="nearest"))


# ------------------------------------------------------------------------- separable

SEPARABLE = [  # (h_col, h_row) integer factors
    ([1, 2, 1], [1, 0, -1]),           # Sobel
    ([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]),  # binomial 5x5
    ([3, -5], [2, 9, -4, 1]),          # even, signed
    ([7], [1, -2, 3]),                 # one row
]


@pytest.mark.parametrize("fmt,accumulator", [("q7", 16), ("q7", None), ("q15", 24),
                                             ("q15", None), ("q31", 64), ("q31", 100)])
@pytest.mark.parametrize("col,row", SEPARABLE)
def test_separable_passes_identical(fmt, accumulator, col, row):
    """Detected, declared and direct give the same bits, also with accumulators that
    wrap (the row-pass intermediate is kept modulo 2**accumulator, unshifted)."""
    dtype = FMT[fmt][0]
    info = np.iinfo(dtype)
    scale = max(1, info.max // (max(map(abs, col)) * max(map(abs, row)) * 2))
    col_q = (np.array(col) * scale).astype(dtype)
    row_q = np.array(row, dtype=dtype)
    kernel = np.outer(col_q.astype(np.int64), row_q).astype(dtype)
    assert s2.rank1_factors(kernel) is not None
    x = np.random.default_rng(len(col)).integers(info.min, info.max + 1,
                                                 size=(7, 9)).astype(dtype)
    for kind, mode, boundary in itertools.product(KINDS, MODES, BOUNDARIES):
        opts = dict(boundary=boundary, fillvalue=int(info.min), accumulator=accumulator,
                    rounding="nearest")
        direct = OURS[kind](x, kernel, mode, separable=False, **opts)
        np.testing.assert_array_equal(OURS[kind](x, kernel, mode, **opts), direct)
        np.testing.assert_array_equal(OURS[kind](x, (col_q, row_q), mode, **opts), direct)
        if accumulator in (16, 24) and mode == "full" and boundary == "fill":
            bits = accumulator
            expected = oracle(kind, x, kernel, mode, boundary, int(info.min), fmt,
                              "nearest", FMT[fmt][3], bits)
            np.testing.assert_array_equal(direct, expected.astype(np.int64))


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(list(FMT)), st.integers(1, 4), st.integers(1, 4),
       st.sampled_from([8, 13, 17, 31, 32, 47, 63, 64, 65, 96]), st.sampled_from(KINDS),
       st.sampled_from(MODES), st.sampled_from(BOUNDARIES), st.integers(0, 2**32 - 1))
def test_separable_property(fmt, n1, n2, accumulator, kind, mode, boundary, seed):
    """Random integer factors, accumulators that wrap or exceed 64 bits: the two passes
    equal the direct 2-D computation bit for bit."""
    dtype = FMT[fmt][0]
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    limit = int(math.isqrt(info.max))
    col = rng.integers(-limit, limit + 1, size=n1).astype(dtype)
    row = rng.integers(-limit, limit + 1, size=n2).astype(dtype)
    x = rng.integers(info.min, info.max + 1, size=(5, 6)).astype(dtype)
    opts = dict(boundary=boundary, fillvalue=int(info.max), accumulator=accumulator)
    kernel = np.outer(col.astype(np.int64), row).astype(dtype)
    np.testing.assert_array_equal(OURS[kind](x, (col, row), mode, **opts),
                                  OURS[kind](x, kernel, mode, separable=False, **opts))


def test_rank1_factors_exact():
    kernel = np.outer([2, -4, 6], [3, 0, -9]).astype(np.int16)
    col, row = s2.rank1_factors(kernel)
    np.testing.assert_array_equal(np.outer(col, row), kernel)
    assert math.gcd(*map(int, row)) == 1
    assert s2.rank1_factors(np.array([[1, 2], [3, 4]], np.int8)) is None
    assert s2.rank1_factors(np.zeros((3, 3), np.int8)) is None
    # rank 1 over the rationals but with the first row not primitive: still integer
    assert s2.rank1_factors(np.array([[2, 4], [3, 6]], np.int8)) is not None
    near = kernel.copy()
    near[2, 2] += 1
    assert s2.rank1_factors(near) is None
    with pytest.raises(ValueError, match="h: shape"):
        s2.rank1_factors(np.ones((3, 3)))


def test_intermediate_bits_bound():
    """The worst row-pass value, -2**(b-1) * sum|h_row| in magnitude, needs exactly
    intermediate_bits bits."""
    for fmt, row in [("q7", [1, 2, 1]), ("q15", [1, 4, 6, 4, 1]), ("q15", [2**15 - 1] * 3),
                     ("q31", [1, -1])]:
        dtype = FMT[fmt][0]
        worst = -int(np.iinfo(dtype).min) * sum(abs(v) for v in row)
        w = s2.intermediate_bits(np.array(row), fmt)
        assert -(2 ** (w - 1)) <= -worst and worst <= 2 ** (w - 1) - 1
        assert worst > 2 ** (w - 2) - 1  # w - 1 bits would not hold it


# ------------------------------------------------------------------- layer object

def test_signal_filter2d_layer():
    kernel = (np.outer([1, 2, 1], [1, 0, -1]) * 4096).astype(np.int16)
    layer = sig.SignalFilter2D(kernel, kind="correlate", mode="same", fmt="q15",
                               boundary="symmetric", input_shape=(10, 12), name="sobel_x",
                               rounding="nearest")
    assert layer.factors is not None and layer.intermediate_bits == 18
    assert layer.output_shape == (10, 12) and layer.output_shape_for((4, 5)) == (4, 5)
    x = np.random.default_rng(2).integers(-2**15, 2**15, size=(3, 10, 12)).astype(np.int16)
    out = layer(x)
    assert out.shape == (3, 10, 12) and out.dtype == np.int16
    for img, got in zip(x, out, strict=True):
        expected = oracle("correlate", img, kernel, "same", "symmetric", 0, "q15", "nearest",
                          True, 64)
        np.testing.assert_array_equal(got, expected.astype(np.int64))
    np.testing.assert_array_equal(layer(x[0]), out[0])
    spec = layer.spec()
    json.dumps(spec)
    declared = sig.SignalFilter2D((np.array([4096, 8192, 4096], np.int16),
                                   np.array([1, 0, -1], np.int16)), kind="correlate",
                                  mode="same", boundary="symmetric", input_shape=(10, 12),
                                  name="sobel_x", rounding="nearest")
    assert declared.spec() == spec  # canonical, however the kernel was given
    direct = sig.SignalFilter2D(kernel, separable=False, input_shape=(10, 12))
    assert direct.factors is None and direct.spec()["factors"] is None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary,fill", [("fill", 0), ("fill", 5), ("wrap", 0)])
def test_signal_filter2d_macs(mode, boundary, fill):
    kernel = np.array([[1, 2], [3, 4], [5, 7]], np.int8)  # rank 2: computed in 2-D
    layer = sig.SignalFilter2D(kernel, mode=mode, fmt="q7", boundary=boundary,
                               fillvalue=fill, input_shape=(5, 6))
    # count (output, tap) pairs; a tap reading the zero border forms no product
    ones = np.ones((5, 6), np.int64)
    if mode == "valid" or (boundary, fill) == ("fill", 0):
        expected = int(scipy.signal.convolve2d(ones, np.ones((3, 2), np.int64), mode).sum())
    else:
        expected = int(np.prod(layer.output_shape)) * kernel.size
    assert layer.macs() == expected
    sep = sig.SignalFilter2D(np.outer([1, 2, 1], [1, -1]).astype(np.int8), mode=mode,
                             fmt="q7", input_shape=(5, 6))
    h_out, w_out = sep.output_shape
    assert sep.macs() == (h_out + 2) * w_out * 2 + h_out * w_out * 3


# ------------------------------------------------------------------ template matching

def pasted_scene(shape=(64, 80), at=(37, 21), size=(8, 8), noise=6, seed=0):
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    scene = 90 + 40 * np.sin(rows / 5.0) * np.cos(cols / 7.0) + rng.normal(0, noise, shape)
    patch = rng.integers(0, 256, size=size)
    scene[at[0]:at[0] + size[0], at[1]:at[1] + size[1]] = patch
    scene += rng.normal(0, noise, shape)
    return np.clip(np.rint(scene), 0, 255).astype(np.uint8), patch.astype(np.uint8)


def exact_ncc(window, template) -> Fraction | None:
    """NCC of one window as an exact Fraction squared with its sign, from the plain
    definition with means subtracted (rationals, no integral images)."""
    w = [Fraction(int(v)) for v in window.ravel()]
    t = [Fraction(int(v)) for v in template.ravel()]
    mw, mt = sum(w) / len(w), sum(t) / len(t)
    num = sum((a - mw) * (b - mt) for a, b in zip(w, t, strict=True))
    den = sum((a - mw) ** 2 for a in w) * sum((b - mt) ** 2 for b in t)
    return None if den == 0 else (num, den)


# NCC stated bounds: vs the exact value, Q15 round-to-nearest (2**-16), 2**-15 at +1.0
# where 32768 saturates; vs OpenCV's float32 TM_CCOEFF_NORMED that plus OpenCV's own error.
NCC_EXACT_BOUND = 2.0 ** -15
NCC_OPENCV_BOUND = 2.0 ** -15 + 2e-5


@pytest.mark.parametrize("at,size,seed", [((37, 21), (8, 8), 0), ((0, 72), (8, 8), 1),
                                          ((50, 3), (12, 6), 2), ((56, 0), (8, 8), 3)])
def test_ncc_vs_opencv_and_location(at, size, seed):
    scene, patch = pasted_scene(at=at, size=size, seed=seed)
    found = sig.match_template(scene, patch, "ncc")
    ref = cv2.matchTemplate(scene, patch, cv2.TM_CCOEFF_NORMED)
    assert found.scores.shape == ref.shape and found.scores.dtype == np.int16
    assert found.frac_bits == 15
    err = np.abs(found.scores_float() - ref.astype(np.float64)).max()
    assert err <= NCC_OPENCV_BOUND, err
    _, _, _, cv_loc = cv2.minMaxLoc(ref)
    assert found.location == at == (cv_loc[1], cv_loc[0])
    assert found.box == (*at, *size)
    assert found.score == int(found.scores.max())


def test_ncc_exact_rounding():
    """Every Q15 score is the exact NCC rounded to nearest (checked with rationals)."""
    rng = np.random.default_rng(4)
    image = rng.integers(-128, 128, size=(9, 11)).astype(np.int8)
    image[0:3, 0:4] = 17  # flat windows score 0
    template = rng.integers(-128, 128, size=(3, 4)).astype(np.int8)
    found = sig.match_template(image, template, "ncc")
    for (r, c), q in np.ndenumerate(found.scores):
        exact = exact_ncc(image[r:r + 3, c:c + 4], template)
        if exact is None:
            assert q == 0
            continue
        num, den = exact
        # (|q| - 1/2)^2 <= 2**30 * num^2 / den <= (|q| + 1/2)^2, sign of num
        value = Fraction(2 ** 30) * num * num / den
        assert (abs(q) - Fraction(1, 2)) ** 2 <= value
        assert value <= (abs(q) + Fraction(1, 2)) ** 2 or q == 2**15 - 1
        assert q == 0 or (q > 0) == (num > 0)
        assert abs(q / 2**15 - float(num) / math.sqrt(den)) <= NCC_EXACT_BOUND
    assert found.scores[0, 0] == 0
    flat = sig.match_template(image, np.full((3, 4), 5, np.int8), "ncc")
    assert not flat.scores.any()


def test_ncc_perfect_match_saturates():
    image = np.random.default_rng(8).integers(0, 256, size=(10, 10)).astype(np.uint8)
    found = sig.match_template(image, image[2:6, 3:8], "ncc")
    assert found.location == (2, 3) and found.score == 2**15 - 1


def test_ssd_sad_vs_loops_and_opencv():
    scene, patch = pasted_scene(shape=(30, 34), at=(11, 19), seed=5)
    ssd = sig.match_template(scene, patch, "ssd")
    sad = sig.match_template(scene, patch, "sad")
    h, w = patch.shape
    loop_ssd = np.array([[int(((scene[r:r + h, c:c + w].astype(np.int64) - patch) ** 2).sum())
                          for c in range(34 - w + 1)] for r in range(30 - h + 1)])
    loop_sad = np.array([[int(np.abs(scene[r:r + h, c:c + w].astype(np.int64) - patch).sum())
                          for c in range(34 - w + 1)] for r in range(30 - h + 1)])
    np.testing.assert_array_equal(ssd.scores, loop_ssd)
    np.testing.assert_array_equal(sad.scores, loop_sad)
    assert ssd.scores.dtype == np.int64 and ssd.frac_bits is None
    ref = cv2.matchTemplate(scene, patch, cv2.TM_SQDIFF)
    np.testing.assert_allclose(ssd.scores, ref, rtol=1e-5, atol=1.0)
    assert ssd.location == sad.location == (11, 19)
    assert ssd.score == int(loop_ssd.min())


def test_match_1d_signal():
    rng = np.random.default_rng(9)
    signal = rng.integers(-2000, 2000, size=300).astype(np.int16)
    pattern = signal[123:143].copy()
    signal = (signal + rng.integers(-50, 51, size=300)).astype(np.int16)
    for method in ("ncc", "ssd", "sad"):
        found = sig.match_template(signal, pattern, method)
        assert found.location == (123,) and found.scores.shape == (281,)
        assert found.box == (123, 20)
    row = np.clip(signal // 16 + 128, 0, 255).astype(np.uint8)
    pat = row[123:143].copy()
    ours = sig.match_template(row, pat, "ncc").scores_float()
    ref = cv2.matchTemplate(row[None, :], pat[None, :], cv2.TM_CCOEFF_NORMED)[0]
    assert np.abs(ours - ref).max() <= NCC_OPENCV_BOUND


def test_match_float_inputs_vs_opencv():
    scene, patch = pasted_scene(seed=6)
    scene_f, patch_f = scene.astype(np.float32) / 255, patch.astype(np.float32) / 255
    found = sig.match_template(scene_f, patch_f, "ncc")
    ref = cv2.matchTemplate(scene_f, patch_f, cv2.TM_CCOEFF_NORMED)
    assert found.scores.dtype == np.float64 and found.frac_bits is None
    assert np.abs(found.scores - ref).max() <= 1e-4
    assert found.location == (37, 21)


# --------------------------------------------------------------------------- pictures

def test_demo_images(tmp_path):
    paths = s2.demo_images(tmp_path, shape=(96, 112), template_at=(61, 30), scale=2)
    assert [p.name for p in paths] == ["input.png", "sobel.png", "blur.png",
                                       "match_scores.png", "match_box.png"]
    sizes = {}
    for path in paths:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("L"))
            sizes[path.stem] = im.size
        assert arr.std() > 10 and len(np.unique(arr)) > 20, path  # not blank
    assert sizes["input"] == sizes["sobel"] == sizes["blur"] == sizes["match_box"] \
        == (224, 192)
    assert sizes["match_scores"] == (2 * (112 - 7), 2 * (96 - 7))
    with Image.open(paths[-1]) as im:
        rgb = np.asarray(im.convert("RGB")).astype(int)
    red = (rgb[..., 0] == 255) & (rgb[..., 1] == 0) & (rgb[..., 2] == 0)
    rows, cols = np.nonzero(red)
    # the drawn box is the template's 8x8 footprint at (61, 30), scaled by 2
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (122, 137, 60, 75)
    assert red.sum() == 4 * 16 - 4


def test_synthetic_image_deterministic():
    a, b = s2.synthetic_image((40, 50)), s2.synthetic_image((40, 50))
    assert a.dtype == np.uint8 and a.shape == (40, 50) and np.array_equal(a, b)
    assert not np.array_equal(a, s2.synthetic_image((40, 50), seed=1))


def test_save_images_box_and_errors(tmp_path):
    img = np.arange(20 * 30, dtype=np.int16).reshape(20, 30)
    (path,) = s2.save_images(tmp_path / "sub", {"ramp": img}, boxes={"ramp": [(2, 3, 4, 5)]})
    with Image.open(path) as im:
        assert im.mode == "RGB" and im.size == (30, 20)
    with pytest.raises(ValueError, match="boxes"):
        s2.save_images(tmp_path, {"a": img}, boxes={"b": [(0, 0, 1, 1)]})
    with pytest.raises(ValueError, match="name '../x'"):
        s2.save_images(tmp_path, {"../x": img})
    with pytest.raises(ValueError, match="scale=0"):
        s2.save_images(tmp_path, {"a": img}, scale=0)
    with pytest.raises(ValueError, match="a: shape"):
        s2.save_images(tmp_path, {"a": np.zeros(5)})


# -------------------------------------------------------------------------- bad input

Q = np.ones((4, 4), np.int16)


@pytest.mark.parametrize("call,match", [
    (lambda: sig.convolve2d(Q, Q, "nope"), "mode='nope'"),
    (lambda: sig.convolve2d(Q, Q, boundary="reflect"), "boundary='reflect'"),
    (lambda: sig.convolve2d(Q, Q, fmt="q8"), "fmt='q8'"),
    (lambda: sig.convolve2d(Q, Q.astype(np.int8)), "must all be int16"),
    (lambda: sig.convolve2d(Q, Q, fmt="q7"), "fmt='q7'"),
    (lambda: sig.convolve2d(np.ones(4, np.int16), Q), "x: shape"),
    (lambda: sig.convolve2d(Q, np.ones((2, 2, 2), np.int16)), "h: shape"),
    (lambda: sig.convolve2d(Q, np.ones((0, 2), np.int16)), "h: shape"),
    (lambda: sig.convolve2d(Q.astype(complex), Q), "x: dtype"),
    (lambda: sig.convolve2d(Q, Q, fillvalue=40000), "fillvalue=40000"),
    (lambda: sig.convolve2d(Q, Q, fillvalue=0.5), "fillvalue=0.5"),
    (lambda: sig.convolve2d(Q, Q, fillvalue=True), "fillvalue=True"),
    (lambda: sig.convolve2d(Q, Q, fillvalue="0"), "fillvalue='0'"),
    (lambda: sig.convolve2d(Q, Q, rounding="up"), "rounding='up'"),
    (lambda: sig.convolve2d(Q, Q, accumulator=4), "accumulator=4"),
    (lambda: sig.convolve2d(Q, Q, saturate=1), "saturate=1"),
    (lambda: sig.convolve2d(Q * 1.0, Q, fmt="q15"), "fmt='q15'"),
    (lambda: sig.convolve2d(Q * 1.0, Q, rounding="floor"), "rounding='floor'"),
    (lambda: sig.convolve2d(np.ones((4, 2)), np.ones((2, 4)), "valid"), "mode='valid'"),
    (lambda: sig.convolve2d(Q, Q, separable="yes"), "separable='yes'"),
    (lambda: sig.convolve2d(Q, np.array([[1, 2], [3, 4]], np.int16), separable=True),
     "separable=True"),
    (lambda: sig.convolve2d(Q * 1.0, Q * 1.0, separable=True), "separable=True"),
    (lambda: sig.convolve2d(Q, (Q[0], Q[0], Q[0])), "h: a tuple of 3"),
    (lambda: sig.convolve2d(Q, (Q[0], Q[0].astype(np.int8))), "h: h_col dtype"),
    (lambda: sig.convolve2d(Q, (Q, Q[0])), "h_col: shape"),
    (lambda: sig.convolve2d(Q, (np.full(2, 300, np.int16), np.full(2, 300, np.int16))),
     "outside the int16 range"),
    (lambda: sig.convolve2d(Q, (Q[0], Q[0]), separable=False), "separable=False"),
    (lambda: sig.correlate2d([[1, 2], [3]], Q), "x: not convertible"),
    (lambda: sig.SignalFilter2D(Q, input_shape=(4,)), "input_shape=\\(4,\\)"),
    (lambda: sig.SignalFilter2D(Q, input_shape=(4, 0)), "input_shape=\\(4, 0\\)"),
    (lambda: sig.SignalFilter2D(Q, input_shape=(4, True)), "input_shape=\\(4, True\\)"),
    (lambda: sig.SignalFilter2D(Q, fmt="q7", input_shape=(4, 4)), "kernel: dtype int16"),
    (lambda: sig.SignalFilter2D(Q, kind="conv", input_shape=(4, 4)), "kind='conv'"),
    (lambda: sig.SignalFilter2D(Q, name="1x", input_shape=(4, 4)), "name='1x'"),
    (lambda: sig.SignalFilter2D(Q, boundary="x", input_shape=(4, 4)), "boundary='x'"),
    (lambda: sig.SignalFilter2D(np.ones((2, 5), np.int16), mode="valid",
                                input_shape=(4, 4)), "mode='valid'"),
    (lambda: sig.SignalFilter2D(Q, input_shape=(4, 4))(Q.astype(np.int8)), "x: dtype int8"),
    (lambda: sig.SignalFilter2D(Q, input_shape=(4, 4))(np.ones((4, 5), np.int16)),
     "x: shape \\(4, 5\\)"),
    (lambda: sig.SignalFilter2D(Q, input_shape=(4, 4)).output_shape_for((3, -1)),
     "input_shape=\\(3, -1\\)"),
    (lambda: sig.match_template(Q, Q, "ccorr"), "method='ccorr'"),
    (lambda: sig.match_template(Q, Q[0]), "template: 1-D"),
    (lambda: sig.match_template(Q, np.ones((5, 2), np.int16)), "template: shape \\(5, 2\\)"),
    (lambda: sig.match_template(Q.astype(np.int32), Q), "image: dtype int32"),
    (lambda: sig.match_template(Q, np.ones((2, 2, 2), np.int16)), "template: shape"),
    (lambda: s2.intermediate_bits([1, 2], "q16"), "fmt='q16'"),
    (lambda: s2.output_shape2d("convolve", "full", (3, 3), (0, 1)), "h_shape=\\(0, 1\\)"),
    (lambda: s2.demo_images("/nonexistent-never", template_at=(200, 0)),
     "template_at=\\(200, 0\\)"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_save_images_without_pillow(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "PIL", None)  # import PIL fails
    with pytest.raises(ModuleNotFoundError, match=r"edgeconv\[images\]"):
        s2.save_images(tmp_path, {"a": np.ones((2, 2))})
