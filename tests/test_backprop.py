"""edgeconv.backprop: the backward layers, the SGD step and the FIR train step against
separately written loop oracles (exact Python integers and Fractions), their argument
checks, and the training demo on native and on the emulated Cortex-M4."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from golden_configs import _random_conv
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeconv.backprop import (
    ConvBackward,
    DenseBackward,
    FirTrainStep,
    LearningRate,
    PoolBackward,
    SGDUpdate,
    SignalBackward,
    round_shift,
    sgd_update,
)
from edgeconv.demo_train import run_filter
from edgeconv.grad import FixedGrad
from edgeconv.layers import AvgPool2D, Conv2D, DepthwiseConv2D, FullyConnected, MaxPool2D
from edgeconv.signal import SignalFilter

# ------------------------------------------------------------------------- oracles


def _round_away(q: Fraction) -> int:
    """Round to nearest, ties away from zero."""
    mag = abs(q)
    r = int(mag + Fraction(1, 2))  # floor for non-negative values
    return r if q >= 0 else -r


def _oracle_quantize(exact: list[Fraction], qmax: int) -> tuple[list[int], int]:
    """The stated format rule by search: the smallest e with round(max|G| / 2**e) <=
    qmax; values round(G / 2**e) (ties away from zero); frac_bits = -e (0 if all zero)."""
    peak = max(abs(g) for g in exact)
    if peak == 0:
        return [0] * len(exact), 0
    e = -200
    while _round_away(peak / Fraction(2) ** e) > qmax:
        e += 1
    return [max(-qmax, min(qmax, _round_away(g / Fraction(2) ** e))) for g in exact], -e


def _conv_taps(layer):
    """(oy, ox, o, ky, kx, iy, ix, c, w) for every in-image product of a conv-like layer,
    from its definition (OHWI; depthwise (1, KH, KW, C*M); Conv1D as height 1)."""
    w = layer.weights if layer.weights.ndim == 4 else layer.weights[:, None]
    shape = layer.input_shape if len(layer.input_shape) == 3 else (1, *layer.input_shape)
    h, wd, c_in = shape
    out = layer.output_shape if len(layer.output_shape) == 3 else (1, *layer.output_shape)
    pads = layer.pads_for(layer.input_shape)
    (pt, _), (pl, _) = pads if len(pads) == 2 else ((0, 0), pads[0])
    stride = layer.stride if len(layer.stride) == 2 else (1, *layer.stride)
    dil = layer.dilation if len(layer.dilation) == 2 else (1, *layer.dilation)
    depthwise = isinstance(layer, DepthwiseConv2D)
    kh, kw = w.shape[1:3]
    for oy in range(out[0]):
        for ox in range(out[1]):
            for o in range(out[2]):
                for ky in range(kh):
                    for kx in range(kw):
                        iy = oy * stride[0] - pt + ky * dil[0]
                        ix = ox * stride[1] - pl + kx * dil[1]
                        if not (0 <= iy < h and 0 <= ix < wd):
                            continue
                        if depthwise:
                            c = o // layer.depth_multiplier
                            yield oy, ox, o, ky, kx, iy, ix, c, int(w[0, ky, kx, o]), (0, ky, kx, o)
                        else:
                            cg = w.shape[3]
                            grp = o // (out[2] // layer.groups)
                            for i in range(cg):
                                yield (oy, ox, o, ky, kx, iy, ix, grp * cg + i,
                                       int(w[o, ky, kx, i]), (o, ky, kx, i))


def _oracle_conv(layer, part: str, x: np.ndarray, g: np.ndarray) -> list[Fraction]:
    """dL/dx, dL/dw or dL/db of acc = conv(x - zero_point, w) + b, by loops."""
    shape = layer.input_shape if len(layer.input_shape) == 3 else (1, *layer.input_shape)
    x3 = x.reshape(shape).astype(object) - layer.input_zero_point
    g3 = g.reshape(layer.output_shape if len(layer.output_shape) == 3
                   else (1, *layer.output_shape)).astype(object)
    w4 = layer.weights if layer.weights.ndim != 3 else layer.weights[:, None]
    dx = np.zeros(shape, object)
    dw = np.zeros(w4.shape, object)
    for oy, ox, o, _ky, _kx, iy, ix, c, wv, widx in _conv_taps(layer):
        dx[iy, ix, c] += g3[oy, ox, o] * wv
        dw[widx] += g3[oy, ox, o] * x3[iy, ix, c]
    db = g3.sum(axis=(0, 1))
    return [Fraction(int(v)) for v in {"input": dx, "weights": dw, "bias": db}[part].ravel()]


def _qmax(dtype) -> int:
    return int(np.iinfo(dtype).max)


# ------------------------------------------------------------------- backward layers

CONV_LAYERS = [_random_conv(np.random.default_rng(100 + i), f"o{i}", op, wide, False)
               for i, (op, wide) in enumerate([("conv2d", False), ("conv2d", True),
                                               ("depthwise", False), ("depthwise", True),
                                               ("conv1d", False), ("conv1d", True),
                                               ("conv2d", False), ("depthwise", False)])]


@pytest.mark.parametrize("part", ["input", "weights", "bias"])
@pytest.mark.parametrize("index", range(len(CONV_LAYERS)))
def test_conv_backward_equals_loop_oracle(index: int, part: str) -> None:
    layer = CONV_LAYERS[index]
    if part == "bias" and layer.bias is None:
        with pytest.raises(ValueError, match="part='bias'"):
            ConvBackward(layer, part=part)
        return
    back = ConvBackward(layer, part=part, name="b")
    rng = np.random.default_rng(index)
    info = np.iinfo(layer.activation_dtype)
    vec = rng.integers(info.min, int(info.max) + 1, back.input_shape).astype(info.dtype)
    x = vec[:back._sizes["x"]] if part == "weights" else \
        np.full(back._sizes["x"], layer.input_zero_point)
    g = vec[-back._sizes["grad_output"]:]
    values, frac_bits = _oracle_quantize(_oracle_conv(layer, part, x, g), _qmax(info.dtype))
    got = back(vec)
    assert got.dtype == info.dtype and got.shape == back.output_shape
    assert got[:-1].tolist() == values and int(got[-1]) == frac_bits
    both = back(np.stack([vec, np.zeros_like(vec)]))  # batch; all-zero gradient
    assert both[0].tolist() == got.tolist() and not both[1].any()


@pytest.mark.parametrize("pool", [
    MaxPool2D(pool_size=3, stride=2, padding="same", input_shape=(5, 6, 2)),
    MaxPool2D(pool_size=(2, 3), stride=1, padding=((1, 1), (0, 2)), input_shape=(4, 4, 2),
              activation_dtype=np.int16),
    AvgPool2D(pool_size=3, stride=2, padding="same", input_shape=(6, 5, 2)),
    AvgPool2D(pool_size=(4, 3), stride=(3, 1), padding="same", input_shape=(7, 4, 1),
              activation_dtype=np.int16)], ids=["max8", "max16", "avg8", "avg16"])
def test_pool_backward_equals_loop_oracle(pool) -> None:
    back = PoolBackward(pool, name="p")
    rng = np.random.default_rng(3)
    info = np.iinfo(pool.activation_dtype)
    # few distinct x values: many ties, the first maximum (row-major) must win
    n_x = int(np.prod(pool.input_shape))
    x = rng.integers(-2, 2, n_x).astype(info.dtype)
    g = rng.integers(info.min, int(info.max) + 1, int(np.prod(pool.output_shape)))\
        .astype(info.dtype)
    vec = np.concatenate([x, g]) if back.kind == "max" else g
    h, w, c = pool.input_shape
    (pt, _), (pl, _) = pool.pads_for(pool.input_shape)
    oh, ow, _ = pool.output_shape
    x3, g3 = x.reshape(h, w, c), g.reshape(oh, ow, c)
    dx = np.full((h, w, c), Fraction(0), object)
    for oy in range(oh):
        for ox in range(ow):
            taps = [(iy, ix) for iy in range(oy * pool.stride[0] - pt,
                                             oy * pool.stride[0] - pt + pool.pool_size[0])
                    for ix in range(ox * pool.stride[1] - pl,
                                    ox * pool.stride[1] - pl + pool.pool_size[1])
                    if 0 <= iy < h and 0 <= ix < w]
            for ch in range(c):
                if back.kind == "max":
                    best = taps[0]
                    for t in taps:
                        best = t if x3[t + (ch,)] > x3[best + (ch,)] else best
                    dx[best + (ch,)] += int(g3[oy, ox, ch])
                else:
                    for t in taps:
                        dx[t + (ch,)] += Fraction(int(g3[oy, ox, ch]), len(taps))
    values, frac_bits = _oracle_quantize(list(dx.ravel()), _qmax(info.dtype))
    got = back(vec)
    assert got[:-1].tolist() == values and int(got[-1]) == frac_bits


@pytest.mark.parametrize("fmt", ["q7", "q15"])
@pytest.mark.parametrize("kind", ["convolve", "correlate"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("m, n, stride", [(7, 3, 1), (3, 6, 2), (5, 5, 3)])
def test_signal_backward_equals_loop_oracle(fmt: str, kind: str, mode: str, m: int, n: int,
                                            stride: int) -> None:
    dt = np.int8 if fmt == "q7" else np.int16
    rng = np.random.default_rng(m * 100 + n * 10 + stride)
    info = np.iinfo(dt)
    h = rng.integers(info.min, int(info.max) + 1, n).astype(dt)
    x = rng.integers(info.min, int(info.max) + 1, m).astype(dt)
    filt = SignalFilter(h, kind=kind, mode=mode, fmt=fmt, input_length=m, stride=stride)
    g = rng.integers(info.min, int(info.max) + 1, filt.output_length).astype(dt)
    # The integer outputs' definition: out[j] = sum over the products x[a] * h[b] that
    # land on full position t (convolve: t = a + b; correlate: t = a - b + n - 1), the
    # full output cut by mode (CMSIS correlate 'full' pads |m - n| zeros) and stride.
    full = list(range(m + n - 1))
    if mode == "same":
        full = full[(n - 1) // 2:(n - 1) // 2 + m]
    elif mode == "valid":
        full = full[min(m, n) - 1:min(m, n) - 1 + abs(m - n) + 1]
    elif kind == "correlate" and m != n:
        full = [None] * (m - n) + full if m > n else full + [None] * (n - m)
    positions = full[::stride]
    assert len(positions) == filt.output_length
    dx, dh = [Fraction(0)] * m, [Fraction(0)] * n
    for j, t in enumerate(positions):
        for a in range(m):
            for b in range(n):
                if t is not None and t == (a + b if kind == "convolve" else a - b + n - 1):
                    dx[a] += int(g[j]) * int(h[b])
                    dh[b] += int(g[j]) * int(x[a])
    for part, exact, vec in (("input", dx, g), ("kernel", dh, np.concatenate([x, g]))):
        values, frac_bits = _oracle_quantize(exact, _qmax(dt))
        out = SignalBackward(filt, part=part, name="s")(vec.astype(dt))
        assert out[:-1].tolist() == values and int(out[-1]) == frac_bits, part


def test_signal_backward_refuses_q31() -> None:
    filt = SignalFilter(np.ones(3, np.int32), fmt="q31", input_length=5)
    with pytest.raises(ValueError, match="fmt='q31'"):
        SignalBackward(filt, part="input")


# ------------------------------------------------------------------------------ SGD

@settings(max_examples=200, deadline=None)
@given(st.integers(-(1 << 46), 1 << 46), st.integers(-200, 200))
def test_round_shift_equals_fraction_oracle(a: int, shift: int) -> None:
    want = max(-(1 << 31), min((1 << 31) - 1, _round_away(Fraction(a) / Fraction(2) ** shift)))
    assert int(round_shift(np.array([a]), shift)[0]) == want


def test_learning_rate_from_float() -> None:
    for value in (1.0, 0.01, 3e-5, 40.0, 0.75):
        lr = LearningRate.from_float(value)
        assert 16384 <= lr.mult <= 32767
        assert abs(lr.value - value) <= value * 2**-15
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="value="):
            LearningRate.from_float(bad)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-128, 127), st.integers(-(1 << 15), 1 << 15),
                          st.integers(-(1 << 22), 1 << 22)), min_size=1, max_size=6),
       st.integers(-10, 30), st.sampled_from([None, 0, 29491, 32767]),
       st.sampled_from([0.01, 3e-5, 2.0]))
def test_sgd_update_equals_fraction_oracle(rows, frac_bits, momentum, lr_value) -> None:
    w, g, vel = (np.array(col, np.int64) for col in zip(*rows, strict=True))
    lr = LearningRate.from_float(lr_value)
    grad = FixedGrad(g.astype(np.int32), frac_bits, np.dtype(np.int32))
    got_w, got_v = sgd_update(w, grad, lr=lr, momentum=momentum, velocity=vel,
                              velocity_frac_bits=12)
    lr_q = Fraction(lr.mult, 2**lr.shift) if lr.shift >= 0 else Fraction(lr.mult * 2**-lr.shift)
    sat32 = lambda v: max(-(1 << 31), min((1 << 31) - 1, v))  # noqa: E731
    for i in range(len(rows)):
        g_real = Fraction(int(g[i])) / Fraction(2) ** frac_bits
        if momentum is None:
            step = g_real
        else:
            v_new = sat32(sat32(_round_away(Fraction(momentum * int(vel[i]), 1 << 15)))
                          + sat32(_round_away(g_real * (1 << 12))))
            assert int(got_v[i]) == v_new
            step = Fraction(v_new, 1 << 12)
        delta = sat32(_round_away(lr_q * step))
        assert int(got_w[i]) == max(-128, min(127, int(w[i]) - delta))


def test_sgd_layer_layout_and_checks() -> None:
    layer = SGDUpdate(3, lr=0.5, momentum=100, weight_dtype=np.int16, name="s")
    assert layer.input_shape == (10,) and layer.output_shape == (6,)
    vec = np.array([100, -5, 7, 64, -64, 0, 6, 1000, 0, -1000], np.int32)
    out = layer(vec)
    w, v = sgd_update(vec[:3], FixedGrad(vec[3:6], 6, np.dtype(np.int32)), lr=layer.lr,
                      weight_dtype=np.int16, momentum=100, velocity=vec[7:])
    assert out.tolist() == w.tolist() + v.tolist()
    for kwargs, match in ((dict(momentum=40000), "momentum"), (dict(weight_dtype=np.int32),
                                                                "weight_dtype"),
                          (dict(velocity_frac_bits=31), "velocity_frac_bits")):
        with pytest.raises(ValueError, match=match):
            SGDUpdate(3, lr=0.5, **kwargs)
    with pytest.raises(ValueError, match="x:"):
        layer(vec.astype(np.int16))


# -------------------------------------------------------------------- FIR train step

def test_fir_train_step_equals_loop_oracle() -> None:
    layer = FirTrainStep(4, 11, lr=0.7, name="f")
    rng = np.random.default_rng(5)
    w = rng.integers(-20000, 20000, 4).astype(np.int16)
    x = rng.integers(-32768, 32768, 11).astype(np.int16)
    t = rng.integers(-32768, 32768, 8).astype(np.int16)
    n, m, big = 4, 11, 8
    e = []
    for k in range(big):
        s = sum(int(w[i]) * int(x[k + n - 1 - i]) for i in range(n))
        y = max(-32768, min(32767, s >> 15))  # floor, saturate (arm_conv_q15)
        e.append(max(-32768, min(32767, y - int(t[k]))))
    grad = [Fraction(sum(e[k] * int(x[k + n - 1 - i]) for k in range(big))) for i in range(n)]
    values, frac_bits = _oracle_quantize(grad, 32767)
    lr_q = Fraction(layer.lr.mult, 2**layer.lr.shift)
    assert abs(float(lr_q) - 0.7 * 2**-14 / big) <= 0.7 * 2**-14 / big * 2**-14
    want_w = [max(-32768, min(32767, int(w[i]) - _round_away(
        lr_q * values[i] / Fraction(2) ** frac_bits))) for i in range(n)]
    out = layer(layer.pack(w, x, t))
    assert out[:n].tolist() == want_w
    sse = sum(v * v for v in e)
    assert layer.loss(out) == sse / big * 2.0**-30
    assert m + n + big == layer.input_shape[0]


def test_backward_layer_argument_checks() -> None:
    conv = CONV_LAYERS[0]
    with pytest.raises(ValueError, match="part='x'"):
        ConvBackward(conv, part="x")
    with pytest.raises(ValueError, match="input_shape=None"):
        ConvBackward(Conv2D(weights=np.ones((1, 1, 1, 1), np.int8),
                            output_multiplier=np.array([1 << 30], np.int32),
                            output_shift=np.array([-1], np.int32)), part="input")
    with pytest.raises(ValueError, match="layer: MaxPool2D not allowed"):
        ConvBackward(MaxPool2D(pool_size=2, input_shape=(2, 2, 1)), part="input")
    with pytest.raises(ValueError, match="grad_dtype"):
        ConvBackward(conv, part="input", grad_dtype=np.float32)
    with pytest.raises(ValueError, match="length=2"):
        FirTrainStep(3, 2, lr=1.0)
    with pytest.raises(ValueError, match="lr="):
        FirTrainStep(3, 5, lr=-1.0)
    with pytest.raises(ValueError, match="x: int16"):
        FirTrainStep(3, 5, lr=1.0).pack(np.zeros(3, np.int16), np.zeros(4, np.int16),
                                        np.zeros(3, np.int16))


# ---------------------------------------------------------------------- the demo

@pytest.mark.parametrize("target", ["native", "qemu:mps2-an386"])
def test_demo_learns_the_filter_on_the_board(target: str) -> None:
    lines: list[str] = []
    result = run_filter(target, echo=lines.append)
    assert result.reduction >= 100, result.losses
    assert all(b < a for a, b in zip(result.losses, result.losses[1:], strict=False))
    assert result.max_tap_error < 1e-3
    assert any(line.startswith("epoch 8: loss") for line in lines)


def test_demo_train_command(capsys: pytest.CaptureFixture[str]) -> None:
    from edgeconv import cli

    assert cli.main(["demo", "train", "--target", "native", "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert "epoch 3: loss (MSE)" in out and "tap   learned    true" in out
    assert "held-out accuracy (400 target-domain samples)" in out  # then the CNN (4b)
    assert "RAM of a training step on the board" in out


# ------------------------------------------------------------------- dense backward

@pytest.mark.parametrize("wide", [False, True])
def test_dense_backward_layer_is_fully_connected_backward(wide: bool) -> None:
    """DenseBackward (the 1 x batch 1x1 convolution's ConvBackward) gives what
    FullyConnected.backward (edgeconv.grad.dense_backward) gives, part by part."""
    rng = np.random.default_rng(5)
    dt = np.int16 if wide else np.int8
    fc = FullyConnected(
        weights=rng.integers(-127, 128, (3, 5)).astype(np.int8),
        bias=np.array([1, -2, 3], np.int64 if wide else np.int32),
        input_zero_point=0 if wide else -4, output_multiplier=1 << 30, output_shift=-3,
        activation_dtype=dt)
    info = np.iinfo(dt)
    x = rng.integers(info.min, int(info.max) + 1, (4, 5)).astype(dt)
    g = rng.integers(info.min, int(info.max) + 1, (4, 3)).astype(dt)
    want = fc.backward(x, g)
    for part, ref in zip(("input", "weights", "bias"), want, strict=True):
        layer = DenseBackward(fc, part=part, batch=4)
        vector = np.concatenate(([x.ravel()] if part == "weights" else []) + [g.ravel()])
        got = layer(vector.astype(dt))
        np.testing.assert_array_equal(got[:-1], ref.values.ravel())
        assert got[-1] == ref.frac_bits
    with pytest.raises(ValueError, match="layer: Conv2D not allowed"):
        DenseBackward(Conv2D(weights=np.ones((1, 1, 1, 1), np.int8), output_multiplier=
                             np.array([1 << 30], np.int32), output_shift=np.array([0], np.int32),
                             input_shape=(1, 1, 1)), part="input")
