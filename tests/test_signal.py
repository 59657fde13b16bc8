"""edgeconv.signal: float semantics vs numpy/scipy, Q-format semantics vs a scalar
transcription of the CMSIS-DSP generic C loops, properties, validation, SignalFilter."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeconv import signal as sig

FMT = {"q7": (np.int8, 7), "q15": (np.int16, 15), "q31": (np.int32, 31)}


# ---------------------------------------------------------------- scalar references

def wrap_bits(v: int, bits: int) -> int:
    return ((v + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))


def finisher(fmt: str, rounding: str = "floor", saturate: bool | None = None,
             bits: int | None = None):
    """Accumulator (exact Python int) -> output value, step by step as the C does."""
    dtype, shift = FMT[fmt]
    out_bits = 8 * np.dtype(dtype).itemsize
    bits = bits or {"q7": 32, "q15": 64, "q31": 64}[fmt]
    saturate = (fmt != "q31") if saturate is None else saturate

    def finish(terms: list[int]) -> int:
        acc = 0
        for t in terms:  # wrap after every MAC, like a C accumulator of `bits` bits
            acc = wrap_bits(acc + t, bits)
        if rounding == "nearest":
            acc = wrap_bits(acc + (1 << (shift - 1)), bits)
        v = acc >> shift
        lo, hi = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1
        return min(max(v, lo), hi) if saturate else wrap_bits(v, out_bits)
    return finish


def ref_conv_full(a, b, finish) -> list[int]:
    """arm_conv_* generic loop: z[i] = sum_j a[j] * b[i - j]."""
    a, b = [int(v) for v in a], [int(v) for v in b]
    return [finish([a[j] * b[i - j] for j in range(i + 1) if i - j < len(b) and j < len(a)])
            for i in range(len(a) + len(b) - 1)]


def ref_correlate_full(a, b, finish) -> list[int]:
    """arm_correlate_* generic loop, including its pointer games; unwritten slots are 0."""
    a, b = [int(v) for v in a], [int(v) for v in b]
    len_a, len_b = len(a), len(b)
    out = [0] * (2 * max(len_a, len_b) - 1)
    in1, in2, end2 = a, b, len_b - 1
    tot = len_a + len_b - 2
    dst, step = 0, 1
    if len_a > len_b:
        dst = len_a - len_b
    elif len_a < len_b:
        in1, in2, end2 = b, a, len_a - 1
        dst, step = tot, -1
        len_a, len_b = len_b, len_a
    for i in range(tot + 1):
        terms = [in1[j] * in2[end2 - (i - j)] for j in range(i + 1)
                 if i - j < len_b and j < len_a]
        out[dst] = finish(terms)
        dst += step
    return out


def scipy_window(kind: str, mode: str, m: int, n: int) -> tuple[int, int]:
    """Where scipy's ``mode`` output sits inside its 'full' output (found by matching)."""
    rng = np.random.default_rng(1000 * m + n)
    x, h = rng.standard_normal(m), rng.standard_normal(n)
    func = getattr(scipy.signal, kind)
    full, part = func(x, h, "full"), func(x, h, mode)
    starts = [k for k in range(full.size - part.size + 1)
              if np.allclose(full[k:k + part.size], part, rtol=0, atol=1e-12)]
    assert len(starts) == 1
    return starts[0], part.size


def ref_filter(kind, x, h, mode, fmt, stride=1, **opts) -> list[int]:
    finish = finisher(fmt, **opts)
    m, n = len(x), len(h)
    if mode == "full":
        out = (ref_conv_full(x, h, finish) if kind == "convolve"
               else ref_correlate_full(x, h, finish))
    else:
        core = ref_conv_full(x, h if kind == "convolve" else h[::-1], finish)
        start, size = scipy_window(kind, mode, m, n)
        out = core[start:start + size]
    return out[::stride]


# ------------------------------------------------------------------------ strategies

def q_arrays(fmt: str, max_len: int = 12):
    dtype = FMT[fmt][0]
    info = np.iinfo(dtype)
    values = st.one_of(st.sampled_from([int(info.min), int(info.max), 0, -1, 1]),
                       st.integers(int(info.min), int(info.max)))
    return st.lists(values, min_size=1, max_size=max_len).map(lambda v: np.array(v, dtype))


fmts = st.sampled_from(list(FMT))
modes = st.sampled_from(["full", "same", "valid"])
kinds = st.sampled_from(["convolve", "correlate"])


# ------------------------------------------------------------------------ seed examples

X5, W3 = np.array([0, 1, 2, 3, 4]), np.array([1, -1, 2])


def test_seed_example_float():
    x, w = X5.astype(float), W3.astype(float)
    assert sig.convolve(x, w).tolist() == [0, 1, 1, 3, 5, 2, 8]
    assert sig.convolve(x, w, "valid").tolist() == [1, 3, 5]
    assert sig.convolve(x, w, "same").tolist() == [1, 1, 3, 5, 2]  # full[1:6]
    assert sig.convolve(x, w, stride=2).tolist() == [0, 1, 5, 8]
    # correlate = convolve with (2, -1, 1), by hand: 0*2 = 0; 0*-1 + 1*2 = 2;
    # 0 - 1 + 4 = 3; 1 - 2 + 6 = 5; 2 - 3 + 8 = 7; 3 - 4 = -1; 4
    assert sig.correlate(x, w).tolist() == [0, 2, 3, 5, 7, -1, 4]


def test_seed_example_q15():
    # Scale by 2**15 so the >> 15 of the accumulator gives back the small integers.
    x = (X5 * 256).astype(np.int16)
    w = (W3 * 128).astype(np.int16)  # x*w = 2**15 * (x0*w0): shifts back exactly
    assert sig.convolve(x, w).tolist() == [0, 1, 1, 3, 5, 2, 8]
    assert sig.convolve(x, w, "valid").tolist() == [1, 3, 5]
    assert sig.convolve(x, w, "same").tolist() == [1, 1, 3, 5, 2]
    # CMSIS correlate layout with equal lengths needs no padding; lenA 5 > lenB 3 puts
    # two zeros first: 2*5-1 = 9 outputs.
    assert sig.correlate(x, w).tolist() == [0, 0, 0, 2, 3, 5, 7, -1, 4]
    # lenA 3 < lenB 5: correlate(w, x) in numpy order = conv(w, x reversed) =
    # (4, -1, 7, 5, 3, 2, 0) -- the reverse of the values above -- then two zeros.
    assert sig.correlate(w, x).tolist() == [4, -1, 7, 5, 3, 2, 0, 0, 0]


# --------------------------------------------------------------- float vs numpy/scipy

@settings(max_examples=150, deadline=None)
@given(st.integers(1, 20), st.integers(1, 20), modes, kinds, st.integers(0, 2 ** 32 - 1))
def test_float_matches_scipy_and_numpy(m, n, mode, kind, seed):
    rng = np.random.default_rng(seed)
    x, h = rng.standard_normal(m), rng.standard_normal(n)
    got = getattr(sig, kind)(x, h, mode)
    np.testing.assert_allclose(got, getattr(scipy.signal, kind)(x, h, mode, method="direct"),
                               rtol=1e-12, atol=1e-12)
    npf = getattr(np, kind)
    if mode != "same" or n <= m:
        np.testing.assert_allclose(got, npf(x, h, mode), rtol=1e-12, atol=1e-12)
    else:  # numpy centres 'same' on the longer input: our convolve(h, x, 'same')
        assert got.size == m and npf(x, h, mode).size == n
        if kind == "convolve":
            np.testing.assert_allclose(sig.convolve(h, x, "same"), npf(x, h, mode),
                                       rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 20), st.integers(1, 20), modes, st.integers(0, 2 ** 32 - 1))
def test_float_correlate_is_convolve_with_flipped_kernel(m, n, mode, seed):
    rng = np.random.default_rng(seed)
    x, h = rng.standard_normal(m), rng.standard_normal(n)
    np.testing.assert_array_equal(sig.correlate(x, h, mode), sig.convolve(x, h[::-1], mode))


# ------------------------------------------------------ Q formats vs scalar reference

@settings(max_examples=150, deadline=None)
@given(fmts.flatmap(lambda f: st.tuples(st.just(f), q_arrays(f), q_arrays(f))),
       kinds, modes, st.integers(1, 3))
def test_q_defaults_match_scalar_reference(case, kind, mode, stride):
    fmt, x, h = case
    got = getattr(sig, kind)(x, h, mode, stride=stride)
    assert got.dtype == FMT[fmt][0]
    assert got.tolist() == ref_filter(kind, x, h, mode, fmt, stride)


@settings(max_examples=150, deadline=None)
@given(fmts.flatmap(lambda f: st.tuples(st.just(f), q_arrays(f), q_arrays(f))),
       kinds, st.sampled_from(["floor", "nearest"]), st.booleans(),
       st.sampled_from([16, 24, 32, 40, 64, 96, 128]))
def test_q_options_match_scalar_reference(case, kind, rounding, saturate, bits):
    fmt, x, h = case
    got = getattr(sig, kind)(x, h, rounding=rounding, saturate=saturate, accumulator=bits)
    assert got.tolist() == ref_filter(kind, x, h, "full", fmt, rounding=rounding,
                                      saturate=saturate, bits=bits)


def test_known_q_values_by_hand():
    big = np.array([-128, -128], np.int8)
    # (-128)*(-128) = 16384 per product; middle output 32768 >> 7 = 256 -> saturates 127,
    # without saturation the int8 cast of 256 is 0; ends 16384 >> 7 = 128 -> 127 / -128.
    assert sig.convolve(big, big).tolist() == [127, 127, 127]
    assert sig.convolve(big, big, saturate=False).tolist() == [-128, 0, -128]
    # 16-bit accumulator: 32768 wraps to -32768 -> >> 7 = -256 -> saturated -128.
    assert sig.convolve(big, big, accumulator=16).tolist() == [127, -128, 127]
    # q15 rounding: 3 * 16384 = 49152 = 1.5 * 2**15 -> floor 1, nearest 2; -1.5 -> -2 / -1.
    three, half = np.array([3], np.int16), np.array([16384], np.int16)
    assert sig.convolve(three, half).tolist() == [1]
    assert sig.convolve(three, half, rounding="nearest").tolist() == [2]
    assert sig.convolve(-three, half).tolist() == [-2]
    assert sig.convolve(-three, half, rounding="nearest").tolist() == [-1]
    # q31: INT32_MIN**2 = 2**62; two of them = 2**63 wraps the 64-bit accumulator to -2**63,
    # >> 31 = -2**32, cast to int32 -> 0; one of them: 2**31 -> cast -> INT32_MIN.
    mn = np.array([-(2 ** 31)] * 2, np.int32)
    assert sig.convolve(mn, mn).tolist() == [-(2 ** 31), 0, -(2 ** 31)]
    assert sig.convolve(mn, mn, saturate=True).tolist() == [2 ** 31 - 1, -(2 ** 31),
                                                            2 ** 31 - 1]
    assert sig.convolve(mn, mn, accumulator=128, saturate=True).tolist() == [2 ** 31 - 1] * 3


def test_q31_long_kernel_chunks_are_exact():
    """Full-scale q31 sums exceed int64: a 70k-tap kernel runs through the 16-bit split in
    2**15-tap chunks; check outputs around the chunk seams and the ends."""
    rng = np.random.default_rng(3)
    ends = np.array([-(2 ** 31), 2 ** 31 - 1], np.int32)
    x = rng.choice(ends, 40)
    h = rng.choice(ends, 70_000)
    got = sig.convolve(x, h)
    wide = sig.convolve(x, h, accumulator=128, saturate=True)
    x_obj, h_obj = x.astype(object), h.astype(object)
    for i in [0, 1, 39, 40, 32767, 32768, 32790, 65535, 65550, 70_000, 70_038, 51234]:
        js = np.arange(max(0, i - h.size + 1), min(i, x.size - 1) + 1)
        exact = int(np.dot(x_obj[js], h_obj[i - js]))
        assert got[i] == wrap_bits(wrap_bits(exact, 64) >> 31, 32)
        assert wide[i] == min(max(exact >> 31, -(2 ** 31)), 2 ** 31 - 1)


@settings(max_examples=60, deadline=None)
@given(q_arrays("q31", 20), q_arrays("q31", 20), kinds, st.sampled_from([64, 40, 128]))
def test_q31_chunked_split_path_small_chunks(x, h, kind, bits):
    """The chunked hi/lo path with 3-tap chunks equals the scalar reference."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sig, "_CHUNK", 3)
        got = getattr(sig, kind)(x, h, accumulator=bits)
    assert got.tolist() == ref_filter(kind, x, h, "full", "q31", bits=bits)


# -------------------------------------------------------------------------- properties

@settings(max_examples=100, deadline=None)
@given(fmts.flatmap(lambda f: st.tuples(st.just(f), q_arrays(f), q_arrays(f))),
       st.sampled_from(["full", "valid"]))
def test_convolve_commutes(case, mode):
    _, x, h = case
    assert sig.convolve(x, h, mode).tolist() == sig.convolve(h, x, mode).tolist()


@settings(max_examples=100, deadline=None)
@given(fmts.flatmap(lambda f: st.tuples(st.just(f), q_arrays(f), q_arrays(f))), modes)
def test_q_correlate_vs_flipped_convolve(case, mode):
    """Integer correlate == convolve(x, h[::-1]) for 'same' and 'valid', and for 'full'
    when len(x) == len(h); otherwise 'full' adds |M - N| zeros (CMSIS layout)."""
    _, x, h = case
    corr = sig.correlate(x, h, mode).tolist()
    conv = sig.convolve(x, h[::-1], mode).tolist()
    m, n = x.size, h.size
    if mode != "full" or m == n:
        assert corr == conv
    elif m > n:
        assert corr == [0] * (m - n) + conv
    else:
        assert corr == conv + [0] * (n - m)


def _half_range(fmt: str, max_len: int = 10):
    dtype = FMT[fmt][0]
    lim = int(np.iinfo(dtype).max) // 2
    return st.lists(st.integers(-lim, lim), min_size=1, max_size=max_len).map(
        lambda v: np.array(v, dtype))


@settings(max_examples=100, deadline=None)
@given(fmts.flatmap(lambda f: st.tuples(st.just(f), _half_range(f), _half_range(f),
                                        q_arrays(f, 10))), st.integers(0, 10))
def test_linearity_with_wide_accumulator(case, cut):
    """floor((A + B) / 2**s) - floor(A / 2**s) - floor(B / 2**s) is 0 or 1, elementwise,
    for exact sums (128-bit accumulator, no saturation)."""
    _, x1, x2, h = case
    n = min(x1.size, x2.size)
    x1, x2 = x1[:n], x2[:n]
    opts = {"accumulator": 128, "saturate": False}
    dt = x1.dtype
    both = sig.convolve((x1.astype(np.int64) + x2).astype(dt), h, **opts).astype(np.int64)
    parts = (sig.convolve(x1, h, **opts).astype(np.int64)
             + sig.convolve(x2, h, **opts).astype(np.int64))
    # a q31 output may wrap; compare modulo the output width
    bits = 8 * dt.itemsize
    diff = [wrap_bits(int(d), bits) for d in both - parts]
    assert set(diff) <= {0, 1}


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(1, 30), kinds, modes, st.integers(1, 4))
def test_output_length_formulas(m, n, kind, mode, stride):
    expect = {"full": m + n - 1, "same": m, "valid": abs(m - n) + 1}[mode]
    if kind == "correlate" and mode == "full":
        expect_q = 2 * max(m, n) - 1
    else:
        expect_q = expect
    x, h = np.ones(m, np.int16), np.ones(n, np.int16)
    assert getattr(sig, kind)(x, h, mode, stride=stride).size == -(-expect_q // stride)
    assert getattr(sig, kind)(x * 1.0, h * 1.0, mode, stride=stride).size == -(
        -expect // stride)
    assert sig.output_length(kind, mode, m, n, integer=True, stride=stride) == -(
        -expect_q // stride)


def test_vectorized_speed_100k():
    rng = np.random.default_rng(5)
    x = rng.integers(-(2 ** 31), 2 ** 31, 100_000).astype(np.int32)
    h = rng.integers(-(2 ** 31), 2 ** 31, 64).astype(np.int32)
    got = sig.convolve(x, h, "same")
    finish = finisher("q31")
    for i in rng.integers(0, x.size, 20):
        k = int(i) + 31  # 'same' starts at (64 - 1) // 2 = 31 in 'full'
        terms = [int(x[j]) * int(h[k - j]) for j in range(max(0, k - 63), min(k, x.size - 1) + 1)]
        assert got[i] == finish(terms)


# -------------------------------------------------------------------------- validation

@pytest.mark.parametrize("call, match", [
    (lambda: sig.convolve([], [1.0]), "x: shape"),
    (lambda: sig.convolve(np.ones((2, 2)), [1.0]), "x: shape"),
    (lambda: sig.convolve([1.0], [1.0], "circular"), "mode='circular'"),
    (lambda: sig.convolve([1.0], [1.0], stride=0), r"stride=0: allowed range is \[1"),
    (lambda: sig.convolve([1.0], [1.0], stride=1.5), "stride=1.5"),
    (lambda: sig.convolve([1.0], [1.0], fmt="q15"), "fmt='q15'"),
    (lambda: sig.convolve([1.0], [1.0], saturate=True), "saturate=True"),
    (lambda: sig.convolve(np.ones(3, np.int16), np.ones(3, np.int8)), "must all be"),
    (lambda: sig.convolve(np.ones(3, np.int16), np.ones(3, np.int16), fmt="q7"),
     "fmt='q7'"),
    (lambda: sig.convolve(np.ones(3, np.int16), np.ones(3, np.int16), fmt="q8"),
     "fmt='q8'"),
    (lambda: sig.convolve(np.ones(3, np.int64), np.ones(3, np.int64)), "int64"),
    (lambda: sig.convolve(np.ones(3, np.int16), np.ones(3, np.int16), rounding="up"),
     "rounding='up'"),
    (lambda: sig.convolve(np.ones(3, np.int16), np.ones(3, np.int16), accumulator=4),
     r"accumulator=4: allowed range is \[8, 128\]"),
    (lambda: sig.convolve(np.ones(3, np.int16), np.ones(3, np.int16), saturate=1),
     "saturate=1"),
    (lambda: sig.correlate(np.array(["a"]), [1.0]), "x: dtype"),
    (lambda: sig.correlate([1j], [1.0]), "x: dtype"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------------ SignalFilter

def test_signal_filter_contract():
    kernel = [1000, -2000, 3000, 4000]
    layer = sig.SignalFilter(kernel, kind="correlate", mode="full", fmt="q15",
                             input_length=10, name="corr0")
    assert layer.input_shape == (10,) and layer.activation_dtype == np.int16
    assert layer.output_length == 19 and layer.output_shape == (19,)
    assert layer.output_shape_for((6,)) == (11,)  # 2 * max(6, 4) - 1
    assert (layer.rounding, layer.saturate, layer.accumulator) == ("floor", True, 64)
    assert layer.kernel.dtype == np.int16 and layer.kernel.tolist() == kernel
    rng = np.random.default_rng(0)
    x = rng.integers(-32768, 32768, (3, 10)).astype(np.int16)
    out = layer(x)
    assert out.shape == (3, 19) and out.dtype == np.int16
    for row, got in zip(x, out, strict=True):
        assert got.tolist() == ref_filter("correlate", row, np.array(kernel), "full", "q15")
    assert layer(x[0]).tolist() == out[0].tolist()
    # MACs: full correlation of 10 and 4 samples forms 10 * 4 products; padding is free.
    assert layer.macs() == 40
    spec = layer.spec()
    assert json.loads(json.dumps(spec)) == spec
    assert spec["kernel"] == kernel and spec["fmt"] == "q15" and spec["output_length"] == 19


def test_signal_filter_modes_stride_and_macs():
    layer = sig.SignalFilter([1, 2, 3], mode="valid", fmt="q7", input_length=8, stride=2)
    assert layer.output_length == 3  # valid 6 outputs, every 2nd
    assert layer.macs() == 9  # 3 outputs x 3 taps
    assert (layer.rounding, layer.saturate, layer.accumulator) == ("floor", True, 32)
    same = sig.SignalFilter([1, 2, 3, 4], mode="same", fmt="q31", input_length=5)
    assert same.output_length == 5 and same.saturate is False and same.accumulator == 64
    # per-output products of full (5 x 4): 1,2,3,4,4,3,2,1 -> same keeps index 1..5
    assert same.macs() == 2 + 3 + 4 + 4 + 3
    x = np.arange(5, dtype=np.int32) * (1 << 28)
    assert same(x).tolist() == ref_filter("convolve", x, same.kernel, "same", "q31")


@pytest.mark.parametrize("kwargs, match", [
    ({"kernel": [], "input_length": 4}, "kernel: shape"),
    ({"kernel": [0.5], "input_length": 4}, "kernel: shape"),
    ({"kernel": [200], "fmt": "q7", "input_length": 4}, r"outside the q7 range \[-128, 127\]"),
    ({"kernel": [1], "input_length": 0}, r"input_length=0: allowed range is \[1"),
    ({"kernel": [1], "input_length": 4, "kind": "xcorr"}, "kind='xcorr'"),
    ({"kernel": [1], "input_length": 4, "mode": "wrap"}, "mode='wrap'"),
    ({"kernel": [1], "input_length": 4, "fmt": "q16"}, "fmt='q16'"),
    ({"kernel": [1], "input_length": 4, "stride": 0}, "stride=0"),
    ({"kernel": [1], "input_length": 4, "name": "1bad"}, "name='1bad'"),
    ({"kernel": [1], "input_length": 4, "accumulator": 200}, "accumulator=200"),
    ({"kernel": [1], "input_length": 4, "rounding": "even"}, "rounding='even'"),
])
def test_signal_filter_validation(kwargs, match):
    kernel = kwargs.pop("kernel")
    with pytest.raises(ValueError, match=match):
        sig.SignalFilter(kernel, **kwargs)


def test_signal_filter_call_validation():
    layer = sig.SignalFilter([1, 2], fmt="q15", input_length=4)
    with pytest.raises(ValueError, match="x: dtype int8"):
        layer(np.zeros(4, np.int8))
    with pytest.raises(ValueError, match=r"x: shape \(5,\)"):
        layer(np.zeros(5, np.int16))
