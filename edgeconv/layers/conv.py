"""Conv2D: TFLite ``reference_integer_ops::ConvPerChannel`` (int8 and 16x8), grouped."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgeconv.im2col import check_int, gather_windows
from edgeconv.layers import _validate as v
from edgeconv.layers._base import QuantizedConv, offset_table
from edgeconv.layers._table import RequantTable


def gemm_dtype(max_abs_input: int, weights_2d: np.ndarray) -> np.dtype:
    """Narrowest dtype whose GEMM of integer inputs with ``weights_2d`` (rows = output
    channels) is exact: every partial sum is an integer bounded by
    ``max_abs_input * max_row(sum |w|)``, exact in float32 below 2**24 and in float64
    below 2**53 whatever order BLAS sums in; int64 otherwise."""
    bound = max_abs_input * int(np.abs(weights_2d.astype(np.int64)).sum(axis=1).max())
    if bound < 2**24:
        return np.dtype(np.float32)
    if bound < 2**53:
        return np.dtype(np.float64)
    return np.dtype(np.int64)


class Conv2D(QuantizedConv):
    """2D convolution over NHWC input with OHWI int8 weights.

    ``acc[o] = sum_{ky,kx,i} w[o,ky,kx,i] * (x[iy,ix,g*Cg+i] - input_zero_point) + bias[o]``
    over in-image taps only (padding contributes nothing), ``g = o // (O / groups)``, then
    per-channel requantization (see :meth:`QuantizedConv.requantize`).  The default path is
    im2col + one exact GEMM per group; small layers (see ``_dense_limit``) instead multiply
    the flattened input by the layer's dense ``(H*W*C, OH*OW*O)`` matrix, built once per
    input shape, which saves the per-call cost of the patch gather; an int8 one with an
    ``input_shape`` also requantizes by table lookup (see :mod:`edgeconv.layers._table`),
    so a call costs a handful of numpy operations.  ``method='direct'`` is the reference
    loop nest.
    """

    op = "Conv2D"
    _weight_ndim = 4
    # The dense path is taken when the dense matrix has at most ``_dense_limit`` entries
    # and at most ``_dense_waste`` times the layer's MACs (wasted multiplies stay cheap).
    _dense_limit: ClassVar[int] = 1 << 14
    _dense_waste: ClassVar[int] = 4
    # An int8 dense layer with an ``input_shape`` calls through a requantization table
    # (``_table``) when it has at most ``_table_limit`` entries.
    _table_limit: ClassVar[int] = 1 << 21

    def __init__(self, *, weights: np.ndarray, bias: np.ndarray | None = None,
                 output_multiplier: np.ndarray, output_shift: np.ndarray,
                 stride: object = 1, padding: object = "valid", dilation: object = 1,
                 groups: int = 1, input_zero_point: int = 0, output_zero_point: int = 0,
                 activation_min: int | None = None, activation_max: int | None = None,
                 activation_dtype: object = np.int8, rounding: str = "double",
                 name: str | None = None, input_shape: tuple[int, ...] | None = None) -> None:
        self.weights = v.check_array("weights", weights, np.int8, (None,) * self._weight_ndim)
        if 0 in self.weights.shape:
            raise ValueError(f"weights: shape {self.weights.shape} not allowed, every "
                             "dimension must be >= 1")
        w4 = self.weights if self.rank == 2 else self.weights[:, None]
        self._w4 = w4
        self.out_channels = w4.shape[0]
        self.groups = check_int("groups", groups, 1)
        if self.out_channels % self.groups:
            raise ValueError(f"groups={self.groups}: must divide the {self.out_channels} "
                             "output channels (weights.shape[0])")
        super().__init__(kernel=(w4.shape[1], w4.shape[2]), stride=stride, padding=padding,
                         dilation=dilation, activation_dtype=activation_dtype, name=name)
        self._init_quant(w4.reshape(self.out_channels, -1).sum(axis=1, dtype=np.int64),
                         bias=bias, input_zero_point=input_zero_point,
                         output_zero_point=output_zero_point,
                         output_multiplier=output_multiplier, output_shift=output_shift,
                         activation_min=activation_min, activation_max=activation_max,
                         rounding=rounding)
        self._set_input_shape(input_shape)
        # GEMM operand per group: (G, KH*KW*Cg, O/G), in the narrowest exact dtype.
        g, og = self.groups, self.out_channels // self.groups
        w2 = w4.reshape(self.out_channels, -1)
        self._gemm_dtype = gemm_dtype(-v.dtype_range(self.activation_dtype)[0], w2)
        self._gemm_w = np.ascontiguousarray(
            w2.reshape(g, og, -1).transpose(0, 2, 1).astype(self._gemm_dtype))
        self._dense_cache: dict[tuple[int, int, int], tuple[np.ndarray, dict, tuple] | None] = {}

    def _check_channels(self, channels: int, name: str) -> None:
        per_group = self._w4.shape[3]
        if channels != self.groups * per_group:
            raise ValueError(f"{name}: {channels} input channels not allowed, must be groups * "
                             f"weights.shape[-1] = {self.groups} * {per_group}")

    def _out_channels(self, in_channels: int) -> int:
        return self.out_channels

    def _taps_per_output(self, in_channels: int) -> int:
        _, kh, kw, cg = self._w4.shape
        return kh * kw * cg

    def _dense(self, h: int, w: int, c: int) -> tuple[np.ndarray, dict, tuple] | None:
        """``(matrix, offsets by dtype, output shape)`` of the dense path for this input
        shape, or None when the layer is too large for it; built on first use, cached."""
        key = (h, w, c)
        if key not in self._dense_cache:
            oh, ow = self._out_hw(h, w)
            entries = h * w * c * oh * ow * self.out_channels
            fits = entries <= min(self._dense_limit,
                                  self._dense_waste * self.macs(self._rank_shape(key)))
            self._dense_cache[key] = self._dense_matrix(h, w, c) if fits else None
        return self._dense_cache[key]

    def _requant_table(self) -> RequantTable | None:
        """The table shortcut for ``input_shape``: int8 layers on the dense path whose
        table fits ``_table_limit`` (16x8 accumulators span far too many values)."""
        if self.input_shape is None or self.activation_dtype != np.int8:
            return None
        dense = self._dense(*self._shape_hwc(self.input_shape))
        if dense is None:
            return None
        matrix, offsets, _ = dense
        return RequantTable.build(matrix, offsets[np.dtype(np.int64)], self.requantize,
                                  v.dtype_range(self.activation_dtype), self.input_shape,
                                  self.output_shape, self._table_limit)

    def _rank_shape(self, hwc: tuple[int, int, int]) -> tuple[int, ...]:
        return hwc if self.rank == 2 else hwc[1:]

    def _dense_matrix(self, h: int, w: int, c: int) -> tuple[np.ndarray, dict, tuple]:
        """The matrix ``D`` with ``acc = x.ravel() @ D + offset`` (raw input, offsets per
        output position: bias minus the zero point times the in-image weights).  Each
        column holds a subset of one channel's weights, so the GEMM dtype stays exact."""
        oh, ow = self._out_hw(h, w)
        og, cg = self.out_channels // self.groups, self._w4.shape[3]
        dense = np.zeros((h, w, c, oh, ow, self.out_channels), np.int64)
        for _, oy, ox, taps in self._windows(np.empty((1, h, w, c), np.int8)):
            for ky, kx, iy, ix in taps:
                for g in range(self.groups):
                    dense[iy, ix, g * cg:(g + 1) * cg, oy, ox, g * og:(g + 1) * og] = (
                        self._w4[g * og:(g + 1) * og, ky, kx, :].T)
        dense = dense.reshape(h * w * c, -1)
        base = np.zeros(self.out_channels, np.int64) if self.bias is None else self.bias
        offset = np.tile(base, oh * ow) - self.input_zero_point * dense.sum(axis=0)
        return dense.astype(self._gemm_dtype), offset_table(offset), (oh, ow, self.out_channels)

    def _acc_fast(self, x4: np.ndarray, dtype: np.dtype) -> np.ndarray:
        n, h, w, c = x4.shape
        dense = self._dense(h, w, c)
        if dense is not None:
            matrix, offsets, out_shape = dense
            acc = self._to_acc(x4.reshape(n, -1).astype(self._gemm_dtype) @ matrix, dtype)
            acc += offsets[dtype]
            return acc.reshape(n, *out_shape)
        oh, ow = self._out_hw(h, w)
        cols = gather_windows(x4.astype(self._gemm_dtype), self._kernel, self._stride,
                              self._pads2(h, w), self._dilation, (oh, ow),
                              self.input_zero_point)
        p = n * oh * ow
        if self.groups == 1:
            prod = cols.reshape(p, -1) @ self._gemm_w[0]
        else:
            g, cg = self.groups, c // self.groups
            grouped = cols.reshape(p, -1, g, cg).transpose(2, 0, 1, 3).reshape(g, p, -1)
            prod = np.matmul(grouped, self._gemm_w).transpose(1, 0, 2).reshape(p, -1)
        acc = self._to_acc(prod, dtype)
        acc += self._acc_offsets[dtype]
        return acc.reshape(n, oh, ow, self.out_channels)

    def _to_acc(self, prod: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """Exact GEMM result -> accumulator dtype; float64 sums may exceed int32, so they
        wrap through int64 (a float -> int32 cast out of range is undefined)."""
        if dtype == np.int32 and self._gemm_dtype == np.float64:
            prod = prod.astype(np.int64)
        return prod.astype(dtype)

    def _acc_direct(self, x4: np.ndarray) -> np.ndarray:
        n, h, w, _ = x4.shape
        oh, ow = self._out_hw(h, w)
        acc = np.zeros((n, oh, ow, self.out_channels), dtype=np.int64)
        x, wts, zp = x4.tolist(), self._w4.tolist(), self.input_zero_point
        bias = [0] * self.out_channels if self.bias is None else self.bias.tolist()
        per_group, out_per_group = self._w4.shape[3], self.out_channels // self.groups
        for b, oy, ox, taps in self._windows(x4):
            for oc in range(self.out_channels):
                first_in = (oc // out_per_group) * per_group
                total = 0
                for ky, kx, iy, ix in taps:
                    for ic in range(per_group):
                        total += wts[oc][ky][kx][ic] * (x[b][iy][ix][first_in + ic] - zp)
                acc[b, oy, ox, oc] = total + bias[oc]
        return acc

    def _backward_fn(self, grad_module: Any) -> Any:
        return grad_module.conv2d_backward if self.rank == 2 else grad_module.conv1d_backward

    def _backward_options(self) -> dict[str, Any]:
        return {"groups": self.groups}

    def _spec_fields(self) -> dict[str, Any]:
        return {"groups": self.groups, **self._quant_spec()}
