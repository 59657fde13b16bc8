"""Patch extraction for 2D windows over NHWC tensors: ``im2col`` and its adjoint ``col2im``.

Both functions share one geometry: a ``(KH, KW)`` kernel with dilation ``(dh, dw)`` slides
with stride ``(sh, sw)`` over the input padded by ``((top, bottom), (left, right))``.
Output positions follow ``out = (size + pad_total - k_eff) // stride + 1`` with
``k_eff = dilation * (k - 1) + 1``.  A patch is flattened in ``(kh, kw, c)`` order, which
is the order of a TFLite OHWI weight row, so ``im2col(x) @ w.reshape(O, -1).T`` is a
convolution.

This module also hosts the small argument checks the layers share (it imports nothing
from :mod:`edgeconv.layers`, so the layers can import it without a cycle).
"""

from __future__ import annotations

import numpy as np

Pair = tuple[int, int]
Pads2D = tuple[Pair, Pair]


def check_int(name: str, value: object, lo: int, hi: int | None = None) -> int:
    """Return ``value`` as int if it is an integer in ``[lo, hi]``, else raise ValueError."""
    allowed = f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}={value!r}: must be {allowed}")
    if value < lo or (hi is not None and value > hi):
        raise ValueError(f"{name}={value!r}: out of range, must be {allowed}")
    return int(value)


def as_pair(name: str, value: object, lo: int = 1) -> Pair:
    """Normalize an int or a 2-sequence of ints ``>= lo`` to a tuple of two ints."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        v = check_int(name, value, lo)
        return v, v
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name}={value!r}: must be an integer >= {lo} or a pair of them")
    return check_int(name, value[0], lo), check_int(name, value[1], lo)


def check_pads(name: str, pads: object) -> Pads2D:
    """Normalize ``((top, bottom), (left, right))`` of non-negative ints."""
    if not isinstance(pads, (tuple, list)) or len(pads) != 2:
        raise ValueError(f"{name}={pads!r}: must be ((top, bottom), (left, right)), "
                         "integers >= 0")
    top_bottom, left_right = (as_pair(name, p, lo=0) for p in pads)
    return top_bottom, left_right


def effective_extent(kernel: int, dilation: int) -> int:
    """Extent of a dilated kernel: ``dilation * (kernel - 1) + 1``."""
    return dilation * (kernel - 1) + 1


def window_count(size: int, kernel: int, stride: int, dilation: int, pads: Pair) -> int:
    """Number of window positions ``(size + pad_total - k_eff) // stride + 1`` (may be <= 0)."""
    return (size + pads[0] + pads[1] - effective_extent(kernel, dilation)) // stride + 1


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> Pair:
    """TFLite SAME padding: ``out = ceil(size / stride)``, the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + effective_extent(kernel, dilation) - size, 0)
    return total // 2, total - total // 2


def _geometry(x: np.ndarray, kernel_size: object, stride: object, pads: object,
              dilation: object) -> tuple[Pair, Pair, Pads2D, Pair, Pair]:
    if not isinstance(x, np.ndarray):
        raise ValueError(f"x: {type(x).__name__} given, must be a numpy array shaped "
                         "(H, W, C) or (N, H, W, C)")
    if x.ndim not in (3, 4):
        raise ValueError(f"x: shape {x.shape} must be (H, W, C) or (N, H, W, C)")
    k = as_pair("kernel_size", kernel_size)
    s = as_pair("stride", stride)
    d = as_pair("dilation", dilation)
    p = check_pads("pads", pads)
    out = tuple(window_count(x.shape[-3 + i], k[i], s[i], d[i], p[i]) for i in range(2))
    if min(out) < 1:
        raise ValueError(f"x: spatial shape {x.shape[-3:-1]} with pads {p} is smaller than "
                         f"the dilated kernel {k} (dilation {d}); no output position")
    return k, s, p, d, out


def patch_view(xp: np.ndarray, k: Pair, s: Pair, d: Pair, out: Pair) -> np.ndarray:
    """Read-only strided view ``(N, OH, OW, KH, KW, C)`` of the windows of an already
    padded NHWC array (no copy); ``out`` is the number of window positions per axis."""
    sn, sh, sw, sc = xp.strides
    shape = (xp.shape[0], out[0], out[1], k[0], k[1], xp.shape[3])
    strides = (sn, sh * s[0], sw * s[1], sh * d[0], sw * d[1], sc)
    return np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=False)


def _check_pad_value(pad_value: object, dtype: np.dtype) -> None:
    """ValueError unless ``pad_value`` is exactly representable in ``dtype`` (an integer in
    range for integer arrays, a real number for float arrays)."""
    if isinstance(pad_value, (bool, np.bool_)) or not isinstance(pad_value, (int, float,
                                                                             np.number)):
        raise ValueError(f"pad_value={pad_value!r}: must be a number")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        whole = isinstance(pad_value, (int, np.integer)) or float(pad_value).is_integer()
        if not whole or not info.min <= pad_value <= info.max:
            raise ValueError(f"pad_value={pad_value!r}: allowed range for {dtype.name} is "
                             f"the integers in [{info.min}, {info.max}]")


def pad_nhwc(x: np.ndarray, pads: Pads2D, pad_value: float | int) -> np.ndarray:
    """NHWC ``x`` padded spatially with ``pad_value`` (``x`` itself when all pads are 0)."""
    (top, bottom), (left, right) = pads
    if top == bottom == left == right == 0:
        return x
    n, h, w, c = x.shape
    xp = np.full((n, h + top + bottom, w + left + right, c), pad_value, dtype=x.dtype)
    xp[:, top:top + h, left:left + w, :] = x
    return xp


def im2col(x: np.ndarray, kernel_size: object, stride: object = 1,
           pads: object = ((0, 0), (0, 0)), dilation: object = 1,
           pad_value: float | int = 0) -> np.ndarray:
    """Gather every window of ``x`` into a row.

    ``x`` is ``(H, W, C)`` or ``(N, H, W, C)``; the result is ``(OH, OW, KH*KW*C)`` or
    ``(N, OH, OW, KH*KW*C)``, a new array of the same dtype, patch entries in
    ``(kh, kw, c)`` order.
    Padded positions hold ``pad_value`` (for a quantized convolution: the input zero point,
    so that they contribute ``w * (zp - zp) = 0``).
    """
    k, s, p, d, out = _geometry(x, kernel_size, stride, pads, dilation)
    _check_pad_value(pad_value, x.dtype)
    cols = gather_windows(x if x.ndim == 4 else x[None], k, s, p, d, out, pad_value)
    return cols if x.ndim == 4 else cols[0]


def gather_windows(x4: np.ndarray, k: Pair, s: Pair, pads: Pads2D, d: Pair, out: Pair,
                   pad_value: float | int) -> np.ndarray:
    """:func:`im2col` of NHWC ``x4`` without argument checks (for callers that validated
    the geometry once); ``out`` is the number of window positions per axis."""
    xp = pad_nhwc(x4, pads, pad_value)
    cols = patch_view(xp, k, s, d, out).reshape(x4.shape[0], out[0], out[1],
                                                k[0] * k[1] * x4.shape[3])
    if np.may_share_memory(cols, x4):  # 1x1 windows without padding: reshape gave a view
        cols = cols.copy()
    return cols


def _check_shape(input_shape: object) -> tuple[int, ...]:
    """``input_shape`` as a tuple of 3 or 4 integers >= 0."""
    dims = tuple(input_shape) if isinstance(input_shape, (tuple, list, np.ndarray)) else ()
    if len(dims) not in (3, 4) or any(isinstance(d, bool) or not isinstance(d, (int, np.integer))
                                      or d < 0 for d in dims):
        raise ValueError(f"input_shape={input_shape!r}: must be (H, W, C) or (N, H, W, C), "
                         "integers >= 0")
    return tuple(int(d) for d in dims)


def col2im(cols: np.ndarray, input_shape: tuple[int, ...], kernel_size: object,
           stride: object = 1, pads: object = ((0, 0), (0, 0)),
           dilation: object = 1) -> np.ndarray:
    """Adjoint of :func:`im2col` (with ``pad_value=0``): scatter-add patches back.

    Every patch entry is added to the input pixel it was read from, so pixels covered by
    several windows receive the sum of their entries, and entries read from padding are
    dropped.  ``<im2col(x), y> == <x, col2im(y)>`` for any ``x``, ``y``; this is the
    input-gradient step of a convolution.  ``input_shape`` is ``(H, W, C)`` or
    ``(N, H, W, C)`` and must match the leading dimensions of ``cols``.  Integer columns
    are summed in int64, floats in their own dtype.
    """
    shape = _check_shape(input_shape)
    if not isinstance(cols, np.ndarray) or cols.dtype.kind not in "biufc":
        raise ValueError(f"cols: {getattr(cols, 'dtype', type(cols).__name__)} given, must "
                         "be a numeric numpy array")
    probe = np.broadcast_to(np.zeros((), cols.dtype), shape)  # geometry check only
    k, s, p, d, out = _geometry(probe, kernel_size, stride, pads, dilation)
    c = shape[-1]
    expect = (*shape[:-3], out[0], out[1], k[0] * k[1] * c)
    if cols.shape != expect:
        raise ValueError(f"cols: shape {cols.shape} must be {expect} for input_shape {shape}")
    acc_dtype = np.int64 if cols.dtype.kind in "iub" else cols.dtype
    n = shape[0] if len(shape) == 4 else 1
    patches = cols.reshape(n, out[0], out[1], k[0], k[1], c)
    (top, bottom), (left, right) = p
    h, w = shape[-3], shape[-2]
    xp = np.zeros((n, h + top + bottom, w + left + right, c), dtype=acc_dtype)
    for kh in range(k[0]):
        for kw in range(k[1]):
            r0, c0 = kh * d[0], kw * d[1]
            xp[:, r0:r0 + (out[0] - 1) * s[0] + 1:s[0],
               c0:c0 + (out[1] - 1) * s[1] + 1:s[1], :] += patches[:, :, :, kh, kw, :]
    x = xp[:, top:top + h, left:left + w, :]
    return x if len(shape) == 4 else x[0]
