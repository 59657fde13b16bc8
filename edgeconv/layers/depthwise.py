"""DepthwiseConv2D: TFLite ``reference_integer_ops::DepthwisePerChannel`` (int8, 16x8)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeconv.im2col import check_int, pad_nhwc, patch_view
from edgeconv.layers import _validate as v
from edgeconv.layers._base import QuantizedConv


class DepthwiseConv2D(QuantizedConv):
    """Depthwise convolution over NHWC input, weights ``(1, KH, KW, C * depth_multiplier)``.

    Output channel ``o = c * depth_multiplier + m`` reads input channel ``c`` only:
    ``acc[o] = sum_{ky,kx} w[0,ky,kx,o] * (x[iy,ix,c] - input_zero_point) + bias[o]``
    over in-image taps, then per-channel requantization.  The default path sums the
    products of the strided window view of the zero-point-padded input with the taps (one
    ``einsum`` over KH*KW, vectorized over pixels and channels); ``method='direct'`` is the
    reference loop nest.
    """

    op = "DepthwiseConv2D"
    _weight_channel_axis = -1

    def __init__(self, *, weights: np.ndarray, bias: np.ndarray | None = None,
                 output_multiplier: np.ndarray, output_shift: np.ndarray,
                 depth_multiplier: int = 1, stride: object = 1, padding: object = "valid",
                 dilation: object = 1, input_zero_point: int = 0, output_zero_point: int = 0,
                 activation_min: int | None = None, activation_max: int | None = None,
                 activation_dtype: object = np.int8, rounding: str = "double",
                 name: str | None = None, input_shape: tuple[int, ...] | None = None) -> None:
        self.weights = v.check_array("weights", weights, np.int8, (1, None, None, None))
        if 0 in self.weights.shape:
            raise ValueError(f"weights: shape {self.weights.shape} not allowed, every "
                             "dimension must be >= 1")
        self.depth_multiplier = check_int("depth_multiplier", depth_multiplier, 1)
        self.out_channels = self.weights.shape[3]
        if self.out_channels % self.depth_multiplier:
            raise ValueError(f"depth_multiplier={self.depth_multiplier}: must divide the "
                             f"{self.out_channels} output channels (weights.shape[3])")
        super().__init__(kernel=self.weights.shape[1:3], stride=stride, padding=padding,
                         dilation=dilation, activation_dtype=activation_dtype, name=name)
        self._init_quant(self.weights.reshape(-1, self.out_channels).sum(axis=0, dtype=np.int64),
                         bias=bias, input_zero_point=input_zero_point,
                         output_zero_point=output_zero_point,
                         output_multiplier=output_multiplier, output_shift=output_shift,
                         activation_min=activation_min, activation_max=activation_max,
                         rounding=rounding)
        self._set_input_shape(input_shape)
        # int8: |x| * sum_taps |w| <= 128 * 127 * KH*KW stays far inside int32 for any
        # realistic kernel; otherwise (and for 16x8) accumulate in int64.
        taps = self.weights.shape[1] * self.weights.shape[2]
        small = self.activation_dtype == np.int8 and 128 * 128 * taps < 2**31
        self._acc_dtype = np.dtype(np.int32 if small else np.int64)
        kh, kw = self._kernel
        self._w_taps = self.weights[0].reshape(kh, kw, -1, self.depth_multiplier).astype(
            self._acc_dtype)

    def _check_channels(self, channels: int, name: str) -> None:
        if channels * self.depth_multiplier != self.out_channels:
            raise ValueError(f"{name}: {channels} input channels not allowed, must be "
                             f"weights.shape[3] / depth_multiplier = "
                             f"{self.out_channels} / {self.depth_multiplier}")

    def _out_channels(self, in_channels: int) -> int:
        return self.out_channels

    def _taps_per_output(self, in_channels: int) -> int:
        return self.weights.shape[1] * self.weights.shape[2]

    def _acc_fast(self, x4: np.ndarray, dtype: np.dtype) -> np.ndarray:
        n, h, w, c = x4.shape
        out_hw = self._out_hw(h, w)
        xp = pad_nhwc(x4, self._pads2(h, w), self.input_zero_point).astype(self._acc_dtype)
        windows = patch_view(xp, self._kernel, self._stride, self._dilation, out_hw)
        # Output channel c * depth_multiplier + m reads input channel c.
        acc = np.einsum("nhwijc,ijcm->nhwcm", windows, self._w_taps)
        out = acc.reshape(n, *out_hw, self.out_channels).astype(dtype, copy=False)
        out += self._acc_offsets[dtype]
        return out

    def _acc_direct(self, x4: np.ndarray) -> np.ndarray:
        n, h, w, c = x4.shape
        oh, ow = self._out_hw(h, w)
        acc = np.zeros((n, oh, ow, self.out_channels), dtype=np.int64)
        x, wts, zp = x4.tolist(), self.weights[0].tolist(), self.input_zero_point
        bias = [0] * self.out_channels if self.bias is None else self.bias.tolist()
        for b, oy, ox, taps in self._windows(x4):
            for ic in range(c):
                for m in range(self.depth_multiplier):
                    oc = ic * self.depth_multiplier + m
                    total = 0
                    for ky, kx, iy, ix in taps:
                        total += wts[ky][kx][oc] * (x[b][iy][ix][ic] - zp)
                    acc[b, oy, ox, oc] = total + bias[oc]
        return acc

    def _backward_fn(self, grad_module: Any) -> Any:
        return grad_module.depthwise_conv2d_backward

    def _backward_options(self) -> dict[str, Any]:
        return {"depth_multiplier": self.depth_multiplier}

    def _spec_fields(self) -> dict[str, Any]:
        return {"depth_multiplier": self.depth_multiplier, **self._quant_spec()}
