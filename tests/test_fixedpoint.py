"""edgeconv.fixedpoint against scalar Python-int transcriptions of the C semantics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edgeconv import fixedpoint as fp

I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1


# ----------------------------------------------------------- scalar C transcriptions

def c_div(a: int, b: int) -> int:
    """C99 integer division (truncation toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def c_wrap32(v: int) -> int:
    return ((v + (1 << 31)) % (1 << 32)) - (1 << 31)


def ref_srdhm(a: int, b: int) -> int:
    if a == b == I32_MIN:
        return I32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return c_div(ab + nudge, 1 << 31)


def ref_rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def ref_mbqm_double(x: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return ref_rdbpot(ref_srdhm(c_wrap32(x * (1 << left)), m), right)


def ref_mbqm_single_tflite(x: int, m: int, shift: int) -> int:
    total = 31 - shift
    return c_wrap32((x * m + (1 << (total - 1))) >> total)


def ref_requantize_single_cmsis(x: int, m: int, shift: int) -> int:
    """CMSIS-NN arm_nn_requantize with CMSIS_NN_USE_SINGLE_ROUNDING."""
    result = c_wrap32((x * m) >> (31 - shift - 1))
    return (result + 1) >> 1


def ref_mbqm_int64_tflite(x: int, m: int, shift: int) -> int:
    reduced = (m + (1 << 15)) >> 16 if m < 0x7FFF0000 else 0x7FFF
    total = 15 - shift
    return c_wrap32((x * reduced + (1 << (total - 1))) >> total)


def ref_requantize_s64_cmsis(x: int, m: int, shift: int) -> int:
    """CMSIS-NN arm_nn_requantize_s64 with REDUCE_MULTIPLIER."""
    reduced = (m + (1 << 15)) >> 16 if m < 0x7FFF0000 else 0x7FFF
    result = c_wrap32((x * reduced) >> (14 - shift))
    return (result + 1) >> 1


def ref_quantize_multiplier(real: float) -> tuple[int, int]:
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    scaled = q * (1 << 31)
    q_fixed = int(math.floor(abs(scaled) + 0.5)) * (1 if scaled > 0 else -1)  # std::round
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


# ------------------------------------------------------------------------ strategies

int32s = st.one_of(st.sampled_from([I32_MIN, I32_MIN + 1, -1, 0, 1, I32_MAX - 1, I32_MAX]),
                   st.integers(I32_MIN, I32_MAX))
multipliers = st.one_of(st.sampled_from([0, 1, 1 << 30, (1 << 30) + 1, 0x7FFF0000 - 1,
                                         0x7FFF0000, I32_MAX]),
                        st.integers(0, I32_MAX))
shifts = st.integers(-31, 7)


def _batch(draw_list: list[tuple[int, int, int]]):
    a, m, s = zip(*draw_list, strict=True)
    return np.array(a, np.int64), np.array(m, np.int64), np.array(s, np.int64)


triples = st.lists(st.tuples(int32s, multipliers, shifts), min_size=1, max_size=200)


# ------------------------------------------------------------------------------ tests

@settings(max_examples=200, deadline=None)
@given(triples)
def test_double_rounding_matches_scalar(tr):
    a, m, s = _batch(tr)
    got = fp.multiply_by_quantized_multiplier(a, m, s)
    assert got.dtype == np.int32
    assert got.tolist() == [ref_mbqm_double(*t) for t in tr]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(int32s, st.one_of(int32s, multipliers), st.integers(-31, 30)),
                min_size=1, max_size=200))
def test_double_rounding_full_ranges(tr):
    a, m, s = _batch(tr)
    got = fp.multiply_by_quantized_multiplier(a, m, s)
    assert got.tolist() == [ref_mbqm_double(*t) for t in tr]


@settings(max_examples=200, deadline=None)
@given(triples)
@example([(-2147483647, 1073741825, 0)])  # exact == -2**30: CMSIS-NN's intermediate wraps
def test_single_rounding_matches_scalar_and_cmsis_in_range(tr):
    a, m, s = _batch(tr)
    got = fp.multiply_by_quantized_multiplier(a, m, s, rounding="single").tolist()
    assert got == [ref_mbqm_single_tflite(*t) for t in tr]
    for g, (x, m_, s_) in zip(got, tr, strict=True):
        exact = (x * m_ + (1 << (30 - s_))) >> (31 - s_)
        # CMSIS-NN's intermediate (x * m) >> (30 - s) is about 2 * exact and must fit
        # int32; at exact == -2**30 it can be -2**31 - 1 and wrap, so that edge is out.
        if -(1 << 30) < exact < (1 << 30):
            assert g == ref_requantize_single_cmsis(x, m_, s_)


acc64s = st.one_of(st.sampled_from([-(1 << 47), (1 << 47) - 1, -1, 0, 1]),
                   st.integers(-(1 << 47), (1 << 47) - 1))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(acc64s, multipliers, shifts), min_size=1, max_size=200))
def test_int64_requantize_matches_tflite_and_cmsis(tr):
    a, m, s = _batch(tr)
    got = fp.multiply_by_quantized_multiplier_int64(a, m, s).tolist()
    assert got == [ref_mbqm_int64_tflite(*t) for t in tr]
    for g, (x, m_, s_) in zip(got, tr, strict=True):
        reduced = (m_ + (1 << 15)) >> 16 if m_ < 0x7FFF0000 else 0x7FFF
        exact = (x * reduced + (1 << (14 - s_))) >> (15 - s_)
        if -(1 << 30) < exact < (1 << 30):  # the same int32 edge as the single rounding
            assert g == ref_requantize_s64_cmsis(x, m_, s_)


def test_known_values_double():
    # 0.5 as (1<<30, 0): 100 * 2**30 + 2**30 = 101 * 2**30, / 2**31 -> 50 (trunc of 50.5).
    acc = np.array([100, -100, 3, -3, I32_MIN, I32_MAX])
    got = fp.multiply_by_quantized_multiplier(acc, 1 << 30, 0)
    # 3*0.5 = 1.5 rounds up to 2; -1.5: (-3*2**30 + 1 - 2**30) / 2**31 truncates to -1.
    assert got.tolist() == [50, -50, 2, -1, -(1 << 30), 1 << 30]
    # INT32_MIN * INT32_MIN saturates in the high-mul: (1<<31)-1, then no right shift.
    assert fp.multiply_by_quantized_multiplier(I32_MIN, I32_MIN, 0).tolist() == I32_MAX
    # shift -1 with 0.5: 100 -> 50 -> RoundingDivideByPOT(50, 1) = 25; 3 -> 2 -> 1.
    assert fp.multiply_by_quantized_multiplier([100, 3], 1 << 30, -1).tolist() == [25, 1]
    # left shift 2 before the high mul: 5 * 4 * 0.5 = 10.
    assert fp.multiply_by_quantized_multiplier(5, 1 << 30, 2).tolist() == 10
    # the left shift wraps in int32: 2**30 << 1 = INT32_MIN, * 0.5 -> -2**30.
    assert fp.multiply_by_quantized_multiplier(1 << 30, 1 << 30, 1).tolist() == -(1 << 30)


def test_known_values_single_and_int64():
    # single: (-3 * 2**30 + 2**30) >> 31 = -2**31 >> 31 = -1; (3 * 2**30 + 2**30) >> 31 = 2.
    got = fp.multiply_by_quantized_multiplier([-3, 3, -1], 1 << 30, 0, rounding="single")
    assert got.tolist() == [-1, 2, 0]  # ties go up: -1.5 -> -1, -0.5 -> 0
    # int64: reduced(1<<30) = 1<<14; total shift 15: (1000 * 2**14 + 2**14) >> 15 = 500.
    assert fp.multiply_by_quantized_multiplier_int64([1000, -1001], 1 << 30, 0).tolist() == [
        500, -500]  # -1001 * 2**14 + 2**14 = -1000 * 2**14 -> -500
    assert fp.reduce_multiplier([0x7FFF0000 - 1, 0x7FFF0000, I32_MAX]).tolist() == [
        0x7FFF, 0x7FFF, 0x7FFF]
    assert fp.reduce_multiplier([(1 << 30) + (1 << 15)]).tolist() == [(1 << 14) + 1]


def test_per_channel_broadcast_last_axis():
    acc = np.array([[100, 100, 100], [-7, -7, -7]])
    m = np.array([1 << 30, 1 << 30, I32_MAX])
    s = np.array([0, -2, 1])
    got = fp.multiply_by_quantized_multiplier(acc, m, s)
    expect = [[ref_mbqm_double(int(a), int(mm), int(ss))
               for a, mm, ss in zip(row, m, s, strict=True)] for row in acc]
    assert got.tolist() == expect
    assert got.tolist()[0] == [50, 13, 200]  # 100/2 = 50; 100/8 = 12.5 -> 13; ~1.0 * 200


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.floats(1e-12, 1e-8),
                 st.sampled_from([0.5, 1.0, -0.5, 2.0 ** -31, 2.0 ** -32, 1 - 2.0 ** -40,
                                  0.75 - 2.0 ** -34, 1e-12])))
def test_quantize_multiplier_matches_scalar(real):
    assert fp.quantize_multiplier(real) == ref_quantize_multiplier(real)


def test_quantize_multiplier_known_values():
    assert fp.quantize_multiplier(0.5) == (1 << 30, 0)  # frexp(0.5) = (0.5, 0)
    assert fp.quantize_multiplier(1.0) == (1 << 30, 1)  # frexp(1) = (0.5, 1)
    assert fp.quantize_multiplier(0.75) == (3 << 29, 0)  # 0.75 * 2**31
    assert fp.quantize_multiplier(0.0) == (0, 0)
    # 1 - 2**-40: frexp = (1 - 2**-40, 0); * 2**31 rounds to 2**31 -> halved, shift 1.
    assert fp.quantize_multiplier(1 - 2.0 ** -40) == (1 << 30, 1)
    # 2**-31: frexp = (0.5, -30) -> fine; 2**-33: shift -32 < -31 -> flushed to (0, 0).
    assert fp.quantize_multiplier(2.0 ** -31) == (1 << 30, -30)
    assert fp.quantize_multiplier(2.0 ** -33) == (0, 0)
    m, s = fp.quantize_multiplier_array([0.5, 1.0, 0.0, 2.0 ** -33])
    assert m.dtype == np.int32 and s.dtype == np.int32
    assert m.tolist() == [1 << 30, 1 << 30, 0, 0] and s.tolist() == [0, 1, 0, 0]


def test_saturate_and_wrap():
    x = np.array([-200, -129, -128, 0, 127, 128, 300, 70000])
    assert fp.saturate(x, np.int8).tolist() == [-128, -128, -128, 0, 127, 127, 127, 127]
    assert fp.saturate(x, "int16").tolist() == [-200, -129, -128, 0, 127, 128, 300, 32767]
    assert fp.wrap(x, "int8").tolist() == [56, 127, -128, 0, 127, -128, 44, 112]
    assert fp.wrap([1 << 31, -(1 << 31) - 1], np.int32).tolist() == [I32_MIN, I32_MAX]
    big = np.array([1 << 70, -(1 << 70) - 5], dtype=object)
    assert fp.saturate(big, np.int32).tolist() == [I32_MAX, I32_MIN]
    assert fp.wrap(big, np.int32).tolist() == [0, -5]
    assert fp.saturate(x, "int8").dtype == np.int8


@given(st.lists(st.integers(-(1 << 40), 1 << 40), min_size=1, max_size=50),
       st.sampled_from(["int8", "int16", "int32"]))
def test_saturate_wrap_property(vals, name):
    bits = int(name[3:])
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    assert fp.saturate(vals, name).tolist() == [min(max(v, lo), hi) for v in vals]
    assert fp.wrap(vals, name).tolist() == [((v - lo) % (1 << bits)) + lo for v in vals]


def test_to_q_roundings():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999999999999994, -0.7]) / 2 ** 15
    assert fp.to_q(x, 15, np.int16, "nearest").tolist() == [1, 2, 3, -1, -2, -3, 0, -1]
    assert fp.to_q(x, 15, np.int16, "nearest_even").tolist() == [0, 2, 2, 0, -2, -2, 0, -1]
    assert fp.to_q(x, 15, np.int16, "floor").tolist() == [0, 1, 2, -1, -2, -3, 0, -1]
    assert fp.to_q(x, 15, np.int16, "trunc").tolist() == [0, 1, 2, 0, -1, -2, 0, 0]
    assert fp.to_q([1.0, -1.0, 5.0, -5.0], 7, "int8").tolist() == [127, -128, 127, -128]
    assert fp.to_q([1.0, -1.0, 1e300], 31, np.int32).tolist() == [I32_MAX, I32_MIN, I32_MAX]
    assert fp.to_q([3.25], 2, np.int8).tolist() == [13]  # Q5.2
    assert fp.from_q(np.array([-32768, 16384], np.int16), 15).tolist() == [-1.0, 0.5]


def test_float_to_q_matches_cmsisdsp():
    dsp = pytest.importorskip("cmsisdsp")
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-1.2, 1.2, 2000),
                        np.arange(-40, 41) / 2 ** 15, np.arange(-40, 41) / 2 ** 7,
                        [1.0, -1.0, 0.0, 2.0 ** -31, -(2.0 ** -31) * 1.5]]).astype(np.float32)
    assert fp.float_to_q15(x).tolist() == dsp.arm_float_to_q15(x).tolist()
    assert fp.float_to_q7(x).tolist() == dsp.arm_float_to_q7(x).tolist()
    assert fp.float_to_q31(x).tolist() == dsp.arm_float_to_q31(x).tolist()


@pytest.mark.parametrize("call, match", [
    (lambda: fp.saturate([1], "float32"), "dtype"),
    (lambda: fp.saturate([1], "int64"), "dtype"),
    (lambda: fp.to_q([0.1], 15, np.int16, "up"), "rounding"),
    (lambda: fp.to_q([0.1], -1, np.int16), "frac_bits"),
    (lambda: fp.to_q([np.nan], 3, np.int16), "NaN"),
    (lambda: fp.multiply_by_quantized_multiplier([1], 1 << 30, 31), "shift=31"),
    (lambda: fp.multiply_by_quantized_multiplier([1], 1 << 30, -32), "shift=-32"),
    (lambda: fp.multiply_by_quantized_multiplier([1 << 31], 1, 0), "acc"),
    (lambda: fp.multiply_by_quantized_multiplier([1], 1 << 31, 0), "multiplier"),
    (lambda: fp.multiply_by_quantized_multiplier([1], 1, 0, rounding="x"), "rounding"),
    (lambda: fp.multiply_by_quantized_multiplier([1.0], 1, 0), "acc"),
    (lambda: fp.multiply_by_quantized_multiplier(np.ones((2, 3), int), [1, 2], 0), "shape"),
    (lambda: fp.multiply_by_quantized_multiplier_int64([1 << 47], 1, 0), "acc"),
    (lambda: fp.multiply_by_quantized_multiplier_int64([1], 1, 8), "shift=8"),
    (lambda: fp.quantize_multiplier(float("inf")), "finite"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_vectorized_speed_100k():
    rng = np.random.default_rng(0)
    acc = rng.integers(I32_MIN, I32_MAX, 100_000, endpoint=True)
    m = rng.integers(0, I32_MAX, 8, endpoint=True)
    s = rng.integers(-31, 8, 8)
    out = fp.multiply_by_quantized_multiplier(acc.reshape(-1, 8), m, s)
    sample = rng.integers(0, acc.size, 300)
    for i in sample:
        assert out.ravel()[i] == ref_mbqm_double(int(acc[i]), int(m[i % 8]), int(s[i % 8]))


# ------------------------------------------------ Requantizer (validated once, unchecked)

REFS = {"double": ref_mbqm_double, "single": ref_mbqm_single_tflite,
        "int64": ref_mbqm_int64_tflite}


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(REFS)), st.integers(1, 6),
       st.lists(st.tuples(st.one_of(int32s, multipliers), st.integers(-31, 30)),
                min_size=1, max_size=8),
       st.data())
def test_requantizer_per_channel_matches_scalar(mode, rows, params, data):
    """The unchecked per-channel call (2-D accumulators, int32 or int64 input dtype)."""
    if mode == "int64":
        params = [(m, min(s, 7)) for m, s in params]
    m = np.array([p[0] for p in params], np.int64)
    s = np.array([p[1] for p in params], np.int64)
    values = acc64s if mode == "int64" else int32s
    acc = np.array(data.draw(st.lists(st.lists(values, min_size=len(params),
                                               max_size=len(params)),
                                      min_size=rows, max_size=rows)), np.int64)
    if mode != "int64":
        acc = acc.astype(np.int32)
    got = fp.Requantizer(m, s, mode)(acc)
    assert got.dtype == np.int64 and got.shape == acc.shape
    assert got.tolist() == [[REFS[mode](int(a), int(mm), int(ss))
                             for a, mm, ss in zip(row, m, s, strict=True)] for row in acc]


def test_double_rounding_ties_in_both_steps():
    """Exact ties of the high-mul and of RoundingDivideByPOT, both signs, every right
    shift, including high-mul products in [-2**30, 0) (where the branch-free form reads
    the sign of the product instead of the high word)."""
    cases = []
    for right in range(1, 32):
        half = 1 << (right - 1)
        for k in (0, 1, 3):
            for h in (k * (1 << right) + half, -(k * (1 << right) + half)):
                for a in (2 * h - 1, 2 * h, 2 * h + 1):  # with m = 2**30: high = ceil(a/2)
                    if I32_MIN <= a <= I32_MAX:
                        cases += [(a, m, -right) for m in (1 << 30, (1 << 30) - 1, 1, 3)]
    cases += [(-1, 1 << 30, -s) for s in range(32)] + [(-2, (1 << 29) + 1, -5)]
    a, m, s = (np.array(c, np.int64) for c in zip(*cases, strict=True))
    got = fp.multiply_by_quantized_multiplier(a, m, s)
    assert got.tolist() == [ref_mbqm_double(*c) for c in cases]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(int32s, int32s, st.integers(0, 31)), min_size=1, max_size=100))
def test_gemmlowp_primitives_match_scalar(tr):
    a, b, e = _batch(tr)
    high = fp.saturating_rounding_doubling_high_mul(a, b)
    assert high.tolist() == [ref_srdhm(x, y) for x, y, _ in tr]
    assert fp.rounding_divide_by_pot(a, e).tolist() == [ref_rdbpot(x, k) for x, _, k in tr]


@pytest.mark.parametrize("call, match", [
    (lambda: fp.Requantizer(1, 0, "half"), "rounding='half'"),
    (lambda: fp.Requantizer([1, 2, 3], [0, 0], "double"), "multiplier/shift shapes"),
    (lambda: fp.Requantizer(1, 8, "int64"), "shift=8"),
    (lambda: fp.Requantizer(1, 0, "single").checked([1 << 31]), "acc"),
])
def test_requantizer_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("mode", sorted(REFS))
@pytest.mark.parametrize("uniform", [False, True])
def test_requantizer_layouts(mode, uniform):
    """NHWC accumulators (tiled per-channel constants), an item above the tiling limit,
    uniform parameters (kept as scalars) and parameters wider than ``acc``."""
    rng = np.random.default_rng([7, uniform])
    lo, hi = (-(1 << 47), (1 << 47) - 1) if mode == "int64" else (I32_MIN, I32_MAX)
    m = rng.integers(0, I32_MAX, 6, endpoint=True)
    s = rng.integers(-31, 8 if mode == "int64" else 31, 6)
    if uniform:
        m, s = np.full(6, m[0]), np.full(6, s[0])
    rq = fp.Requantizer(m, s, mode)

    def expect(a: np.ndarray) -> list:
        flat = [REFS[mode](int(v), int(m[i % 6]), int(s[i % 6]))
                for i, v in enumerate(a.ravel())]
        return np.array(flat).reshape(a.shape).tolist()

    acc = rng.integers(lo, hi, (3, 4, 5, 6), endpoint=True)
    assert rq(acc).tolist() == expect(acc)
    assert rq(acc[:, ::2]).tolist() == expect(acc[:, ::2])  # non-contiguous view
    big = rng.integers(lo, hi, (2, 1, 11000, 6), endpoint=True)  # item 66000 > _TILE_MAX
    got = rq(big)
    assert got.shape == big.shape
    assert got[:, :, :40].tolist() == expect(big[:, :, :40])
    narrow = rng.integers(lo, hi, (2, 1), endpoint=True)
    wide = rq(narrow)
    assert wide.shape == (2, 6)
    assert wide.tolist() == expect(np.broadcast_to(narrow, (2, 6)))
