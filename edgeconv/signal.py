"""1-D convolution and correlation: float (numpy/scipy semantics) and exact Q-format
(CMSIS-DSP ``arm_conv_q7/q15/q31`` and ``arm_correlate_q7/q15/q31`` semantics).

Definitions (``M = len(x)``, ``N = len(h)``):

- ``full`` convolution ``y[n] = sum_k x[k] * h[n - k]``, length ``M + N - 1``.
  ``correlate(x, h)`` is ``convolve(x, h[::-1])`` (numpy's ``correlate`` order).
- ``same``: ``M`` outputs, ``full[(N - 1) // 2 :][:M]`` (scipy's centring; numpy agrees
  when ``N <= M``; for ``N > M`` numpy returns ``N`` outputs, which is ``convolve(h, x,
  'same')`` here).
- ``valid``: ``|M - N| + 1`` outputs, ``full[min(M, N) - 1 :]`` (numpy and scipy).
- ``stride`` keeps every ``stride``-th output of the selected mode, starting at 0.

Q-format inputs (both int8 = q7, int16 = q15 or int32 = q31, same format):

- every product is exact; products are summed in an ``accumulator``-bit two's-complement
  register that wraps on overflow (the sum modulo ``2**accumulator``, independent of the
  summation order).  Defaults as CMSIS-DSP: q7 32 bits, q15 64, q31 64.
- the sum is shifted right by 7 / 15 / 31 (``rounding='floor'``, CMSIS's arithmetic
  shift; ``'nearest'`` first adds ``2**(shift - 1)`` in the accumulator, ties upward).
  ``shift=n`` shifts by ``n`` instead (0 .. 63, or accumulator - 1 when wider): "shift
  right by n, round to nearest" is ``shift=n, rounding='nearest'``, e.g. a q15 signal
  through Q1.14 coefficients (``shift=14``) or a filter with a gain of ``2**(15 - n)``.
- the result is saturated to the format (q7, q15: CMSIS ``__SSAT``) or wrapped
  (q31: CMSIS's plain ``(q31_t)`` cast); ``saturate=`` overrides.
- correlate ``mode='full'`` is CMSIS's layout of length ``2 * max(M, N) - 1``: the
  ``M + N - 1`` correlation values in numpy order, preceded by ``M - N`` zeros when
  ``M > N`` or followed by ``N - M`` zeros when ``M < N``.  CMSIS-DSP does not write
  those positions (the caller zeroes the buffer); here they are 0.  ``same``/``valid``
  slice the ``M + N - 1`` values exactly as for floats.

Exactness: sums use int64 ``numpy.convolve`` when ``min(M, N) * max|x| * max|h| < 2**63``;
otherwise (q31 near full scale) ``h`` is split into 16-bit halves and chunks of 2**15
taps, so every partial convolution stays below ``2**62``, and the parts are recombined
modulo ``2**64``.  Accumulators wider than 64 bits use Python integers (object arrays)
for the recombination only.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from edgeconv.fixedpoint import dtype_bounds, wrap

Mode = Literal["full", "same", "valid"]
MODES = ("full", "same", "valid")
KINDS = ("convolve", "correlate")
SIGNAL_ROUNDINGS = ("floor", "nearest")
ACCUMULATOR_RANGE = (8, 128)

FORMATS: dict[str, dict[str, Any]] = {
    "q7": {"dtype": np.dtype(np.int8), "shift": 7, "accumulator": 32, "saturate": True},
    "q15": {"dtype": np.dtype(np.int16), "shift": 15, "accumulator": 64, "saturate": True},
    "q31": {"dtype": np.dtype(np.int32), "shift": 31, "accumulator": 64, "saturate": False},
}
_FMT_BY_DTYPE = {spec["dtype"]: name for name, spec in FORMATS.items()}


# ------------------------------------------------------------------------- validation

def _check_choice(name: str, value: object, allowed: tuple) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r}: allowed are {', '.join(map(repr, allowed))}")


def _check_int(name: str, value: object, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}={value!r}: must be an integer >= {lo}")
    if value < lo or (hi is not None and value > hi):
        upper = "inf)" if hi is None else f"{hi}]"
        raise ValueError(f"{name}={value!r}: allowed range is [{lo}, {upper}")
    return int(value)


def _as_signal(name: str, value: npt.ArrayLike) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nesting, unconvertible objects
        raise ValueError(f"{name}: not convertible to a 1-D array ({exc})") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: shape {arr.shape}, must be a non-empty 1-D array")
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name}: dtype {arr.dtype}, allowed are int8/int16/int32 "
                         "(q7/q15/q31) or a real float type")
    return arr


def resolve_format(fmt: str | None, *arrays: np.ndarray) -> str:
    """The Q format of integer ``arrays``: ``fmt`` or inferred, dtypes must match it."""
    if fmt is not None:
        _check_choice("fmt", fmt, tuple(FORMATS))
    names = []
    for arr in arrays:
        if arr.dtype not in _FMT_BY_DTYPE:
            allowed = FORMATS[fmt]["dtype"].name if fmt else "int8, int16, int32"
            raise ValueError(f"dtype {arr.dtype} is not a Q format: allowed {allowed}")
        names.append(_FMT_BY_DTYPE[arr.dtype])
    inferred = set(names)
    if len(inferred) != 1 or (fmt is not None and fmt not in inferred):
        want = fmt or names[0]
        raise ValueError(f"fmt={fmt!r}: input dtypes {[a.dtype.name for a in arrays]} must "
                         f"all be {FORMATS[want]['dtype'].name}")
    return names[0]


def resolve_options(fmt: str, rounding: str | None, saturate: bool | None,
                    accumulator: int | None) -> tuple[str, bool, int]:
    """Fill unset numerics options with the CMSIS-DSP defaults of ``fmt`` and validate."""
    _check_choice("fmt", fmt, tuple(FORMATS))
    spec = FORMATS[fmt]
    rounding = "floor" if rounding is None else rounding
    _check_choice("rounding", rounding, SIGNAL_ROUNDINGS)
    saturate = spec["saturate"] if saturate is None else saturate
    if not isinstance(saturate, (bool, np.bool_)):
        raise ValueError(f"saturate={saturate!r}: allowed are True, False")
    acc = spec["accumulator"] if accumulator is None else accumulator
    acc = _check_int("accumulator", acc, *ACCUMULATOR_RANGE)
    return rounding, bool(saturate), acc


def shift_limit(accumulator: int) -> int:
    """The largest right shift of an ``accumulator``-bit sum: 63 up to 64-bit sums (held
    in an int64), ``accumulator - 1`` beyond."""
    return max(64, accumulator) - 1


def resolve_shift(fmt: str, shift: int | None, accumulator: int) -> int:
    """The right shift applied to the accumulator: the fraction bits of ``fmt`` (7, 15,
    31) unless ``shift`` is given, in [0, shift_limit(accumulator)]."""
    if shift is None:
        return int(FORMATS[fmt]["shift"])
    return _check_int("shift", shift, 0, shift_limit(accumulator))


# --------------------------------------------------------------------- mode arithmetic

def output_length(kind: str, mode: str, m: int, n: int, *, integer: bool,
                  stride: int = 1) -> int:
    """Number of outputs for input lengths ``m`` (x) and ``n`` (h)."""
    _check_choice("kind", kind, KINDS)
    _check_choice("mode", mode, MODES)
    m, n = _check_int("m", m, 1), _check_int("n", n, 1)
    stride = _check_int("stride", stride, 1)
    if mode == "same":
        length = m
    elif mode == "valid":
        length = abs(m - n) + 1
    elif kind == "correlate" and integer:
        length = 2 * max(m, n) - 1
    else:
        length = m + n - 1
    return -(-length // stride)


def _select(full: np.ndarray, kind: str, mode: str, m: int, n: int, integer: bool,
            stride: int) -> np.ndarray:
    """Cut the ``m + n - 1`` full values down to ``mode`` (see module docstring)."""
    if mode == "same":
        start = (n - 1) // 2
        out = full[start:start + m]
    elif mode == "valid":
        start = min(m, n) - 1
        out = full[start:start + abs(m - n) + 1]
    elif kind == "correlate" and integer and m != n:
        pad = np.zeros(abs(m - n), dtype=full.dtype)
        out = np.concatenate([pad, full] if m > n else [full, pad])
    else:
        out = full
    return out[::stride]


# ---------------------------------------------------------------- exact integer kernel

def _sign_extend(u: np.ndarray, bits: int) -> np.ndarray:
    """uint64 two's-complement values -> int64 wrapped to ``bits`` (<= 64) bits."""
    up = np.uint64(64 - bits)
    return (u << up).view(np.int64) >> np.int64(64 - bits)


def _wrap_object(values: np.ndarray, bits: int) -> np.ndarray:
    half = 1 << (bits - 1)
    return (values + half) % (1 << bits) - half


_CHUNK = 1 << 15


def _accumulate(x: np.ndarray, h: np.ndarray, bits: int) -> np.ndarray:
    """Exact ``convolve(x, h)`` modulo ``2**bits``: int64 if ``bits <= 64`` else object."""
    x64, h64 = x.astype(np.int64), h.astype(np.int64)
    max_x, max_h = int(np.abs(x64).max()), int(np.abs(h64).max())  # <= 2**31 each
    if min(x.size, h.size) * max_x * max_h < 2 ** 63:
        full = np.convolve(x64, h64)
        if bits > 64:
            return _wrap_object(full.astype(object), bits)
        return _sign_extend(full.astype(np.uint64), bits)
    # h = hi * 2**16 + lo with |hi| <= 2**15, 0 <= lo < 2**16, in chunks of at most 2**15
    # taps: every partial sum is below 2**15 * 2**31 * 2**16 = 2**62.  The chunks are
    # overlap-added modulo 2**64 (uint64) or exactly (object) for wider accumulators.
    total = np.zeros(x.size + h.size - 1, dtype=object if bits > 64 else np.uint64)
    for start in range(0, h.size, _CHUNK):
        part = h64[start:start + _CHUNK]
        hi = np.convolve(x64, part >> 16)
        lo = np.convolve(x64, part & 0xFFFF)
        seg = slice(start, start + hi.size)
        if bits > 64:
            total[seg] += hi.astype(object) * (1 << 16) + lo.astype(object)
        else:
            total[seg] += (hi.astype(np.uint64) << np.uint64(16)) + lo.astype(np.uint64)
    return _wrap_object(total, bits) if bits > 64 else _sign_extend(total, bits)


def _requantize(acc: np.ndarray, bits: int, shift: int, rounding: str, saturate: bool,
                dtype: np.dtype) -> np.ndarray:
    """Accumulator -> output format: optional rounding add (in the accumulator), shift,
    saturate or wrap."""
    if acc.dtype == object:
        if rounding == "nearest":
            acc = _wrap_object(acc + (1 << (shift - 1)), bits)
        shifted = acc >> shift
        if saturate:
            lo, hi = dtype_bounds(dtype)
            return np.clip(shifted, lo, hi).astype(np.int64).astype(dtype)
        return wrap(shifted, dtype)
    if rounding == "nearest" and shift:
        acc = _sign_extend(acc.astype(np.uint64) + np.uint64(1 << (shift - 1)), bits)
    shifted = acc >> np.int64(shift)
    if saturate:
        lo, hi = dtype_bounds(dtype)
        return np.clip(shifted, lo, hi).astype(dtype)
    return shifted.astype(dtype)  # keeps the low bits, as the C cast


# ------------------------------------------------------------------------ public API

def _filter(kind: str, x: npt.ArrayLike, h: npt.ArrayLike, mode: str, fmt: str | None,
            rounding: str | None, saturate: bool | None, accumulator: int | None,
            stride: int, shift: int | None) -> np.ndarray:
    _check_choice("mode", mode, MODES)
    stride = _check_int("stride", stride, 1)
    xa, ha = _as_signal("x", x), _as_signal("h", h)
    m, n = xa.size, ha.size
    if kind == "correlate":
        ha = ha[::-1]
    if xa.dtype.kind == "f" or ha.dtype.kind == "f":
        given = {"fmt": fmt, "rounding": rounding, "saturate": saturate,
                 "accumulator": accumulator, "shift": shift}
        for key, value in given.items():
            if value is not None:
                raise ValueError(f"{key}={value!r}: only for integer (Q-format) inputs; "
                                 "allowed for float inputs: None")
        full = np.convolve(xa.astype(np.float64), ha.astype(np.float64))
        return _select(full, kind, mode, m, n, False, stride)
    fmt = resolve_format(fmt, xa, ha)
    rounding, saturate, bits = resolve_options(fmt, rounding, saturate, accumulator)
    shift = resolve_shift(fmt, shift, bits)
    acc = _accumulate(xa, ha, bits)
    full = _requantize(acc, bits, shift, rounding, saturate, FORMATS[fmt]["dtype"])
    return _select(full, kind, mode, m, n, True, stride)


def convolve(x: npt.ArrayLike, h: npt.ArrayLike, mode: Mode = "full", *,
             fmt: str | None = None, rounding: str | None = None,
             saturate: bool | None = None, accumulator: int | None = None,
             stride: int = 1, shift: int | None = None) -> np.ndarray:
    """Convolution of 1-D ``x`` with ``h``.

    Float inputs (either one) -> float64, equal to ``scipy.signal.convolve(x, h, mode)``.
    Integer inputs in ``fmt`` (q7/q15/q31, inferred from the dtype) -> that dtype, equal
    to ``arm_conv_<fmt>`` with the default options (see the module docstring).
    ``rounding`` ('floor' | 'nearest'), ``saturate`` (bool), ``accumulator`` (bits,
    8..128, wraps) and ``shift`` (right shift of the sum, default the fraction bits of
    ``fmt``) override the CMSIS-DSP defaults; ``stride`` decimates the output.
    """
    return _filter("convolve", x, h, mode, fmt, rounding, saturate, accumulator, stride,
                   shift)


def correlate(x: npt.ArrayLike, h: npt.ArrayLike, mode: Mode = "full", *,
              fmt: str | None = None, rounding: str | None = None,
              saturate: bool | None = None, accumulator: int | None = None,
              stride: int = 1, shift: int | None = None) -> np.ndarray:
    """Cross-correlation ``sum_k x[k + lag] * h[k]``; options as :func:`convolve`.

    Float inputs equal ``scipy.signal.correlate`` / ``numpy.correlate``; integer
    ``mode='full'`` is ``arm_correlate_<fmt>``'s ``2 * max(M, N) - 1`` layout.
    """
    return _filter("correlate", x, h, mode, fmt, rounding, saturate, accumulator, stride,
                   shift)


# ----------------------------------------------------------------------- layer object

def _length_of(input_shape: object) -> int:
    """N of an ``(N,)`` input shape; ValueError for anything else."""
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 1 \
            or isinstance(input_shape[0], bool) \
            or not isinstance(input_shape[0], (int, np.integer)) or input_shape[0] < 1:
        raise ValueError(f"input_shape={input_shape!r}: must be (N,) with N an integer >= 1")
    return int(input_shape[0])


class SignalFilter:
    """A fixed-kernel Q-format convolution/correlation over ``input_length`` samples.

    Layer contract of docs/architecture.md: ``input_shape == (input_length,)``,
    ``activation_dtype`` int8/int16/int32 for q7/q15/q31, batched ``__call__``.
    """

    def __init__(self, kernel: npt.ArrayLike, *, kind: str = "convolve", mode: str = "full",
                 fmt: str = "q15", input_length: int, stride: int = 1,
                 rounding: str | None = None, saturate: bool | None = None,
                 accumulator: int | None = None, shift: int | None = None,
                 name: str | None = None) -> None:
        _check_choice("kind", kind, KINDS)
        _check_choice("mode", mode, MODES)
        _check_choice("fmt", fmt, tuple(FORMATS))
        if name is not None and (not isinstance(name, str) or not name.isidentifier()
                                 or not name.isascii()):
            raise ValueError(f"name={name!r}: must be an ASCII C identifier or None")
        self.kind, self.mode, self.fmt, self.name = kind, mode, fmt, name
        self.input_length = _check_int("input_length", input_length, 1)
        self.stride = _check_int("stride", stride, 1)
        self.rounding, self.saturate, self.accumulator = resolve_options(
            fmt, rounding, saturate, accumulator)
        self.shift = resolve_shift(fmt, shift, self.accumulator)
        self.activation_dtype = FORMATS[fmt]["dtype"]
        self.kernel = self._validate_kernel(kernel)
        self.input_shape: tuple[int, ...] = (self.input_length,)
        self.output_length = output_length(kind, mode, self.input_length, self.kernel.size,
                                           integer=True, stride=self.stride)

    def _validate_kernel(self, kernel: npt.ArrayLike) -> np.ndarray:
        arr = np.asarray(kernel)
        if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "iu":
            raise ValueError(f"kernel: shape {arr.shape} dtype {arr.dtype}, must be a "
                             f"non-empty 1-D integer array of {self.fmt} values")
        lo, hi = dtype_bounds(self.activation_dtype)
        if int(arr.min()) < lo or int(arr.max()) > hi:
            raise ValueError(f"kernel: values [{int(arr.min())}, {int(arr.max())}] outside "
                             f"the {self.fmt} range [{lo}, {hi}]")
        return arr.astype(self.activation_dtype)

    def output_shape_for(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (output_length(self.kind, self.mode, _length_of(input_shape),
                              self.kernel.size, integer=True, stride=self.stride),)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.output_length,)

    def __call__(self, x: npt.ArrayLike) -> np.ndarray:
        arr = np.asarray(x)
        if arr.dtype != self.activation_dtype:
            raise ValueError(f"x: dtype {arr.dtype}, must be {self.activation_dtype.name} "
                             f"for {self.fmt}")
        if arr.ndim not in (1, 2) or arr.shape[-1] != self.input_length or arr.size == 0:
            raise ValueError(f"x: shape {arr.shape}, must be ({self.input_length},) or "
                             f"(batch, {self.input_length}) with batch >= 1")
        func = convolve if self.kind == "convolve" else correlate
        rows = [func(row, self.kernel, self.mode, fmt=self.fmt, rounding=self.rounding,
                     saturate=self.saturate, accumulator=self.accumulator,
                     stride=self.stride, shift=self.shift)
                for row in arr.reshape(-1, self.input_length)]
        out = np.stack(rows)
        return out[0] if arr.ndim == 1 else out

    def macs(self, input_shape: tuple[int, ...] | None = None) -> int:
        """Products actually formed for the kept outputs (zero padding costs nothing)."""
        m = _length_of(self.input_shape if input_shape is None else input_shape)
        per_output = np.convolve(np.ones(m, np.int64), np.ones(self.kernel.size, np.int64))
        kept = _select(per_output, self.kind, self.mode, m, self.kernel.size, True,
                       self.stride)
        return int(kept.sum())

    def spec(self) -> dict[str, Any]:
        return {"type": "SignalFilter", "kind": self.kind, "mode": self.mode,
                "fmt": self.fmt, "input_length": self.input_length, "stride": self.stride,
                "rounding": self.rounding, "saturate": self.saturate,
                "accumulator": self.accumulator, "kernel": self.kernel.tolist(),
                "output_length": self.output_length, **shift_spec(self.fmt, self.shift)}


def shift_spec(fmt: str, shift: int) -> dict[str, int]:
    """``{"shift": n}`` for a spec when ``shift`` is not the format's default (specs and
    layer-set hashes of default filters stay as they were)."""
    return {} if shift == FORMATS[fmt]["shift"] else {"shift": shift}


from edgeconv.signal2d import MatchResult, MatchTemplate, SignalFilter2D, convolve2d, correlate2d, match_template  # noqa: E402,E501,F401,I001
