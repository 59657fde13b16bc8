"""Base classes: window geometry and calling convention (``WindowLayer``) and the
quantization parameters and requantization of conv-like layers (``QuantizedConv``)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from edgeconv import fixedpoint
from edgeconv.im2col import Pads2D, effective_extent, same_pads, window_count
from edgeconv.layers import _quant
from edgeconv.layers import _validate as v
from edgeconv.layers._table import RequantTable

Tap = tuple[int, int, int, int]  # (ky, kx, iy, ix)


def _rank_form(pair: tuple[Any, Any], rank: int) -> tuple[Any, ...]:
    """2D internal form -> public form (rank-1 layers drop the height entry)."""
    return tuple(pair) if rank == 2 else (pair[1],)


class WindowLayer:
    """A kernel window sliding over NHWC input (``rank = 2``) or NWC input (``rank = 1``,
    computed as NHWC with H = 1).  Subclasses implement ``_check_channels``,
    ``_out_channels``, ``_taps_per_output``, ``_fast`` and ``_direct`` on 4D NHWC arrays."""

    op: ClassVar[str]
    rank: ClassVar[int] = 2

    def __init__(self, *, kernel: tuple[int, int], stride: object, padding: object,
                 dilation: object, activation_dtype: object, name: object) -> None:
        self.activation_dtype = v.check_activation_dtype(activation_dtype)
        self.name = v.check_name(name)
        self._kernel = kernel
        self._stride = v.check_spatial("stride", stride, self.rank)
        self._dilation = v.check_spatial("dilation", dilation, self.rank)
        self._padding = v.check_padding(padding, self.rank)
        self._extent = (effective_extent(kernel[0], self._dilation[0]),
                        effective_extent(kernel[1], self._dilation[1]))
        if not isinstance(self._padding, str):
            v.check_pads_fit(self._padding, self._extent)
        self.stride = _rank_form(self._stride, self.rank)
        self.dilation = _rank_form(self._dilation, self.rank)
        self.padding = (self._padding if isinstance(self._padding, str)
                        else _rank_form(self._padding, self.rank))
        self.input_shape: tuple[int, ...] | None = None

    # ------------------------------------------------------------------ geometry
    def _set_input_shape(self, input_shape: object) -> None:
        if input_shape is not None:
            self._shape_hwc(input_shape)
            self.input_shape = tuple(int(s) for s in input_shape)  # type: ignore[union-attr]

    def _shape_hwc(self, shape: object, name: str = "input_shape") -> tuple[int, int, int]:
        """Validate an unbatched input shape (rank form) and return it as (H, W, C)."""
        n = self.rank + 1
        if (not isinstance(shape, (tuple, list)) or len(shape) != n
                or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1
                       for s in shape)):
            want = "(H, W, C)" if self.rank == 2 else "(W, C)"
            raise ValueError(f"{name}={shape!r}: must be {want}, positive integers")
        hwc = (1, *shape) if self.rank == 1 else tuple(shape)
        h, w, c = (int(s) for s in hwc)
        self._check_channels(c, name)
        pads = self._pads2(h, w)
        for axis, size in enumerate((h, w)):
            if window_count(size, self._kernel[axis], self._stride[axis],
                            self._dilation[axis], pads[axis]) < 1:
                raise ValueError(
                    f"{name}={tuple(shape)!r}: spatial size {size} on axis {'HW'[axis]} "
                    f"is smaller than the dilated kernel extent {self._extent[axis]} "
                    f"minus padding {sum(pads[axis])}; must give at least one output")
        return h, w, c

    def _check_channels(self, channels: int, name: str) -> None:
        raise NotImplementedError

    def _out_channels(self, in_channels: int) -> int:
        raise NotImplementedError

    def _taps_per_output(self, in_channels: int) -> int:
        """Multiply-accumulates per output element."""
        raise NotImplementedError

    def _pads2(self, h: int, w: int) -> Pads2D:
        if self._padding == "valid":
            return (0, 0), (0, 0)
        if self._padding == "same":
            return (same_pads(h, self._kernel[0], self._stride[0], self._dilation[0]),
                    same_pads(w, self._kernel[1], self._stride[1], self._dilation[1]))
        return self._padding  # type: ignore[return-value]

    def _out_hw(self, h: int, w: int) -> tuple[int, int]:
        pads = self._pads2(h, w)
        return (window_count(h, self._kernel[0], self._stride[0], self._dilation[0], pads[0]),
                window_count(w, self._kernel[1], self._stride[1], self._dilation[1], pads[1]))

    def _resolve_shape(self, input_shape: object) -> tuple[int, int, int]:
        if input_shape is None:
            if self.input_shape is None:
                raise ValueError("input_shape=None: give an input shape here or to the layer")
            input_shape = self.input_shape
        return self._shape_hwc(input_shape)

    def pads_for(self, input_shape: object = None) -> tuple[tuple[int, int], ...]:
        """Explicit pads actually applied: ``((top, bottom), (left, right))`` in 2D,
        ``((left, right),)`` in 1D.  SAME puts the odd pixel at the bottom/right."""
        h, w, _ = self._resolve_shape(input_shape)
        return _rank_form(self._pads2(h, w), self.rank)

    def output_shape_for(self, input_shape: object) -> tuple[int, ...]:
        """Unbatched output shape for an unbatched ``input_shape``."""
        h, w, c = self._resolve_shape(input_shape)
        oh, ow = self._out_hw(h, w)
        out = (oh, ow, self._out_channels(c))
        return out if self.rank == 2 else out[1:]

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Output shape for the layer's ``input_shape``."""
        if self.input_shape is None:
            raise ValueError("input_shape=None: the layer has no input_shape")
        return self.output_shape_for(self.input_shape)

    def macs(self, input_shape: object = None) -> int:
        """Multiply-accumulates (window taps for pools) of one unbatched call."""
        h, w, c = self._resolve_shape(input_shape)
        oh, ow = self._out_hw(h, w)
        return oh * ow * self._out_channels(c) * self._taps_per_output(c)

    # ------------------------------------------------------------------- calling
    def _to_nhwc(self, x: object) -> tuple[np.ndarray, bool]:
        """Check ``x`` (dtype, shape) and view it as NHWC; report whether it was batched."""
        dt = self.activation_dtype
        if not isinstance(x, np.ndarray) or x.dtype != dt:
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            lo, hi = v.dtype_range(dt)
            raise ValueError(f"x: dtype {got} not allowed, must be a numpy {dt.name} array "
                             f"(convert with np.asarray(x).astype(np.{dt.name}) once its values "
                             f"lie in [{lo}, {hi}])")
        n = self.rank + 1
        if x.ndim not in (n, n + 1):
            raise ValueError(f"x: shape {x.shape} must have {n} dims, or {n + 1} with batch")
        batched = x.ndim == n + 1
        if batched and x.shape[0] < 1:
            raise ValueError(f"x: shape {x.shape} has an empty batch, must be >= 1")
        shape = x.shape[1:] if batched else x.shape
        if self.input_shape is None:
            self._shape_hwc(tuple(shape), "x.shape")
        elif tuple(shape) != self.input_shape:  # input_shape itself was validated at init
            raise ValueError(f"x: shape {x.shape} does not match input_shape={self.input_shape}"
                             " (optionally with a leading batch dimension)")
        x4 = x if batched else x[None]
        if self.rank == 1:
            x4 = x4[:, None]
        return x4, batched

    def _requant_table(self) -> RequantTable | None:
        """Table shortcut of a small layer with a fixed input shape (see ``_table``)."""
        return None

    @functools.cached_property
    def _table(self) -> RequantTable | None:
        # Built on the first call, not at construction: many layers are never called.
        return self._requant_table()

    def __call__(self, x: np.ndarray, method: str = "im2col") -> np.ndarray:
        """Exact integer output for ``x`` (unbatched or with a leading batch dimension).

        ``method='im2col'`` (default) is the vectorized path; ``'direct'`` is the plain
        loop nest mirroring the TFLite reference kernel, used as the test oracle."""
        table = self._table
        if table is not None and method == "im2col":
            y = table.apply(x)
            if y is not None:
                return y
        v.check_choice("method", method, v.METHODS)
        x4, batched = self._to_nhwc(x)
        y4 = self._fast(x4) if method == "im2col" else self._direct(x4)
        if self.rank == 1:
            y4 = y4[:, 0]
        return y4 if batched else y4[0]

    def _fast(self, x4: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _direct(self, x4: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _windows(self, x4: np.ndarray) -> Iterator[tuple[int, int, int, list[Tap]]]:
        """Yield ``(n, oy, ox, [(ky, kx, iy, ix), ...])`` with the in-bounds taps of every
        window, as TFLite's reference loops skip out-of-image taps."""
        n_batch, h, w, _ = x4.shape
        (top, _), (left, _) = self._pads2(h, w)
        oh, ow = self._out_hw(h, w)
        for n in range(n_batch):
            for oy in range(oh):
                for ox in range(ow):
                    taps = []
                    for ky in range(self._kernel[0]):
                        iy = oy * self._stride[0] - top + ky * self._dilation[0]
                        for kx in range(self._kernel[1]):
                            ix = ox * self._stride[1] - left + kx * self._dilation[1]
                            if 0 <= iy < h and 0 <= ix < w:
                                taps.append((ky, kx, iy, ix))
                    yield n, oy, ox, taps

    # -------------------------------------------------------------------- spec
    def spec(self) -> dict[str, Any]:
        """Canonical JSON-able description of everything that affects the numbers."""
        return {
            "op": self.op,
            "activation_dtype": self.activation_dtype.name,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "stride": list(self.stride),
            "dilation": list(self.dilation),
            "padding": (self.padding if isinstance(self.padding, str)
                        else [list(p) for p in self.padding]),
            **self._spec_fields(),
        }

    def _spec_fields(self) -> dict[str, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, input_shape={self.input_shape}, "
                f"activation_dtype={self.activation_dtype.name})")


def offset_table(offset: np.ndarray) -> dict[np.dtype, np.ndarray]:
    """Accumulator offsets by accumulator dtype: exact int64 and wrapped int32."""
    return {np.dtype(np.int64): offset, np.dtype(np.int32): offset.astype(np.int32)}


class QuantizedConv(WindowLayer):
    """Quantization parameters and requantization shared by Conv2D, DepthwiseConv2D and
    Conv1D (TFLite per-channel int8 and 16x8 semantics).

    Subclasses set ``self.weights`` (validated) and ``self.out_channels``, call
    :meth:`_init_quant` with the per-output-channel sums of the weights, and implement
    ``_acc_fast``/``_acc_direct`` returning exact int64 accumulators
    ``sum(w * (x - input_zero_point)) + bias``."""

    def _init_quant(self, weight_sums: np.ndarray, *, bias: object, input_zero_point: object,
                    output_zero_point: object, output_multiplier: object,
                    output_shift: object, activation_min: object, activation_max: object,
                    rounding: object) -> None:
        dt = self.activation_dtype
        n_out = self.out_channels
        # 16x8 has two kernels in TFLite and CMSIS-NN, chosen by the bias tensor's type:
        # int64 bias (the converter's default): int64 accumulator, requantized by the
        # 64-bit MultiplyByQuantizedMultiplier; int32 bias (the converter's int32-bias
        # option, CMSIS-NN's ``is_int32_bias``): int32 accumulator, requantized by the
        # 32-bit MultiplyByQuantizedMultiplier exactly as int8 (``rounding`` applies).
        # An int32 array selects the second; any other integer dtype the first.
        int32_bias = dt == np.int16 and isinstance(bias, np.ndarray) and bias.dtype == np.int32
        self.accumulator_dtype = np.dtype(np.int64 if dt == np.int16 and not int32_bias
                                          else np.int32)
        wide_acc = self.accumulator_dtype == np.int64
        bias_dtype = np.int64 if wide_acc else np.int32
        self.bias = None if bias is None else v.check_array("bias", bias, bias_dtype, (n_out,))
        self.input_zero_point = v.check_zero_point("input_zero_point", input_zero_point, dt)
        self.output_zero_point = v.check_zero_point("output_zero_point", output_zero_point, dt)
        self.output_multiplier = v.check_array("output_multiplier", output_multiplier,
                                               np.int32, (n_out,))
        v.check_range("output_multiplier", self.output_multiplier, 0, fixedpoint.INT32_MAX)
        self.output_shift = v.check_array("output_shift", output_shift, np.int32, (n_out,))
        v.check_range("output_shift", self.output_shift, -31, 7 if wide_acc else 30)
        self.activation_min, self.activation_max = v.check_activation_range(
            activation_min, activation_max, dt)
        self.rounding = v.check_choice("rounding", rounding, v.ROUNDINGS)
        # Constant part of every accumulator: bias - input_zero_point * sum(w) per channel,
        # exact (int64) and wrapped to int32 (summed with int32 wrap-around it gives the
        # int32 accumulator of TFLite/CMSIS-NN).
        base = np.zeros(n_out, np.int64) if self.bias is None else self.bias.astype(np.int64)
        self._acc_offset = base - self.input_zero_point * weight_sums
        self._acc_offsets = offset_table(self._acc_offset)
        # Accumulator dtype handed to the requantization: the int32 of the C kernels for
        # int8 and 16x8 with an int32 bias, the exact int64 for 16x8 with an int64 bias.
        self._sum_dtype = self.accumulator_dtype
        self._requantizer = fixedpoint.Requantizer(
            self.output_multiplier, self.output_shift, "int64" if wide_acc else self.rounding)

    def requantize(self, acc: np.ndarray) -> np.ndarray:
        """int64 accumulators (channels last) -> output activations.

        int8 and 16x8 with an int32 bias: the accumulator is an int32 in TFLite/CMSIS-NN,
        so it wraps to int32 first, then ``multiply_by_quantized_multiplier`` with
        ``self.rounding``, plus the output zero point, clamped.  16x8 with an int64 bias:
        ``multiply_by_quantized_multiplier_int64`` on the int64 accumulator (TFLite and
        CMSIS-NN share it, so ``rounding`` does not apply).  The multipliers and shifts
        were validated at construction; only ``acc`` is checked."""
        acc = np.asarray(acc)
        if acc.dtype.kind not in "iu":
            raise ValueError(f"acc: dtype {acc.dtype}, must be integer (accumulate() output)")
        if acc.ndim == 0 or acc.shape[-1] != self.out_channels:
            raise ValueError(f"acc.shape={acc.shape}: the last axis must hold the "
                             f"{self.out_channels} output channels")
        if self.accumulator_dtype == np.int64:
            scaled = self._requantizer.checked(acc)
        else:  # the int32 sum wraps
            scaled = self._requantizer(np.asarray(acc).astype(np.int32, copy=False))
            scaled += self.output_zero_point
        # maximum/minimum in place: np.clip costs several microseconds on small arrays
        np.maximum(scaled, self.activation_min, out=scaled)
        np.minimum(scaled, self.activation_max, out=scaled)
        return scaled.astype(self.activation_dtype)

    def accumulate(self, x: np.ndarray, method: str = "im2col") -> np.ndarray:
        """Exact accumulators ``sum(w * (x - input_zero_point)) + bias`` (int64, output
        layout) before requantization; both methods give identical results."""
        v.check_choice("method", method, v.METHODS)
        x4, batched = self._to_nhwc(x)
        acc = (self._acc_fast(x4, np.dtype(np.int64)) if method == "im2col"
               else self._acc_direct(x4))
        if self.rank == 1:
            acc = acc[:, 0]
        return acc if batched else acc[0]

    def _fast(self, x4: np.ndarray) -> np.ndarray:
        return self.requantize(self._acc_fast(x4, self._sum_dtype))

    def _direct(self, x4: np.ndarray) -> np.ndarray:
        return self.requantize(self._acc_direct(x4))

    def _acc_fast(self, x4: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """Accumulators in ``dtype``: int64 (exact) or int32 (wrapped, as in C)."""
        raise NotImplementedError

    def _acc_direct(self, x4: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, x: np.ndarray, grad_output: np.ndarray, *,
                 grad_dtype: object = None) -> tuple[Any, Any, Any]:
        """Gradients of the layer's exact integer accumulator
        ``acc = conv(x - input_zero_point, weights) + bias`` (see :meth:`accumulate`).

        Domain (integer, as the layer computes): ``x`` is the layer's input
        (``activation_dtype``, unbatched or batched as for ``__call__``);
        ``grad_output`` is ``dL/dacc`` shaped like the output, int8/int16 in any fixed-point
        unit (or float).  Returns ``(grad_input, grad_weights, grad_bias)`` with respect
        to ``x``, the int8 ``weights`` and the integer ``bias`` (``None`` when the layer has
        no bias): :class:`edgeconv.grad.FixedGrad` for integer ``grad_output`` (format rule
        and error bound in :mod:`edgeconv.grad`), float64 arrays for float.  The
        requantization and clamp after ``acc`` are not differentiated here: with scales
        ``y_real ~= s_in * s_w[o] * acc[o]``, so a real-valued ``dL/dy_real`` becomes
        ``dL/dacc[o] = s_in * s_w[o] * dL/dy_real[o]`` (0 where the output was clamped),
        and ``dL/dx_real = grad_input / s_in``."""
        from edgeconv import grad as _grad

        self._to_nhwc(x)  # dtype and shape checks
        # x - zero point as int16: int8 [-128, 127] minus a zero point in [-128, 127]
        # stays within [-255, 255]; 16x8 layers have zero point 0.
        centered = x.astype(np.int16) - np.int16(self.input_zero_point)
        gx, gw, gb = self._backward_fn(_grad)(
            centered, self.weights, grad_output, stride=self.stride, padding=self.padding,
            dilation=self.dilation, grad_dtype=grad_dtype, **self._backward_options())
        return gx, gw, (None if self.bias is None else gb)

    def _backward_fn(self, grad_module: Any) -> Any:
        """The :mod:`edgeconv.grad` function of this op."""
        raise NotImplementedError

    def _backward_options(self) -> dict[str, Any]:
        """Op-specific keywords of :meth:`_backward_fn` (groups, depth_multiplier)."""
        raise NotImplementedError

    def _quant_spec(self) -> dict[str, Any]:
        return _quant.quant_spec(self)

    # ---------------------------------------------------------------- from_float
    _weight_channel_axis: ClassVar[int] = 0

    @classmethod
    def from_float(cls, weights: object, bias: object = None, *, input_scale: float,
                   output_scale: float, input_zero_point: int = 0, output_zero_point: int = 0,
                   activation: str | None = None, activation_dtype: object = np.int8,
                   **kwargs: Any) -> QuantizedConv:
        """Quantize float weights (the integer layout of the class, e.g. OHWI) and bias the
        way the TFLite converter does (see :mod:`edgeconv.layers._quant`).  ``activation``
        (None, 'relu', 'relu6') sets ``activation_min``/``activation_max``; every other
        keyword (stride, padding, dilation, groups, depth_multiplier, name, input_shape,
        rounding) goes to the constructor.  The float parameters stay on the layer as
        ``float_origin`` (:class:`edgeconv.layers._quant.FloatOrigin`)."""
        dt = v.check_activation_dtype(activation_dtype)
        s_in = _quant.check_scale("input_scale", input_scale)
        s_out = _quant.check_scale("output_scale", output_scale)
        out_zp = v.check_zero_point("output_zero_point", output_zero_point, dt)
        w = _quant.float_array("weights", weights)
        if w.ndim < 2 or w.size == 0:
            raise ValueError(f"weights: shape {w.shape} not allowed, must be a non-empty "
                             "kernel in the layer's integer layout")
        layer = cls(**_quant.quantized_layer_params(
            w, cls._weight_channel_axis, bias, s_in=s_in, s_out=s_out,
            input_zero_point=input_zero_point, output_zero_point=out_zp,
            activation=activation, dtype=dt), **kwargs)
        return _quant.with_float_origin(layer, w, bias, input_scale=s_in, output_scale=s_out,
                                        activation=activation)
