"""edgeconv.grad: float gradients against PyTorch autograd and central finite differences,
fixed-point gradients against a separately written loop oracle (exact integer sums,
requantized with Fractions) and within the stated error bound of the float ones."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import edgeconv
from edgeconv import grad

torch.set_num_threads(1)
SETTINGS = settings(max_examples=20, deadline=None)


# ------------------------------------------------------------------ independent helpers

def same_pad(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TFLite SAME: ceil(size / s) outputs, the odd pad pixel after."""
    ext = d * (k - 1) + 1
    total = max((math.ceil(size / s) - 1) * s + ext - size, 0)
    return total // 2, total - total // 2


def explicit_pads(padding, hw, k, s, d):
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        return tuple(same_pad(hw[i], k[i], s[i], d[i]) for i in range(2))
    return padding


def out_size(size, k, s, d, pad):
    return (size + pad[0] + pad[1] - d * (k - 1) - 1) // s + 1


def autograd(fwd, arrays, gy):
    """d(sum(fwd(*arrays) * gy)) / d(each array) by torch autograd in float64."""
    ts = [torch.tensor(np.asarray(a, np.float64), requires_grad=True) for a in arrays]
    (fwd(*ts) * torch.tensor(np.asarray(gy, np.float64))).sum().backward()
    return [t.grad.numpy() for t in ts]


def finite_diff(fwd, arrays, gy, eps=1e-3):
    """Central differences of L = sum(fwd(*arrays) * gy) in float64, every element."""
    arrays = [np.asarray(a, np.float64) for a in arrays]
    gyt = torch.tensor(np.asarray(gy, np.float64))

    def loss(args):
        with torch.no_grad():
            return float((fwd(*[torch.tensor(a) for a in args]) * gyt).sum())

    grads = []
    for i, a in enumerate(arrays):
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            plus, minus = [b.copy() for b in arrays], [b.copy() for b in arrays]
            plus[i][idx] += eps
            minus[i][idx] -= eps
            g[idx] = (loss(plus) - loss(minus)) / (2 * eps)
        grads.append(g)
    return grads


def torch_conv2d(s, pads, d, groups):
    """NHWC / OHWI convolution with explicit pads, via torch (NCHW / OIHW)."""
    (t, b), (lf, r) = pads

    def fwd(x, w, bias):
        xp = F.pad(x.permute(0, 3, 1, 2), (lf, r, t, b))
        y = F.conv2d(xp, w.permute(0, 3, 1, 2), bias, stride=s, dilation=d, groups=groups)
        return y.permute(0, 2, 3, 1)
    return fwd


def torch_depthwise(s, pads, d, channels):
    (t, b), (lf, r) = pads

    def fwd(x, w, bias):
        xp = F.pad(x.permute(0, 3, 1, 2), (lf, r, t, b))
        wt = w[0].permute(2, 0, 1)[:, None]  # (C*M, 1, KH, KW)
        return F.conv2d(xp, wt, bias, stride=s, dilation=d, groups=channels).permute(0, 2, 3, 1)
    return fwd


def fraction_quant(exact, dtype):
    """The requantization rule written independently: the smallest e with
    round_half_away(max|G| / 2**e) <= qmax, found by trying every e, Fractions throughout."""
    qmax = np.iinfo(dtype).max
    flat = [Fraction(v) for v in np.asarray(exact, object).ravel()]
    peak = max((abs(v) for v in flat), default=Fraction(0))

    def rha(q: Fraction) -> int:
        mag = math.floor(abs(q) + Fraction(1, 2))
        return mag if q >= 0 else -mag

    if peak == 0:
        return np.zeros(np.shape(exact), dtype), 0
    e = 80
    while rha(peak / Fraction(2) ** (e - 1)) <= qmax:
        e -= 1
    values = np.array([rha(v / Fraction(2) ** e) for v in flat], np.int64)
    return values.reshape(np.shape(exact)).astype(dtype), -e


def check_fixed(fg, exact, float_grad, dtype):
    """FixedGrad == the oracle's requantization of the exact gradient, and within the
    stated bounds of the float gradient."""
    values, frac_bits = fraction_quant(exact, dtype)
    assert fg.dtype == np.dtype(dtype) and fg.values.dtype == np.dtype(dtype)
    assert fg.frac_bits == frac_bits
    np.testing.assert_array_equal(fg.values, values)
    err = np.abs(fg.to_float() - float_grad)
    slack = 1e-12 * max(1.0, float(np.abs(float_grad).max()))  # float64 rounding of the ref
    assert (err <= fg.error_bound + slack).all()
    qmax = np.iinfo(dtype).max
    assert (err <= np.abs(float_grad).max() / (qmax + 0.5) + slack).all()


def loop_conv_grads(x, w, gy, s, pads, d, groups):
    """Plain loops: exact gradients of a grouped NHWC/OHWI convolution (object arrays of
    Python ints for integer input, floats otherwise)."""
    n, h, wd, c = x.shape
    o, kh, kw, cg = w.shape
    og = o // groups
    (top, _), (left, _) = pads
    dx, dw, db = np.zeros(x.shape, object), np.zeros(w.shape, object), np.zeros(o, object)
    dx[...], dw[...], db[...] = 0, 0, 0
    for b, oy, ox, oc in np.ndindex(gy.shape):
        g = gy[b, oy, ox, oc].item()
        db[oc] += g
        for ky in range(kh):
            iy = oy * s[0] - top + ky * d[0]
            for kx in range(kw):
                ix = ox * s[1] - left + kx * d[1]
                if 0 <= iy < h and 0 <= ix < wd:
                    for ci in range(cg):
                        ch = (oc // og) * cg + ci
                        dx[b, iy, ix, ch] += g * w[oc, ky, kx, ci].item()
                        dw[oc, ky, kx, ci] += g * x[b, iy, ix, ch].item()
    return dx, dw, db


def loop_depthwise_grads(x, w, gy, s, pads, d, mult):
    n, h, wd, c = x.shape
    _, kh, kw, _ = w.shape
    (top, _), (left, _) = pads
    dx, dw, db = np.zeros(x.shape, object), np.zeros(w.shape, object), np.zeros(c * mult, object)
    dx[...], dw[...], db[...] = 0, 0, 0
    for b, oy, ox, oc in np.ndindex(gy.shape):
        g, ci = gy[b, oy, ox, oc].item(), oc // mult
        db[oc] += g
        for ky in range(kh):
            for kx in range(kw):
                iy, ix = oy * s[0] - top + ky * d[0], ox * s[1] - left + kx * d[1]
                if 0 <= iy < h and 0 <= ix < wd:
                    dx[b, iy, ix, ci] += g * w[0, ky, kx, oc].item()
                    dw[0, ky, kx, oc] += g * x[b, iy, ix, ci].item()
    return dx, dw, db


def ints(rng, dtype, shape, lo=None, hi=None):
    info = np.iinfo(dtype)
    return rng.integers(info.min if lo is None else lo, (info.max if hi is None else hi) + 1,
                        size=shape).astype(dtype)


# ------------------------------------------------------------------ strategies

@st.composite
def conv_cases(draw, depthwise=False, rank=2):
    k = (1 if rank == 1 else draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (1 if rank == 1 else draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (1 if rank == 1 else draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    hw = (1 if rank == 1 else draw(st.integers(1, 6)), draw(st.integers(1, 7)))
    kind = draw(st.sampled_from(["same", "valid", "explicit", "int"]))
    if kind == "explicit":
        pads = tuple(tuple(draw(st.integers(0, 2)) for _ in range(2)) for _ in range(2))
        pads = ((0, 0), pads[1]) if rank == 1 else pads
        padding = pads if rank == 2 else pads[1]
    elif kind == "int":  # one int pads every side (rank 1: left and right)
        padding = draw(st.integers(0, 2))
        pads = ((0 if rank == 1 else padding,) * 2, (padding, padding))
    else:
        padding = kind
        pads = explicit_pads(kind, hw, k, s, d)
    out = tuple(out_size(hw[i], k[i], s[i], d[i], pads[i]) for i in range(2))
    assume(min(out) >= 1)
    if depthwise:
        groups, c, mult = 1, draw(st.integers(1, 3)), draw(st.integers(1, 3))
        cg, o = c, c * mult
    else:
        groups, mult = draw(st.integers(1, 3)), 1
        cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        c, o = groups * cg, groups * og
    batch = draw(st.sampled_from([None, 1, 2]))
    return {"k": k, "s": s, "d": d, "hw": hw, "pads": pads, "padding": padding, "out": out,
            "groups": groups, "c": c, "cg": cg, "o": o, "mult": mult, "batch": batch,
            "seed": draw(st.integers(0, 2**32 - 1))}


def shapes(cfg, rank=2, depthwise=False):
    n = cfg["batch"] or 1
    x_shape = (n, *cfg["hw"], cfg["c"])
    w_shape = ((1, *cfg["k"], cfg["o"]) if depthwise else (cfg["o"], *cfg["k"], cfg["cg"]))
    gy_shape = (n, *cfg["out"], cfg["o"])
    return x_shape, w_shape, gy_shape


def public(a, cfg, rank=2, w=False):
    """Batched NHWC (or OHWI) test array -> the form handed to edgeconv.grad."""
    if w:
        return a[:, 0] if rank == 1 else a
    a = a[:, 0] if rank == 1 else a
    return a if cfg["batch"] else a[0]


# ------------------------------------------------------------------ convolutions

def conv_fn(rank):
    return grad.conv2d_backward if rank == 2 else grad.conv1d_backward


def conv_kwargs(cfg, rank):
    if rank == 1:
        return {"stride": cfg["s"][1], "padding": cfg["padding"], "dilation": (cfg["d"][1],),
                "groups": cfg["groups"]}
    return {"stride": cfg["s"], "padding": cfg["padding"], "dilation": cfg["d"],
            "groups": cfg["groups"]}


@pytest.mark.parametrize("rank", [2, 1])
@SETTINGS
@given(data=st.data())
def test_conv_float_matches_autograd_and_finite_differences(rank, data):
    cfg = data.draw(conv_cases(rank=rank))
    rng = np.random.default_rng(cfg["seed"])
    xs, ws, gs = shapes(cfg, rank)
    x, w, b, gy = rng.normal(size=xs), rng.normal(size=ws), rng.normal(size=cfg["o"]), \
        rng.normal(size=gs)
    dx, dw, db = conv_fn(rank)(public(x, cfg, rank), public(w, cfg, rank, w=True),
                               public(gy, cfg, rank), **conv_kwargs(cfg, rank))
    fwd = torch_conv2d(cfg["s"], cfg["pads"], cfg["d"], cfg["groups"])
    for ref in (autograd(fwd, [x, w, b], gy), finite_diff(fwd, [x, w, b], gy)):
        np.testing.assert_allclose(dx, public(ref[0], cfg, rank), rtol=1e-7, atol=1e-8)
        np.testing.assert_allclose(dw, public(ref[1], cfg, rank, w=True), rtol=1e-7, atol=1e-8)
        np.testing.assert_allclose(db, ref[2], rtol=1e-7, atol=1e-8)
    assert dx.dtype == dw.dtype == db.dtype == np.float64


@pytest.mark.parametrize("rank", [2, 1])
@SETTINGS
@given(data=st.data(), x_dt=st.sampled_from([np.int8, np.int16]),
       g_dt=st.sampled_from([np.int8, np.int16]),
       grad_dtype=st.sampled_from([None, np.int8, np.int16, np.int32]))
def test_conv_fixed_point_matches_loop_oracle(rank, data, x_dt, g_dt, grad_dtype):
    cfg = data.draw(conv_cases(rank=rank))
    rng = np.random.default_rng(cfg["seed"])
    xs, ws, gs = shapes(cfg, rank)
    x, w, gy = ints(rng, x_dt, xs), ints(rng, np.int8, ws, -127), ints(rng, g_dt, gs)
    got = conv_fn(rank)(public(x, cfg, rank), public(w, cfg, rank, w=True),
                        public(gy, cfg, rank), grad_dtype=grad_dtype, **conv_kwargs(cfg, rank))
    exact = loop_conv_grads(x, w, gy, cfg["s"], cfg["pads"], cfg["d"], cfg["groups"])
    fwd = torch_conv2d(cfg["s"], cfg["pads"], cfg["d"], cfg["groups"])
    floats = autograd(fwd, [x, w, np.zeros(cfg["o"])], gy)
    dt = g_dt if grad_dtype is None else grad_dtype
    for fg, ex, fl, is_w in zip(got, exact, floats, (False, True, None), strict=True):
        if is_w is None:
            check_fixed(fg, ex, fl, dt)
        else:
            check_fixed(fg, public(ex, cfg, rank, is_w), public(fl, cfg, rank, is_w), dt)


@SETTINGS
@given(data=st.data())
def test_depthwise_float_matches_autograd_and_finite_differences(data):
    cfg = data.draw(conv_cases(depthwise=True))
    rng = np.random.default_rng(cfg["seed"])
    xs, ws, gs = shapes(cfg, depthwise=True)
    x, w, b, gy = rng.normal(size=xs), rng.normal(size=ws), rng.normal(size=cfg["o"]), \
        rng.normal(size=gs)
    mult = data.draw(st.sampled_from([None, cfg["mult"]]))
    dx, dw, db = grad.depthwise_conv2d_backward(
        public(x, cfg), w, public(gy, cfg), stride=cfg["s"], padding=cfg["padding"],
        dilation=cfg["d"], depth_multiplier=mult)
    fwd = torch_depthwise(cfg["s"], cfg["pads"], cfg["d"], cfg["c"])
    for ref in (autograd(fwd, [x, w, b], gy), finite_diff(fwd, [x, w, b], gy)):
        np.testing.assert_allclose(dx, public(ref[0], cfg), rtol=1e-7, atol=1e-8)
        np.testing.assert_allclose(dw, ref[1], rtol=1e-7, atol=1e-8)
        np.testing.assert_allclose(db, ref[2], rtol=1e-7, atol=1e-8)


@SETTINGS
@given(data=st.data(), x_dt=st.sampled_from([np.int8, np.int16]),
       g_dt=st.sampled_from([np.int8, np.int16]))
def test_depthwise_fixed_point_matches_loop_oracle(data, x_dt, g_dt):
    cfg = data.draw(conv_cases(depthwise=True))
    rng = np.random.default_rng(cfg["seed"])
    xs, ws, gs = shapes(cfg, depthwise=True)
    x, w, gy = ints(rng, x_dt, xs), ints(rng, np.int8, ws, -127), ints(rng, g_dt, gs)
    got = grad.depthwise_conv2d_backward(public(x, cfg), w, public(gy, cfg), stride=cfg["s"],
                                         padding=cfg["padding"], dilation=cfg["d"])
    exact = loop_depthwise_grads(x, w, gy, cfg["s"], cfg["pads"], cfg["d"], cfg["mult"])
    floats = autograd(torch_depthwise(cfg["s"], cfg["pads"], cfg["d"], cfg["c"]),
                      [x, w, np.zeros(cfg["o"])], gy)
    check_fixed(got[0], public(exact[0], cfg), public(floats[0], cfg), g_dt)
    check_fixed(got[1], exact[1], floats[1], g_dt)
    check_fixed(got[2], exact[2], floats[2], g_dt)


# ------------------------------------------------------------------ pooling

@st.composite
def pool_cases(draw):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = draw(st.sampled_from([None, (1, 1), (2, 1), (1, 2), (2, 3)]))
    ss = k if s is None else s
    hw = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    kind = draw(st.sampled_from(["same", "valid", "explicit"]))
    if kind == "explicit":
        pads = tuple(tuple(draw(st.integers(0, k[i] - 1)) for _ in range(2)) for i in range(2))
        padding = pads
    else:
        padding, pads = kind, explicit_pads(kind, hw, k, ss, (1, 1))
    out = tuple(out_size(hw[i], k[i], ss[i], 1, pads[i]) for i in range(2))
    assume(min(out) >= 1)
    return {"k": k, "stride": s, "s": ss, "hw": hw, "pads": pads, "padding": padding,
            "out": out, "c": draw(st.integers(1, 3)), "batch": draw(st.sampled_from([None, 2])),
            "seed": draw(st.integers(0, 2**32 - 1))}


def torch_pool(cfg, kind):
    (t, b), (lf, r) = cfg["pads"]

    def fwd(x):
        xc = x.permute(0, 3, 1, 2)
        if kind == "max":
            y = F.max_pool2d(F.pad(xc, (lf, r, t, b), value=-math.inf), cfg["k"], cfg["s"])
        else:  # sum over the window / in-image tap count (padding excluded)
            total = F.avg_pool2d(F.pad(xc, (lf, r, t, b)), cfg["k"], cfg["s"],
                                 divisor_override=1)
            ones = F.pad(torch.ones_like(xc[:1, :1]), (lf, r, t, b))
            y = total / F.avg_pool2d(ones, cfg["k"], cfg["s"], divisor_override=1)
        return y.permute(0, 2, 3, 1)
    return fwd


def loop_pool_grad(x, gy, cfg, kind):
    """Exact input gradient: max -> first maximal in-image tap (row-major), avg -> g / n
    to each of the n in-image taps (Fractions)."""
    n, h, w, c = x.shape
    (top, _), (left, _) = cfg["pads"]
    dx = np.zeros(x.shape, object)
    dx[...] = 0
    for b, oy, ox, ch in np.ndindex(gy.shape):
        taps = [(oy * cfg["s"][0] - top + ky, ox * cfg["s"][1] - left + kx)
                for ky in range(cfg["k"][0]) for kx in range(cfg["k"][1])]
        taps = [(iy, ix) for iy, ix in taps if 0 <= iy < h and 0 <= ix < w]
        g = gy[b, oy, ox, ch].item()
        if kind == "max":
            best = taps[0]
            for t in taps[1:]:
                if x[b, t[0], t[1], ch] > x[b, best[0], best[1], ch]:
                    best = t
            dx[b, best[0], best[1], ch] += g
        else:
            for iy, ix in taps:
                dx[b, iy, ix, ch] += Fraction(g, len(taps)) if isinstance(g, int) else \
                    g / len(taps)
    return dx


def pool_fn(kind):
    return grad.max_pool2d_backward if kind == "max" else grad.avg_pool2d_backward


@pytest.mark.parametrize("kind", ["max", "avg"])
@SETTINGS
@given(cfg=pool_cases())
def test_pool_float_matches_autograd_and_finite_differences(kind, cfg):
    rng = np.random.default_rng(cfg["seed"])
    n = cfg["batch"] or 1
    shape = (n, *cfg["hw"], cfg["c"])
    # distinct values 0.1 apart: no ties within the finite-difference step
    x = rng.permutation(np.prod(shape)).reshape(shape) * 0.1
    gy = rng.normal(size=(n, *cfg["out"], cfg["c"]))
    dx = pool_fn(kind)(public(x, cfg), public(gy, cfg), pool_size=cfg["k"],
                       stride=cfg["stride"], padding=cfg["padding"])
    fwd = torch_pool(cfg, kind)
    for ref in (autograd(fwd, [x], gy)[0], finite_diff(fwd, [x], gy, eps=1e-4)[0]):
        np.testing.assert_allclose(dx, public(ref, cfg), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("kind", ["max", "avg"])
@SETTINGS
@given(cfg=pool_cases(), x_dt=st.sampled_from([np.int8, np.int16]),
       g_dt=st.sampled_from([np.int8, np.int16]))
def test_pool_fixed_point_matches_loop_oracle(kind, cfg, x_dt, g_dt):
    rng = np.random.default_rng(cfg["seed"])
    n = cfg["batch"] or 1
    x = ints(rng, x_dt, (n, *cfg["hw"], cfg["c"]), -3, 3)  # many ties in max windows
    gy = ints(rng, g_dt, (n, *cfg["out"], cfg["c"]))
    got = pool_fn(kind)(public(x, cfg), public(gy, cfg), pool_size=cfg["k"],
                        stride=cfg["stride"], padding=cfg["padding"])
    floats = autograd(torch_pool(cfg, kind), [x], gy)[0]  # torch also takes the first max
    check_fixed(got, public(loop_pool_grad(x, gy, cfg, kind), cfg), public(floats, cfg), g_dt)


# ------------------------------------------------------------------ 1-D signal

def kept_positions(kind, mode, m, n, integer, stride):
    """Index into the M+N-1 full output of every output sample (None: a constant zero of
    the integer correlate 'full' layout)."""
    full = list(range(m + n - 1))
    if mode == "same":
        start = (n - 1) // 2
        pos = full[start:start + m]
    elif mode == "valid":
        pos = full[min(m, n) - 1:min(m, n) - 1 + abs(m - n) + 1]
    elif kind == "correlate" and integer:
        pos = [None] * (m - n) + full if m > n else full + [None] * (n - m)
    else:
        pos = full
    return pos[::stride]


def torch_signal(kind, mode, m, n, integer, stride):
    pos = kept_positions(kind, mode, m, n, integer, stride)

    def fwd(x, h):
        hh = h.flip(0) if kind == "correlate" else h
        full = F.conv1d(F.pad(x, (n - 1, n - 1))[None, None], hh.flip(0)[None, None])[0, 0]
        zero = torch.zeros((), dtype=x.dtype)
        return torch.stack([zero if p is None else full[p] for p in pos])
    return fwd


signal_cases = st.fixed_dictionaries({
    "kind": st.sampled_from(["convolve", "correlate"]),
    "mode": st.sampled_from(["full", "same", "valid"]),
    "m": st.integers(1, 9), "n": st.integers(1, 6), "stride": st.integers(1, 3),
    "seed": st.integers(0, 2**32 - 1)})


@settings(max_examples=40, deadline=None)
@given(cfg=signal_cases)
def test_signal_float_matches_autograd_and_finite_differences(cfg):
    kind, mode, m, n, stride = (cfg[k] for k in ("kind", "mode", "m", "n", "stride"))
    rng = np.random.default_rng(cfg["seed"])
    x, h = rng.normal(size=m), rng.normal(size=n)
    fwd = torch_signal(kind, mode, m, n, False, stride)
    # the test's forward is edgeconv.signal's (float) forward
    func = getattr(edgeconv.signal, kind)
    with torch.no_grad():
        np.testing.assert_allclose(fwd(torch.tensor(x), torch.tensor(h)).numpy(),
                                   func(x, h, mode, stride=stride), rtol=1e-9, atol=1e-12)
    gy = rng.normal(size=len(kept_positions(kind, mode, m, n, False, stride)))
    dx, dh = grad.signal_backward(x, h, gy, kind=kind, mode=mode, stride=stride)
    for ref in (autograd(fwd, [x, h], gy), finite_diff(fwd, [x, h], gy)):
        np.testing.assert_allclose(dx, ref[0], rtol=1e-7, atol=1e-8)
        np.testing.assert_allclose(dh, ref[1], rtol=1e-7, atol=1e-8)


@settings(max_examples=40, deadline=None)
@given(cfg=signal_cases, x_dt=st.sampled_from([np.int8, np.int16]),
       g_dt=st.sampled_from([np.int8, np.int16]))
def test_signal_fixed_point_matches_loop_oracle(cfg, x_dt, g_dt):
    kind, mode, m, n, stride = (cfg[k] for k in ("kind", "mode", "m", "n", "stride"))
    rng = np.random.default_rng(cfg["seed"])
    x, h = ints(rng, x_dt, m), ints(rng, x_dt, n)
    pos = kept_positions(kind, mode, m, n, True, stride)
    # integer output length is edgeconv.signal's
    assert len(pos) == getattr(edgeconv.signal, kind)(x, h, mode, stride=stride).size
    gy = ints(rng, g_dt, len(pos))
    dx, dh = grad.signal_backward(x, h, gy, kind=kind, mode=mode, stride=stride)
    hh = h[::-1] if kind == "correlate" else h
    ex, ehh = [0] * m, [0] * n
    for i, t in enumerate(pos):  # y_full[t] = sum_k x[k] * hh[t - k]
        if t is None:
            continue
        for k in range(m):
            if 0 <= t - k < n:
                ex[k] += int(gy[i]) * int(hh[t - k])
                ehh[t - k] += int(gy[i]) * int(x[k])
    eh = ehh[::-1] if kind == "correlate" else ehh
    floats = autograd(torch_signal(kind, mode, m, n, True, stride), [x, h], gy)
    check_fixed(dx, ex, floats[0], g_dt)
    check_fixed(dh, eh, floats[1], g_dt)


# ------------------------------------------------------------------ layers

def _quant_params(o):
    return {"output_multiplier": np.full(o, 1 << 30, np.int32),
            "output_shift": np.full(o, -4, np.int32)}


LAYER_CASES = [
    ("conv2d", {"stride": 2, "padding": "same", "dilation": 1, "groups": 1}, np.int8, -5, True),
    ("conv2d", {"stride": (1, 2), "padding": ((1, 0), (0, 1)), "dilation": (2, 1),
                "groups": 2}, np.int8, 17, False),
    ("conv2d", {"stride": 1, "padding": "valid", "dilation": 1, "groups": 1}, np.int16, 0,
     True),
    ("conv1d", {"stride": 2, "padding": (1, 2), "dilation": 2, "groups": 2}, np.int8, 3, True),
    ("depthwise", {"stride": 1, "padding": "same", "dilation": 2, "depth_multiplier": 2},
     np.int8, -100, True),
    ("depthwise", {"stride": 2, "padding": "valid", "dilation": 1, "depth_multiplier": 1},
     np.int16, 0, False),
]


def make_layer(kind, opts, dt, zp, with_bias, rng):
    c, o = 4, 4
    if kind == "depthwise":
        o = c * opts["depth_multiplier"]
        w = ints(rng, np.int8, (1, 3, 2, o), -127)
        cls, shape = edgeconv.DepthwiseConv2D, (6, 7, c)
    elif kind == "conv1d":
        w = ints(rng, np.int8, (o, 3, c // opts["groups"]), -127)
        cls, shape = edgeconv.Conv1D, (9, c)
    else:
        w = ints(rng, np.int8, (o, 3, 2, c // opts["groups"]), -127)
        cls, shape = edgeconv.Conv2D, (6, 7, c)
    bias_dt = np.int64 if dt == np.int16 else np.int32
    bias = rng.integers(-1000, 1000, size=o).astype(bias_dt) if with_bias else None
    return cls(weights=w, bias=bias, input_zero_point=zp, activation_dtype=dt,
               input_shape=shape, **_quant_params(o), **opts)


@pytest.mark.parametrize("case", LAYER_CASES, ids=lambda c: c[0])
def test_conv_layer_backward_is_the_accumulator_gradient(case):
    kind, opts, dt, zp, with_bias = case
    rng = np.random.default_rng(11)
    layer = make_layer(kind, opts, dt, zp, with_bias, rng)
    x = ints(rng, dt, (2, *layer.input_shape))
    gy = ints(rng, np.int16, (2, *layer.output_shape))
    gx, gw, gb = layer.backward(x, gy)
    assert (gb is None) == (not with_bias)
    # Oracle: loops over the layer's own geometry on x - zero point (2-D form).
    pads = layer.pads_for()
    pads2 = ((0, 0), pads[0]) if layer.rank == 1 else pads
    s2 = (1, *layer.stride) if layer.rank == 1 else layer.stride
    d2 = (1, *layer.dilation) if layer.rank == 1 else layer.dilation
    xc = x.astype(np.int64) - zp
    x4, gy4 = (xc[:, None], gy[:, None]) if layer.rank == 1 else (xc, gy)
    w4 = layer.weights[:, None] if layer.rank == 1 else layer.weights
    if kind == "depthwise":
        ex = loop_depthwise_grads(x4, w4, gy4, s2, pads2, d2, layer.depth_multiplier)
    else:
        ex = loop_conv_grads(x4, w4, gy4, s2, pads2, d2, layer.groups)
    ex = (ex[0][:, 0], ex[1][:, 0], ex[2]) if layer.rank == 1 else ex
    for fg, e in zip((gx, gw, gb), ex, strict=True):
        if fg is not None:
            values, frac_bits = fraction_quant(e, np.int16)
            np.testing.assert_array_equal(fg.values, values)
            assert fg.frac_bits == frac_bits
    # Float grad_output: exact float gradients; the adjoint identity against the layer's
    # own forward: <dL/dx, delta> == <g, acc(x + delta) - acc(x)> (acc is affine in x).
    fx, fw, fb = layer.backward(x, gy.astype(np.float64))
    np.testing.assert_array_equal(fx, ex[0].astype(np.float64))
    np.testing.assert_array_equal(fw, ex[1].astype(np.float64))
    delta = rng.integers(-3, 4, size=x.shape)
    x2 = np.clip(x.astype(np.int64) + delta, np.iinfo(dt).min, np.iinfo(dt).max).astype(dt)
    lhs = float((fx * (x2.astype(np.int64) - x)).sum())
    rhs = float((gy * (layer.accumulate(x2) - layer.accumulate(x))).sum())
    assert lhs == rhs
    # unbatched input: the per-sample input gradient, the sample's own weight gradient
    ux, uw, _ = layer.backward(x[1], gy[1].astype(np.float64))
    np.testing.assert_array_equal(ux, fx[1])
    assert uw.shape == layer.weights.shape
    with pytest.raises(ValueError, match="x: dtype"):
        layer.backward(x.astype(np.int32), gy)
    with pytest.raises(ValueError, match="grad_output: shape"):
        layer.backward(x, gy[:, :1])


@pytest.mark.parametrize("cls", [edgeconv.MaxPool2D, edgeconv.AvgPool2D])
@pytest.mark.parametrize("dt", [np.int8, np.int16])
def test_pool_layer_backward(cls, dt):
    rng = np.random.default_rng(5)
    layer = cls(pool_size=(3, 2), stride=(2, 1), padding="same", activation_dtype=dt,
                input_shape=(7, 5, 3))
    x = ints(rng, dt, (2, 7, 5, 3), -4, 4)
    gy = ints(rng, np.int8, (2, *layer.output_shape))
    kind = "max" if cls is edgeconv.MaxPool2D else "avg"
    cfg = {"k": (3, 2), "s": (2, 1), "pads": tuple(layer.pads_for())}
    got = layer.backward(x, gy)
    floats = autograd(torch_pool(cfg, kind), [x], gy)[0]
    check_fixed(got, loop_pool_grad(x, gy, cfg, kind), floats, np.int8)
    np.testing.assert_allclose(layer.backward(x, gy.astype(np.float64)), floats, atol=1e-12)


# ------------------------------------------------------------------ requantization rule

def test_quantize_gradient_rule_by_hand():
    # peak 254: e = 1 (254 / 2 = 127); halves round away from zero
    fg = grad.quantize_gradient(np.array([254, 3, -3, 1, -1, 0]), grad_dtype=np.int8)
    assert fg.frac_bits == -1
    assert fg.values.tolist() == [127, 2, -2, 1, -1, 0]
    # peak 255: 127.5 would round to 128 > 127, so e = 2 and 63.75 -> 64
    fg = grad.quantize_gradient(np.array([255, -255]), grad_dtype=np.int8)
    assert (fg.frac_bits, fg.values.tolist()) == (-2, [64, -64])
    # small integers gain fraction bits: 3 * 2**5 = 96 <= 127 < 192
    fg = grad.quantize_gradient(np.array([3, -1]), grad_dtype=np.int8)
    assert (fg.frac_bits, fg.values.tolist()) == (5, [96, -32])
    # a rational 1/3: 2**8 / 3 = 85.33 -> 85 (and 2**9 / 3 = 170.7 > 127)
    fg = grad.quantize_gradient(np.array([1]), grad_dtype=np.int8, denominator=3)
    assert (fg.frac_bits, fg.values.tolist()) == (8, [85])
    assert fg.to_float()[0] == 85 / 256 and fg.error_bound == 2.0 ** -9
    fg = grad.quantize_gradient(np.zeros(3, np.int64), grad_dtype=np.int16)
    assert fg.frac_bits == 0 and fg.values.dtype == np.int16 and not fg.values.any()


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=8),
       den=st.integers(1, 5040), dt=st.sampled_from([np.int8, np.int16, np.int32]))
def test_quantize_gradient_matches_fraction_rule(values, den, dt):
    fg = grad.quantize_gradient(np.array(values, np.int64), grad_dtype=dt, denominator=den)
    exact = [Fraction(v, den) for v in values]
    want, frac_bits = fraction_quant(np.array(exact, object), dt)
    assert fg.frac_bits == frac_bits
    np.testing.assert_array_equal(fg.values, want)
    peak = max(abs(v) for v in exact)
    if peak:  # the largest magnitude lands in (qmax / 2, qmax]
        assert np.iinfo(dt).max / 2 < int(np.abs(fg.values.astype(np.int64)).max()) \
            <= np.iinfo(dt).max


# ------------------------------------------------------------------ errors and graph

def test_bad_input_raises_value_error_naming_the_argument():
    x, w, gy = np.zeros((4, 4, 2)), np.zeros((3, 3, 3, 2)), np.zeros((2, 2, 3))
    with pytest.raises(ValueError, match="grad_output"):
        grad.conv2d_backward(x, w, np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="groups=2"):
        grad.conv2d_backward(x, w, gy, groups=2)
    with pytest.raises(ValueError, match="padding"):
        grad.conv2d_backward(x, w, gy, padding="full")
    with pytest.raises(ValueError, match="grad_dtype"):
        grad.conv2d_backward(x, w, gy, grad_dtype=np.int8)
    with pytest.raises(ValueError, match="x: dtype int32"):
        grad.conv2d_backward(x.astype(np.int32), w.astype(np.int8), gy.astype(np.int8))
    with pytest.raises(ValueError, match="grad_dtype"):
        grad.conv2d_backward(x.astype(np.int8), w.astype(np.int8), gy.astype(np.int8),
                             grad_dtype=np.int64)
    with pytest.raises(ValueError, match="depth_multiplier"):
        grad.depthwise_conv2d_backward(x, np.zeros((1, 3, 3, 4)), np.zeros((2, 2, 4)),
                                       depth_multiplier=3)
    with pytest.raises(ValueError, match="padding"):
        grad.max_pool2d_backward(x, np.zeros((4, 4, 2)), pool_size=2, padding=((2, 0), (0, 0)))
    with pytest.raises(ValueError, match="mode"):
        grad.signal_backward(np.ones(3), np.ones(2), np.ones(4), mode="circular")
    with pytest.raises(ValueError, match="grad_output: length"):
        grad.signal_backward(np.ones(3), np.ones(2), np.ones(5))
    with pytest.raises(ValueError, match="acc"):
        grad.quantize_gradient(np.array([2**62]))
    with pytest.raises(ValueError, match="layer"):
        grad.graph(object())


def test_graph_text_dot_and_png(tmp_path):
    layer = edgeconv.Conv2D(weights=np.ones((2, 3, 3, 1), np.int8), stride=2, padding="same",
                            name="conv1", **_quant_params(2))
    g = grad.graph(layer)
    text = g.to_text()
    assert "dL/dx = full_conv(dL/dy, flip(w))" in text
    assert "dL/dw = valid_corr(x, dL/dy)" in text and "dL/db = sum(dL/dy)" in text
    assert ("x", "conv", "") in g.edges and ("b", "add", "") in g.edges
    dot = g.to_dot()
    assert dot.startswith('digraph "Conv2D conv1: stride (2, 2)')
    assert dot.count("->") == len(g.edges)
    path = tmp_path / "graph.png"
    g.to_png(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for other in (edgeconv.MaxPool2D(pool_size=2), edgeconv.AvgPool2D(pool_size=2),
                  edgeconv.signal.SignalFilter(np.ones(3, np.int16), input_length=8)):
        assert "dL/dx" in grad.graph(other).to_text()


# ------------------------------------------------------------------ dense

@st.composite
def dense_cases(draw):
    return {"n": draw(st.sampled_from([None, 1, 3])), "k": draw(st.integers(1, 6)),
            "o": draw(st.integers(1, 4)), "seed": draw(st.integers(0, 2**32 - 1))}


def torch_linear(x, w, bias):
    return F.linear(x, w, bias)


def loop_dense_grads(x, w, gy):
    """Plain loops over Python ints: dx[n, k] = sum_o g[n, o] w[o, k], dw[o, k] =
    sum_n g[n, o] x[n, k], db[o] = sum_n g[n, o]."""
    n, k = x.shape
    o = w.shape[0]
    dx = [[sum(int(gy[b, c]) * int(w[c, i]) for c in range(o)) for i in range(k)]
          for b in range(n)]
    dw = [[sum(int(gy[b, c]) * int(x[b, i]) for b in range(n)) for i in range(k)]
          for c in range(o)]
    db = [sum(int(gy[b, c]) for b in range(n)) for c in range(o)]
    return np.array(dx, object), np.array(dw, object), np.array(db, object)


@SETTINGS
@given(cfg=dense_cases())
def test_dense_float_matches_autograd_and_finite_differences(cfg):
    rng = np.random.default_rng(cfg["seed"])
    n, k, o = cfg["n"] or 1, cfg["k"], cfg["o"]
    x, w, b, gy = (rng.normal(size=(n, k)), rng.normal(size=(o, k)), rng.normal(size=o),
                   rng.normal(size=(n, o)))
    pub = (lambda a: a) if cfg["n"] else (lambda a: a[0])
    dx, dw, db = grad.dense_backward(pub(x), w, pub(gy))
    assert dx.shape == pub(x).shape and dw.shape == w.shape and db.shape == (o,)
    for ref in (autograd(torch_linear, [x, w, b], gy),
                finite_diff(torch_linear, [x, w, b], gy)):
        np.testing.assert_allclose(dx, pub(ref[0]), rtol=1e-7, atol=1e-8)
        np.testing.assert_allclose(dw, ref[1], rtol=1e-7, atol=1e-8)
        np.testing.assert_allclose(db, ref[2], rtol=1e-7, atol=1e-8)


@SETTINGS
@given(cfg=dense_cases(), x_dt=st.sampled_from([np.int8, np.int16]),
       g_dt=st.sampled_from([np.int8, np.int16]),
       grad_dtype=st.sampled_from([None, np.int8, np.int16, np.int32]))
def test_dense_fixed_point_matches_loop_oracle(cfg, x_dt, g_dt, grad_dtype):
    rng = np.random.default_rng(cfg["seed"])
    n, k, o = cfg["n"] or 1, cfg["k"], cfg["o"]
    x, w, gy = ints(rng, x_dt, (n, k)), ints(rng, np.int8, (o, k), -127), ints(rng, g_dt, (n, o))
    pub = (lambda a: a) if cfg["n"] else (lambda a: a[0])
    got = grad.dense_backward(pub(x), w, pub(gy), grad_dtype=grad_dtype)
    exact = loop_dense_grads(x, w, gy)
    floats = autograd(torch_linear, [x, w, np.zeros(o)], gy)
    dt = g_dt if grad_dtype is None else grad_dtype
    check_fixed(got[0], pub(exact[0]), pub(floats[0]), dt)
    check_fixed(got[1], exact[1], floats[1], dt)
    check_fixed(got[2], exact[2], floats[2], dt)


def test_fully_connected_backward_centres_x_and_calls_dense_backward():
    rng = np.random.default_rng(3)
    layer = edgeconv.FullyConnected(weights=ints(rng, np.int8, (3, 5), -127),
                                    bias=np.array([1, -2, 3], np.int32), input_zero_point=-7,
                                    output_multiplier=1 << 30,
                                    output_shift=-3)
    x, gy = ints(rng, np.int8, (2, 5)), ints(rng, np.int16, (2, 3))
    gx, gw, gb = layer.backward(x, gy)
    exact = loop_dense_grads(x.astype(np.int64) + 7, layer.weights, gy)
    for fg, ex in zip((gx, gw, gb), exact, strict=True):
        values, frac_bits = fraction_quant(ex, np.int16)
        np.testing.assert_array_equal(fg.values, values)
        assert fg.frac_bits == frac_bits
    _, _, none = edgeconv.FullyConnected(
        weights=layer.weights, output_multiplier=1 << 30,
        output_shift=-3).backward(x, gy)
    assert none is None


def test_dense_backward_rejects_bad_shapes():
    w = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"w: shape \(4,\)"):
        grad.dense_backward(np.zeros(4), np.zeros(4), np.zeros(3))
    with pytest.raises(ValueError, match=r"x: shape \(5,\)"):
        grad.dense_backward(np.zeros(5), w, np.zeros(3))
    with pytest.raises(ValueError, match=r"grad_output: shape \(2, 4\)"):
        grad.dense_backward(np.zeros((2, 4)), w, np.zeros((2, 4)))
