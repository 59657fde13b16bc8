"""MaxPool2D and AvgPool2D: TFLite ``reference_integer_ops`` pooling (int8 and int16).

Input and output share scale and zero point (TFLite requires it), so pooling works on the
raw integers.  Padded positions are excluded: from the max, and from both the sum and the
divisor of the average.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from edgeconv.im2col import as_pair, pad_nhwc
from edgeconv.layers import _quant
from edgeconv.layers import _validate as v
from edgeconv.layers._base import WindowLayer


class _Pool2D(WindowLayer):
    """Window geometry, clamp range and calling convention shared by the two pools."""

    def __init__(self, *, pool_size: object, stride: object = None, padding: object = "valid",
                 activation_min: int | None = None, activation_max: int | None = None,
                 activation_dtype: object = np.int8, name: str | None = None,
                 input_shape: tuple[int, ...] | None = None) -> None:
        self.pool_size = as_pair("pool_size", pool_size)
        super().__init__(kernel=self.pool_size, stride=self.pool_size if stride is None else stride,
                         padding=padding, dilation=1, activation_dtype=activation_dtype,
                         name=name)
        self.activation_min, self.activation_max = v.check_activation_range(
            activation_min, activation_max, self.activation_dtype)
        self._set_input_shape(input_shape)

    @classmethod
    def from_float(cls, *, pool_size: object, scale: float, zero_point: int = 0,
                   activation: str | None = None, activation_dtype: object = np.int8,
                   **kwargs: Any) -> _Pool2D:
        """Pool on a tensor quantized with ``scale``/``zero_point`` (shared by input and
        output); ``activation`` (None, 'relu', 'relu6') sets the clamp range as TFLite's
        ``CalculateActivationRangeQuantized``.  Other keywords go to the constructor."""
        dt = v.check_activation_dtype(activation_dtype)
        s = _quant.check_scale("scale", scale)
        zp = v.check_zero_point("zero_point", zero_point, dt)
        amin, amax = _quant.activation_range(activation, s, zp, dt)
        return cls(pool_size=pool_size, activation_min=amin, activation_max=amax,
                   activation_dtype=dt, **kwargs)

    def _check_channels(self, channels: int, name: str) -> None:
        """Any channel count is allowed (shape validity is checked by the caller)."""

    def _out_channels(self, in_channels: int) -> int:
        return in_channels

    def _taps_per_output(self, in_channels: int) -> int:
        return self.pool_size[0] * self.pool_size[1]

    def _slices(self, xp: np.ndarray, out_hw: tuple[int, int]) -> Iterator[np.ndarray]:
        """The KH*KW strided views of padded ``xp``, one per window tap."""
        (sh, sw), (oh, ow) = self._stride, out_hw
        for ky in range(self.pool_size[0]):
            for kx in range(self.pool_size[1]):
                yield xp[:, ky:ky + (oh - 1) * sh + 1:sh, kx:kx + (ow - 1) * sw + 1:sw, :]

    def _clamp(self, values: np.ndarray) -> np.ndarray:
        return np.clip(values, self.activation_min, self.activation_max).astype(
            self.activation_dtype)

    def backward(self, x: np.ndarray, grad_output: np.ndarray, *,
                 grad_dtype: object = None) -> Any:
        """``dL/dx`` for ``grad_output = dL/dy`` (shaped like the output), through the pool
        on the raw integers (input and output share scale and zero point, so the same
        holds for the real values).  The clamp to ``activation_min/max`` is passed
        straight through.  Integer ``grad_output`` gives a :class:`edgeconv.grad.FixedGrad`,
        float gives float64; see :func:`edgeconv.grad.max_pool2d_backward` /
        :func:`~edgeconv.grad.avg_pool2d_backward`."""
        from edgeconv import grad as _grad

        self._to_nhwc(x)  # dtype and shape checks
        fn = (_grad.max_pool2d_backward if isinstance(self, MaxPool2D)
              else _grad.avg_pool2d_backward)
        return fn(x, grad_output, pool_size=self.pool_size, stride=self.stride,
                  padding=self.padding, grad_dtype=grad_dtype)

    def _spec_fields(self) -> dict[str, Any]:
        return {"pool_size": list(self.pool_size), "activation_min": self.activation_min,
                "activation_max": self.activation_max}


class MaxPool2D(_Pool2D):
    """Max over the in-image part of each window, then clamp."""

    op = "MaxPool2D"

    def _fast(self, x4: np.ndarray) -> np.ndarray:
        # Padding with the dtype minimum never wins: every window holds an image pixel.
        h, w = x4.shape[1:3]
        xp = pad_nhwc(x4, self._pads2(h, w), v.dtype_range(self.activation_dtype)[0])
        slices = self._slices(xp, self._out_hw(h, w))
        out = next(slices).copy()
        for s in slices:
            np.maximum(out, s, out=out)
        return self._clamp(out)

    def _direct(self, x4: np.ndarray) -> np.ndarray:
        n, h, w, c = x4.shape
        out = np.zeros((n, *self._out_hw(h, w), c), dtype=np.int64)
        x = x4.tolist()
        for b, oy, ox, taps in self._windows(x4):
            for ch in range(c):
                out[b, oy, ox, ch] = max(x[b][iy][ix][ch] for _, _, iy, ix in taps)
        return self._clamp(out)


class AvgPool2D(_Pool2D):
    """Average over the in-image part of each window: the sum divided by the number of
    in-image taps, rounded half away from zero as TFLite does
    (``(acc +- count // 2) / count`` with C truncating division), then clamp."""

    op = "AvgPool2D"

    @staticmethod
    def _round_div(acc: np.ndarray, count: np.ndarray) -> np.ndarray:
        nudged = np.where(acc > 0, acc + count // 2, acc - count // 2)
        return np.sign(nudged) * (np.abs(nudged) // count)  # C division truncates

    def _tap_counts(self, size: int, out: int, axis: int, before: int) -> np.ndarray:
        """Number of in-image taps of each window along one axis."""
        start = np.arange(out) * self._stride[axis] - before
        k = self.pool_size[axis]
        return np.minimum(start + k, size) - np.maximum(start, 0)

    def _fast(self, x4: np.ndarray) -> np.ndarray:
        h, w = x4.shape[1:3]
        pads = self._pads2(h, w)
        oh, ow = self._out_hw(h, w)
        xp = pad_nhwc(x4, pads, 0).astype(np.int64)
        acc = np.zeros((x4.shape[0], oh, ow, x4.shape[3]), dtype=np.int64)
        for s in self._slices(xp, (oh, ow)):
            acc += s
        count = np.multiply.outer(self._tap_counts(h, oh, 0, pads[0][0]),
                                  self._tap_counts(w, ow, 1, pads[1][0]))[None, :, :, None]
        return self._clamp(self._round_div(acc, count))

    def _direct(self, x4: np.ndarray) -> np.ndarray:
        n, h, w, c = x4.shape
        out = np.zeros((n, *self._out_hw(h, w), c), dtype=np.int64)
        x = x4.tolist()
        for b, oy, ox, taps in self._windows(x4):
            for ch in range(c):
                total = sum(x[b][iy][ix][ch] for _, _, iy, ix in taps)
                count = len(taps)
                rounded = (abs(total) + count // 2) // count  # half away from zero
                out[b, oy, ox, ch] = rounded if total > 0 else -rounded
        return self._clamp(out)
