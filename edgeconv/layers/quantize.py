"""QUANTIZE / DEQUANTIZE: TFLite reference kernels.

- :class:`Requantize` (QUANTIZE int8/int16 -> int8/int16, TFLite ``Requantize``)::

      y = clamp(MultiplyByQuantizedMultiplier(x - input_zero_point, multiplier, shift)
                + output_zero_point)

  with ``(multiplier, shift) = QuantizeMultiplier(s_in / s_out)`` (double), gemmlowp
  double rounding.
- :class:`Quantize` (QUANTIZE float32 -> int8/int16, ``AffineQuantize``)::

      y = clamp(round(x / scale) + zero_point)

  the quotient in float32 (``x / scale`` on two floats), ``round`` half away from zero
  (``TfLiteRound``), the rounded value converted to int32 (saturating here; TFLite's
  cast of an out-of-range float is undefined) before the zero point is added.
- :class:`Dequantize` (int8/int16 -> float32): ``float(scale * (x - zero_point))``, the
  product in double (``static_cast<double>(scale) * (x - zero_point)``), rounded once
  to float32.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgeconv import fixedpoint
from edgeconv.im2col import check_int
from edgeconv.layers import _quant
from edgeconv.layers import _validate as v
from edgeconv.layers._shaped import SameShape, check_shape

FLOAT32 = np.dtype(np.float32)


def _shape_spec(shape: tuple[int, ...] | None) -> list[int] | None:
    return None if shape is None else list(shape)


class Requantize(SameShape):
    """int8/int16 -> int8/int16 with another scale and zero point (module doc)."""

    op: ClassVar[str] = "Requantize"

    def __init__(self, *, multiplier: int, shift: int, input_zero_point: int = 0,
                 output_zero_point: int = 0, activation_dtype: object = np.int8,
                 output_dtype: object = None, name: str | None = None,
                 input_shape: tuple[int, ...] | None = None) -> None:
        self.activation_dtype = dt = v.check_activation_dtype(activation_dtype)
        self.output_dtype = dt if output_dtype is None else v.check_activation_dtype(
            output_dtype)
        self.name = v.check_name(name)
        self.input_zero_point = v.check_zero_point("input_zero_point", input_zero_point, dt)
        self.output_zero_point = v.check_zero_point("output_zero_point", output_zero_point,
                                                    self.output_dtype)
        self.multiplier = check_int("multiplier", multiplier, 0, fixedpoint.INT32_MAX)
        self.shift = check_int("shift", shift, -31, 30)
        self.input_shape = check_shape("input_shape", input_shape)
        self._rq = fixedpoint.Requantizer(self.multiplier, self.shift, "double")

    @classmethod
    def from_quantization(cls, *, input_scale: float, input_zero_point: int,
                          output_scale: float, output_zero_point: int,
                          activation_dtype: object = np.int8, output_dtype: object = None,
                          **kwargs: Any) -> Requantize:
        """``QuantizeMultiplier(s_in / s_out)`` in double, as TFLite's Prepare."""
        s_in = _quant.check_scale("input_scale", input_scale)
        s_out = _quant.check_scale("output_scale", output_scale)
        mult, shift = fixedpoint.quantize_multiplier(s_in / s_out)
        return cls(multiplier=mult, shift=shift, input_zero_point=input_zero_point,
                   output_zero_point=output_zero_point, activation_dtype=activation_dtype,
                   output_dtype=output_dtype, **kwargs)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = v.check_input("x", x, self.activation_dtype)
        y = self._rq(x.astype(np.int64) - self.input_zero_point) + self.output_zero_point
        lo, hi = v.dtype_range(self.output_dtype)
        return np.clip(y, lo, hi).astype(self.output_dtype)

    def spec(self) -> dict[str, Any]:
        return {"op": self.op, "activation_dtype": self.activation_dtype.name,
                "output_dtype": self.output_dtype.name,
                "input_shape": _shape_spec(self.input_shape),
                "input_zero_point": self.input_zero_point,
                "output_zero_point": self.output_zero_point, "multiplier": self.multiplier,
                "shift": self.shift}

    def __repr__(self) -> str:
        return f"Requantize(name={self.name!r}, {self.activation_dtype.name} -> " \
               f"{self.output_dtype.name})"


class Quantize(SameShape):
    """float32 -> int8/int16 (module doc); ``activation_dtype`` is float32."""

    op: ClassVar[str] = "Quantize"
    activation_dtype = FLOAT32

    def __init__(self, *, scale: float, zero_point: int = 0, output_dtype: object = np.int8,
                 name: str | None = None, input_shape: tuple[int, ...] | None = None) -> None:
        self.output_dtype = dt = v.check_activation_dtype(output_dtype)
        self.name = v.check_name(name)
        self.scale = _quant.check_scale("scale", scale)
        # a float model's int16 input may carry a zero point (TFLite's AffineQuantize
        # takes any), so only the dtype range is checked here
        self.zero_point = check_int("zero_point", zero_point, *v.dtype_range(dt))
        self.input_shape = check_shape("input_shape", input_shape)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = v.check_input("x", x, FLOAT32)
        q = _quant.round_half_away(x / np.float32(self.scale))  # float32 quotient, exact round
        q = np.clip(q, -2.0**31, 2.0**31 - 1)  # the int32 conversion (saturating)
        lo, hi = v.dtype_range(self.output_dtype)
        return np.clip(q.astype(np.int64) + self.zero_point, lo, hi).astype(self.output_dtype)

    def spec(self) -> dict[str, Any]:
        return {"op": self.op, "activation_dtype": FLOAT32.name,
                "output_dtype": self.output_dtype.name,
                "input_shape": _shape_spec(self.input_shape),
                "scale": float(np.float32(self.scale)), "zero_point": self.zero_point}

    def __repr__(self) -> str:
        return f"Quantize(name={self.name!r}, float32 -> {self.output_dtype.name})"


class Dequantize(SameShape):
    """int8/int16 -> float32 (module doc); ``output_dtype`` is float32."""

    op: ClassVar[str] = "Dequantize"
    output_dtype = FLOAT32

    def __init__(self, *, scale: float, zero_point: int = 0, activation_dtype: object = np.int8,
                 name: str | None = None, input_shape: tuple[int, ...] | None = None) -> None:
        self.activation_dtype = dt = v.check_activation_dtype(activation_dtype)
        self.name = v.check_name(name)
        self.scale = _quant.check_scale("scale", scale)
        self.zero_point = check_int("zero_point", zero_point, *v.dtype_range(dt))
        self.input_shape = check_shape("input_shape", input_shape)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = v.check_input("x", x, self.activation_dtype)
        return (self.scale * (x.astype(np.float64) - self.zero_point)).astype(np.float32)

    def spec(self) -> dict[str, Any]:
        return {"op": self.op, "activation_dtype": self.activation_dtype.name,
                "output_dtype": FLOAT32.name, "input_shape": _shape_spec(self.input_shape),
                "scale": self.scale, "zero_point": self.zero_point}

    def __repr__(self) -> str:
        return f"Dequantize(name={self.name!r}, {self.activation_dtype.name} -> float32)"
