"""Argument checks shared by the layers; every failure is a ValueError naming the argument,
its value and what is allowed."""

from __future__ import annotations

import numpy as np

from edgeconv.im2col import Pads2D, as_pair, check_int, check_pads

ACTIVATION_DTYPES = (np.dtype(np.int8), np.dtype(np.int16))
ROUNDINGS = ("double", "single")
METHODS = ("im2col", "direct")
PaddingSpec = str | Pads2D


def check_activation_dtype(dtype: object) -> np.dtype:
    """Normalize ``activation_dtype`` to ``int8`` or ``int16``."""
    try:
        dt = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError:
        dt = None
    if dt not in ACTIVATION_DTYPES:
        raise ValueError(f"activation_dtype={dtype!r}: allowed are numpy.int8, numpy.int16")
    return dt


def dtype_range(dtype: np.dtype) -> tuple[int, int]:
    """``(min, max)`` of an integer dtype as Python ints."""
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def check_array(name: str, value: object, dtype: np.dtype | type,
                shape: tuple[int | None, ...]) -> np.ndarray:
    """Require a numpy array of any integer dtype whose values fit ``dtype`` and whose
    shape matches ``shape`` (``None`` entries match any size); return it converted to
    ``dtype``, read-only. A plain ``np.array([1, 2, 3])`` (int64) is accepted for an
    int32 parameter; floats, booleans and values outside ``dtype`` are refused."""
    dt = np.dtype(dtype)
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{name}={value!r}: must be a numpy array of an integer dtype "
                         f"(values within {dt.name})")
    if value.dtype.kind not in "iu":  # bool is kind "b", not an integer here
        raise ValueError(f"{name}: dtype {value.dtype} not allowed, must be an integer dtype "
                         f"whose values fit {dt.name}")
    if value.ndim != len(shape) or any(
            want is not None and got != want for got, want in zip(value.shape, shape, strict=True)):
        want_txt = tuple("*" if s is None else s for s in shape)
        raise ValueError(f"{name}: shape {value.shape} not allowed, must be {want_txt}")
    check_range(f"{name} ({dt.name})", value, *dtype_range(dt))
    arr = value.astype(dt, copy=True)
    arr.setflags(write=False)
    return arr


def check_range(name: str, arr: np.ndarray, lo: int, hi: int) -> None:
    """Every element of ``arr`` must lie in ``[lo, hi]``."""
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        bad = int(arr.min()) if int(arr.min()) < lo else int(arr.max())
        raise ValueError(f"{name}: value {bad} out of range, must be in [{lo}, {hi}]")


def check_zero_point(name: str, value: object, dtype: np.dtype) -> int:
    """int8 zero points lie in [-128, 127]; 16x8 (int16) zero points must be 0."""
    if dtype == np.int16:
        return check_int(name, value, 0, 0)
    return check_int(name, value, *dtype_range(dtype))


def check_activation_range(activation_min: object, activation_max: object,
                           dtype: np.dtype) -> tuple[int, int]:
    """Clamp bounds inside the dtype range (defaults: the full range), min <= max."""
    lo, hi = dtype_range(dtype)
    amin = lo if activation_min is None else check_int("activation_min", activation_min, lo, hi)
    amax = hi if activation_max is None else check_int("activation_max", activation_max, lo, hi)
    if amin > amax:
        raise ValueError(f"activation_min={amin} > activation_max={amax}: "
                         "must satisfy activation_min <= activation_max")
    return amin, amax


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    """``value`` must be one of ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r}: allowed are {', '.join(map(repr, allowed))}")
    return value


def check_name(name: object) -> str | None:
    """Layer names are C identifiers (codegen turns them into function names)."""
    if name is None:
        return None
    if not isinstance(name, str) or not name.isidentifier() or not name.isascii():
        raise ValueError(f"name={name!r}: must be None or an ASCII C identifier")
    return name


def check_spatial(name: str, value: object, rank: int, lo: int = 1) -> tuple[int, int]:
    """A per-axis parameter (kernel, stride, dilation) as a 2D pair; rank-1 layers take an
    int or a 1-tuple and get height 1 prepended."""
    if rank == 2:
        return as_pair(name, value, lo)
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name}={value!r}: must be an integer >= {lo} or a 1-tuple")
        value = value[0]
    return 1, check_int(name, value, lo)


def check_padding(padding: object, rank: int) -> PaddingSpec:
    """``'same'``, ``'valid'`` or explicit pads, returned in 2D form
    ``((top, bottom), (left, right))``.  An int pads every side; rank-1 layers take
    ``(left, right)`` or ``((left, right),)``."""
    if isinstance(padding, str):
        return check_choice("padding", padding.lower(), ("same", "valid"))
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        p = check_int("padding", padding, 0)
        return ((p, p) if rank == 2 else (0, 0)), (p, p)
    if rank == 2:
        return check_pads("padding", padding)
    if isinstance(padding, (tuple, list)) and len(padding) == 1:
        padding = padding[0]
    return (0, 0), as_pair("padding", padding, lo=0)


def check_pads_fit(pads: Pads2D, extent: tuple[int, int]) -> None:
    """Explicit pads must be smaller than the dilated kernel extent on their axis
    (a window must never lie entirely in the padding)."""
    for axis, (before, after) in enumerate(pads):
        for pad in (before, after):
            if pad >= extent[axis]:
                raise ValueError(f"padding={pads!r}: pad {pad} too large, must be in "
                                 f"[0, {extent[axis] - 1}] (dilated kernel extent "
                                 f"{extent[axis]} on axis {'HW'[axis]})")


def check_input(name: str, value: object, dtype: np.dtype, max_ndim: int = 6) -> np.ndarray:
    """A numpy array of exactly ``dtype`` with at most ``max_ndim`` dimensions (TFLite's
    element-wise and reduction kernels handle up to 6)."""
    if not isinstance(value, np.ndarray) or value.dtype != dtype:
        got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        raise ValueError(f"{name}: dtype {got} not allowed, must be a numpy {dtype.name} array")
    if value.ndim > max_ndim:
        raise ValueError(f"{name}: shape {value.shape} has {value.ndim} dims, allowed are at "
                         f"most {max_ndim}")
    return value
