"""MEAN of a quantized tensor over some axes (global average pooling over H and W in NHWC):
TFLite ``reference_ops::QuantizedMeanOrSum`` semantics, int8 and int16."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgeconv import fixedpoint
from edgeconv.im2col import check_int
from edgeconv.layers import _quant
from edgeconv.layers import _validate as v
from edgeconv.layers._shaped import check_shape, need_shape, per_item


def _check_axis(axis: object) -> tuple[int, ...]:
    """An int, a sequence of ints or a 0-/1-d integer array (a MEAN axis tensor's data),
    each in [-6, 5] (TFLite tensors have at most 6 dims)."""
    items = axis
    if isinstance(axis, np.ndarray) and axis.dtype.kind in "iu" and axis.ndim <= 1:
        items = axis.reshape(-1).tolist()
    elif isinstance(axis, (int, np.integer)):
        items = [axis]
    if (not isinstance(items, (list, tuple)) or any(
            isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not -6 <= a <= 5
            for a in items)):
        raise ValueError(f"axis={axis!r}: must be an integer or a sequence of integers in "
                         "[-6, 5]")
    return tuple(int(a) for a in items)


def check_activation_none(activation: object) -> None:
    """Ops without a fused activation accept only TFLite's NONE (for a uniform import)."""
    v.check_choice("activation", activation, ("NONE",))


class Mean:
    """Quantized mean over ``axis`` (TFLite MEAN, reference kernel).

    With ``n`` the number of reduced elements and ``k = min(floor(log2(n)), 32,
    31 + output_shift)``, TFLite folds ``1/n`` into the requantization::

        multiplier_n = (output_multiplier << k) // n      (int64, then int32)
        shift_n      = output_shift - k
        y = MBQM(sum(x) - input_zero_point * n, multiplier_n, shift_n) + output_zero_point

    saturated to the dtype (MEAN has no fused activation).  ``sum(x)`` is an int32 sum
    of the raw inputs in TFLite (it wraps beyond 2**31; int16 inputs need ``n < 65536`` to
    stay clear of that).  MBQM is ``MultiplyByQuantizedMultiplier`` (``rounding``).
    """

    op: ClassVar[str] = "Mean"

    def __init__(self, *, output_multiplier: int, output_shift: int, axis: object = (1, 2),
                 keep_dims: bool = False, input_zero_point: int = 0,
                 output_zero_point: int = 0, activation_dtype: object = np.int8,
                 rounding: str = "double", name: str | None = None,
                 input_shape: tuple[int, ...] | None = None) -> None:
        self.activation_dtype = dt = v.check_activation_dtype(activation_dtype)
        self.name = v.check_name(name)
        self.axis = _check_axis(axis)
        if not isinstance(keep_dims, (bool, np.bool_)):
            raise ValueError(f"keep_dims={keep_dims!r}: must be a bool")
        self.keep_dims = bool(keep_dims)
        self.input_zero_point = v.check_zero_point("input_zero_point", input_zero_point, dt)
        self.output_zero_point = v.check_zero_point("output_zero_point", output_zero_point, dt)
        self.output_multiplier = check_int("output_multiplier", output_multiplier, 0,
                                           fixedpoint.INT32_MAX)
        self.output_shift = check_int("output_shift", output_shift, -31, 30)
        self.rounding = v.check_choice("rounding", rounding, v.ROUNDINGS)
        self.input_shape = check_shape("input_shape", input_shape)
        if self.input_shape is not None:
            self.output_shape_for(self.input_shape)  # the axes must fit its rank

    @classmethod
    def from_quantization(cls, *, input_scale: float, input_zero_point: int,
                          output_scale: float, output_zero_point: int,
                          activation_dtype: object = np.int8, axis: object = (1, 2),
                          keep_dims: bool = False, activation: str = "NONE",
                          **kwargs: Any) -> Mean:
        """Parameters as TFLite's ``PrepareMeanOrSum``: ``QuantizeMultiplier(s_in /
        s_out)`` in double (the ``1/n`` is folded in at run time, see the class doc).
        ``activation`` must be 'NONE'; other keywords go to the constructor."""
        check_activation_none(activation)
        s_in = _quant.check_scale("input_scale", input_scale)
        s_out = _quant.check_scale("output_scale", output_scale)
        mult, shift = fixedpoint.quantize_multiplier(s_in / s_out)
        return cls(output_multiplier=mult, output_shift=shift, axis=axis, keep_dims=keep_dims,
                   input_zero_point=input_zero_point, output_zero_point=output_zero_point,
                   activation_dtype=activation_dtype, **kwargs)

    def resolve_axis(self, ndim: int) -> tuple[int, ...]:
        """The reduced axes for an input of ``ndim`` dimensions: negatives counted from
        the end, duplicates dropped (TFLite ``ResolveAxis``)."""
        resolved: list[int] = []
        for a in self.axis:
            r = a + ndim if a < 0 else a
            if not 0 <= r < ndim:
                raise ValueError(f"axis={self.axis!r}: axis {a} out of range for an input of "
                                 f"{ndim} dims, allowed are [{-ndim}, {ndim - 1}]")
            if r not in resolved:
                resolved.append(r)
        return tuple(resolved)

    def output_shape_for(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Output shape: reduced axes become 1 (``keep_dims``) or are dropped."""
        axes = self.resolve_axis(len(input_shape))
        if self.keep_dims:
            return tuple(1 if i in axes else int(s) for i, s in enumerate(input_shape))
        return tuple(int(s) for i, s in enumerate(input_shape) if i not in axes)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.output_shape_for(need_shape(self))

    def macs(self, input_shape: object = None) -> int:
        """One addition per input element."""
        shape = need_shape(self) if input_shape is None else check_shape("input_shape",
                                                                          input_shape)
        assert shape is not None
        return int(np.prod(shape))

    def rescale_for(self, count: int) -> tuple[int, int]:
        """``(multiplier, shift)`` of a mean over ``count`` elements (class doc)."""
        return self._rescale_for(count)

    def _rescale_for(self, count: int) -> tuple[int, int]:
        """``(multiplier, shift)`` with ``1/count`` folded in, as TFLite computes them."""
        k = min(count.bit_length() - 1, 32, 31 + self.output_shift)
        return (self.output_multiplier << k) // count, self.output_shift - k

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Exact mean of ``x`` (array of ``activation_dtype``, at most 6 dims; with
        ``input_shape`` set, ``(N, *input_shape)`` is a batch of N inputs)."""
        return per_item(x, self.input_shape, self._mean)

    def _mean(self, x: np.ndarray) -> np.ndarray:
        x = v.check_input("x", x, self.activation_dtype)
        axes = self.resolve_axis(x.ndim)
        if x.size == 0:
            raise ValueError(f"x: shape {x.shape} is empty, must hold at least one element")
        count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
        # TFLite sums in int32; the wrap only matters for sums beyond 2**31.
        total = fixedpoint.wrap(x.sum(axis=axes, dtype=np.int64, keepdims=self.keep_dims),
                                np.int32).astype(np.int64)
        shifted = fixedpoint.wrap(total - self.input_zero_point * count, np.int32)
        mult, shift = self._rescale_for(count)
        out = fixedpoint.Requantizer(mult, shift, self.rounding)(shifted)
        return fixedpoint.saturate(out + self.output_zero_point, self.activation_dtype)

    def spec(self) -> dict[str, Any]:
        """Every parameter that affects the numbers."""
        return {"op": self.op, "activation_dtype": self.activation_dtype.name,
                "input_shape": None if self.input_shape is None else list(self.input_shape),
                "axis": list(self.axis), "keep_dims": self.keep_dims,
                "input_zero_point": self.input_zero_point,
                "output_zero_point": self.output_zero_point,
                "output_multiplier": self.output_multiplier, "output_shift": self.output_shift,
                "rounding": self.rounding}

    def __repr__(self) -> str:
        return (f"Mean(name={self.name!r}, axis={self.axis}, keep_dims={self.keep_dims}, "
                f"activation_dtype={self.activation_dtype.name})")
