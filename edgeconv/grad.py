"""Backward passes (gradients) of the reference model's ops: float64 and exact fixed point.

For a convolution ``y = conv(x, w) + b`` and a loss ``L`` with output gradient
``g = dL/dy`` the computational graph gives (stride 1, no dilation, 'valid'; the general
case below):

- ``dL/dx`` = the *full* convolution of ``g`` with the kernel (a correlation with the
  flipped kernel): every input pixel collects ``g * w`` from every window that read it.
  Here it is computed as ``col2im(g @ W)``: the window gradients ``g @ W`` scattered back
  with :func:`edgeconv.im2col.col2im`, the adjoint of the ``im2col`` gather of the forward
  pass.  With stride ``s`` the full convolution runs over ``g`` with ``s - 1`` zeros
  inserted between its samples; with dilation ``d`` over the kernel with ``d - 1`` zeros
  between taps; padding crops the result.
- ``dL/dw`` = the *valid* correlation of ``x`` with ``g``:
  ``dw[o, ky, kx, i] = sum_{n, oy, ox} g[n, oy, ox, o] * x_pad[n, oy*s + ky*d, ox*s + kx*d, i]``,
  i.e. ``g^T @ im2col(x)`` per group.
- ``dL/db`` = the sum of ``g`` over batch and positions.

Layouts are the layers' (docs/architecture.md): activations NHWC (``(H, W, C)`` or
``(N, H, W, C)``; 1-D ``(W, C)`` or ``(N, W, C)``), Conv2D weights OHWI
``(O, KH, KW, C/groups)``, depthwise weights ``(1, KH, KW, C*depth_multiplier)``, Conv1D
weights ``(O, KW, C/groups)``.  ``padding`` is ``'same'`` (TFLite: the odd pixel after),
``'valid'``, an int or explicit ``((top, bottom), (left, right))`` (1-D: ``(left,
right)``).  Gradients come back in the operand's shape (unbatched in, unbatched out).

Numbers
-------
*Float*: if any of ``x``, ``w``, ``grad_output`` (pools: ``grad_output``) is a float
array, everything is converted to float64 and float64 gradients are returned.

*Fixed point*: if all of them are int8/int16 arrays, every product is formed exactly and
summed in int64 (a ValueError is raised before any sum could reach ``2**61``).  Each
exact gradient tensor ``G`` (a rational ``A / D``: ``D = 1`` except for the average pool,
where ``D`` is the lcm of the window sizes) is then requantized on its own by
:func:`quantize_gradient` to ``grad_dtype`` (int8, int16 or int32; default the dtype of
``grad_output``) and returned as a :class:`FixedGrad` ``(values, frac_bits, dtype)``
meaning ``G ~= values * 2**-frac_bits``:

- *format rule*: ``frac_bits = -e`` with ``e`` the smallest integer (negative allowed)
  such that ``round(max|G| / 2**e) <= qmax`` (``qmax = 2**(bits-1) - 1``); an all-zero
  tensor gets ``frac_bits = 0``.  The largest magnitude thus lands in ``(qmax/2, qmax]``.
- *rounding*: to nearest, ties away from zero, computed exactly in integers.
- *saturation*: to the symmetric range ``[-qmax, qmax]``; the rule makes it a no-op, it
  is applied anyway as the stated guard.
- *error bound*: ``|values * 2**-frac_bits - G| <= 2**(-frac_bits - 1)`` (half a step)
  element-wise, ``= 0`` when ``G`` is integer and ``frac_bits >= 0``.  Because ``e`` is
  minimal this is also ``<= max|G| / (qmax + 1/2)`` (int8: 0.79 % of the largest
  gradient, int16: 0.0031 %).

The integers are taken in their own units: if ``x``, ``w`` and ``grad_output`` are Q
formats with ``fx``, ``fw``, ``fg`` fraction bits, the real gradients are
``grad_input / 2**(fg + fw)``, ``grad_weights / 2**(fg + fx)`` and ``grad_bias /
2**fg`` (add those to the returned ``frac_bits``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeconv import fixedpoint
from edgeconv import signal as _signal
from edgeconv.im2col import (
    Pads2D,
    as_pair,
    col2im,
    gather_windows,
    pad_nhwc,
    patch_view,
    same_pads,
    window_count,
)
from edgeconv.layers import _validate as v

# Exact int64 accumulation is guaranteed below this bound (checked before summing).
ACC_LIMIT = 1 << 61
GRAD_DTYPES = (np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.int32))
OPERAND_DTYPES = (np.dtype(np.int8), np.dtype(np.int16))


# ------------------------------------------------------------------------ fixed point

@dataclass(frozen=True, eq=False)
class FixedGrad:
    """A gradient in fixed point: ``values * 2**-frac_bits`` (see the module docstring).

    ``frac_bits`` may be negative (a gradient larger than the dtype's range in integer
    units).  :meth:`to_float` converts exactly; :attr:`step` is one unit of ``values``."""

    values: np.ndarray
    frac_bits: int
    dtype: np.dtype

    def to_float(self) -> np.ndarray:
        """``values * 2**-frac_bits`` as float64 (exact)."""
        return np.ldexp(self.values.astype(np.float64), -self.frac_bits)

    @property
    def step(self) -> float:
        """Value of one unit of ``values``: ``2**-frac_bits``."""
        return math.ldexp(1.0, -self.frac_bits)

    @property
    def error_bound(self) -> float:
        """Largest rounding error of an element: half a step."""
        return self.step / 2

    def __repr__(self) -> str:
        return (f"FixedGrad(shape={self.values.shape}, frac_bits={self.frac_bits}, "
                f"dtype={self.dtype.name})")


def _check_grad_dtype(grad_dtype: object) -> np.dtype:
    try:
        dt = np.dtype(grad_dtype)  # type: ignore[call-overload]
    except TypeError:
        dt = None
    if dt not in GRAD_DTYPES:
        raise ValueError(f"grad_dtype={grad_dtype!r}: allowed are numpy.int8, numpy.int16, "
                         "numpy.int32")
    return dt


def _exponent(peak: int, denominator: int, qmax: int) -> int:
    """Smallest integer ``e`` with ``round(peak / (denominator * 2**e)) <= qmax``, i.e.
    ``2 * peak < (2 * qmax + 1) * denominator * 2**e`` (exact, Python integers)."""
    def fits(e: int) -> bool:
        return (2 * peak << max(-e, 0)) < ((2 * qmax + 1) * denominator << max(e, 0))

    e = (2 * peak).bit_length() - ((2 * qmax + 1) * denominator).bit_length()
    while not fits(e):
        e += 1
    while fits(e - 1):
        e -= 1
    return e


def quantize_gradient(acc: np.ndarray, *, grad_dtype: object = np.int16,
                      denominator: int = 1) -> FixedGrad:
    """Requantize the exact gradient ``acc / denominator`` (``acc`` integers with
    ``|acc| < 2**61``, ``denominator`` a positive integer) by the module's rule: the
    power-of-two format from the tensor's max, rounding to nearest with ties away from
    zero, saturation to ``[-qmax, qmax]``."""
    dt = _check_grad_dtype(grad_dtype)
    a = np.asarray(acc)
    if a.dtype.kind not in "iu":
        raise ValueError(f"acc: dtype {a.dtype}, must be an integer array")
    if isinstance(denominator, bool) or not isinstance(denominator, (int, np.integer)) \
            or denominator < 1:
        raise ValueError(f"denominator={denominator!r}: must be an integer >= 1")
    a = a.astype(np.int64)
    den = int(denominator)
    peak = int(np.abs(a).max()) if a.size else 0
    if peak >= ACC_LIMIT:
        raise ValueError(f"acc: max |acc| = {peak} not allowed, must be < 2**61")
    qmax = fixedpoint.dtype_bounds(dt)[1]
    if peak == 0:
        return FixedGrad(np.zeros(a.shape, dt), 0, dt)
    e = _exponent(peak, den, qmax)
    mag = np.abs(a)
    if e >= 0:  # round(|a| / (den * 2**e)) = floor((2|a| + D) / 2D), D = den * 2**e
        step = den << e
        # 2|a| + D < 2**62 + 2 * 2**61: no overflow; for huge D the quotient is 0 anyway
        rounded = (2 * mag + step) // (2 * step) if step < ACC_LIMIT else np.zeros_like(mag)
    else:  # round(|a| * 2**-e / den); |a| * 2**-e <= (qmax + 1/2) * den by the rule
        rounded = (2 * (mag << -e) + den) // (2 * den)
    values = np.clip(np.where(a < 0, -rounded, rounded), -qmax, qmax).astype(dt)
    return FixedGrad(values, -e, dt)


# ------------------------------------------------------------------------ arguments

def _array(name: str, value: object) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iuf" \
            or value.dtype.kind == "u":
        got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        raise ValueError(f"{name}: {got} given, must be a numpy int8/int16 or float array")
    return value


def _numeric_mode(named: dict[str, np.ndarray], grad_dtype: object,
                  grad_output: np.ndarray) -> np.dtype | None:
    """None for the float64 path, else the FixedGrad dtype of the fixed-point path."""
    if any(a.dtype.kind == "f" for a in named.values()):
        if grad_dtype is not None:
            raise ValueError(f"grad_dtype={grad_dtype!r}: only for integer operands; "
                             "allowed for float operands: None")
        return None
    for name, arr in named.items():
        if arr.dtype not in OPERAND_DTYPES:
            raise ValueError(f"{name}: dtype {arr.dtype} not allowed for the fixed-point "
                             "path, must be int8 or int16 (or a float array)")
    return _check_grad_dtype(grad_output.dtype if grad_dtype is None else grad_dtype)


def _check_acc(what: str, *bounds: int) -> None:
    """ValueError when a sum of ``bounds[0]`` products of magnitudes ``bounds[1:]`` could
    reach the exact-int64 limit."""
    if math.prod(bounds) >= ACC_LIMIT:
        raise ValueError(f"{what}: operands too large or too many terms for exact int64 "
                         f"accumulation (bound {math.prod(bounds)} >= 2**61)")


def _peak(a: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64)).max()) if a.size else 0


def _nhwc(name: str, x: np.ndarray, rank: int) -> tuple[np.ndarray, bool]:
    """View an activation of ``rank`` spatial dims (with optional batch) as NHWC."""
    if x.ndim not in (rank + 1, rank + 2) or 0 in x.shape:
        want = "(H, W, C) or (N, H, W, C)" if rank == 2 else "(W, C) or (N, W, C)"
        raise ValueError(f"{name}: shape {x.shape} not allowed, must be {want}, non-empty")
    batched = x.ndim == rank + 2
    x4 = x if batched else x[None]
    return (x4[:, None] if rank == 1 else x4), batched


def _unbatch(a: np.ndarray, batched: bool, rank: int) -> np.ndarray:
    a = a[:, 0] if rank == 1 else a
    return a if batched else a[0]


def _pads(padding: object, rank: int, hw: tuple[int, int], k: tuple[int, int],
          s: tuple[int, int], d: tuple[int, int]) -> Pads2D:
    """Explicit 2-D pads for ``padding`` ('same' as TFLite, 'valid', int or explicit)."""
    p = v.check_padding(padding, rank)
    if p == "valid":
        return (0, 0), (0, 0)
    if p == "same":
        return (same_pads(hw[0], k[0], s[0], d[0]), same_pads(hw[1], k[1], s[1], d[1]))
    return p  # type: ignore[return-value]


def _out_hw(x4: np.ndarray, k: tuple[int, int], s: tuple[int, int], d: tuple[int, int],
            pads: Pads2D) -> tuple[int, int]:
    out = tuple(window_count(x4.shape[1 + i], k[i], s[i], d[i], pads[i]) for i in range(2))
    if min(out) < 1:
        raise ValueError(f"x: spatial shape {x4.shape[1:3]} with pads {pads} is smaller than "
                         f"the dilated kernel {k} (dilation {d}); no output position")
    return out  # type: ignore[return-value]


def _check_grad_shape(gy: np.ndarray, batched: bool, rank: int,
                      want4: tuple[int, ...]) -> np.ndarray:
    want = want4 if rank == 2 else (want4[0], *want4[2:])
    want = want if batched else want[1:]
    if gy.shape != want:
        raise ValueError(f"grad_output: shape {gy.shape} not allowed, must be the output "
                         f"shape {want}")
    gy4 = gy if batched else gy[None]
    return gy4[:, None] if rank == 1 else gy4


# ------------------------------------------------------------------------ convolution

def _conv_core(x4: np.ndarray, w4: np.ndarray, gy4: np.ndarray, s: tuple[int, int],
               pads: Pads2D, d: tuple[int, int], groups: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of a grouped NHWC/OHWI convolution in the arrays' dtype (float64 or
    int64, exact for the latter)."""
    n, _, _, c = x4.shape
    o, kh, kw, cg = w4.shape
    oh, ow = gy4.shape[1:3]
    p, og, taps = n * oh * ow, o // groups, kh * kw
    # Forward: y[p, o] = cols[p, group(o)] @ w[o] with cols the im2col patches, so
    # dL/dw = g^T @ cols (valid correlation of x with g) and dL/dcols = g @ w, scattered
    # back onto the input by col2im (the full convolution of g with the kernel).
    cols = gather_windows(x4, (kh, kw), s, pads, d, (oh, ow), 0)
    cols_g = cols.reshape(p, taps, groups, cg).transpose(2, 0, 1, 3).reshape(groups, p, -1)
    gy_g = gy4.reshape(p, groups, og).transpose(1, 0, 2)            # (G, P, O/G)
    w_g = w4.reshape(groups, og, taps * cg)                         # (G, O/G, KH*KW*Cg)
    dw = np.matmul(gy_g.transpose(0, 2, 1), cols_g).reshape(o, kh, kw, cg)
    dcols = np.matmul(gy_g, w_g).reshape(groups, p, taps, cg).transpose(1, 2, 0, 3)
    dx = col2im(dcols.reshape(n, oh, ow, taps * c), x4.shape, (kh, kw), s, pads, d)
    db = gy4.sum(axis=(0, 1, 2))
    return dx, dw, db


def _conv_backward(x: object, w: object, grad_output: object, *, rank: int, stride: object,
                   padding: object, dilation: object, groups: object, grad_dtype: object
                   ) -> tuple[Any, Any, Any]:
    x, w, gy = _array("x", x), _array("w", w), _array("grad_output", grad_output)
    if w.ndim != rank + 2 or 0 in w.shape:
        want = "(O, KH, KW, C/groups)" if rank == 2 else "(O, KW, C/groups)"
        raise ValueError(f"w: shape {w.shape} not allowed, must be {want}, non-empty")
    w4 = w if rank == 2 else w[:, None]
    groups = v.check_int("groups", groups, 1)
    o, kh, kw, cg = w4.shape
    x4, batched = _nhwc("x", x, rank)
    if o % groups or x4.shape[3] != groups * cg:
        raise ValueError(f"groups={groups}: must divide the {o} output channels and give "
                         f"x's {x4.shape[3]} channels = groups * w.shape[-1] ({cg})")
    s = v.check_spatial("stride", stride, rank)
    d = v.check_spatial("dilation", dilation, rank)
    pads = _pads(padding, rank, x4.shape[1:3], (kh, kw), s, d)
    oh, ow = _out_hw(x4, (kh, kw), s, d, pads)
    gy4 = _check_grad_shape(gy, batched, rank, (x4.shape[0], oh, ow, o))
    fixed = _numeric_mode({"x": x, "w": w, "grad_output": gy}, grad_dtype, gy)
    if fixed is None:
        dx, dw, db = _conv_core(x4.astype(np.float64), w4.astype(np.float64),
                                gy4.astype(np.float64), s, pads, d, groups)
        return _unbatch(dx, batched, rank), dw.reshape(w.shape), db
    mx, mw, mg = _peak(x), _peak(w), _peak(gy)
    _check_acc("grad_input", mg, mw, o // groups * kh * kw)
    _check_acc("grad_weights", mg, mx, gy4.shape[0] * oh * ow)
    _check_acc("grad_bias", mg, gy4.shape[0] * oh * ow)
    dx, dw, db = _conv_core(x4.astype(np.int64), w4.astype(np.int64), gy4.astype(np.int64),
                            s, pads, d, groups)
    return (quantize_gradient(_unbatch(dx, batched, rank), grad_dtype=fixed),
            quantize_gradient(dw.reshape(w.shape), grad_dtype=fixed),
            quantize_gradient(db, grad_dtype=fixed))


def conv2d_backward(x: np.ndarray, w: np.ndarray, grad_output: np.ndarray, *,
                    stride: object = 1, padding: object = "valid", dilation: object = 1,
                    groups: int = 1, grad_dtype: object = None) -> tuple[Any, Any, Any]:
    """Gradients ``(grad_input, grad_weights, grad_bias)`` of the 2-D convolution
    ``y[n, oy, ox, o] = sum_{ky, kx, i} w[o, ky, kx, i] * x_pad[n, oy*sh + ky*dh,
    ox*sw + kx*dw, g*Cg + i] + b[o]`` (``g = o // (O/groups)``, ``Cg = C/groups``) for
    the output gradient ``grad_output`` ``(N, OH, OW, O)``.

    ``x`` NHWC, ``w`` OHWI; float operands give float64 arrays shaped like ``x``, ``w``
    and ``(O,)``; int8/int16 operands give three :class:`FixedGrad` in ``grad_dtype``
    (module docstring: format rule, rounding, error bound)."""
    return _conv_backward(x, w, grad_output, rank=2, stride=stride, padding=padding,
                          dilation=dilation, groups=groups, grad_dtype=grad_dtype)


def conv1d_backward(x: np.ndarray, w: np.ndarray, grad_output: np.ndarray, *,
                    stride: object = 1, padding: object = "valid", dilation: object = 1,
                    groups: int = 1, grad_dtype: object = None) -> tuple[Any, Any, Any]:
    """:func:`conv2d_backward` for 1-D: ``x`` ``(W, C)`` / ``(N, W, C)``, ``w``
    ``(O, KW, C/groups)``, ``grad_output`` ``(N, OW, O)``; stride/dilation an int or 1-tuple,
    explicit padding ``(left, right)``.  Computed as a height-1 2-D convolution."""
    return _conv_backward(x, w, grad_output, rank=1, stride=stride, padding=padding,
                          dilation=dilation, groups=groups, grad_dtype=grad_dtype)


def _depthwise_core(x4: np.ndarray, w4: np.ndarray, gy4: np.ndarray, s: tuple[int, int],
                    pads: Pads2D, d: tuple[int, int], mult: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, _, _, c = x4.shape
    _, kh, kw, _ = w4.shape
    oh, ow = gy4.shape[1:3]
    # Output channel c*mult + m reads input channel c: y[.., c, m] = sum_ij win[.., i, j, c]
    # * w[i, j, c, m].  dL/dw sums window * g over positions; dL/dwindow = w * g summed
    # over m, scattered back onto the input by col2im.
    windows = patch_view(pad_nhwc(x4, pads, 0), (kh, kw), s, d, (oh, ow))
    g = gy4.reshape(n, oh, ow, c, mult)
    taps = w4[0].reshape(kh, kw, c, mult)
    dw = np.einsum("nhwijc,nhwcm->ijcm", windows, g).reshape(1, kh, kw, c * mult)
    dwin = np.einsum("ijcm,nhwcm->nhwijc", taps, g).reshape(n, oh, ow, kh * kw * c)
    dx = col2im(dwin, x4.shape, (kh, kw), s, pads, d)
    return dx, dw, gy4.sum(axis=(0, 1, 2))


def depthwise_conv2d_backward(x: np.ndarray, w: np.ndarray, grad_output: np.ndarray, *,
                              stride: object = 1, padding: object = "valid",
                              dilation: object = 1, depth_multiplier: int | None = None,
                              grad_dtype: object = None) -> tuple[Any, Any, Any]:
    """Gradients of the depthwise convolution ``y[n, oy, ox, c*M + m] = sum_{ky, kx}
    w[0, ky, kx, c*M + m] * x_pad[n, oy*sh + ky*dh, ox*sw + kx*dw, c] + b[c*M + m]``.

    ``w`` is ``(1, KH, KW, C*M)``; ``depth_multiplier`` ``M`` defaults to
    ``w.shape[3] / C`` and is checked against it when given.  Returns as
    :func:`conv2d_backward`."""
    x, w, gy = _array("x", x), _array("w", w), _array("grad_output", grad_output)
    if w.ndim != 4 or w.shape[0] != 1 or 0 in w.shape:
        raise ValueError(f"w: shape {w.shape} not allowed, must be (1, KH, KW, C*M)")
    x4, batched = _nhwc("x", x, 2)
    c = x4.shape[3]
    mult = w.shape[3] // c if depth_multiplier is None else v.check_int(
        "depth_multiplier", depth_multiplier, 1)
    if mult < 1 or c * mult != w.shape[3]:
        raise ValueError(f"depth_multiplier={depth_multiplier!r}: x has {c} channels and w "
                         f"{w.shape[3]}; w.shape[3] must equal C * depth_multiplier")
    kh, kw = w.shape[1:3]
    s, d = as_pair("stride", stride), as_pair("dilation", dilation)
    pads = _pads(padding, 2, x4.shape[1:3], (kh, kw), s, d)
    oh, ow = _out_hw(x4, (kh, kw), s, d, pads)
    gy4 = _check_grad_shape(gy, batched, 2, (x4.shape[0], oh, ow, c * mult))
    fixed = _numeric_mode({"x": x, "w": w, "grad_output": gy}, grad_dtype, gy)
    if fixed is None:
        dx, dw, db = _depthwise_core(x4.astype(np.float64), w.astype(np.float64),
                                     gy4.astype(np.float64), s, pads, d, mult)
        return _unbatch(dx, batched, 2), dw, db
    mx, mw, mg = _peak(x), _peak(w), _peak(gy)
    _check_acc("grad_input", mg, mw, mult * kh * kw)
    _check_acc("grad_weights", mg, mx, x4.shape[0] * oh * ow)
    _check_acc("grad_bias", mg, x4.shape[0] * oh * ow)
    dx, dw, db = _depthwise_core(x4.astype(np.int64), w.astype(np.int64),
                                 gy4.astype(np.int64), s, pads, d, mult)
    return (quantize_gradient(_unbatch(dx, batched, 2), grad_dtype=fixed),
            quantize_gradient(dw, grad_dtype=fixed), quantize_gradient(db, grad_dtype=fixed))


# ------------------------------------------------------------------------ dense

def dense_backward(x: np.ndarray, w: np.ndarray, grad_output: np.ndarray, *,
                   grad_dtype: object = None) -> tuple[Any, Any, Any]:
    """Gradients of the fully connected layer ``y[n, o] = sum_k w[o, k] * x[n, k] + b[o]``
    (TFLite's FULLY_CONNECTED, weights ``(O, K)``) for ``grad_output`` ``(N, O)``:
    ``dL/dx = g @ w``, ``dL/dw = g^T @ x``, ``dL/db = sum_n g[n]``.

    ``x`` is ``(K,)`` or ``(N, K)`` and ``grad_output`` ``(O,)`` or ``(N, O)`` alike.  It
    is the 1x1 convolution of a 1x1 image with ``K`` channels, and computed as such by
    :func:`conv2d_backward` (same numbers: float64 arrays, or three :class:`FixedGrad` in
    ``grad_dtype`` with the module's format rule), reshaped to ``x``'s, ``w``'s and
    ``(O,)`` shapes."""
    x, w, gy = _array("x", x), _array("w", w), _array("grad_output", grad_output)
    if w.ndim != 2 or 0 in w.shape:
        raise ValueError(f"w: shape {w.shape} not allowed, must be (O, K), non-empty")
    o, k = w.shape
    if x.ndim not in (1, 2) or x.shape[-1] != k:
        raise ValueError(f"x: shape {x.shape} not allowed, must be ({k},) or (N, {k}) "
                         f"for w of shape {w.shape}")
    if gy.shape != (*x.shape[:-1], o):
        raise ValueError(f"grad_output: shape {gy.shape} not allowed, must be the output "
                         f"shape {(*x.shape[:-1], o)}")
    n = x.shape[0] if x.ndim == 2 else 1
    dx, dw, db = conv2d_backward(x.reshape(n, 1, 1, k), w.reshape(o, 1, 1, k),
                                 gy.reshape(n, 1, 1, o), grad_dtype=grad_dtype)

    def shaped(g: Any, shape: tuple[int, ...]) -> Any:
        if isinstance(g, FixedGrad):
            return FixedGrad(g.values.reshape(shape), g.frac_bits, g.dtype)
        return g.reshape(shape)

    return shaped(dx, x.shape), shaped(dw, w.shape), db


# ------------------------------------------------------------------------ pooling

def _pool_args(x: object, grad_output: object, pool_size: object, stride: object,
               padding: object) -> tuple[np.ndarray, np.ndarray, bool, tuple, tuple, Pads2D,
                                          tuple[int, int]]:
    x, gy = _array("x", x), _array("grad_output", grad_output)
    k = as_pair("pool_size", pool_size)
    s = k if stride is None else as_pair("stride", stride)
    x4, batched = _nhwc("x", x, 2)
    pads = _pads(padding, 2, x4.shape[1:3], k, s, (1, 1))
    if not isinstance(v.check_padding(padding, 2), str):  # as the pool layers require
        v.check_pads_fit(pads, k)
    out = _out_hw(x4, k, s, (1, 1), pads)
    gy4 = _check_grad_shape(gy, batched, 2, (x4.shape[0], *out, x4.shape[3]))
    return x4, gy4, batched, k, s, pads, out


def _pool_grad_dtype(gy: np.ndarray, grad_dtype: object) -> np.dtype | None:
    return _numeric_mode({"grad_output": gy}, grad_dtype, gy)


def max_pool2d_backward(x: np.ndarray, grad_output: np.ndarray, *, pool_size: object,
                        stride: object = None, padding: object = "valid",
                        grad_dtype: object = None) -> Any:
    """``grad_input`` of the max pool (padded taps excluded from the max).

    Each window's gradient goes to its maximal in-image tap; on ties to the first in
    row-major window order ``(ky, kx)`` (PyTorch's choice).  Windows overlapping
    (``stride < pool_size``) add up.  Float ``grad_output``: float64; int8/int16:
    :class:`FixedGrad` of the exact sums (``x`` only selects positions)."""
    x4, gy4, batched, k, s, pads, out = _pool_args(x, grad_output, pool_size, stride, padding)
    fixed = _pool_grad_dtype(gy4, grad_dtype)
    if x4.dtype.kind == "f":
        xs, low = x4.astype(np.float64), -np.inf
    else:  # below every value, and every window holds an in-image pixel
        xs, low = x4.astype(np.int64), np.iinfo(np.int64).min
    n, _, _, c = x4.shape
    windows = patch_view(pad_nhwc(xs, pads, low), k, s, (1, 1), out)
    first = windows.reshape(n, *out, k[0] * k[1], c).argmax(axis=3)  # first maximum
    acc_dtype = np.float64 if fixed is None else np.int64
    dwin = np.zeros((n, *out, k[0] * k[1], c), acc_dtype)
    np.put_along_axis(dwin, first[:, :, :, None, :], gy4.astype(acc_dtype)[:, :, :, None, :],
                      axis=3)
    if fixed is not None:
        _check_acc("grad_input", _peak(gy4), k[0] * k[1])
    dx = _unbatch(col2im(dwin.reshape(n, *out, -1), x4.shape, k, s, pads), batched, 2)
    return dx if fixed is None else quantize_gradient(dx, grad_dtype=fixed)


def avg_pool2d_backward(x: np.ndarray, grad_output: np.ndarray, *, pool_size: object,
                        stride: object = None, padding: object = "valid",
                        grad_dtype: object = None) -> Any:
    """``grad_input`` of the average pool over the in-image taps of each window (padding
    excluded from sum and divisor, as TFLite): every in-image tap of a window with ``n``
    such taps receives ``grad / n``.  Float ``grad_output``: float64.  int8/int16: the
    exact rational ``A / L`` (``L`` the lcm of the window sizes, ``A`` an int64 sum of
    ``grad * L / n``) requantized by :func:`quantize_gradient`; its error is within
    half a step as for every FixedGrad."""
    x4, gy4, batched, k, s, pads, out = _pool_args(x, grad_output, pool_size, stride, padding)
    fixed = _pool_grad_dtype(gy4, grad_dtype)
    n, _, _, c = x4.shape
    ones = np.ones((1, *x4.shape[1:3], 1), np.int64)
    count = patch_view(pad_nhwc(ones, pads, 0), k, s, (1, 1), out).sum(axis=(3, 4))
    if fixed is None:
        share = gy4.astype(np.float64) / count  # (N, OH, OW, C) / (1, OH, OW, 1)
        den = 1
    else:
        den = math.lcm(*np.unique(count).tolist())
        _check_acc("grad_input", _peak(gy4), den, k[0] * k[1])
        share = gy4.astype(np.int64) * (den // count)
    dwin = np.broadcast_to(share[:, :, :, None, :], (n, *out, k[0] * k[1], c))
    dx = _unbatch(col2im(np.ascontiguousarray(dwin).reshape(n, *out, -1), x4.shape, k, s,
                         pads), batched, 2)
    return dx if fixed is None else quantize_gradient(dx, grad_dtype=fixed, denominator=den)


# ------------------------------------------------------------------------ 1-D signal

def signal_backward(x: np.ndarray, h: np.ndarray, grad_output: np.ndarray, *,
                    kind: str = "convolve", mode: str = "full", stride: int = 1,
                    grad_dtype: object = None) -> tuple[Any, Any]:
    """Gradients ``(grad_x, grad_h)`` of :func:`edgeconv.signal.convolve` /
    :func:`~edgeconv.signal.correlate` (``kind``) with ``mode`` full/same/valid and
    ``stride``, with respect to both operands, before the Q-format requantization.

    With ``hh = h`` (convolve) or ``h[::-1]`` (correlate) the full output is
    ``y[t] = sum_k x[k] * hh[t - k]``; the mode and stride keep some ``t``.  Scattering
    ``grad_output`` back to those ``t`` gives ``g`` (length ``M + N - 1``), and
    ``dL/dx = correlate(g, hh, 'valid')``, ``dL/dhh = correlate(g, x, 'valid')``.  Integer
    (q7/q15) operands use the integer output layout (correlate 'full': CMSIS-DSP's
    ``2*max(M, N) - 1`` with constant zero positions, which get no gradient) and return
    :class:`FixedGrad`; float operands return float64."""
    v.check_choice("kind", kind, _signal.KINDS)
    v.check_choice("mode", mode, _signal.MODES)
    stride = v.check_int("stride", stride, 1)
    arrays = {"x": _array("x", x), "h": _array("h", h),
              "grad_output": _array("grad_output", grad_output)}
    for name, arr in arrays.items():
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"{name}: shape {arr.shape} not allowed, must be non-empty 1-D")
    xa, ha, gy = arrays.values()
    fixed = _numeric_mode(arrays, grad_dtype, gy)
    m, n = xa.size, ha.size
    # Positions of the full output that the mode/stride keep: 1-based so that the zero
    # padding of the integer correlate layout reads 0 (no position).
    kept = _signal._select(np.arange(1, m + n), kind, mode, m, n, fixed is not None, stride)
    if gy.size != kept.size:
        raise ValueError(f"grad_output: length {gy.size} not allowed, must be the output "
                         f"length {kept.size} of {kind} mode={mode!r} stride={stride}")
    acc_dtype = np.float64 if fixed is None else np.int64
    g = np.zeros(m + n - 1, acc_dtype)
    g[kept[kept > 0] - 1] = gy[kept > 0]
    hh = ha[::-1] if kind == "correlate" else ha
    if fixed is not None:
        _check_acc("grad", _peak(gy), max(_peak(xa), _peak(ha)), max(m, n))
    dx = np.correlate(g, hh.astype(acc_dtype), "valid")
    dhh = np.correlate(g, xa.astype(acc_dtype), "valid")
    dh = dhh[::-1] if kind == "correlate" else dhh
    if fixed is None:
        return dx, dh.copy()
    return (quantize_gradient(dx, grad_dtype=fixed), quantize_gradient(dh, grad_dtype=fixed))


# ------------------------------------------------------------------------ graph

@dataclass
class Graph:
    """Computational graph of one layer: forward nodes and edges and the backward
    (gradient) nodes with the formula of each.  ``nodes`` maps a node id to its label;
    ``edges`` are ``(source, target, label)``; ``formulas`` maps a gradient node to the
    formula that computes it."""

    title: str
    nodes: dict[str, str] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    formulas: dict[str, str] = field(default_factory=dict)
    layout: dict[str, tuple[float, float]] = field(default_factory=dict)

    def to_text(self) -> str:
        lines = [self.title, "nodes:"]
        lines += [f"  {key}: {label}" for key, label in self.nodes.items()]
        lines.append("edges:")
        lines += [f"  {a} -> {b}" + (f"  [{lab}]" if lab else "") for a, b, lab in self.edges]
        lines.append("gradients:")
        lines += [f"  {key} = {formula}" for key, formula in self.formulas.items()]
        return "\n".join(lines) + "\n"

    def to_dot(self) -> str:
        def q(text: str) -> str:
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

        lines = [f"digraph {q(self.title)} {{", "  rankdir=LR;"]
        for key, label in self.nodes.items():
            shape = "box" if key.startswith("d") else "ellipse"
            text = label + (f"\\n= {self.formulas[key]}" if key in self.formulas else "")
            lines.append(f"  {q(key)} [label={q(text)}, shape={shape}];")
        for a, b, lab in self.edges:
            style = ", style=dashed" if a.startswith("d") else ""
            lines.append(f"  {q(a)} -> {q(b)} [label={q(lab)}{style}];")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_png(self, path: str, *, dpi: int = 120) -> None:
        """Draw the graph (forward row, gradient row, formulas) with matplotlib, which is
        imported here (an optional dependency)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        forward = [k for k in self.nodes if not k.startswith("d")]
        backward = [k for k in self.nodes if k.startswith("d")]
        pos = {k: (i * 2.2, 2.0) for i, k in enumerate(forward)}
        pos.update({k: (i * 2.2, 0.0) for i, k in enumerate(backward)})
        pos.update(self.layout)
        xs, ys = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
        bottom = min(ys) - 0.6
        fig, ax = plt.subplots(figsize=(max(xs) - min(xs) + 3.5,
                                        max(ys) - bottom + 0.4 * len(self.formulas) + 1))
        for a, b, lab in self.edges:
            (x0, y0), (x1, y1) = pos[a], pos[b]
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                        arrowprops={"arrowstyle": "->", "shrinkA": 18, "shrinkB": 18,
                                    "linestyle": "--" if a.startswith("d") else "-",
                                    "color": "tab:red" if a.startswith("d") else "k"})
            if lab:
                ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.08, lab, fontsize=8, ha="center",
                        color="tab:red" if a.startswith("d") else "k")
        for key, (px, py) in pos.items():
            ax.text(px, py, self.nodes[key], ha="center", va="center", fontsize=10,
                    bbox={"boxstyle": "round",
                          "fc": "mistyrose" if key.startswith("d") else "lightcyan"})
        text = "\n".join(f"{self.nodes[k]} = {f}" for k, f in self.formulas.items())
        ax.text(min(xs) - 0.5, bottom, text, fontsize=9, va="top", family="monospace")
        ax.set_title(self.title, fontsize=10)
        ax.set_xlim(min(xs) - 0.7, max(xs) + 0.7)
        ax.set_ylim(bottom - 0.3 * len(self.formulas) - 0.2, max(ys) + 0.4)
        ax.axis("off")
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        plt.close(fig)


def graph(layer: object) -> Graph:
    """The computational graph of a layer (Conv2D, Conv1D, DepthwiseConv2D, MaxPool2D,
    AvgPool2D or signal.SignalFilter) with its gradient formulas: for a convolution
    ``y = conv(x, w) + b``: ``dL/dx`` is the full convolution of ``dL/dy`` with the
    flipped kernel, ``dL/dw`` the valid correlation of ``x`` with ``dL/dy``, ``dL/db`` the
    sum of ``dL/dy``."""
    from edgeconv.layers import AvgPool2D, Conv2D, DepthwiseConv2D, MaxPool2D

    title = f"{type(layer).__name__} {getattr(layer, 'name', None) or ''}".strip()
    g = Graph(title)
    if isinstance(layer, (Conv2D, DepthwiseConv2D)):
        op = "depthwise conv" if isinstance(layer, DepthwiseConv2D) else "conv"
        g.title += (f": stride {layer.stride}, dilation {layer.dilation}, "
                    f"padding {layer.padding!r}")
        g.nodes.update({"x": "x", "w": "w", "conv": f"{op}(x, w)", "b": "b", "add": "+",
                        "y": "y", "L": "L"})
        g.edges += [("x", "conv", ""), ("w", "conv", ""), ("conv", "add", ""),
                    ("b", "add", ""), ("add", "y", ""), ("y", "L", "")]
        g.nodes.update({"dL/dy": "dL/dy", "dL/dx": "dL/dx", "dL/dw": "dL/dw",
                        "dL/db": "dL/db"})
        g.edges += [("L", "dL/dy", "backprop"), ("dL/dy", "dL/dx", "with w"),
                    ("dL/dy", "dL/dw", "with x"), ("dL/dy", "dL/db", "sum")]
        g.layout.update({"x": (0, 3), "w": (0, 2), "conv": (1.6, 2.5), "b": (1.6, 1.6),
                         "add": (3.2, 2.5), "y": (4.6, 2.5), "L": (6, 2.5),
                         "dL/dy": (4.6, 0), "dL/dx": (1.6, 0.7), "dL/dw": (1.6, 0),
                         "dL/db": (1.6, -0.7)})
        g.formulas.update({
            "dL/dx": "full_conv(dL/dy, flip(w))  [dL/dy zero-stuffed by the stride]",
            "dL/dw": "valid_corr(x, dL/dy)",
            "dL/db": "sum(dL/dy) over batch and positions",
        })
    elif isinstance(layer, (MaxPool2D, AvgPool2D)):
        op = "max" if isinstance(layer, MaxPool2D) else "avg"
        g.nodes.update({"x": "x", "pool": f"{op}pool(x)", "y": "y", "L": "L",
                        "dL/dy": "dL/dy", "dL/dx": "dL/dx"})
        g.title += f": pool {layer.pool_size}, stride {layer.stride}, padding {layer.padding!r}"
        g.edges += [("x", "pool", ""), ("pool", "y", ""), ("y", "L", ""),
                    ("L", "dL/dy", "backprop"), ("dL/dy", "dL/dx", "route" if op == "max"
                                                 else "spread")]
        g.layout.update({"x": (0, 2), "pool": (1.6, 2), "y": (3.2, 2), "L": (4.6, 2),
                         "dL/dy": (3.2, 0), "dL/dx": (0, 0)})
        g.formulas["dL/dx"] = ("dL/dy routed to each window's (first) max" if op == "max"
                               else "dL/dy / n spread over each window's n in-image taps")
    elif isinstance(layer, _signal.SignalFilter):
        g.nodes.update({"x": "x", "h": "h", "op": f"{layer.kind}(x, h, {layer.mode!r})",
                        "y": "y", "L": "L", "dL/dy": "dL/dy", "dL/dx": "dL/dx",
                        "dL/dh": "dL/dh"})
        g.edges += [("x", "op", ""), ("h", "op", ""), ("op", "y", ""), ("y", "L", ""),
                    ("L", "dL/dy", "backprop"), ("dL/dy", "dL/dx", "with h"),
                    ("dL/dy", "dL/dh", "with x")]
        g.layout.update({"x": (0, 3), "h": (0, 2), "op": (1.8, 2.5), "y": (3.4, 2.5),
                         "L": (4.8, 2.5), "dL/dy": (3.4, 0), "dL/dx": (1.2, 0.5),
                         "dL/dh": (1.2, -0.5)})
        g.formulas.update({"dL/dx": "valid_corr(g, hh), g = dL/dy placed in the full output",
                           "dL/dh": "valid_corr(g, x) (reversed for correlate)"})
    else:
        raise ValueError(f"layer: {type(layer).__name__} not allowed, must be Conv2D, Conv1D, "
                         "DepthwiseConv2D, MaxPool2D, AvgPool2D or SignalFilter")
    return g

