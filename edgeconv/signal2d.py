"""2-D convolution, correlation and template matching: float (scipy semantics) and exact
Q-format, plus PNG pictures of the results.

Definitions (image ``x`` of shape ``(M1, M2)``, kernel ``h`` of shape ``(N1, N2)``):

- ``full`` convolution ``y[i, j] = sum_{k, l} h[k, l] * xe[i - k, j - l]``, shape
  ``(M1 + N1 - 1, M2 + N2 - 1)``, where ``xe`` is ``x`` extended beyond its edges by
  ``boundary``: ``'fill'`` (the constant ``fillvalue``), ``'symmetric'`` (mirrored with
  the edge sample repeated, period ``2 * M``) or ``'wrap'`` (periodic, period ``M``).
  The extension is applied as often as needed, also for kernels larger than the image.
- ``correlate2d(x, h)`` is ``convolve2d(x, h[::-1, ::-1])`` in ``full`` mode.
- ``same``: shape ``(M1, M2)``; rows ``(N1 - 1) // 2 ...`` of the full convolution, and
  rows ``N1 // 2 ...`` of the full correlation (scipy's centring; they differ for even
  kernels), columns alike.
- ``valid``: shape ``(|M1 - N1| + 1, |M2 - N2| + 1)``, the full result from
  ``min(M, N) - 1`` on in each axis; either ``x`` or ``h`` must be at least as large as
  the other in both axes (as scipy, which swaps them).  ``boundary`` and ``fillvalue``
  do not enter ``valid`` outputs, also when ``h`` is the larger one (scipy's rule: then
  ``h`` is read as the image and ``x`` slides over it, with no extension).

These are exactly ``scipy.signal.convolve2d`` / ``correlate2d`` for real inputs
(scipy is not needed at run time).  Unlike the 1-D ``correlate``, integer
``mode='full'`` has the same layout as float (there is no CMSIS-DSP 2-D layout to follow).

Q-format inputs (``x`` and ``h`` both int8 = q7, int16 = q15 or int32 = q31) follow the
1-D functions of :mod:`edgeconv.signal` exactly: every product exact, summed modulo
``2**accumulator`` (defaults q7 32 bits, q15/q31 64), one shift right by 7 / 15 / 31 (or
``shift``) with
``rounding='floor'`` or ``'nearest'`` (rounding constant added in the accumulator), then
saturation (q7, q15) or wrap (q31).  ``fillvalue`` is a sample in the same format.

Separable kernels: a kernel that is exactly ``outer(h_col, h_row)`` with integer vectors
(found exactly: ``h_row`` is a non-zero row divided by the gcd of its entries, every row
must be an integer multiple of it) or declared as a tuple ``(h_col, h_row)`` runs as a
row pass followed by a column pass.  The intermediate of the row pass is kept at the
accumulator width (modulo ``2**accumulator``) and only the column pass is shifted, so the
result equals the 2-D computation bit for bit in every case: reduction modulo
``2**accumulator`` commutes with sums and products.  A C implementation may store the
intermediate in ``w`` bits when it cannot overflow them, i.e. when
``max|x| * sum|h_row| < 2**(w - 1)`` (:func:`intermediate_bits`); requantizing the
intermediate to the Q format between the passes would not give identical results and is
not done.

Template matching (:func:`match_template`) is described there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgeconv.fixedpoint import dtype_bounds, saturate
from edgeconv.signal import (
    FORMATS,
    KINDS,
    MODES,
    _check_choice,
    _check_int,
    _requantize,
    _sign_extend,
    _wrap_object,
    resolve_format,
    resolve_options,
    resolve_shift,
    shift_spec,
)

BOUNDARIES = ("fill", "symmetric", "wrap")
METHODS = ("ncc", "ssd", "sad")
NCC_FRAC_BITS = 15
MATCH_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16),
                np.dtype(np.uint16))

_INT63 = 1 << 63
_Q_DTYPES = tuple(spec["dtype"] for spec in FORMATS.values())


# ------------------------------------------------------------------------- validation

def _as_array(name: str, value: npt.ArrayLike, ndims: tuple[int, ...]) -> np.ndarray:
    """A non-empty real array with ``ndim`` in ``ndims``; ValueError otherwise."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nesting, unconvertible objects
        raise ValueError(f"{name}: not convertible to an array ({exc})") from None
    if arr.ndim not in ndims or arr.size == 0:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name}: shape {arr.shape}, must be a non-empty {want} array")
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name}: dtype {arr.dtype}, allowed are int8/int16/int32 "
                         "(q7/q15/q31) or a real float type")
    return arr


def _as_kernel(h: object) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """``h`` as a 2-D kernel, and its factors when given as a tuple ``(h_col, h_row)``."""
    if isinstance(h, tuple):
        if len(h) != 2:
            raise ValueError(f"h: a tuple of {len(h)} items; a tuple must be the two 1-D "
                             "factors (h_col, h_row) of a separable kernel")
        col, row = _as_array("h_col", h[0], (1,)), _as_array("h_row", h[1], (1,))
        if col.dtype != row.dtype:
            raise ValueError(f"h: h_col dtype {col.dtype} and h_row dtype {row.dtype} "
                             "must be equal")
        if col.dtype.kind == "f":
            return np.outer(col.astype(np.float64), row.astype(np.float64)), (col, row)
        kernel = np.outer(col.astype(np.int64), row.astype(np.int64))
        if col.dtype in _Q_DTYPES:  # the kernel outer(h_col, h_row) must be a Q kernel
            lo, hi = dtype_bounds(col.dtype)
            if int(kernel.min()) < lo or int(kernel.max()) > hi:
                raise ValueError(f"h: outer(h_col, h_row) has values [{int(kernel.min())}, "
                                 f"{int(kernel.max())}] outside the {col.dtype} range "
                                 f"[{lo}, {hi}]")
            kernel = kernel.astype(col.dtype)
        return kernel, (col, row)
    return _as_array("h", h, (2,)), None


def _check_fillvalue(fillvalue: object, dtype: np.dtype | None) -> int | float:
    """``fillvalue`` as a sample of ``dtype`` (a Q format) or, for ``None``, a real float."""
    if isinstance(fillvalue, (bool, np.bool_)) or \
            not isinstance(fillvalue, (int, float, np.integer, np.floating)):
        raise ValueError(f"fillvalue={fillvalue!r}: must be a real number")
    if dtype is None:
        return float(fillvalue)
    lo, hi = dtype_bounds(dtype)
    if not lo <= fillvalue <= hi or not float(fillvalue).is_integer():
        raise ValueError(f"fillvalue={fillvalue!r}: for {dtype.name} inputs an integer in "
                         f"[{lo}, {hi}]")
    return int(fillvalue)


def _check_separable(separable: object) -> bool | None:
    if separable is not None and not isinstance(separable, (bool, np.bool_)):
        raise ValueError(f"separable={separable!r}: allowed are None (detect), True, False")
    return None if separable is None else bool(separable)


# --------------------------------------------------------------------- mode arithmetic

def _axis_region(kind: str, mode: str, m: int, n: int) -> tuple[int, int]:
    """``(start, length)`` of the outputs of ``mode`` within the full result, one axis."""
    if mode == "full":
        return 0, m + n - 1
    if mode == "same":
        return ((n - 1) // 2 if kind == "convolve" else n // 2), m
    return min(m, n) - 1, abs(m - n) + 1


def _check_valid_shapes(mode: str, x_shape: tuple[int, ...], h_shape: tuple[int, ...]) -> None:
    if mode == "valid":
        bigger = all(m >= n for m, n in zip(x_shape, h_shape, strict=True))
        smaller = all(m <= n for m, n in zip(x_shape, h_shape, strict=True))
        if not (bigger or smaller):
            raise ValueError(f"mode='valid': x shape {x_shape} and h shape {h_shape}: one "
                             "must be at least as large as the other in every dimension")


def output_shape2d(kind: str, mode: str, x_shape: tuple[int, int],
                   h_shape: tuple[int, int]) -> tuple[int, int]:
    """Output shape of ``convolve2d``/``correlate2d`` for these input shapes."""
    _check_choice("kind", kind, KINDS)
    _check_choice("mode", mode, MODES)
    x_shape, h_shape = _shape2("x_shape", x_shape), _shape2("h_shape", h_shape)
    _check_valid_shapes(mode, x_shape, h_shape)
    rows = _axis_region(kind, mode, x_shape[0], h_shape[0])[1]
    return rows, _axis_region(kind, mode, x_shape[1], h_shape[1])[1]


def _shape2(name: str, shape: object) -> tuple[int, int]:
    """``shape`` as ``(rows, cols)`` of integers >= 1; ValueError naming ``name``."""
    if not isinstance(shape, (tuple, list)) or len(shape) != 2 or any(
            isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
            for v in shape):
        raise ValueError(f"{name}={shape!r}: must be (rows, cols) with integers >= 1")
    return int(shape[0]), int(shape[1])


def _check_name(name: object) -> None:
    """A layer's C name: an ASCII identifier or None; ValueError otherwise."""
    if name is not None and (not isinstance(name, str) or not name.isidentifier()
                             or not name.isascii()):
        raise ValueError(f"name={name!r}: must be an ASCII C identifier or None")


def _layer_input(x: npt.ArrayLike, dtype: np.dtype, fmt: str,
                 shape: tuple[int, ...]) -> np.ndarray:
    """A 2-D layer's input: ``shape`` or ``(batch, *shape)`` of ``dtype``; ValueError
    otherwise."""
    arr = np.asarray(x)
    if arr.dtype != dtype:
        raise ValueError(f"x: dtype {arr.dtype}, must be {dtype.name} for {fmt}")
    if arr.ndim not in (2, 3) or arr.shape[-2:] != shape or arr.size == 0:
        raise ValueError(f"x: shape {arr.shape}, must be {shape} or "
                         f"(batch, {shape[0]}, {shape[1]}) with batch >= 1")
    return arr


# -------------------------------------------------------------------- boundary handling

def _index_map(idx: np.ndarray, size: int, boundary: str) -> np.ndarray:
    """Indices of ``x`` that extended positions ``idx`` read (symmetric / wrap)."""
    if boundary == "wrap":
        return idx % size
    period = idx % (2 * size)  # symmetric: x[-1] = x[0], x[size] = x[size - 1], ...
    return np.where(period >= size, 2 * size - 1 - period, period)


def _extend(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, boundary: str,
            fillvalue: int | float) -> np.ndarray:
    """``xe[rows][:, cols]``: ``x`` read at (possibly outside) positions, per ``boundary``."""
    if boundary != "fill":
        return x[np.ix_(_index_map(rows, x.shape[0], boundary),
                        _index_map(cols, x.shape[1], boundary))]
    out = np.full((rows.size, cols.size), fillvalue, dtype=x.dtype)
    r_in = (rows >= 0) & (rows < x.shape[0])
    c_in = (cols >= 0) & (cols < x.shape[1])
    out[np.ix_(r_in, c_in)] = x[np.ix_(rows[r_in], cols[c_in])]
    return out


# ---------------------------------------------------------------- exact accumulation

def _tap_sum(e: np.ndarray, taps: np.ndarray, shape: tuple[int, int],
             arithmetic: str) -> np.ndarray:
    """``sum_{k, l} taps[k, l] * e[k : k + H, l : l + W]`` (a 'valid' correlation).

    ``arithmetic``: ``'float'`` (float64), ``'mod64'`` (uint64, so every product and sum
    is exact modulo ``2**64``; the caller sign-extends) or ``'exact'`` (int64 when
    ``taps.size * max|e| * max|taps| < 2**63``, else Python integers).
    """
    height, width = shape
    if arithmetic == "float":
        e, taps, dtype = e.astype(np.float64), taps.astype(np.float64), np.float64
    elif arithmetic == "mod64":
        e = e.astype(np.int64).view(np.uint64)
        taps, dtype = taps.astype(np.int64).view(np.uint64), np.uint64
    else:
        bound = taps.size * int(np.abs(e).max()) * int(np.abs(taps).max())
        dtype = np.int64 if bound < _INT63 else object
        e, taps = e.astype(dtype), taps.astype(dtype)
    acc = np.zeros(shape, dtype=dtype)
    for (i, j), tap in np.ndenumerate(taps):
        if tap != 0:  # a zero tap adds nothing, in every arithmetic
            acc += tap * e[i:i + height, j:j + width]
    return acc


def rank1_factors(h: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray] | None:
    """Integer vectors ``(h_col, h_row)`` with ``outer(h_col, h_row) == h`` exactly, or
    ``None`` when the integer kernel ``h`` is not rank 1 (or is all zero).

    ``h_row`` is the first non-zero row divided by the gcd of its entries; then every row
    of a rank-1 integer matrix is an integer multiple of it.  The check is exact.
    """
    arr = np.asarray(h)
    if arr.ndim != 2 or arr.dtype.kind not in "iu":
        raise ValueError(f"h: shape {arr.shape} dtype {arr.dtype}, must be a 2-D integer "
                         "array")
    arr = arr.astype(np.int64)
    nonzero_rows = np.flatnonzero(arr.any(axis=1))
    if nonzero_rows.size == 0:
        return None
    first = arr[nonzero_rows[0]]
    row = first // np.gcd.reduce(np.abs(first))
    j0 = int(np.flatnonzero(row)[0])
    col = arr[:, j0] // row[j0]
    if not np.array_equal(np.outer(col, row), arr):
        return None
    return col, row


def intermediate_bits(h_row: npt.ArrayLike, fmt: str) -> int:
    """Bits (two's complement) that hold every row-pass intermediate of a separable
    filter exactly: the smallest ``w`` with ``max|x| * sum|h_row| < 2**(w - 1)``, where
    ``max|x| = 2**(bits of fmt - 1)``."""
    _check_choice("fmt", fmt, tuple(FORMATS))
    lo, _ = dtype_bounds(FORMATS[fmt]["dtype"])
    bound = -lo * int(np.abs(np.asarray(h_row, dtype=np.int64)).sum())
    return bound.bit_length() + 1


def _finish(acc: np.ndarray, fmt: str, rounding: str, saturate_: bool,
            bits: int, shift: int) -> np.ndarray:
    """Accumulator (uint64 modulo 2**64, or exact) -> the Q format, as signal.convolve."""
    if bits <= 64:
        acc = _sign_extend(acc, bits)
    else:
        acc = _wrap_object(acc.astype(object), bits)
    return _requantize(acc, bits, shift, rounding, saturate_, FORMATS[fmt]["dtype"])


def _filter2d(kind: str, x: npt.ArrayLike, h: object, mode: str, fmt: str | None,
              boundary: str, fillvalue: object, rounding: str | None,
              saturate_: bool | None, accumulator: int | None,
              separable: object, shift: int | None) -> np.ndarray:
    _check_choice("mode", mode, MODES)
    _check_choice("boundary", boundary, BOUNDARIES)
    separable = _check_separable(separable)
    xa = _as_array("x", x, (2,))
    ha, factors = _as_kernel(h)
    if factors is not None and separable is False:
        raise ValueError("separable=False: h is given as factors (h_col, h_row); pass "
                         "the 2-D kernel to compute it directly")
    _check_valid_shapes(mode, xa.shape, ha.shape)
    is_float = xa.dtype.kind == "f" or ha.dtype.kind == "f"
    if is_float:
        given = {"fmt": fmt, "rounding": rounding, "saturate": saturate_,
                 "accumulator": accumulator, "shift": shift}
        for key, value in given.items():
            if value is not None:
                raise ValueError(f"{key}={value!r}: only for integer (Q-format) inputs; "
                                 "allowed for float inputs: None")
        fill = _check_fillvalue(fillvalue, None)
        xa, arithmetic = xa.astype(np.float64), "float"
        if separable and factors is None:
            raise ValueError("separable=True: a float kernel is split only when given as "
                             "(h_col, h_row)")
    else:
        fmt = resolve_format(fmt, xa, ha)
        rounding, saturate_, bits = resolve_options(fmt, rounding, saturate_, accumulator)
        shift = resolve_shift(fmt, shift, bits)
        fill = _check_fillvalue(fillvalue, xa.dtype)
        arithmetic = "mod64" if bits <= 64 else "exact"
        if factors is None and separable is not False:
            factors = rank1_factors(ha)
            if separable and factors is None:
                raise ValueError(f"separable=True: h {ha.tolist()} is not an outer "
                                 "product of two integer vectors (rank 1)")

    (r0, height), (c0, width) = (_axis_region(kind, mode, m, n)
                                 for m, n in zip(xa.shape, ha.shape, strict=True))
    n1, n2 = ha.shape
    # full[i, j] = sum_{k, l} flip(h)[k, l] * xe[i + k - (N1 - 1), j + l - (N2 - 1)]
    # (convolution); correlation flips h once more, i.e. uses h as it is.
    rows = np.arange(r0 - (n1 - 1), r0 + height)
    cols = np.arange(c0 - (n2 - 1), c0 + width)
    if mode == "valid":  # scipy: valid outputs never read the boundary, even when h is
        boundary, fill = "fill", 0  # larger than x (then it is h that slides over x)
    ext = _extend(xa, rows, cols, boundary, fill)
    flip = kind == "convolve"
    if factors is None:
        taps = ha[::-1, ::-1] if flip else ha
        acc = _tap_sum(ext, taps, (height, width), arithmetic)
    else:
        col, row = factors
        col, row = (col[::-1], row[::-1]) if flip else (col, row)
        # Row pass over every extended row, then the column pass; no shift in between.
        mid = _tap_sum(ext, row[None, :], (height + n1 - 1, width), arithmetic)
        acc = _tap_sum(mid, col[:, None], (height, width), arithmetic)
    if is_float:
        return acc
    return _finish(acc, fmt, rounding, saturate_, bits, shift)


def convolve2d(x: npt.ArrayLike, h: object, mode: str = "full", *, fmt: str | None = None,
               boundary: str = "fill", fillvalue: int | float = 0,
               rounding: str | None = None, saturate: bool | None = None,
               accumulator: int | None = None, separable: bool | None = None,
               shift: int | None = None) -> np.ndarray:
    """2-D convolution of ``x`` with ``h`` (see the module docstring).

    Float inputs (either one) -> float64, equal to ``scipy.signal.convolve2d(x, h, mode,
    boundary, fillvalue)``.  Integer inputs in ``fmt`` (q7/q15/q31, inferred from the
    dtype) -> that dtype, with the numerics of :func:`edgeconv.signal.convolve`
    (``rounding``, ``saturate``, ``accumulator`` and ``shift`` override its CMSIS-DSP
    defaults).

    ``h`` is a 2-D array, or a tuple ``(h_col, h_row)`` of 1-D arrays meaning the kernel
    ``outer(h_col, h_row)`` (run as two 1-D passes).  ``separable``: ``None`` splits an
    integer kernel that is exactly rank 1, ``True`` requires it, ``False`` never splits.
    The result does not depend on ``separable``.
    """
    return _filter2d("convolve", x, h, mode, fmt, boundary, fillvalue, rounding, saturate,
                     accumulator, separable, shift)


def correlate2d(x: npt.ArrayLike, h: object, mode: str = "full", *, fmt: str | None = None,
                boundary: str = "fill", fillvalue: int | float = 0,
                rounding: str | None = None, saturate: bool | None = None,
                accumulator: int | None = None, separable: bool | None = None,
               shift: int | None = None) -> np.ndarray:
    """2-D cross-correlation ``y[i, j] = sum_{k, l} xe[i + k, j + l] * h[k, l]`` (offset by
    mode); float inputs equal ``scipy.signal.correlate2d``.  Options as :func:`convolve2d`.
    """
    return _filter2d("correlate", x, h, mode, fmt, boundary, fillvalue, rounding, saturate,
                     accumulator, separable, shift)


# ----------------------------------------------------------------------- layer object

class SignalFilter2D:
    """A fixed-kernel Q-format 2-D convolution/correlation over ``input_shape = (H, W)``.

    Layer contract of docs/architecture.md: ``activation_dtype`` int8/int16/int32 for
    q7/q15/q31, ``__call__`` on ``(H, W)`` or ``(batch, H, W)``.  Attributes for codegen:
    ``kernel`` (2-D, the format's dtype), ``factors`` (``(h_col, h_row)`` int64 vectors
    when the filter runs as two 1-D passes, else ``None``), ``intermediate_bits``,
    ``kind``, ``mode``, ``fmt``, ``boundary``, ``fillvalue``, ``rounding``, ``saturate``,
    ``accumulator``, ``shift``.
    """

    def __init__(self, kernel: object, *, kind: str = "convolve", mode: str = "full",
                 fmt: str = "q15", boundary: str = "fill", fillvalue: int = 0,
                 input_shape: tuple[int, int], rounding: str | None = None,
                 saturate: bool | None = None, accumulator: int | None = None,
                 separable: bool | None = None, shift: int | None = None,
                 name: str | None = None) -> None:
        _check_choice("kind", kind, KINDS)
        _check_choice("mode", mode, MODES)
        _check_choice("fmt", fmt, tuple(FORMATS))
        _check_choice("boundary", boundary, BOUNDARIES)
        _check_name(name)
        self.kind, self.mode, self.fmt, self.boundary, self.name = (kind, mode, fmt,
                                                                     boundary, name)
        self.activation_dtype = FORMATS[fmt]["dtype"]
        self.rounding, self.saturate, self.accumulator = resolve_options(
            fmt, rounding, saturate, accumulator)
        self.shift = resolve_shift(fmt, shift, self.accumulator)
        self.fillvalue = _check_fillvalue(fillvalue, self.activation_dtype)
        self.input_shape: tuple[int, ...] = _shape2("input_shape", input_shape)
        separable = _check_separable(separable)
        arr, factors = _as_kernel(kernel)
        if arr.dtype != self.activation_dtype:
            raise ValueError(f"kernel: dtype {arr.dtype}, must be "
                             f"{self.activation_dtype.name} for {fmt}")
        self.kernel = arr
        if factors is not None and separable is False:
            raise ValueError("separable=False: kernel given as factors (h_col, h_row)")
        # Canonical factors (rank1_factors of the kernel), however the kernel was given:
        # __call__ and codegen split it the same way, and spec() does not depend on it.
        self.factors = None if separable is False and factors is None \
            else rank1_factors(arr)
        if self.factors is None and (separable or factors is not None):
            raise ValueError(f"separable=True: kernel {arr.tolist()} is not rank 1")
        self.intermediate_bits = (None if self.factors is None
                                  else intermediate_bits(self.factors[1], fmt))
        self.output_shape_for(self.input_shape)  # mode='valid' shape check

    def output_shape_for(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return output_shape2d(self.kind, self.mode, _shape2("input_shape", input_shape),
                              self.kernel.shape)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.output_shape_for(self.input_shape)

    def __call__(self, x: npt.ArrayLike) -> np.ndarray:
        arr = _layer_input(x, self.activation_dtype, self.fmt, self.input_shape)
        func = convolve2d if self.kind == "convolve" else correlate2d
        outs = [func(img, self.kernel, self.mode, fmt=self.fmt, boundary=self.boundary,
                     fillvalue=self.fillvalue, rounding=self.rounding,
                     saturate=self.saturate, accumulator=self.accumulator,
                     separable=self.factors is not None, shift=self.shift)
                for img in arr.reshape(-1, *self.input_shape)]
        out = np.stack(outs)
        return out[0] if arr.ndim == 2 else out

    def macs(self, input_shape: tuple[int, ...] | None = None) -> int:
        """Multiply-accumulates per image (batch 1).  2-D: every tap of every output,
        except taps that read a zero border (``fill`` with ``fillvalue=0``, and ``valid``
        mode), which cost nothing, as for ``SignalFilter``.  Separable: the row pass over
        the ``H_out + N1 - 1`` extended rows plus the column pass, border included."""
        shape = _shape2("input_shape", self.input_shape if input_shape is None else input_shape)
        h_out, w_out = self.output_shape_for(shape)
        n1, n2 = self.kernel.shape
        if self.factors is not None:
            return (h_out + n1 - 1) * w_out * n2 + h_out * w_out * n1
        if self.mode != "valid" and (self.boundary != "fill" or self.fillvalue != 0):
            return h_out * w_out * n1 * n2
        per_axis = []
        for m, n in zip(shape, self.kernel.shape, strict=True):
            start, length = _axis_region(self.kind, self.mode, m, n)
            counts = np.convolve(np.ones(m, np.int64), np.ones(n, np.int64))  # taps in x
            per_axis.append(counts[start:start + length])
        return int(per_axis[0].sum() * per_axis[1].sum())

    def spec(self) -> dict[str, Any]:
        return {"type": "SignalFilter2D", "kind": self.kind, "mode": self.mode,
                "fmt": self.fmt, "boundary": self.boundary, "fillvalue": self.fillvalue,
                "input_shape": list(self.input_shape), "rounding": self.rounding,
                "saturate": self.saturate, "accumulator": self.accumulator,
                "kernel": self.kernel.tolist(),
                "factors": None if self.factors is None else [f.tolist()
                                                              for f in self.factors],
                "output_shape": list(self.output_shape), **shift_spec(self.fmt, self.shift)}


# ------------------------------------------------------------------ template matching

@dataclass(frozen=True)
class MatchResult:
    """Result of :func:`match_template`.

    ``scores``: one score per template position (top-left corner), shape
    ``image.shape - template.shape + 1``.  ``location``: the best position, ``(row, col)``
    (``(index,)`` for 1-D signals); the first in row-major order among equal scores.
    ``score``: its score.  ``frac_bits``: for integer ``'ncc'`` the scores are Q15 int16
    (``NCC_FRAC_BITS``), else ``None`` (exact integers or float64).
    """

    scores: np.ndarray
    location: tuple[int, ...]
    score: int | float
    method: str
    template_shape: tuple[int, ...]
    frac_bits: int | None

    @property
    def box(self) -> tuple[int, ...]:
        """``(row, col, height, width)`` of the found template (1-D: ``(index, length)``)."""
        return (*self.location, *self.template_shape)

    def scores_float(self) -> np.ndarray:
        """Scores as float64 (Q15 scores divided by 2**15)."""
        if self.frac_bits is None:
            return self.scores.astype(np.float64)
        return np.ldexp(self.scores.astype(np.float64), -self.frac_bits)


def _window_sums(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Sum of every ``shape`` window of ``a`` (top-left indexed) from an integral image."""
    th, tw = shape
    integral = np.zeros((a.shape[0] + 1, a.shape[1] + 1), dtype=a.dtype)
    # int64 integral images may wrap on huge images; the window differences are still
    # exact (modulo 2**64) while every window sum stays below 2**63.
    integral[1:, 1:] = a.cumsum(axis=0).cumsum(axis=1)
    return (integral[th:, tw:] - integral[:-th, tw:] - integral[th:, :-tw]
            + integral[:-th, :-tw])


_isqrt = np.frompyfunc(math.isqrt, 1, 1)


def _ncc_q15(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / sqrt(den)`` (``|num| <= sqrt(den)``) as Q15, rounded to nearest (ties away
    from zero) from the exact integers, saturated to [-32768, 32767]; 0 where den is 0.

    ``floor(2**(F+1) * |num| / sqrt(den)) = isqrt(floor(num**2 * 2**(2F+2) / den))``
    (floor of a square root of a rational), then ``(that + 1) // 2`` rounds.
    """
    num, den = num.astype(object), den.astype(object)
    safe = np.where(den > 0, den, 1)
    twice = _isqrt((num * num * (1 << (2 * NCC_FRAC_BITS + 2))) // safe)
    magnitude = (twice + 1) // 2
    q = np.where(den > 0, np.where(num < 0, -magnitude, magnitude), 0)
    return np.clip(q, -(1 << NCC_FRAC_BITS), (1 << NCC_FRAC_BITS) - 1).astype(np.int16)


def match_template(image: npt.ArrayLike, template: npt.ArrayLike, method: str = "ncc"
                   ) -> MatchResult:
    """Find ``template`` in ``image`` (both 2-D, or both 1-D: a pattern in a signal).

    Scores for each position ``p`` of the template's top-left corner (window ``I``,
    ``n`` samples, template ``T``):

    - ``'ncc'``: normalized cross-correlation (OpenCV's ``TM_CCOEFF_NORMED``)
      ``sum(I' T') / sqrt(sum(I'^2) sum(T'^2))`` with ``I' = I - mean(I)``,
      ``T' = T - mean(T)``; highest is best.  Computed as
      ``(n C - S_I S_T) / sqrt((n S_TT - S_T^2)(n S_II - S_I^2))`` with the window sums
      ``S_I``, ``S_II`` from integral images of ``I`` and ``I^2`` and the cross term
      ``C = sum(I T)``.  Integer inputs: all of these are exact integers and the score is
      the exact value rounded to Q15 (int16, ``1.0`` saturates to 32767): within
      ``2**-16`` of the true NCC, ``2**-15`` at +1.  OpenCV's float32 result differs
      from it by at most ``2**-15 + 2e-5`` on the test images (measured: 2.1e-5 on 80
      uint8 scenes with 5x9 to 16x16 templates).  A flat window or template (zero
      variance) scores 0, as in OpenCV.
    - ``'ssd'``: ``sum((I - T)^2)`` = ``S_II - 2 C + S_TT``; lowest is best.
    - ``'sad'``: ``sum(|I - T|)``; lowest is best.

    Integer inputs (int8, uint8, int16, uint16; q7/q15 samples or pixels) give exact
    int64 ``ssd``/``sad``; float inputs give float64 scores of the same formulas.
    """
    _check_choice("method", method, METHODS)
    img = _as_array("image", image, (1, 2))
    tpl = _as_array("template", template, (1, 2))
    if img.ndim != tpl.ndim:
        raise ValueError(f"template: {tpl.ndim}-D, must have the image's {img.ndim} "
                         "dimensions")
    if any(t > m for m, t in zip(img.shape, tpl.shape, strict=True)):
        raise ValueError(f"template: shape {tpl.shape} larger than the image {img.shape} "
                         "in some dimension")
    is_float = img.dtype.kind == "f" or tpl.dtype.kind == "f"
    for name, arr in (("image", img), ("template", tpl)):
        if not is_float and arr.dtype not in MATCH_DTYPES:
            raise ValueError(f"{name}: dtype {arr.dtype}, allowed are int8, uint8, int16, "
                             "uint16 or a real float type")
    one_d = img.ndim == 1
    img2, tpl2 = np.atleast_2d(img), np.atleast_2d(tpl)
    dtype = np.float64 if is_float else np.int64
    img2, tpl2 = img2.astype(dtype), tpl2.astype(dtype)
    shape = (img2.shape[0] - tpl2.shape[0] + 1, img2.shape[1] - tpl2.shape[1] + 1)
    frac_bits = None
    if method == "sad":
        scores = np.zeros(shape, dtype=dtype)
        for (i, j), t in np.ndenumerate(tpl2):
            scores += np.abs(img2[i:i + shape[0], j:j + shape[1]] - t)
    else:
        cross = _tap_sum(img2, tpl2, shape, "float" if is_float else "exact")
        s_ii = _window_sums(img2 * img2, tpl2.shape)
        s_tt = (tpl2 * tpl2).sum()
        if method == "ssd":
            scores = s_ii - 2 * cross + s_tt
        else:
            s_i, s_t, n = _window_sums(img2, tpl2.shape), tpl2.sum(), tpl2.size
            if is_float:
                num = n * cross - s_i * s_t
                den = (n * s_tt - s_t * s_t) * (n * s_ii - s_i * s_i)
                with np.errstate(invalid="ignore", divide="ignore"):
                    scores = np.where(den > 0, num / np.sqrt(np.where(den > 0, den, 1)), 0.0)
            else:  # Python integers: n * S_TT * n * S_II can pass 2**63
                obj = [np.asarray(v, dtype=object) for v in (cross, s_i, s_ii)]
                cross_o, s_i_o, s_ii_o = obj
                n_o, s_t_o, s_tt_o = int(n), int(s_t), int(s_tt)
                num = n_o * cross_o - s_i_o * s_t_o
                den = (n_o * s_tt_o - s_t_o * s_t_o) * (n_o * s_ii_o - s_i_o * s_i_o)
                scores = _ncc_q15(num, den)
                frac_bits = NCC_FRAC_BITS
    best = int(np.argmax(scores) if method == "ncc" else np.argmin(scores))
    loc = np.unravel_index(best, shape)
    location = (int(loc[1]),) if one_d else (int(loc[0]), int(loc[1]))
    score = scores.flat[best].item()
    return MatchResult(scores=scores[0] if one_d else scores, location=location,
                       score=score, method=method, template_shape=tuple(tpl.shape),
                       frac_bits=frac_bits)


# Template pixels a MatchTemplate layer takes: with n <= 2**15 every NCC term
# (n * C, S_I * S_T, n * S_II - S_I**2, their differences) of int16 pixels stays below 2**62,
# so generated C forms them in int64 exactly.
MATCH_MAX_PIXELS = 1 << 15
_MATCH_FMTS = {np.dtype(np.int8): "q7", np.dtype(np.int16): "q15"}


class MatchTemplate:
    """:func:`match_template` of a fixed ``template`` over images of ``input_shape=(H, W)``
    as a codegen-able layer (op ``match_template``): ``__call__`` returns the score map.

    ``template``: 2-D int8 (q7) or int16 (q15); images have the same dtype
    (``activation_dtype``).  ``output_dtype``: int16 Q15 scores for ``'ncc'`` (as
    :func:`match_template`), int32 for ``'ssd'`` and ``'sad'``, which must fit: the
    largest score any image can give with this template (every pixel at the end of the
    range farther from its template pixel) must be at most ``2**31 - 1``, else
    ValueError (a q15 ``'ssd'`` fits for one-pixel templates only).  At most
    ``MATCH_MAX_PIXELS`` template pixels.  Attributes for codegen: ``template``,
    ``method``, ``fmt``, ``output_shape``.
    """

    def __init__(self, template: npt.ArrayLike, *, method: str = "ncc",
                 input_shape: tuple[int, int], name: str | None = None) -> None:
        _check_choice("method", method, METHODS)
        tpl = _as_array("template", template, (2,))
        if tpl.dtype not in _MATCH_FMTS:
            raise ValueError(f"template: dtype {tpl.dtype}, allowed are int8 (q7) and "
                             "int16 (q15)")
        _check_name(name)
        if tpl.size > MATCH_MAX_PIXELS:
            raise ValueError(f"template: {tpl.size} pixels {tpl.shape}, allowed are at most "
                             f"{MATCH_MAX_PIXELS}")
        self.input_shape: tuple[int, ...] = _shape2("input_shape", input_shape)
        if any(t > m for m, t in zip(self.input_shape, tpl.shape, strict=True)):
            raise ValueError(f"template: shape {tpl.shape} larger than input_shape "
                             f"{self.input_shape} in some dimension")
        self.template, self.method, self.name = tpl, method, name
        self.fmt = _MATCH_FMTS[tpl.dtype]
        self.activation_dtype = tpl.dtype
        self.output_dtype = np.dtype(np.int16 if method == "ncc" else np.int32)
        if method != "ncc":
            lo, hi = dtype_bounds(tpl.dtype)
            t = tpl.astype(np.int64)
            far = np.maximum(t - lo, hi - t)
            worst = int((far * far).sum() if method == "ssd" else far.sum())
            if worst > np.iinfo(np.int32).max:
                raise ValueError(f"method={method!r}: scores of this {self.fmt} template "
                                 f"{tpl.shape} reach {worst}, allowed are int32 scores "
                                 f"(at most {np.iinfo(np.int32).max})")

    def output_shape_for(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        (h, w), (th, tw) = _shape2("input_shape", input_shape), self.template.shape
        if th > h or tw > w:
            raise ValueError(f"input_shape={tuple(input_shape)}: smaller than the template "
                             f"{self.template.shape}")
        return (h - th + 1, w - tw + 1)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.output_shape_for(self.input_shape)

    def __call__(self, x: npt.ArrayLike) -> np.ndarray:
        arr = _layer_input(x, self.activation_dtype, self.fmt, self.input_shape)
        out = np.stack([match_template(img, self.template, self.method).scores
                        for img in arr.reshape(-1, *self.input_shape)])
        out = out.astype(self.output_dtype)  # ssd/sad: fits int32 (checked in __init__)
        return out[0] if arr.ndim == 2 else out

    def macs(self, input_shape: tuple[int, ...] | None = None) -> int:
        """Products (``'sad'``: absolute differences) of the cross term per image: every
        template pixel at every position; the window sums and the NCC normalization are
        not counted."""
        h_out, w_out = self.output_shape_for(self.input_shape if input_shape is None
                                             else input_shape)
        return h_out * w_out * self.template.size

    def spec(self) -> dict[str, Any]:
        return {"type": "MatchTemplate", "method": self.method, "fmt": self.fmt,
                "input_shape": list(self.input_shape), "template": self.template.tolist(),
                "output_shape": list(self.output_shape)}


# ----------------------------------------------------------------------------- pictures

def _pillow():
    try:
        from PIL import Image, ImageDraw
    except ImportError as exc:  # optional dependency
        raise ModuleNotFoundError("writing PNGs needs Pillow: pip install 'edgeconv[images]'"
                                  ) from exc
    return Image, ImageDraw


def to_uint8(a: npt.ArrayLike) -> np.ndarray:
    """Map an array linearly from ``[min, max]`` onto 0..255 (integer arithmetic for
    integer inputs; a constant array gives 0)."""
    arr = _as_array("a", a, (2,))
    if arr.dtype.kind == "f":
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return np.rint(scaled).astype(np.uint8)
    arr = arr.astype(np.int64)
    lo, hi = int(arr.min()), int(arr.max())
    if hi == lo:
        return np.zeros(arr.shape, np.uint8)
    return ((arr - lo) * 255 // (hi - lo)).astype(np.uint8)


BOX_COLOR = (255, 0, 0)


def save_images(out_dir: str | Path, images: Mapping[str, npt.ArrayLike], *,
                boxes: Mapping[str, Sequence[tuple[int, int, int, int]]] | None = None,
                scale: int = 1) -> list[Path]:
    """Write each 2-D array of ``images`` as ``out_dir/<name>.png`` and return the paths.

    Values are stretched to 0..255 (:func:`to_uint8`) and enlarged ``scale`` times
    (nearest neighbour).  ``boxes[name]``: rectangles ``(row, col, height, width)`` in
    the array's coordinates drawn in red (``BOX_COLOR``, the picture is then RGB).
    Needs Pillow (the ``images`` extra).
    """
    scale = _check_int("scale", scale, 1, 64)
    boxes = {} if boxes is None else dict(boxes)
    unknown = set(boxes) - set(images)
    if unknown:
        raise ValueError(f"boxes: names {sorted(unknown)} are not in images")
    for name in images:
        if not isinstance(name, str) or not name.isascii() or not name or \
                not all(ch.isalnum() or ch in "_-." for ch in name) or name.startswith("."):
            raise ValueError(f"images: name {name!r} must be a plain ASCII file stem "
                             "(letters, digits, _ - .)")
    image_mod, draw_mod = _pillow()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, arr in images.items():
        gray = np.kron(to_uint8(arr), np.ones((scale, scale), np.uint8))
        picture = image_mod.fromarray(gray, mode="L")
        if boxes.get(name):
            picture = picture.convert("RGB")
            draw = draw_mod.Draw(picture)
            for row, col, height, width in boxes[name]:
                draw.rectangle([col * scale, row * scale, (col + width) * scale - 1,
                                (row + height) * scale - 1], outline=BOX_COLOR)
        path = out / f"{name}.png"
        picture.save(path)
        paths.append(path)
    return paths


def synthetic_image(shape: tuple[int, int] = (128, 128), *, seed: int = 2026) -> np.ndarray:
    """A deterministic uint8 grayscale picture: a gradient, a bright disc, a dark
    rectangle, vertical stripes, a diagonal edge and mild noise (seeded)."""
    height, width = _shape2("shape", shape)
    rows, cols = np.mgrid[0:height, 0:width]
    v, u = rows / height, cols / width
    img = 70.0 + 60.0 * u + 20.0 * v
    img[(v - 0.3) ** 2 + (u - 0.32) ** 2 < 0.17 ** 2] = 215.0
    img[(v > 0.58) & (v < 0.88) & (u > 0.12) & (u < 0.45)] = 35.0
    stripes = (v > 0.1) & (v < 0.45) & (u > 0.6) & (u < 0.92)
    img[stripes] = np.where((cols[stripes] // 4) % 2 == 0, 185.0, 95.0)
    img[(v > 0.55) & (u > 0.55) & (u - 0.55 > 0.9 - v)] = 160.0
    noise = np.random.default_rng(seed).normal(0.0, 3.0, size=(height, width))
    return np.clip(np.rint(img + noise), 0, 255).astype(np.uint8)


SOBEL_X = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.int64)
BINOMIAL_5 = np.array([1, 4, 6, 4, 1], dtype=np.int64)


def demo_scene(shape: tuple[int, int] = (128, 128), *,
               template_at: tuple[int, int] = (83, 77),
               seed: int = 2026) -> tuple[np.ndarray, np.ndarray]:
    """The demo's uint8 scene and its 8x8 template: :func:`synthetic_image` with a random
    8x8 patch pasted at ``template_at`` (row, col), then noise in [-8, 8] added to the
    scene (not to the returned clean patch)."""
    rng = np.random.default_rng(seed + 1)
    image = synthetic_image(shape, seed=seed)
    row, col = template_at
    patch = rng.integers(0, 256, size=(8, 8)).astype(np.uint8)
    if not (0 <= row <= image.shape[0] - 8 and 0 <= col <= image.shape[1] - 8):
        raise ValueError(f"template_at={template_at!r}: the 8x8 patch must lie inside "
                         f"the {image.shape} image")
    scene = image.copy()
    scene[row:row + 8, col:col + 8] = patch
    scene = np.clip(scene.astype(np.int64) + rng.integers(-8, 9, size=scene.shape),
                    0, 255).astype(np.uint8)
    return scene, patch


def demo_kernels() -> dict[str, np.ndarray]:
    """The demo's Q15 kernels (int16): ``sobel_gx``, ``sobel_gy`` (Sobel / 8, taps 4096
    and 8192) and ``blur`` (the 5x5 binomial / 256, taps ``128 * outer(b, b)``)."""
    sobel_x = (SOBEL_X * 4096).astype(np.int16)
    return {"sobel_gx": sobel_x, "sobel_gy": sobel_x.T.copy(),
            "blur": (128 * np.outer(BINOMIAL_5, BINOMIAL_5)).astype(np.int16)}


def demo_images(out_dir: str | Path, *, shape: tuple[int, int] = (128, 128),
                template_at: tuple[int, int] = (83, 77), scale: int = 2,
                seed: int = 2026) -> list[Path]:
    """Edge detection, blur and an 8x8 template search on :func:`synthetic_image`, in Q15,
    written as PNGs; returns their paths.

    - the picture goes to Q15 as ``pixel << 7`` (0..255 -> 0..0.996);
    - Sobel: ``|gx| + |gy|`` with the Sobel kernels scaled by 1/8 (Q15 taps 4096, 8192),
      ``same`` mode, symmetric boundary, the sum saturated to Q15;
    - Gaussian blur: the 5x5 binomial kernel / 256 (Q15 taps ``128 * outer(b, b)``),
      detected as separable and run as two 1-D passes;
    - template search: a random 8x8 patch pasted at ``template_at`` (row, col), noise
      added to the scene, the clean patch found by integer NCC (Q15 scores).

    Files: ``input``, ``sobel``, ``blur``, ``match_scores`` (score map, found box drawn)
    and ``match_box`` (the scene with the found box), each ``.png``, ``scale`` times the
    pixel size.
    """
    scene, patch = demo_scene(shape, template_at=template_at, seed=seed)
    x_q15 = scene.astype(np.int16) << 7
    kernels = demo_kernels()
    gx = convolve2d(x_q15, kernels["sobel_gx"], "same", boundary="symmetric")
    gy = convolve2d(x_q15, kernels["sobel_gy"], "same", boundary="symmetric")
    edges = saturate(np.abs(gx.astype(np.int64)) + np.abs(gy.astype(np.int64)), np.int16)
    blur = convolve2d(x_q15, kernels["blur"], "same", boundary="symmetric")

    found = match_template(scene, patch, "ncc")
    box = [found.box]
    return save_images(out_dir, {"input": scene, "sobel": edges, "blur": blur,
                                 "match_scores": found.scores, "match_box": scene},
                       boxes={"match_scores": box, "match_box": box}, scale=scale)
