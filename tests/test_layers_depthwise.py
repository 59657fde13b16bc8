"""DepthwiseConv2D: float reference accumulators, direct == vectorized, from_float."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import edgeconv

RNG = np.random.default_rng(11)


def float_depthwise(x: np.ndarray, w: np.ndarray, mult: int, stride: tuple[int, int],
                    pads: tuple[tuple[int, int], tuple[int, int]],
                    dil: tuple[int, int]) -> np.ndarray:
    """Naive float depthwise convolution (HWC input, (KH, KW, C*mult) weights)."""
    h, wd, c = x.shape
    kh, kw, _ = w.shape
    xp = np.zeros((h + sum(pads[0]), wd + sum(pads[1]), c))
    xp[pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + wd] = x
    oh = (xp.shape[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (xp.shape[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((oh, ow, c * mult))
    for oy in range(oh):
        for ox in range(ow):
            for oc in range(c * mult):
                for ky in range(kh):
                    for kx in range(kw):
                        out[oy, ox, oc] += w[ky, kx, oc] * xp[oy * stride[0] + ky * dil[0],
                                                              ox * stride[1] + kx * dil[1],
                                                              oc // mult]
    return out


def test_accumulators_match_float_reference() -> None:
    x = RNG.integers(-128, 128, size=(6, 7, 3)).astype(np.int8)
    w = RNG.integers(-127, 128, size=(1, 3, 2, 6)).astype(np.int8)
    bias = RNG.integers(-5000, 5000, size=6).astype(np.int32)
    pads = ((2, 1), (0, 1))
    layer = edgeconv.DepthwiseConv2D(
        weights=w, bias=bias, depth_multiplier=2, stride=(2, 1), dilation=(1, 2),
        padding=pads, input_zero_point=12, output_multiplier=np.full(6, 1 << 30, np.int32),
        output_shift=np.full(6, -6, np.int32))
    # The zero point pads: padded taps contribute w * (zp - zp) = 0, as in TFLite.
    expected = float_depthwise(x.astype(float) - 12, w[0].astype(float), 2, (2, 1), pads,
                               (1, 2)) + bias
    assert layer.output_shape_for((6, 7, 3)) == expected.shape == (4, 6, 6)
    for method in ("im2col", "direct"):
        np.testing.assert_array_equal(layer.accumulate(x, method=method), expected)


@st.composite
def dw_configs(draw: st.DrawFn) -> tuple[dict, np.ndarray]:
    int16 = draw(st.booleans())
    dtype = np.int16 if int16 else np.int8
    lo, hi = (-(1 << 15), (1 << 15) - 1) if int16 else (-128, 127)
    c, mult = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    ext = (dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1)
    padding = draw(st.sampled_from(["same", "valid", "explicit"]))
    if padding == "explicit":
        padding = tuple((draw(st.integers(0, e - 1)), draw(st.integers(0, e - 1))) for e in ext)
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    if padding == "valid":
        assume(h >= ext[0] and w >= ext[1])
    elif padding != "same":
        assume(h + sum(padding[0]) >= ext[0] and w + sum(padding[1]) >= ext[1])
    o = c * mult
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    amin = draw(st.integers(lo, hi))
    kwargs = dict(
        weights=rng.integers(-128, 128, size=(1, kh, kw, o)).astype(np.int8),
        bias=rng.integers(-(1 << 20), 1 << 20, size=o).astype(np.int64 if int16 else np.int32),
        depth_multiplier=mult, stride=stride, dilation=dil, padding=padding,
        input_zero_point=0 if int16 else draw(st.integers(-128, 127)),
        output_zero_point=0 if int16 else draw(st.integers(-128, 127)),
        output_multiplier=rng.integers(1 << 30, 1 << 31, size=o).astype(np.int32),
        output_shift=rng.integers(-14, 3, size=o).astype(np.int32),
        activation_min=amin, activation_max=draw(st.integers(amin, hi)),
        activation_dtype=dtype, rounding=draw(st.sampled_from(["double", "single"])))
    x = rng.integers(lo, hi + 1, size=(draw(st.integers(1, 2)), h, w, c)).astype(dtype)
    return kwargs, x


@settings(max_examples=120, deadline=None)
@given(dw_configs())
def test_direct_equals_vectorized(cfg: tuple[dict, np.ndarray]) -> None:
    kwargs, x = cfg
    layer = edgeconv.DepthwiseConv2D(**kwargs)
    fast = layer(x)
    assert fast.dtype == x.dtype
    assert fast.shape == (x.shape[0], *layer.output_shape_for(x.shape[1:]))
    np.testing.assert_array_equal(layer.accumulate(x), layer.accumulate(x, method="direct"))
    np.testing.assert_array_equal(fast, layer(x, method="direct"))


def test_from_float_quantizes_per_output_channel() -> None:
    w = RNG.normal(size=(1, 3, 3, 4)) * np.array([0.5, 2.0, 0.05, 1.0])
    layer = edgeconv.DepthwiseConv2D.from_float(
        w, np.zeros(4), input_scale=0.1, input_zero_point=-3, output_scale=0.2,
        depth_multiplier=2, padding="same", input_shape=(8, 8, 2), name="dw")
    assert np.all(np.abs(layer.weights[0]).reshape(-1, 4).max(axis=0) == 127)
    scales = np.abs(w[0]).reshape(-1, 4).max(axis=0) / 127
    real = layer.output_multiplier * 2.0 ** (layer.output_shift.astype(float) - 31)
    np.testing.assert_allclose(real, 0.1 * scales / 0.2, rtol=1e-6)
    assert layer.output_shape == (8, 8, 4) and layer.macs() == 8 * 8 * 4 * 9
    assert layer.depth_multiplier == 2 and layer.spec()["depth_multiplier"] == 2
