"""Conv2D / Conv1D: float reference seed check, direct == im2col, shapes, from_float."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import edgeconv
from edgeconv.bench import benchmark_layers
from edgeconv.fixedpoint import quantize_multiplier

RNG = np.random.default_rng(7)


def float_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int,
               pad: int) -> np.ndarray:
    """Naive float convolution, HWC input, OHWI weights, symmetric zero padding."""
    h, wd, c = x.shape
    o, kh, kw, _ = w.shape
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((oh, ow, o))
    for oy in range(oh):
        for ox in range(ow):
            for oc in range(o):
                s = float(b[oc])
                for ky in range(kh):
                    for kx in range(kw):
                        iy, ix = oy * stride - pad + ky, ox * stride - pad + kx
                        if 0 <= iy < h and 0 <= ix < wd:
                            s += float(np.dot(w[oc, ky, kx], x[iy, ix]))
                out[oy, ox, oc] = s
    return out


def test_seed_5x5x3_accumulators_match_float_reference() -> None:
    """The 5x5x3 input, F=3, S=2, P=1, K=2 gives 3x3x2 with the float convolution of
    ``x - zero_point`` plus bias as accumulators."""
    x = RNG.integers(-128, 128, size=(5, 5, 3)).astype(np.int8)
    w = RNG.integers(-127, 128, size=(2, 3, 3, 3)).astype(np.int8)
    b = np.array([1000, -777], dtype=np.int32)
    layer = edgeconv.Conv2D(weights=w, bias=b, stride=2, padding=1, input_zero_point=-7,
                            output_multiplier=np.full(2, 1 << 30, np.int32),
                            output_shift=np.full(2, -8, np.int32), input_shape=(5, 5, 3))
    expected = float_conv(x.astype(float) + 7, w.astype(float), b, stride=2, pad=1)
    assert layer.output_shape == (3, 3, 2)
    for method in ("im2col", "direct"):
        acc = layer.accumulate(x, method=method)
        assert acc.shape == (3, 3, 2)
        np.testing.assert_array_equal(acc, expected.astype(np.int64))


def test_seed_5x5x3_from_float_end_to_end() -> None:
    """from_float with scales making the effective multiplier exactly 1: the int8 output is
    the float convolution, shifted by the output zero point and clamped."""
    w = RNG.integers(-2, 3, size=(2, 3, 3, 3)).astype(float)
    w[:, 1, 1, 0] = [127.0, -127.0]  # per-channel max |w| = 127 -> weight scale exactly 1
    b = np.array([5.0, -9.0])
    layer = edgeconv.Conv2D.from_float(w, b, input_scale=0.5, input_zero_point=3,
                                       output_scale=0.5, output_zero_point=-4, stride=2,
                                       padding=((1, 1), (1, 1)), input_shape=(5, 5, 3))
    assert quantize_multiplier(1.0) == (1 << 30, 1)
    np.testing.assert_array_equal(layer.output_multiplier, [1 << 30, 1 << 30])
    np.testing.assert_array_equal(layer.output_shift, [1, 1])
    np.testing.assert_array_equal(layer.weights, w.astype(np.int8))
    np.testing.assert_array_equal(layer.bias, [10, -18])  # b / (s_in * s_w)
    x = RNG.integers(0, 7, size=(5, 5, 3)).astype(np.int8)  # x - zp in [-3, 3]
    real = float_conv(0.5 * (x.astype(float) - 3), w, b, stride=2, pad=1)
    expected = np.clip(real / 0.5 - 4, -128, 127).astype(np.int8)
    assert 0 < np.count_nonzero(np.abs(expected.astype(int)) < 127)
    for method in ("im2col", "direct"):
        np.testing.assert_array_equal(layer(x, method=method), expected)


def expected_size(size: int, k: int, s: int, d: int, padding: object) -> int:
    """Output size, written independently of the library: SAME is ceil(size / stride)."""
    k_eff = d * (k - 1) + 1
    if padding == "same":
        return -(-size // s)
    total = 0 if padding == "valid" else sum(padding)
    return (size - k_eff + total) // s + 1


@st.composite
def conv_configs(draw: st.DrawFn) -> dict:
    dtype = draw(st.sampled_from([np.int8, np.int16]))
    groups = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    ext = (dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1)
    kind = draw(st.sampled_from(["same", "valid", "explicit"]))
    padding: object = kind
    if kind == "explicit":
        padding = tuple((draw(st.integers(0, e - 1)), draw(st.integers(0, e - 1))) for e in ext)
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    sizes = [expected_size(n, k, s, d, padding if kind != "explicit" else padding[i])
             for i, (n, k, s, d) in enumerate(zip((h, w), (kh, kw), stride, dil, strict=True))]
    assume(min(sizes) >= 1)
    o = groups * og
    int16 = dtype == np.int16
    lo, hi = (-(1 << 15), (1 << 15) - 1) if int16 else (-128, 127)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    bias_bound = 1 << (30 if int16 else 20)
    amin = draw(st.integers(lo, hi))
    return {
        "x": rng.integers(lo, hi + 1, size=(draw(st.integers(1, 2)), h, w, groups * cg),
                          dtype=np.int64).astype(dtype),
        "expected_hw": tuple(sizes),
        "kwargs": dict(
            weights=rng.integers(-128, 128, size=(o, kh, kw, cg)).astype(np.int8),
            bias=draw(st.sampled_from([None, rng.integers(-bias_bound, bias_bound, size=o)
                                       .astype(np.int64 if int16 else np.int32)])),
            stride=stride, dilation=dil, padding=padding, groups=groups,
            input_zero_point=0 if int16 else draw(st.integers(-128, 127)),
            output_zero_point=0 if int16 else draw(st.integers(-128, 127)),
            output_multiplier=rng.integers(1 << 30, 1 << 31, size=o).astype(np.int32),
            output_shift=rng.integers(-14 if int16 else -12, 3, size=o).astype(np.int32),
            activation_min=amin, activation_max=draw(st.integers(amin, hi)),
            activation_dtype=dtype, rounding=draw(st.sampled_from(["double", "single"]))),
    }


@settings(max_examples=120, deadline=None)
@given(conv_configs())
def test_conv2d_direct_equals_im2col(cfg: dict) -> None:
    layer = edgeconv.Conv2D(**cfg["kwargs"])
    x = cfg["x"]
    fast, direct = layer(x), layer(x, method="direct")
    assert fast.dtype == x.dtype and fast.shape == (x.shape[0], *cfg["expected_hw"],
                                                    layer.weights.shape[0])
    np.testing.assert_array_equal(layer.accumulate(x), layer.accumulate(x, method="direct"))
    np.testing.assert_array_equal(fast, direct)
    assert layer.output_shape_for(x.shape[1:]) == fast.shape[1:]


@settings(max_examples=60, deadline=None)
@given(conv_configs())
def test_conv2d_dense_and_im2col_paths_equal_direct(cfg: dict) -> None:
    """Small layers multiply by a dense per-shape matrix; force each path in turn."""
    x = cfg["x"]
    ref = edgeconv.Conv2D(**cfg["kwargs"])
    expected_acc, expected = ref.accumulate(x, method="direct"), ref(x, method="direct")
    for limit, waste in ((0, 4), (1 << 30, 1 << 30)):
        layer = edgeconv.Conv2D(**cfg["kwargs"])
        layer._dense_limit, layer._dense_waste = limit, waste
        assert (layer._dense(*x.shape[1:]) is not None) == (limit > 0)
        np.testing.assert_array_equal(layer.accumulate(x), expected_acc)
        np.testing.assert_array_equal(layer(x), expected)


@settings(max_examples=60, deadline=None)
@given(conv_configs())
def test_conv2d_table_path_equals_direct(cfg: dict) -> None:
    """With an ``input_shape``, small int8 layers requantize by table lookup; batched,
    unbatched and batch-of-one calls all equal the reference loop nest."""
    x = cfg["x"]
    layer = edgeconv.Conv2D(**cfg["kwargs"], input_shape=x.shape[1:])
    if x.dtype == np.int16:
        assert layer._table is None
    expected = layer(x, method="direct")
    np.testing.assert_array_equal(layer(x), expected)
    np.testing.assert_array_equal(layer(x[:1]), expected[:1])
    np.testing.assert_array_equal(layer(x[-1]), expected[-1])
    assert layer(x).dtype == x.dtype and layer(x[-1]).shape == expected.shape[1:]


def table_layer(**changes: object) -> edgeconv.Conv2D:
    """The 5x5x3 -> 3x3x2 seed layer (L7 geometry) with an input shape: a table layer."""
    kwargs: dict = dict(weights=RNG.integers(-127, 128, size=(2, 3, 3, 3)).astype(np.int8),
                        bias=np.array([1000, -777], np.int32), stride=2, padding=1,
                        input_zero_point=-7, output_zero_point=5,
                        output_multiplier=np.array([1 << 30, 1_500_000_000], np.int32),
                        output_shift=np.array([-7, -9], np.int32), input_shape=(5, 5, 3))
    layer = edgeconv.Conv2D(**kwargs | changes)
    assert layer._table is not None
    return layer


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_table_covers_extreme_accumulators(rounding: str) -> None:
    """Inputs reaching every output element's least and greatest accumulator (the ends of
    its channel's table section) and random inputs match the direct loop nest."""
    layer = table_layer(rounding=rounding, activation_min=-100, activation_max=90)
    matrix = layer._dense(5, 5, 3)[0].astype(np.int64)  # (75 inputs, 18 outputs)
    ends = [np.where(sign * matrix[:, j] > 0, 127, -128)
            for j in range(matrix.shape[1]) for sign in (1, -1)]
    x = np.concatenate([np.array(ends).reshape(-1, 5, 5, 3),
                        RNG.integers(-128, 128, size=(500, 5, 5, 3))]).astype(np.int8)
    expected = layer(x, method="direct")
    np.testing.assert_array_equal(layer(x), expected)
    acc = layer.accumulate(x[:len(ends)]).reshape(len(ends), -1)
    for j in range(matrix.shape[1]):  # the extremes were reached: max then min per column
        assert acc[2 * j, j] == acc[:, j].max() and acc[2 * j + 1, j] == acc[:, j].min()


def test_table_path_falls_back_to_checks_and_copies() -> None:
    """Inputs the table does not take go the general way (same errors, same numbers);
    outputs are fresh arrays."""
    layer = table_layer()
    x = RNG.integers(-128, 128, size=(2, 5, 5, 3)).astype(np.int8)
    expected = layer(x, method="direct")

    class Sub(np.ndarray):
        pass

    for same in (np.asfortranarray(x), x.view(Sub), x[:, ::-1][:, ::-1]):
        np.testing.assert_array_equal(layer(same), expected)
    for bad, match in ((x.astype(np.int16), "dtype"), (x.tolist(), "dtype"),
                       (x[:, :4], "does not match"), (x[:0], "empty batch"),
                       (x[0, 0], "dims")):
        with pytest.raises(ValueError, match=match):
            layer(bad)
    y = layer(x)
    y[...] = 0
    np.testing.assert_array_equal(layer(x), expected)
    one_d = edgeconv.Conv1D(weights=layer.weights[:, 1], bias=layer.bias, stride=2, padding=1,
                            output_multiplier=layer.output_multiplier,
                            output_shift=layer.output_shift, input_shape=(5, 3))
    assert one_d._table is not None
    np.testing.assert_array_equal(one_d(x[:, 0]), one_d(x[:, 0], method="direct"))


@settings(max_examples=40, deadline=None)
@given(conv_configs())
def test_conv1d_is_conv2d_with_height_1(cfg: dict) -> None:
    kw = dict(cfg["kwargs"])
    x = cfg["x"][:, :1]  # height 1
    w2 = kw["weights"][:, :1]
    pad2 = kw["padding"]
    kw2 = {**kw, "weights": w2, "stride": (1, kw["stride"][1]),
           "dilation": (1, kw["dilation"][1]),
           "padding": pad2 if isinstance(pad2, str) else ((0, 0), pad2[1])}
    assume(x.shape[2] + (0 if isinstance(pad2, str) else sum(pad2[1]))
           >= kw["dilation"][1] * (w2.shape[2] - 1) + 1)
    ref = edgeconv.Conv2D(**kw2)
    one_d = edgeconv.Conv1D(**{**kw2, "weights": w2[:, 0], "stride": kw["stride"][1],
                               "dilation": (kw["dilation"][1],),
                               "padding": pad2 if isinstance(pad2, str) else pad2[1]})
    assert one_d.stride == (kw["stride"][1],) and one_d.dilation == (kw["dilation"][1],)
    expected = ref(x)[:, 0]
    np.testing.assert_array_equal(one_d(x[:, 0]), expected)
    np.testing.assert_array_equal(one_d(x[:, 0], method="direct"), expected)
    assert one_d.pads_for(x.shape[2:]) == (ref.pads_for(x.shape[1:])[1],)
    assert one_d.output_shape_for(x.shape[2:]) == expected.shape[1:]


@pytest.mark.parametrize(("size", "k", "s", "d", "padding", "pads"), [
    (5, 3, 2, 1, "same", (1, 1)),
    (10, 3, 2, 1, "same", (0, 1)),     # odd total pad goes to the bottom/right
    (10, 4, 2, 1, "same", (1, 1)),     # L5 width
    (49, 10, 2, 1, "same", (4, 5)),    # L5 height
    (6, 3, 1, 2, "same", (2, 2)),
    (7, 3, 3, 1, "same", (1, 1)),
    (8, 1, 3, 1, "same", (0, 0)),
    (9, 3, 2, 1, "valid", (0, 0)),
])
def test_pads_and_output_size(size: int, k: int, s: int, d: int, padding: str,
                              pads: tuple[int, int]) -> None:
    layer = edgeconv.Conv2D(weights=np.ones((1, k, 1, 1), np.int8), stride=(s, 1),
                            dilation=(d, 1), padding=padding,
                            output_multiplier=np.array([1 << 30], np.int32),
                            output_shift=np.zeros(1, np.int32))
    assert layer.pads_for((size, 1, 1)) == (pads, (0, 0))
    assert layer.output_shape_for((size, 1, 1)) == (
        expected_size(size, k, s, d, padding), 1, 1)


def test_batch_convention_and_attributes() -> None:
    layers = benchmark_layers()
    layer = layers["L7"]
    x = RNG.integers(-128, 128, size=(3, 5, 5, 3)).astype(np.int8)
    batched = layer(x)
    assert batched.shape == (3, 3, 3, 2)
    for i in range(3):
        np.testing.assert_array_equal(layer(x[i]), batched[i])
    assert layer.padding == ((1, 1), (1, 1)) and layer.stride == (2, 2)
    assert layer.groups == 1 and layer.rounding == "double"
    assert layer.weights.dtype == np.int8 and layer.bias.dtype == np.int32
    assert layer.output_multiplier.dtype == layer.output_shift.dtype == np.int32
    assert layer.macs() == 3 * 3 * 2 * 3 * 3 * 3
    json.dumps(layer.spec())
    assert layer.spec()["padding"] == [[1, 1], [1, 1]]


def test_from_float_per_channel_quantization() -> None:
    w = RNG.normal(size=(4, 3, 3, 2)) * np.array([1.0, 0.01, 3.0, 0.2])[:, None, None, None]
    b = RNG.normal(size=4)
    layer = edgeconv.Conv2D.from_float(w, b, input_scale=0.02, output_scale=0.1,
                                       output_zero_point=5, activation="relu6")
    q = layer.weights.astype(float)
    scales = np.abs(w).reshape(4, -1).max(axis=1) / 127
    assert np.all(np.abs(q).reshape(4, -1).max(axis=1) == 127)
    assert np.all(np.abs(q - w / scales[:, None, None, None]) <= 0.5 + 1e-9)
    real = layer.output_multiplier * 2.0 ** (layer.output_shift.astype(float) - 31)
    np.testing.assert_allclose(real, 0.02 * scales / 0.1, rtol=1e-6)
    np.testing.assert_allclose(layer.bias, np.round(b / (0.02 * scales)), atol=1)
    assert (layer.activation_min, layer.activation_max) == (5, 5 + 60)  # relu6: 6 / 0.1
    relu16 = edgeconv.Conv2D.from_float(w, b, input_scale=1e-4, output_scale=1e-4,
                                        activation="relu", activation_dtype=np.int16)
    assert relu16.bias.dtype == np.int64 and relu16.activation_dtype == np.int16
    assert (relu16.activation_min, relu16.activation_max) == (0, 32767)


@pytest.mark.parametrize(("dtype", "channels"), [(np.int8, 16), (np.int8, 256), (np.int16, 256)])
def test_extreme_values_stay_exact(dtype: type, channels: int) -> None:
    """Odd products at the type limits: sums beyond 2**24 (inexact in float32) must still
    be exact, so the GEMM has to switch to float64 for the large kernel."""
    lo = int(np.iinfo(dtype).min) + 1  # -127 / -32767: odd products
    w = np.full((2, 3, 3, channels), -127, np.int8)
    w[1] = 127
    layer = edgeconv.Conv2D(weights=w, output_multiplier=np.full(2, 1 << 30, np.int32),
                            output_shift=np.full(2, -20, np.int32), activation_dtype=dtype)
    x = np.full((1, 3, 3, channels), lo, dtype)
    expected = np.array([1, -1]) * 127 * -lo * 9 * channels
    acc = layer.accumulate(x)
    np.testing.assert_array_equal(acc.ravel(), expected)
    np.testing.assert_array_equal(acc, layer.accumulate(x, method="direct"))
    assert (abs(expected[0]) >= 2**24) == (layer._gemm_dtype != np.float32)


def test_int8_accumulator_wraps_to_int32_before_requantization() -> None:
    """TFLite/CMSIS-NN hold the int8 accumulator in an int32: bias INT32_MAX plus 1 wraps
    to INT32_MIN, which requantizes (multiplier 0.5) to -2**30 and clamps to -128."""
    layer = edgeconv.Conv2D(weights=np.ones((1, 1, 1, 1), np.int8),
                            bias=np.array([2**31 - 1], np.int32), input_zero_point=-1,
                            output_multiplier=np.array([1 << 30], np.int32),
                            output_shift=np.zeros(1, np.int32))
    x = np.zeros((1, 1, 1), np.int8)  # x - zp = 1
    assert layer.accumulate(x)[0, 0, 0] == 2**31
    assert layer(x)[0, 0, 0] == -128
    assert layer(x, method="direct")[0, 0, 0] == -128
    shaped = edgeconv.Conv2D(**{k: getattr(layer, k) for k in (
        "weights", "bias", "input_zero_point", "output_multiplier", "output_shift")},
        input_shape=(1, 1, 1))
    assert shaped._table is not None  # the table holds the wrapped requantization
    xs = np.arange(-128, 128, dtype=np.int8).reshape(-1, 1, 1, 1)  # wraps for x >= 0
    np.testing.assert_array_equal(shaped(xs), layer(xs, method="direct"))


def test_float64_gemm_sum_beyond_int32_wraps_exactly() -> None:
    """An int8 sum above 2**31 comes out of the float64 GEMM; it must wrap to int32 via an
    exact integer cast (dense and im2col paths), as the C int32 accumulator does."""
    taps = 140_000  # 128 * 127 * taps > 2**31: float64 GEMM, int32 wrap
    layer = edgeconv.Conv2D(weights=np.full((1, 1, 1, taps), 127, np.int8),
                            output_multiplier=np.array([1 << 30], np.int32),
                            output_shift=np.full(1, -23, np.int32), input_zero_point=0)
    x = np.full((1, 1, taps), -128, np.int8)
    exact = -128 * 127 * taps
    assert layer._gemm_dtype == np.float64 and exact < -(2**31)
    assert layer.accumulate(x)[0, 0, 0] == exact
    assert layer(x, method="direct")[0, 0, 0] == 120
    wrapped = (exact + 2**31) % 2**32 - 2**31  # positive after the wrap
    expected = (wrapped // 2 + (1 << 22)) >> 23  # 0.5 * 2**-23, rounded: 120
    for limit in (0, 1 << 30):
        forced = edgeconv.Conv2D(weights=layer.weights, output_multiplier=layer.output_multiplier,
                                 output_shift=layer.output_shift)
        forced._dense_limit = limit
        assert forced(x)[0, 0, 0] == expected
