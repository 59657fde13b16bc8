"""FullyConnected: TFLite ``reference_integer_ops::FullyConnected`` (int8 and 16x8),
per-tensor and per-channel (``FullyConnectedPerChannel``) requantization."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeconv import fixedpoint
from edgeconv.im2col import check_int
from edgeconv.layers import _quant
from edgeconv.layers import _validate as v
from edgeconv.layers.conv import gemm_dtype

FC_METHODS = ("gemm", "direct")
FC_ROUNDINGS = ("single", "double", "int64")


def round_once_wide(acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``floor((acc * m + 2**(total - 1)) / 2**total)``, ``total = 31 - shift``, exactly for
    int64 ``acc`` with ``|acc| < 2**47`` (16x8 sums), ``0 <= m < 2**31`` and ``shift <= 7``
    (so ``total >= 24``), although ``acc * m`` may need 78 bits: with ``acc = hi * 2**16 +
    lo`` (``0 <= lo < 2**16``) the floor of the sum over ``2**total`` equals
    ``floor((hi * m + floor((lo * m + 2**(total - 1)) / 2**16)) / 2**(total - 16))``, and
    every term fits in int64.  Returns int64 (the C kernel then narrows it to int32)."""
    acc = np.asarray(acc, dtype=np.int64)
    m = np.asarray(multiplier, dtype=np.int64)
    total = 31 - np.asarray(shift, dtype=np.int64)
    hi, lo = acc >> 16, acc & 0xFFFF
    low_part = (lo * m + (np.int64(1) << (total - 1))) >> 16
    return (hi * m + low_part) >> (total - 16)



class FullyConnected:
    """``y[n, o] = requant(sum_k w[o, k] * (x[n, k] - input_zero_point) + bias[o])``.

    ``weights`` is ``(O, K)`` int8 (TFLite's filter layout, symmetric: zero point 0).
    ``output_multiplier`` and ``output_shift`` are one value (per-tensor) or one per output
    channel (``FullyConnectedPerChannel``); they are stored per channel.  int8 sums wrap
    to int32 as in the C kernel; 16x8 sums are exact int64 (int64 bias).  The scaled sum
    plus the output zero point is clamped to ``[activation_min, activation_max]``.

    ``rounding`` picks the requantization of the sum ``acc`` by ``m * 2**(shift - 31)``:

    - ``'single'`` (default): one rounding, ``(acc * m + 2**(30 - shift)) >> (31 -
      shift)`` on the exact product.  This is what the LiteRT interpreter's reference
      FULLY_CONNECTED kernel computes, int8 (per-tensor and per-channel) and 16x8 alike:
      measured with ai-edge-litert 2.3.0 (``BUILTIN_REF``) on the fixture models, 0 of
      66,880 autoencoder outputs differ with it, 58 with ``'double'`` and 18 with
      ``'int64'``; on a per-channel FC 0 of 21,200 (37 with ``'double'``).  Conv layers in
      the same interpreter round twice (see :class:`edgeconv.Conv2D`).
    - ``'double'``: gemmlowp's ``SaturatingRoundingDoublingHighMul`` then
      ``RoundingDivideByPOT`` (TFLite's ``MultiplyByQuantizedMultiplier`` on int32, as
      its conv kernels); int8 only.
    - ``'int64'``: TFLite's int64 ``MultiplyByQuantizedMultiplier`` (16-bit reduced
      multiplier, as its 16x8 conv kernels).

    ``x`` is ``(K,)`` or batched ``(N, K)``; the output ``(O,)`` or ``(N, O)``.
    ``method='gemm'`` (default) is one exact matrix product, ``'direct'`` the plain loop
    of the reference kernel (the test oracle).
    """

    op = "FullyConnected"

    def __init__(self, *, weights: np.ndarray, bias: np.ndarray | None = None,
                 output_multiplier: object, output_shift: object, input_zero_point: int = 0,
                 output_zero_point: int = 0, activation_min: int | None = None,
                 activation_max: int | None = None, activation_dtype: object = np.int8,
                 rounding: str = "single", name: str | None = None,
                 input_shape: tuple[int, ...] | None = None) -> None:
        self.activation_dtype = dt = v.check_activation_dtype(activation_dtype)
        self.name = v.check_name(name)
        self.weights = v.check_array("weights", weights, np.int8, (None, None))
        if 0 in self.weights.shape:
            raise ValueError(f"weights: shape {self.weights.shape} not allowed, every "
                             "dimension must be >= 1")
        self.out_channels, self.in_features = self.weights.shape
        n_out = self.out_channels
        self.bias = None if bias is None else v.check_array(
            "bias", bias, np.int64 if dt == np.int16 else np.int32, (n_out,))
        self.input_zero_point = v.check_zero_point("input_zero_point", input_zero_point, dt)
        self.output_zero_point = v.check_zero_point("output_zero_point", output_zero_point, dt)
        self.output_multiplier = self._per_channel("output_multiplier", output_multiplier)
        v.check_range("output_multiplier", self.output_multiplier, 0, fixedpoint.INT32_MAX)
        self.output_shift = self._per_channel("output_shift", output_shift)
        v.check_range("output_shift", self.output_shift, -31, 7 if dt == np.int16 else 30)
        self.activation_min, self.activation_max = v.check_activation_range(
            activation_min, activation_max, dt)
        self.rounding = v.check_choice("rounding", rounding, FC_ROUNDINGS)
        if dt == np.int16 and self.rounding == "double":
            raise ValueError("rounding='double' with activation_dtype=int16: not allowed, the "
                             "16x8 sums exceed int32; allowed are 'single', 'int64'")
        self.input_shape: tuple[int, ...] | None = None
        if input_shape is not None:
            if (not isinstance(input_shape, (tuple, list)) or len(input_shape) != 1
                    or input_shape[0] != self.in_features):
                raise ValueError(f"input_shape={input_shape!r}: must be ({self.in_features},)"
                                 " (weights.shape[1])")
            self.input_shape = (self.in_features,)
        # Constant part of every accumulator: bias - input_zero_point * sum_k w[o, k].
        base = np.zeros(n_out, np.int64) if self.bias is None else self.bias.astype(np.int64)
        self._acc_offset = base - self.input_zero_point * self.weights.sum(axis=1,
                                                                          dtype=np.int64)
        self._gemm_dtype = gemm_dtype(-v.dtype_range(dt)[0], self.weights)
        self._gemm_w = np.ascontiguousarray(self.weights.T.astype(self._gemm_dtype))
        self._wide = dt == np.int16 and self.rounding == "single"
        self._requantizer = None if self._wide else fixedpoint.Requantizer(
            self.output_multiplier, self.output_shift, self.rounding)

    def _per_channel(self, name: str, value: object) -> np.ndarray:
        """One int32 value or one per output channel -> read-only ``(O,)`` int32 array."""
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            one = check_int(name, value, fixedpoint.INT32_MIN, fixedpoint.INT32_MAX)
            value = np.full(self.out_channels, one, dtype=np.int32)
        return v.check_array(name, value, np.int32, (self.out_channels,))

    @classmethod
    def from_float(cls, weights: object, bias: object = None, *, input_scale: float,
                   output_scale: float, input_zero_point: int = 0, output_zero_point: int = 0,
                   activation: str | None = None, activation_dtype: object = np.int8,
                   **kwargs: Any) -> FullyConnected:
        """Quantize ``(O, K)`` float weights per output channel and the bias as the TFLite
        converter does (see :mod:`edgeconv.layers._quant`); other keywords (name,
        input_shape, rounding) go to the constructor; the float parameters stay on the layer
        as ``float_origin``."""
        dt = v.check_activation_dtype(activation_dtype)
        s_in = _quant.check_scale("input_scale", input_scale)
        s_out = _quant.check_scale("output_scale", output_scale)
        out_zp = v.check_zero_point("output_zero_point", output_zero_point, dt)
        w = _quant.float_array("weights", weights)
        if w.ndim != 2 or w.size == 0:
            raise ValueError(f"weights: shape {w.shape} not allowed, must be non-empty (O, K)")
        layer = cls(**_quant.quantized_layer_params(
            w, 0, bias, s_in=s_in, s_out=s_out, input_zero_point=input_zero_point,
            output_zero_point=out_zp, activation=activation, dtype=dt), **kwargs)
        return _quant.with_float_origin(layer, w, bias, input_scale=s_in, output_scale=s_out,
                                        activation=activation)

    # ------------------------------------------------------------------ geometry
    def output_shape_for(self, input_shape: object) -> tuple[int, ...]:
        if (not isinstance(input_shape, (tuple, list)) or len(input_shape) != 1
                or input_shape[0] != self.in_features):
            raise ValueError(f"input_shape={input_shape!r}: must be ({self.in_features},)")
        return (self.out_channels,)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.out_channels,)

    def macs(self, input_shape: object = None) -> int:
        """Multiply-accumulates of one unbatched call."""
        return self.out_channels * self.in_features

    # ------------------------------------------------------------------- calling
    def _to_2d(self, x: object) -> tuple[np.ndarray, bool]:
        dt = self.activation_dtype
        if not isinstance(x, np.ndarray) or x.dtype != dt:
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise ValueError(f"x: dtype {got} not allowed, must be a numpy {dt.name} array")
        if x.ndim not in (1, 2) or x.shape[-1] != self.in_features or x.size == 0:
            raise ValueError(f"x: shape {x.shape} not allowed, must be ({self.in_features},) "
                             f"or (N, {self.in_features}) with N >= 1")
        return (x if x.ndim == 2 else x[None]), x.ndim == 2

    def accumulate(self, x: np.ndarray, method: str = "gemm") -> np.ndarray:
        """Exact int64 accumulators ``sum_k w[o, k] * (x[k] - input_zero_point) + bias``."""
        v.check_choice("method", method, FC_METHODS)
        x2, batched = self._to_2d(x)
        acc = self._acc_gemm(x2) if method == "gemm" else self._acc_direct(x2)
        return acc if batched else acc[0]

    def _acc_gemm(self, x2: np.ndarray) -> np.ndarray:
        prod = x2.astype(self._gemm_dtype) @ self._gemm_w  # exact (see gemm_dtype)
        return prod.astype(np.int64) + self._acc_offset

    def _acc_direct(self, x2: np.ndarray) -> np.ndarray:
        """The loop of the reference kernel, in Python integers."""
        rows, w = x2.tolist(), self.weights.tolist()
        bias = [0] * self.out_channels if self.bias is None else self.bias.tolist()
        acc = np.zeros((len(rows), self.out_channels), np.int64)
        for n, row in enumerate(rows):
            for o in range(self.out_channels):
                total = 0
                for k in range(self.in_features):
                    total += w[o][k] * (row[k] - self.input_zero_point)
                acc[n, o] = total + bias[o]
        return acc

    def requantize(self, acc: np.ndarray) -> np.ndarray:
        """int64 accumulators ``(..., O)`` -> output activations (see the class doc)."""
        acc = np.asarray(acc)
        if acc.dtype.kind not in "iu" or acc.ndim == 0 or acc.shape[-1] != self.out_channels:
            raise ValueError(f"acc: dtype {acc.dtype}, shape {acc.shape} not allowed, must "
                             f"be integer with {self.out_channels} channels last")
        if self.activation_dtype == np.int16:
            lo, hi = -(1 << 47), (1 << 47) - 1
            if acc.size and (acc.min() < lo or acc.max() > hi):
                raise ValueError(f"acc: values beyond [{lo}, {hi}], the 16x8 accumulator "
                                 "range")
            acc = acc.astype(np.int64)
            scaled = (round_once_wide(acc, self.output_multiplier, self.output_shift)
                      if self._wide else self._requantizer(acc))
            scaled = scaled.astype(np.int32).astype(np.int64)  # the kernel's int32 result
        else:  # the int32 sum of the C kernel wraps
            scaled = self._requantizer(acc.astype(np.int32)) + self.output_zero_point
        return np.clip(scaled, self.activation_min, self.activation_max).astype(
            self.activation_dtype)

    def __call__(self, x: np.ndarray, method: str = "gemm") -> np.ndarray:
        """Exact integer output for ``x`` (``(K,)`` or ``(N, K)``)."""
        return self.requantize(self.accumulate(x, method))

    def backward(self, x: np.ndarray, grad_output: np.ndarray, *,
                 grad_dtype: object = None) -> tuple[Any, Any, Any]:
        """Gradients of the exact accumulator ``acc = (x - input_zero_point) @ w.T + bias``
        (:meth:`accumulate`) for ``grad_output = dL/dacc`` ``(O,)`` / ``(N, O)``, by
        :func:`edgeconv.grad.dense_backward`: ``(grad_input, grad_weights, grad_bias)``
        (``grad_bias`` None without a bias), FixedGrad for integer ``grad_output``,
        float64 for float.  As for the conv layers (``Conv2D.backward``) the
        requantization and clamp after ``acc`` are not differentiated."""
        from edgeconv import grad as _grad

        self._to_2d(x)  # dtype and shape checks
        centered = x.astype(np.int16) - np.int16(self.input_zero_point)
        gx, gw, gb = _grad.dense_backward(centered, self.weights, grad_output,
                                          grad_dtype=grad_dtype)
        return gx, gw, (None if self.bias is None else gb)

    # -------------------------------------------------------------------- spec
    def spec(self) -> dict[str, Any]:
        """Canonical JSON-able description of everything that affects the numbers."""
        return {
            "op": self.op,
            "activation_dtype": self.activation_dtype.name,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            **_quant.quant_spec(self),
        }

    def __repr__(self) -> str:
        return (f"FullyConnected(name={self.name!r}, weights={self.weights.shape}, "
                f"activation_dtype={self.activation_dtype.name})")

