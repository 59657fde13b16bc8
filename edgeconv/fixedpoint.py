"""Exact fixed-point primitives shared by the layer and signal reference models.

Every integer function works on numpy arrays (or scalars) with int64 intermediates and
never touches floating point.  Int64 is used as the carrier for int32 values; each
function states why its intermediates fit in 63 bits.

Sources of the semantics (re-implemented, not copied):

- TFLite ``tensorflow/lite/kernels/internal/quantization_util.cc`` ``QuantizeMultiplier``
  and ``common.h`` ``MultiplyByQuantizedMultiplier`` (int32 and int64 accumulators),
  gemmlowp ``SaturatingRoundingDoublingHighMul`` / ``RoundingDivideByPOT``.
- CMSIS-NN ``arm_nnsupportfunctions.h`` ``arm_nn_requantize`` (with and without
  ``CMSIS_NN_USE_SINGLE_ROUNDING``) and ``arm_nn_requantize_s64``.
- CMSIS-DSP ``arm_float_to_q7/q15/q31``: the default build (no ``ARM_MATH_ROUNDING``,
  as in the ``cmsisdsp`` PyPI package) truncates toward zero and saturates, which is
  ``rounding='trunc'`` here; an ``ARM_MATH_ROUNDING`` build rounds half away from zero,
  which is ``rounding='nearest'``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike
IntArray = npt.NDArray[np.int64]

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

_INT_DTYPES = {"int8": np.dtype(np.int8), "int16": np.dtype(np.int16),
               "int32": np.dtype(np.int32)}
ROUNDINGS = ("floor", "trunc", "nearest", "nearest_even")
Rounding = Literal["floor", "trunc", "nearest", "nearest_even"]


def int_dtype(dtype: npt.DTypeLike) -> np.dtype:
    """Normalize ``dtype`` (numpy type, dtype or name) to int8, int16 or int32."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in _INT_DTYPES:
        raise ValueError(f"dtype={dtype!r}: allowed are int8, int16, int32")
    return dt


def dtype_bounds(dtype: npt.DTypeLike) -> tuple[int, int]:
    """``(min, max)`` of an int8/int16/int32 dtype as Python ints."""
    info = np.iinfo(int_dtype(dtype))
    return int(info.min), int(info.max)


def _object_ints(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr`` (dtype object) if every entry is an integer (Python or numpy, not bool)."""
    for v in arr.flat:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"{name}: entry {v!r} of an object array is not an integer")
    return arr


def _as_int64(x: ArrayLike, name: str) -> IntArray:
    """Convert integer data to int64 without going through float."""
    arr = np.asarray(x)
    if arr.dtype == object:
        try:
            arr = _object_ints(arr, name).astype(np.int64)
        except OverflowError as exc:
            raise ValueError(f"{name}: values must fit in int64") from exc
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iu":
        raise ValueError(f"{name}: dtype {arr.dtype} is not an integer type")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{name}: values must fit in int64")
    return arr.astype(np.int64, copy=False)


def _check_range(arr: IntArray, lo: int, hi: int, name: str) -> None:
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        bad = int(arr.min()) if int(arr.min()) < lo else int(arr.max())
        raise ValueError(f"{name}={bad}: allowed range is [{lo}, {hi}]")


def saturate(x: ArrayLike, dtype: npt.DTypeLike) -> np.ndarray:
    """Clamp integers to the range of ``dtype`` and return that dtype."""
    lo, hi = dtype_bounds(dtype)
    arr = np.asarray(x)
    if arr.dtype == object:  # Python ints of any size: clamp before narrowing
        clipped = np.asarray(np.clip(_object_ints(arr, "x"), lo, hi))
        return clipped.astype(np.int64).astype(int_dtype(dtype))
    return np.clip(_as_int64(arr, "x"), lo, hi).astype(int_dtype(dtype))


def wrap(x: ArrayLike, dtype: npt.DTypeLike) -> np.ndarray:
    """Two's-complement wrap of integers to ``dtype`` (what a C cast does on Arm/GCC)."""
    dt = int_dtype(dtype)
    arr = np.asarray(x)
    if arr.dtype == object:  # arbitrary Python ints: reduce modulo 2**bits first
        half = 1 << (8 * dt.itemsize - 1)
        reduced = np.asarray((_object_ints(arr, "x") + half) % (2 * half) - half)
        return reduced.astype(np.int64).astype(dt)
    return _as_int64(arr, "x").astype(dt)  # numpy integer casts keep the low bits


# ----------------------------------------------------------------------------- Q format

def _check_rounding(rounding: str) -> None:
    if not isinstance(rounding, str) or rounding not in ROUNDINGS:
        raise ValueError(f"rounding={rounding!r}: allowed are {', '.join(ROUNDINGS)}")


def round_float(x: np.ndarray, rounding: Rounding) -> np.ndarray:
    """Round floats to integral floats; 'nearest' is half away from zero."""
    _check_rounding(rounding)
    if rounding == "floor":
        return np.floor(x)
    if rounding == "trunc":
        return np.trunc(x)
    if rounding == "nearest_even":
        return np.rint(x)
    whole = np.trunc(x)
    frac = x - whole  # exact in binary floating point
    return whole + np.where(np.abs(frac) >= 0.5, np.sign(x), 0.0)


def _check_frac_bits(frac_bits: object) -> int:
    if isinstance(frac_bits, bool) or not isinstance(frac_bits, (int, np.integer)) \
            or not 0 <= frac_bits <= 62:
        raise ValueError(f"frac_bits={frac_bits!r}: allowed range is [0, 62] (an integer)")
    return int(frac_bits)


def to_q(x: ArrayLike, frac_bits: int, dtype: npt.DTypeLike = np.int16,
         rounding: Rounding = "nearest") -> np.ndarray:
    """Float -> Qm.n integer: ``round(x * 2**frac_bits)`` saturated to ``dtype``."""
    dt = int_dtype(dtype)
    bits = 8 * dt.itemsize
    frac_bits = _check_frac_bits(frac_bits)
    arr = np.asarray(x)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"x: dtype {arr.dtype}, allowed are real float or integer types")
    arr = arr.astype(np.float64)
    if np.isnan(arr).any():
        raise ValueError("x: NaN cannot be converted to a Q-format integer")
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1  # exact as float64 for bits <= 32
    with np.errstate(over="ignore"):  # overflow to +-inf is clipped just below
        scaled = np.clip(np.ldexp(arr, frac_bits), lo - 1, hi + 1)  # ldexp is exact
    return np.clip(round_float(scaled, rounding), lo, hi).astype(dt)


def from_q(q: ArrayLike, frac_bits: int) -> np.ndarray:
    """Qm.n integer -> float64 ``q * 2**-frac_bits`` (exact for int8/16/32 inputs)."""
    frac_bits = _check_frac_bits(frac_bits)
    return np.ldexp(_as_int64(q, "q").astype(np.float64), -frac_bits)


def float_to_q7(x: ArrayLike, rounding: Rounding = "trunc") -> np.ndarray:
    """``arm_float_to_q7`` (default ``rounding='trunc'`` = CMSIS-DSP without ARM_MATH_ROUNDING)."""
    return to_q(x, 7, np.int8, rounding)


def float_to_q15(x: ArrayLike, rounding: Rounding = "trunc") -> np.ndarray:
    """``arm_float_to_q15``; see :func:`float_to_q7`."""
    return to_q(x, 15, np.int16, rounding)


def float_to_q31(x: ArrayLike, rounding: Rounding = "trunc") -> np.ndarray:
    """``arm_float_to_q31``; see :func:`float_to_q7`."""
    return to_q(x, 31, np.int32, rounding)


# ------------------------------------------------------------------ quantize multiplier

def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: ``real ~= multiplier * 2**(shift - 31)``.

    ``frexp`` gives ``real = q * 2**shift`` with ``0.5 <= |q| < 1``; the multiplier is
    ``round(q * 2**31)`` (half away from zero); a result of ``2**31`` is halved and the
    shift incremented; shifts below -31 flush to ``(0, 0)``.  Zero gives ``(0, 0)``.
    ValueError for a shift above 30 (``|real|`` about ``2**30`` or more), which no
    requantization accepts.
    """
    if isinstance(real, (bool, np.bool_)) or not isinstance(real, (int, float, np.number)) \
            or isinstance(real, (complex, np.complexfloating)):
        raise ValueError(f"real={real!r}: must be a real number")
    m, s = quantize_multiplier_array(np.asarray([real], dtype=np.float64))
    return int(m[0]), int(s[0])


def quantize_multiplier_array(real: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized :func:`quantize_multiplier` (per-channel): int32 multipliers and shifts."""
    arr = np.asarray(real)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"real: dtype {arr.dtype}, allowed are real float or integer types")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        bad = arr[~np.isfinite(arr)].flat[0]
        raise ValueError(f"real={bad}: multipliers must be finite")
    q, shift = np.frexp(arr)  # q = 0, shift = 0 for zero input
    q_fixed = round_float(np.ldexp(q, 31), "nearest").astype(np.int64)  # |.| <= 2**31
    shift = shift.astype(np.int64)
    top = q_fixed == (1 << 31)  # as in TFLite; -2**31 (q == -1/2 exactly) fits int32
    q_fixed = np.where(top, q_fixed // 2, q_fixed)
    shift = np.where(top, shift + 1, shift)
    if shift.size and shift.max() > 30:
        bad = arr.flat[int(np.argmax(shift))]
        raise ValueError(f"real={bad}: gives shift {int(shift.max())}, allowed shift range "
                         "is [-31, 30] (|real| below about 2**30)")
    tiny = shift < -31
    q_fixed = np.where(tiny, 0, q_fixed)
    shift = np.where(tiny, 0, shift)
    return q_fixed.astype(np.int32), shift.astype(np.int32)


# ------------------------------------------------------------------- requantization

_RQ_MODES = {"double": (-31, 30), "single": (-31, 30), "int64": (-31, 7)}
_RQ_ACC = {"double": (INT32_MIN, INT32_MAX), "single": (INT32_MIN, INT32_MAX),
           "int64": (-(1 << 47), (1 << 47) - 1)}


_TILE_MAX = 1 << 16


def _uniform(values: IntArray) -> IntArray:
    """``values`` as a 0-d array when all its entries are equal."""
    if values.size and (values == values.flat[0]).all():
        return np.asarray(values.flat[0])
    return values


class Requantizer:
    """One requantization (multiplier and shift, scalars or per-channel arrays broadcasting
    along the last axis of the accumulators), validated once and applied many times.

    ``rounding`` is ``'double'`` or ``'single'`` (int32 accumulators, see
    :func:`multiply_by_quantized_multiplier`) or ``'int64'`` (see
    :func:`multiply_by_quantized_multiplier_int64`).  Every mode is evaluated branch-free
    as one exact int64 expression on ``p = acc * mult``::

        result = (p + add + ((p >> 63) & neg_add)) >> total

    - single / int64: ``add = 2**(total - 1)``, ``neg_add = 0`` (``mult`` is the reduced
      multiplier for int64), then wrapped to int32.
    - double: with ``r = max(-shift, 0)`` the two roundings compose into
      ``floor((p + 2**30 + (nudge - neg) * 2**31) / 2**(31 + r))``, since
      ``SRDHM(a, m) = floor((p + 2**30) / 2**31)`` (gemmlowp's sign-dependent nudge and
      truncating division reduce to this) and ``RoundingDivideByPOT(h, r) =
      floor((h + nudge - neg) / 2**r)`` with ``nudge = 2**r >> 1`` and ``neg = 1`` for
      ``r > 0`` and ``h < 0``; ``h < 0`` may be replaced by ``p < 0`` because every ``p``
      in ``[-2**30, 0)`` gives ``h = 0``, which both variants round to 0.  Hence
      ``add = 2**30 + nudge * 2**31``, ``neg_add = -2**31`` where ``r > 0``, ``total = 31 +
      r``.  The one saturating high-mul (``INT32_MIN * INT32_MIN = 2**62``) is clamped to
      ``INT32_MAX * 2**31``, which yields ``h = INT32_MAX``.  A positive shift first
      computes ``wrap32(acc << shift)``.

    Bounds: ``|p| <= 2**62`` and ``add <= 2**61 + 2**30``, so every sum fits in int64.
    """

    def __init__(self, multiplier: ArrayLike, shift: ArrayLike,
                 rounding: Literal["double", "single", "int64"] = "double") -> None:
        if not isinstance(rounding, str) or rounding not in _RQ_MODES:
            raise ValueError(f"rounding={rounding!r}: allowed are 'double', 'single', 'int64'")
        m = _as_int64(multiplier, "multiplier")
        s = _as_int64(shift, "shift")
        _check_range(m, INT32_MIN, INT32_MAX, "multiplier")
        _check_range(s, *_RQ_MODES[rounding], "shift")
        try:
            m, s = np.broadcast_arrays(m, s)
        except ValueError as exc:
            raise ValueError(f"multiplier/shift shapes {m.shape}/{s.shape} do not "
                             "broadcast") from exc
        self.rounding = rounding
        self.shape = m.shape
        self.acc_range = _RQ_ACC[rounding]
        self._clamp_product = False
        left = neg_add = None
        if rounding == "double":
            right = np.maximum(-s, 0)
            if (s > 0).any():
                left = np.maximum(s, 0)
            if (right > 0).any():
                neg_add = np.where(right > 0, -(1 << 31), 0)
            self._clamp_product = bool((m == INT32_MIN).any())
            add = (1 << 30) + (((np.int64(1) << right) >> 1) << 31)
            total = 31 + right
            self._wraps = False  # |result| <= 2**31 - 1 by construction
        else:
            if rounding == "int64":
                m = reduce_multiplier(m)  # |r| <= 2**15
                total = 15 - s  # in [8, 46]
            else:
                total = 31 - s  # in [1, 62]
            add = np.int64(1) << (total - 1)
            # single: |p >> total| <= 2**(31 + shift) fits int32 for shift < 0.
            self._wraps = rounding == "int64" or bool((s >= 0).any())
        # (left, mult, add, neg_add, total); a constant equal on every channel becomes a
        # scalar (cheapest to broadcast), None where it is not needed.
        self._consts = tuple(None if c is None else _uniform(c)
                             for c in (left, m, add, neg_add, total))
        self._tileable = len(self.shape) == 1 and any(
            c is not None and c.ndim == 1 for c in self._consts)
        self._tiled: dict[int, tuple[IntArray | None, ...]] = {}

    def _constants(self, acc: np.ndarray) -> tuple[np.ndarray, tuple[IntArray | None, ...]]:
        """``acc`` (maybe reshaped) and the constants to apply to it.  Per-channel constants
        broadcast along a short last axis make numpy loop in tiny inner loops, so for
        ``(N, ..., C)`` accumulators of up to ``_TILE_MAX`` elements per item they are
        tiled once to the item size (cached) and ``acc`` is viewed as ``(N, item)``."""
        if not (self._tileable and acc.ndim >= 2 and acc.shape[-1] == self.shape[0]
                and acc.shape[0]):
            return acc, self._consts
        item = acc.size // acc.shape[0]
        if item > _TILE_MAX:
            return acc, self._consts
        if item not in self._tiled:
            reps = item // self.shape[0]
            self._tiled[item] = tuple(c if c is None or c.ndim == 0 else np.tile(c, reps)
                                      for c in self._consts)
        return acc.reshape(acc.shape[0], item), self._tiled[item]

    def __call__(self, acc: np.ndarray) -> IntArray:
        """Requantize an integer array already known to lie in ``acc_range`` (int32 values
        for double/single; any integer dtype up to int64) and broadcasting against the
        parameters; no checks.  Returns int64 holding int32 values."""
        acc_shape = np.shape(acc)
        if acc_shape[len(acc_shape) - len(self.shape):] != self.shape:  # params broadcast
            acc = np.broadcast_to(acc, np.broadcast_shapes(acc_shape, self.shape))
            acc_shape = acc.shape
        acc, (left, mult, add, neg_add, total) = self._constants(acc)
        if left is not None:
            acc = (acc << left).astype(np.int32)  # wrap32(acc << left)
        p = np.multiply(acc, mult, dtype=np.int64)
        if self._clamp_product:
            p = np.minimum(p, INT32_MAX << 31)
        if neg_add is None:
            p += add
            p >>= total
            out = p
        else:
            out = p >> 63
            out &= neg_add
            out += p
            out += add
            out >>= total
        if self._wraps:
            out = out.astype(np.int32).astype(np.int64)
        return out.reshape(acc_shape)  # undo the (N, item) view of tiling

    def checked(self, acc: ArrayLike) -> IntArray:
        """:meth:`__call__` after checking ``acc`` (integer, in range, broadcastable)."""
        a = _as_int64(acc, "acc")
        try:
            np.broadcast_shapes(a.shape, self.shape)
        except ValueError as exc:
            raise ValueError(
                f"multiplier/shift shape {self.shape} does not broadcast along the last "
                f"axis of acc {a.shape}") from exc
        _check_range(a, *self.acc_range, "acc")
        return self(a)


def _trunc_div_pow2(x: IntArray, exponent: int | IntArray) -> IntArray:
    """C integer division by ``2**exponent`` (rounds toward zero); needs ``|x| < 2**63``."""
    return np.where(x < 0, -((-x) >> exponent), x >> exponent)


def _srdhm(a: IntArray, b: IntArray) -> IntArray:
    """Unchecked :func:`saturating_rounding_doubling_high_mul` on int64 carriers."""
    prod = a * b
    nudge = np.where(prod >= 0, 1 << 30, 1 - (1 << 30))
    high = _trunc_div_pow2(prod + nudge, 31)
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high)


def _rdbp(x: IntArray, exponent: int | IntArray) -> IntArray:
    """Unchecked :func:`rounding_divide_by_pot` on int64 carriers."""
    mask = (np.int64(1) << exponent) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + ((x & mask) > threshold)


def saturating_rounding_doubling_high_mul(a: ArrayLike, b: ArrayLike) -> IntArray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 values (int64 carriers).

    ``|a*b| <= 2**62`` and the nudge is ``< 2**30``, so the sum fits in int64.  The only
    quotient outside int32 is ``INT32_MIN * INT32_MIN`` (``2**31``), saturated to INT32_MAX.
    """
    a64 = _as_int64(a, "a")
    b64 = _as_int64(b, "b")
    _check_range(a64, INT32_MIN, INT32_MAX, "a")
    _check_range(b64, INT32_MIN, INT32_MAX, "b")
    return _srdhm(a64, b64)


def rounding_divide_by_pot(x: ArrayLike, exponent: ArrayLike) -> IntArray:
    """gemmlowp ``RoundingDivideByPOT``: ``x / 2**exponent``, ties away from zero.

    ``exponent`` in [0, 31]; ``x`` an int32 value.
    """
    x64 = _as_int64(x, "x")
    _check_range(x64, INT32_MIN, INT32_MAX, "x")
    e = _as_int64(exponent, "exponent")
    _check_range(e, 0, 31, "exponent")
    return _rdbp(x64, e)


def multiply_by_quantized_multiplier(acc: ArrayLike, multiplier: ArrayLike, shift: ArrayLike,
                                     *, rounding: Literal["double", "single"] = "double"
                                     ) -> np.ndarray:
    """Requantize int32 accumulators: ``acc * multiplier * 2**(shift - 31)``, rounded.

    ``multiplier``/``shift`` are scalars or arrays broadcasting against ``acc`` (per-channel
    along the last axis).  ``acc`` must hold int32 values.  Returns int32.

    - ``'double'`` (TFLite default): ``RoundingDivideByPOT(SRDHM(wrap32(acc << left), m),
      right)`` with ``left = max(shift, 0)``, ``right = max(-shift, 0)``; shift in
      [-31, 30].  ``acc << left`` wraps to int32 like the (technically undefined) C
      multiply does on Arm and x86 targets.  CMSIS-NN's non-single-rounding
      ``arm_nn_requantize`` is identical except that its ``_no_sat`` high-mul does not
      saturate ``INT32_MIN * INT32_MIN``, which needs a multiplier of INT32_MIN and never
      comes from :func:`quantize_multiplier`.
    - ``'single'`` (``TFLITE_SINGLE_ROUNDING``): ``(acc * m + 2**(30 - shift)) >> (31 -
      shift)`` evaluated exactly, then wrapped to int32; shift in [-31, 30].  CMSIS-NN's
      ``CMSIS_NN_USE_SINGLE_ROUNDING`` computes ``((int32)(p >> (30 - shift)) + 1) >> 1``,
      which is equal whenever the result lies in ``[-2**30, 2**30)``.
    """
    if not isinstance(rounding, str) or rounding not in ("double", "single"):
        raise ValueError(f"rounding={rounding!r}: allowed are 'double', 'single'")
    return Requantizer(multiplier, shift, rounding).checked(acc).astype(np.int32)


def reduce_multiplier(multiplier: ArrayLike) -> IntArray:
    """TFLite/CMSIS-NN 16-bit reduced multiplier: ``(m + 2**15) >> 16``, or 0x7FFF when
    ``m >= 0x7FFF0000`` (where the rounding would carry into 2**15)."""
    m = _as_int64(multiplier, "multiplier")
    _check_range(m, INT32_MIN, INT32_MAX, "multiplier")
    return np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)


def multiply_by_quantized_multiplier_int64(acc: ArrayLike, multiplier: ArrayLike,
                                           shift: ArrayLike) -> np.ndarray:
    """Requantize int64 accumulators (TFLite 16x8 conv/depthwise, CMSIS-NN s64 path).

    ``r = reduce_multiplier(multiplier)``; ``total = 15 - shift``;
    ``result = (acc * r + 2**(total - 1)) >> total`` exactly, wrapped to int32.
    ``acc`` in ``[-2**47, 2**47)``, ``shift`` in [-31, 7] (TFLite's documented domain).
    CMSIS-NN ``arm_nn_requantize_s64`` computes ``((int32)(acc * r >> (14 - shift)) + 1)
    >> 1``, equal to this whenever the result lies in ``[-2**30, 2**30)``.
    """
    return Requantizer(multiplier, shift, "int64").checked(acc).astype(np.int32)


# ------------------------------------------------- gemmlowp fixed-point transcendental

# Q0.31 constants of gemmlowp's exp/reciprocal, each the nearest int32 to the real value
# scaled by 2**31 (Q2.29 ones by 2**29); computed here, they equal gemmlowp's literals.
_EXP_MINUS_ONE_EIGHTH = round(math.exp(-1.0 / 8.0) * 2**31)
_ONE_THIRD = round(2**31 / 3)
# exp(-2**e) for the barrel shifter of exp_on_negative_values, e = -2 .. 4.
_EXP_BARREL = tuple((e, round(math.exp(-(2.0**e)) * 2**31)) for e in range(-2, 5))
_FORTY_EIGHT_OVER_SEVENTEEN = round(48 / 17 * 2**29)  # Q2.29
_MINUS_THIRTY_TWO_OVER_SEVENTEEN = round(-32 / 17 * 2**29)  # Q2.29


def _wrap32(x: IntArray) -> IntArray:
    """Two's-complement wrap of int64 carriers to int32 values (gemmlowp's raw + and -)."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _sat_shift_left(x: IntArray, exponent: int) -> IntArray:
    """``SaturatingRoundingMultiplyByPOT<exponent>`` for ``exponent > 0``: ``x * 2**exponent``
    clamped to int32 (gemmlowp's masks saturate exactly the products that overflow)."""
    return np.clip(x << exponent, INT32_MIN, INT32_MAX)


def saturating_rounding_multiply_by_pot(x: ArrayLike, exponent: int) -> IntArray:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT<exponent>`` on int32 values:
    ``exponent > 0`` multiplies by ``2**exponent`` with saturation, ``exponent < 0`` is
    ``RoundingDivideByPOT(x, -exponent)`` (ties away from zero), 0 is the identity."""
    x64 = _as_int64(x, "x")
    _check_range(x64, INT32_MIN, INT32_MAX, "x")
    if isinstance(exponent, bool) or not isinstance(exponent, (int, np.integer)) \
            or not -31 <= exponent <= 31:
        raise ValueError(f"exponent={exponent!r}: allowed is an integer in [-31, 31]")
    if exponent > 0:
        return _sat_shift_left(x64, int(exponent))
    return _rdbp(x64, -int(exponent))


def _exp_on_interval_minus_quarter_to_zero(a: IntArray) -> IntArray:
    """gemmlowp ``exp_on_interval_between_negative_one_quarter_and_0_excl``: Q0.31 in,
    Q0.31 out.  Taylor series of exp around -1/8 in ``x = a + 1/8``::

        exp(a) = e**(-1/8) * (1 + x + x**2/2 + x**3/6 + x**4/24)

    with the tail evaluated as ``((x**4/4 + x**3) / 3 + x**2) / 2``; every product is a
    SaturatingRoundingDoublingHighMul, every sum an int32 add."""
    x = a + (1 << 28)
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    tail = _rdbp(_wrap32(_srdhm(_wrap32(_rdbp(x4, 2) + x3), np.int64(_ONE_THIRD)) + x2), 1)
    c = np.int64(_EXP_MINUS_ONE_EIGHTH)
    return _wrap32(c + _srdhm(c, _wrap32(x + tail)))


def _exp_on_negative_values(a: IntArray, integer_bits: int) -> IntArray:
    """Unchecked :func:`exp_on_negative_values`."""
    frac_bits = 31 - integer_bits
    quarter = 1 << (frac_bits - 2)
    # a = (a mod 1/4 - 1/4) - remainder: exp of the first part by the Taylor series, the
    # remainder (a non-negative multiple of 1/4) bit by bit through exp(-2**e) factors.
    a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter
    result = _exp_on_interval_minus_quarter_to_zero(
        _sat_shift_left(a_mod_quarter_minus_quarter, integer_bits) if integer_bits
        else a_mod_quarter_minus_quarter)
    remainder = _wrap32(a_mod_quarter_minus_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = (remainder >> (frac_bits + exponent)) & 1
            result = np.where(bit == 1, _srdhm(result, np.int64(multiplier)), result)
    if integer_bits > 5:  # below -32 the result is 0 (gemmlowp's clamp)
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, INT32_MAX, result)


def exp_on_negative_values(a: ArrayLike, integer_bits: int) -> IntArray:
    """gemmlowp ``exp_on_negative_values``: ``exp(a)`` for ``a <= 0`` given as int32 raw
    values with ``integer_bits`` integer bits (Q``integer_bits``.``31 - integer_bits``);
    returns Q0.31 raw values (``exp(0)`` is INT32_MAX, the largest Q0.31 value)."""
    if isinstance(integer_bits, bool) or not isinstance(integer_bits, (int, np.integer)) \
            or not 0 <= integer_bits <= 29:
        raise ValueError(f"integer_bits={integer_bits!r}: allowed is an integer in [0, 29]")
    a64 = _as_int64(a, "a")
    _check_range(a64, INT32_MIN, 0, "a")
    return _exp_on_negative_values(a64, int(integer_bits))


def _one_over_one_plus_x(a: IntArray) -> IntArray:
    """Unchecked :func:`one_over_one_plus_x_for_x_in_0_1`."""
    # d = (1 + a) / 2 in Q0.31 (gemmlowp RoundingHalfSum, ties away from zero; 1 is
    # INT32_MAX in Q0.31), then three Newton-Raphson steps x <- x + x * (1 - d * x) in
    # Q2.29 from x0 = 48/17 - 32/17 * d.
    total = a + INT32_MAX
    half_denominator = _trunc_div_pow2(total + np.where(total >= 0, 1, -1), 1)
    x = _wrap32(_FORTY_EIGHT_OVER_SEVENTEEN
                + _srdhm(half_denominator, np.int64(_MINUS_THIRTY_TWO_OVER_SEVENTEEN)))
    one_q2 = 1 << 29
    for _ in range(3):
        one_minus_dx = _wrap32(one_q2 - _srdhm(half_denominator, x))
        # Q2.29 * Q2.29 is Q4.27; Rescale<2> shifts it back to Q2.29 with saturation.
        x = _wrap32(x + _sat_shift_left(_srdhm(x, one_minus_dx), 2))
    # x / 2 in Q1.30 has x's raw bits; Rescale<0> to Q0.31 doubles them, saturating.
    return _sat_shift_left(x, 1)


def one_over_one_plus_x_for_x_in_0_1(a: ArrayLike) -> IntArray:
    """gemmlowp ``one_over_one_plus_x_for_x_in_0_1``: ``1 / (1 + a)`` for Q0.31 raw ``a``
    in ``[0, 1)``, Q0.31 raw result."""
    a64 = _as_int64(a, "a")
    _check_range(a64, 0, INT32_MAX, "a")
    return _one_over_one_plus_x(a64)


def count_leading_zeros32(x: ArrayLike) -> IntArray:
    """Leading zero bits of uint32 values (32 for 0), TFLite ``CountLeadingZeros``."""
    x64 = _as_int64(x, "x")
    _check_range(x64, 0, (1 << 32) - 1, "x")
    _, bit_length = np.frexp(x64.astype(np.float64))  # exact: x < 2**53
    return 32 - bit_length.astype(np.int64)


def get_reciprocal(x: ArrayLike, integer_digits: int) -> tuple[IntArray, IntArray]:
    """TFLite ``GetReciprocal``: for positive int32 ``x`` with ``integer_digits`` integer
    bits, ``x`` is normalized to ``1 + f`` (``f`` in Q0.31) by a left shift of its leading
    zeros; returns ``(1 / (1 + f)`` in Q0.31, ``num_bits_over_unit = integer_digits -
    leading zeros)``, so ``1 / x = result * 2**-num_bits_over_unit``."""
    x64 = _as_int64(x, "x")
    _check_range(x64, 1, INT32_MAX, "x")
    if isinstance(integer_digits, bool) or not isinstance(integer_digits, (int, np.integer)):
        raise ValueError(f"integer_digits={integer_digits!r}: must be an integer")
    headroom_plus_one = count_leading_zeros32(x64)
    shifted_minus_one = ((x64 << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    return _one_over_one_plus_x(shifted_minus_one), int(integer_digits) - headroom_plus_one


def lut_lookup_int16(value: ArrayLike, lut: np.ndarray) -> IntArray:
    """TFLite ``LUTLookup`` for int16: the 9 high bits of ``value`` (offset by 256) pick
    ``lut[i]``, the 7 low bits interpolate towards ``lut[i + 1]`` with rounding
    (``(slope * offset + 64) >> 7``); the sum wraps to int16 like the C cast.  ``lut``
    holds 513 int16 entries."""
    v = _as_int64(value, "value")
    _check_range(v, -(1 << 15), (1 << 15) - 1, "value")
    table = np.asarray(lut)
    if table.shape != (513,) or table.dtype != np.int16:
        raise ValueError(f"lut: shape {table.shape} dtype {table.dtype}, must be (513,) int16")
    t = table.astype(np.int64)
    index = 256 + (v >> 7)
    base = t[index]
    delta = ((t[index + 1] - base) * (v & 0x7F) + 64) >> 7
    return ((base + delta + (1 << 15)) & 0xFFFF) - (1 << 15)
