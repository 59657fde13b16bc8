"""A .tflite model as a graph of reference layers: ``Model.from_tflite(path)``.

Each operator becomes one :class:`Node` that holds the reference layer built with the
integer parameters TFLite's ``Prepare`` computes (per-channel multipliers through
:func:`edgeconv.fixedpoint.quantize_multiplier`, fused activation -> clamp range) and
runs it on the tensors the operator reads.  Everything is checked when the model is
loaded: an op outside the supported set, an unsupported variant (dtype, option) or
quantization that an op needs equal on two tensors and that is not, raises one
ValueError line naming the op, its operator index and its tensor names.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgeconv.layers import (
    Add,
    AvgPool2D,
    Concatenation,
    Conv2D,
    DepthwiseConv2D,
    Dequantize,
    Logistic,
    MaxPool2D,
    Mean,
    Mul,
    Pad,
    Quantize,
    Requantize,
    Softmax,
    _quant,
)
from edgeconv.layers.dense import FullyConnected
from edgeconv.model.tflite_reader import ModelInfo, OperatorInfo, TensorInfo, read_tflite

SEMANTICS = ("tflite", "tflm")
# How FULLY_CONNECTED requantizes its sum, the one op where the two runtimes differ (see
# docs/semantics.md): LiteRT's reference kernel rounds once, TFLite Micro's int8 kernel
# rounds twice (gemmlowp high-mul, then rounding shift) and its 16x8 kernel uses the
# int64 requantization with the multiplier reduced to 16 bits (as both runtimes' 16x8 conv).
_FC_ROUNDING = {("tflite", "int8"): "single", ("tflite", "int16"): "single",
                ("tflm", "int8"): "double", ("tflm", "int16"): "int64"}
_ACTIVATION_DTYPES = (np.dtype(np.int8), np.dtype(np.int16))
_TFLITE_INT32 = 2  # TensorType.INT32 (tflite/schema.fbs), as in Conv2DOptions.quantized_bias_type

# values[i] is the array of tensor i; a node reads its inputs there and returns its output
Kernel = Callable[[list[np.ndarray]], np.ndarray]


def unbatched(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A tensor's shape without its leading batch dimension of 1 (codegen's layers see one
    item); shapes of one dim, or with another leading extent, stay as they are."""
    return tuple(shape[1:]) if len(shape) >= 2 and shape[0] == 1 else tuple(shape)


@dataclasses.dataclass(frozen=True)
class Node:
    """One operator of the graph: ``kernel(inputs) -> output`` on the arrays of the
    operator's non-constant input tensors (in operator order).  ``layer`` is the reference
    layer object (a codegen-able layer: unbatched ``input_shape``, constants folded; None
    only for RESHAPE / SQUEEZE, which move no data)."""

    operator: OperatorInfo
    layer: Any
    kernel: Kernel
    inputs: tuple[int, ...]   # tensor indices fed to ``kernel``
    output: int


class _Builder:
    """Turns the operators of a :class:`ModelInfo` into :class:`Node` objects."""

    def __init__(self, info: ModelInfo, semantics: str = "tflite") -> None:
        self.info = info
        self.semantics = semantics

    # ---------------------------------------------------------------- helpers
    def tensor(self, index: int) -> TensorInfo:
        return self.info.tensors[index]

    def error(self, op: OperatorInfo, reason: str) -> ValueError:
        ins = [self.tensor(i).name if i >= 0 else "-" for i in op.inputs]
        outs = [self.tensor(i).name for i in op.outputs]
        return ValueError(f"{op.opcode} (operator {op.index}, inputs {ins}, outputs {outs}): "
                          f"{reason}")

    def arity(self, op: OperatorInfo, n_in: tuple[int, ...], n_out: int = 1) -> None:
        if len(op.inputs) not in n_in or len(op.outputs) != n_out:
            raise self.error(op, f"{len(op.inputs)} inputs / {len(op.outputs)} outputs, "
                             f"allowed are {' or '.join(map(str, n_in))} / {n_out}")

    def activation_dtype(self, op: OperatorInfo, *tensors: TensorInfo) -> np.dtype:
        """The common int8/int16 dtype of ``tensors``; ValueError otherwise."""
        dtypes = {t.type_name for t in tensors}
        dt = tensors[0].dtype
        if len(dtypes) != 1 or dt not in _ACTIVATION_DTYPES:
            got = ", ".join(f"{t.name}: {t.type_name}" for t in tensors)
            raise self.error(op, f"tensor types ({got}) not supported, allowed are int8 "
                             "or int16 (16x8) activations, all the same")
        return dt

    def per_tensor(self, op: OperatorInfo, t: TensorInfo, *,
                   int16_zero_point: bool = True) -> tuple[float, int]:
        """``(scale, zero_point)`` of a per-tensor quantized activation tensor (16x8
        int16 tensors have zero point 0 unless ``int16_zero_point`` is False)."""
        q = t.quantization
        if q is None:
            raise self.error(op, f"tensor {t.name!r} has no quantization parameters, "
                             "allowed are quantized activations")
        if q.per_channel:
            raise self.error(op, f"tensor {t.name!r} is quantized per channel ({q}), "
                             "allowed is per-tensor quantization for activations")
        scale, zp = float(q.scale[0]), int(q.zero_point[0])
        if t.dtype == np.int16 and zp != 0 and int16_zero_point:
            raise self.error(op, f"tensor {t.name!r}: int16 zero point {zp}, must be 0 (16x8)")
        return scale, zp

    def same_quantization(self, op: OperatorInfo, a: TensorInfo, b: TensorInfo) -> None:
        """TFLite requires equal scale and zero point for ``a`` and ``b`` (pooling, pad,
        reshape, int8/int16 concatenation work on the raw integers)."""
        if not (a.quantization is not None and a.quantization.same_as(b.quantization)):
            raise self.error(op, f"quantization mismatch: {a.name!r} has ({a.quantization}) "
                             f"but {b.name!r} has ({b.quantization}); {op.opcode} needs "
                             "them equal")

    def constant(self, op: OperatorInfo, index: int, what: str,
                 dtypes: tuple[type, ...]) -> np.ndarray:
        t = self.tensor(index)
        if t.data is None:
            raise self.error(op, f"{what} {t.name!r} is not a constant tensor, only "
                             "constant ones are supported")
        if t.data.dtype not in [np.dtype(d) for d in dtypes]:
            allowed = ", ".join(np.dtype(d).name for d in dtypes)
            raise self.error(op, f"{what} {t.name!r} has type {t.type_name}, allowed: "
                             f"{allowed}")
        return t.data

    def activation_name(self, op: OperatorInfo) -> str:
        """The fused activation's TFLite name; ValueError for TANH / SIGN_BIT."""
        act = op.options.get("fused_activation_function", "NONE")
        if act not in _quant.FUSED_ACTIVATIONS:
            raise self.error(op, f"fused activation {act!r} not supported, allowed are "
                             f"{', '.join(_quant.FUSED_ACTIVATIONS)}")
        return act

    def activation_range(self, op: OperatorInfo, out: TensorInfo,
                         dt: np.dtype) -> tuple[int, int]:
        """TFLite ``CalculateActivationRangeQuantized`` of the fused activation."""
        scale, zp = self.per_tensor(op, out)
        return _quant.fused_activation_range(self.activation_name(op), scale, zp, dt)

    def make_layer(self, op: OperatorInfo, cls: Callable[..., Any], **kwargs: Any) -> Any:
        """Construct a reference layer; its ValueError becomes the op's one-line error."""
        try:
            return cls(**kwargs)
        except ValueError as exc:
            raise self.error(op, str(exc)) from None

    def weights_and_multipliers(self, op: OperatorInfo, x: TensorInfo, w: TensorInfo,
                                y: TensorInfo, channel_axis: int, layout: str
                                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Constant int8 filter with symmetric per-tensor or per-channel quantization along
        ``channel_axis`` and TFLite's per-channel ``QuantizeMultiplier(s_in * s_w /
        s_out)`` (double arithmetic, as ``PopulateConvolutionQuantizationParams``)."""
        weights = self.constant(op, op.inputs[1], f"filter ({layout})", (np.int8,))
        q = w.quantization
        if q is None:
            raise self.error(op, f"filter {w.name!r} has no quantization parameters")
        n_out = weights.shape[channel_axis]
        if q.per_channel and (q.scale.size != n_out or q.axis % weights.ndim != channel_axis):
            raise self.error(op, f"filter {w.name!r}: {q.scale.size} scales along axis "
                             f"{q.axis}, must be 1 or {n_out} along axis {channel_axis}")
        if np.any(q.zero_point != 0):
            raise self.error(op, f"filter {w.name!r}: non-zero zero points, only symmetric "
                             "int8 filters are supported")
        s_in, _ = self.per_tensor(op, x)
        s_out, _ = self.per_tensor(op, y)
        w_scales = np.broadcast_to(q.scale, (n_out,))
        try:
            mult, shift = _quant.output_multipliers(s_in, w_scales, s_out)
        except ValueError as exc:
            raise self.error(op, str(exc)) from None
        return weights, mult, shift

    def bias(self, op: OperatorInfo, dt: np.dtype, n_out: int) -> np.ndarray | None:
        """The constant bias: int32 for int8, int64 for 16x8; a 16x8 CONV_2D may also hold
        an int32 bias (the converter's int32-bias option), which its options declare with
        ``quantized_bias_type`` INT32: LiteRT then runs ``ConvPerChannel<int32_t>``, which
        the layer follows when handed the int32 array. Without that declaration LiteRT
        reads the int32 buffer as int64 (past its end), so loading refuses it; LiteRT's
        DEPTHWISE_CONV_2D and FULLY_CONNECTED refuse an int32 16x8 bias, and so does
        loading."""
        if len(op.inputs) < 3 or op.inputs[2] < 0:
            return None
        declared = int(op.options.get("quantized_bias_type", 0))  # 0: FLOAT32, unset
        if dt == np.int16 and op.opcode == "CONV_2D" and declared == _TFLITE_INT32:
            want: tuple[type, ...] = (np.int32,)
        elif dt == np.int16:
            t = self.tensor(op.inputs[2])
            if op.opcode == "CONV_2D" and t.data is not None and t.data.dtype == np.int32:
                raise self.error(op, f"bias {t.name!r} has type INT32 but the options' "
                                 "quantized_bias_type is not INT32: LiteRT would read it as "
                                 "int64; allowed: int64, or int32 declared as such")
            want = (np.int64,)
        else:
            want = (np.int32,)
        bias = self.constant(op, op.inputs[2], "bias", want)
        if bias.shape != (n_out,):
            raise self.error(op, f"bias shape {bias.shape}, must be ({n_out},)")
        return bias

    # -------------------------------------------------------------------- ops
    def build(self, op: OperatorInfo) -> Node:
        builder = getattr(self, "op_" + op.opcode.lower(), None)
        if builder is None or op.opcode.startswith("CUSTOM"):
            raise self.error(op, f"op {op.opcode} is not supported; supported ops are "
                             f"{', '.join(supported_ops())}")
        return builder(op)

    def _node(self, op: OperatorInfo, layer: Any, kernel: Kernel,
              inputs: Sequence[int] | None = None) -> Node:
        return Node(operator=op, layer=layer, kernel=kernel,
                    inputs=tuple(op.inputs[:1] if inputs is None else inputs),
                    output=op.outputs[0])

    def _conv_like(self, op: OperatorInfo, depthwise: bool) -> Node:
        self.arity(op, (2, 3))
        x, w, y = self.tensor(op.inputs[0]), self.tensor(op.inputs[1]), self.tensor(op.outputs[0])
        dt = self.activation_dtype(op, x, y)
        if len(x.shape) != 4 or len(w.shape) != 4:
            raise self.error(op, f"input shape {x.shape}, filter shape {w.shape}: both must "
                             "be 4-D (NHWC, OHWI / 1HWO)")
        _, x_zp = self.per_tensor(op, x)
        _, y_zp = self.per_tensor(op, y)
        axis = 3 if depthwise else 0
        weights, mult, shift = self.weights_and_multipliers(
            op, x, w, y, axis, "1HWO" if depthwise else "OHWI")
        amin, amax = self.activation_range(op, y, dt)
        o = op.options
        common = dict(
            weights=weights, bias=self.bias(op, dt, weights.shape[axis]),
            output_multiplier=mult, output_shift=shift,
            stride=(o["stride_h"], o["stride_w"]), padding=o["padding"],
            dilation=(o["dilation_hfactor"], o["dilation_wfactor"]),
            input_zero_point=x_zp, output_zero_point=y_zp, activation_min=amin,
            activation_max=amax, activation_dtype=dt,
            name=f"{op.opcode.lower()}_{op.index}", input_shape=x.shape[1:])
        in_c = x.shape[3]
        if depthwise:
            if weights.shape[3] % in_c:
                raise self.error(op, f"filter has {weights.shape[3]} channels, not a multiple "
                                 f"of the {in_c} input channels")
            layer = self.make_layer(op, DepthwiseConv2D,
                                    depth_multiplier=weights.shape[3] // in_c, **common)
        else:
            if in_c % weights.shape[3]:
                raise self.error(op, f"{in_c} input channels, not a multiple of the filter's "
                                 f"{weights.shape[3]} (groups)")
            layer = self.make_layer(op, Conv2D, groups=in_c // weights.shape[3], **common)
        self._check_output_shape(op, layer.output_shape_for(x.shape[1:]), y)
        return self._node(op, layer, lambda xs: layer(xs[0]))

    def _check_output_shape(self, op: OperatorInfo, shape: tuple[int, ...],
                            y: TensorInfo) -> None:
        if tuple(shape) != tuple(y.shape[1:]):
            raise self.error(op, f"computed output shape {tuple(shape)} differs from the "
                             f"model's {y.shape[1:]} for tensor {y.name!r}")

    def op_conv_2d(self, op: OperatorInfo) -> Node:
        return self._conv_like(op, depthwise=False)

    def op_depthwise_conv_2d(self, op: OperatorInfo) -> Node:
        return self._conv_like(op, depthwise=True)

    def op_fully_connected(self, op: OperatorInfo) -> Node:
        self.arity(op, (2, 3))
        x, w, y = self.tensor(op.inputs[0]), self.tensor(op.inputs[1]), self.tensor(op.outputs[0])
        dt = self.activation_dtype(op, x, y)
        if op.options.get("weights_format", 0) != 0:
            raise self.error(op, "shuffled weights format not supported, allowed is DEFAULT")
        if len(w.shape) != 2:
            raise self.error(op, f"filter shape {w.shape}, must be (O, K)")
        _, x_zp = self.per_tensor(op, x)
        _, y_zp = self.per_tensor(op, y)
        weights, mult, shift = self.weights_and_multipliers(op, x, w, y, 0, "OK")
        amin, amax = self.activation_range(op, y, dt)
        n_out, depth = weights.shape
        size = int(np.prod(x.shape))
        if size % depth or int(np.prod(y.shape)) != size // depth * n_out:
            raise self.error(op, f"input shape {x.shape} and output shape {y.shape} do not "
                             f"fit a ({n_out}, {depth}) filter")
        layer = self.make_layer(
            op, FullyConnected, weights=weights, bias=self.bias(op, dt, n_out),
            output_multiplier=mult, output_shift=shift, input_zero_point=x_zp,
            output_zero_point=y_zp, activation_min=amin, activation_max=amax,
            activation_dtype=dt, rounding=_FC_ROUNDING[self.semantics, dt.name],
            name=f"fully_connected_{op.index}", input_shape=(depth,))
        out_shape = y.shape
        # TFLite flattens every input dimension but the last into rows.
        return self._node(op, layer, lambda xs: layer(xs[0].reshape(-1, depth)).reshape(
            out_shape))

    def _pool(self, op: OperatorInfo, cls: type) -> Node:
        self.arity(op, (1,))
        x, y = self.tensor(op.inputs[0]), self.tensor(op.outputs[0])
        dt = self.activation_dtype(op, x, y)
        self.per_tensor(op, x)
        self.same_quantization(op, x, y)
        if len(x.shape) != 4:
            raise self.error(op, f"input shape {x.shape}, must be 4-D (NHWC)")
        amin, amax = self.activation_range(op, y, dt)
        o = op.options
        layer = self.make_layer(
            op, cls, pool_size=(o["filter_height"], o["filter_width"]),
            stride=(o["stride_h"], o["stride_w"]), padding=o["padding"],
            activation_min=amin, activation_max=amax, activation_dtype=dt,
            name=f"{op.opcode.lower()}_{op.index}", input_shape=x.shape[1:])
        self._check_output_shape(op, layer.output_shape_for(x.shape[1:]), y)
        return self._node(op, layer, lambda xs: layer(xs[0]))

    def op_max_pool_2d(self, op: OperatorInfo) -> Node:
        return self._pool(op, MaxPool2D)

    def op_average_pool_2d(self, op: OperatorInfo) -> Node:
        return self._pool(op, AvgPool2D)

    def _reshape_like(self, op: OperatorInfo) -> Node:
        x, y = self.tensor(op.inputs[0]), self.tensor(op.outputs[0])
        self.activation_dtype(op, x, y)
        self.same_quantization(op, x, y)
        if int(np.prod(x.shape)) != int(np.prod(y.shape)):
            raise self.error(op, f"input shape {x.shape} and output shape {y.shape} differ "
                             "in size")
        out_shape = y.shape
        return self._node(op, None, lambda xs: xs[0].reshape(out_shape))

    def op_reshape(self, op: OperatorInfo) -> Node:
        self.arity(op, (1, 2))
        return self._reshape_like(op)

    def op_squeeze(self, op: OperatorInfo) -> Node:
        self.arity(op, (1,))
        return self._reshape_like(op)

    def op_pad(self, op: OperatorInfo) -> Node:
        self.arity(op, (2,))
        x, y = self.tensor(op.inputs[0]), self.tensor(op.outputs[0])
        self.activation_dtype(op, x, y)
        self.same_quantization(op, x, y)
        pads = self.constant(op, op.inputs[1], "paddings", (np.int32, np.int64))
        if pads.shape != (len(x.shape), 2) or pads.min() < 0:
            raise self.error(op, f"paddings {pads.tolist()}: must be ({len(x.shape)}, 2) "
                             "non-negative")
        widths = [(int(a), int(b)) for a, b in pads]
        if tuple(s + a + b for s, (a, b) in zip(x.shape, widths, strict=True)) != y.shape:
            raise self.error(op, f"paddings {widths} on {x.shape} do not give {y.shape}")
        # PAD (without a value input) fills with the output zero point: real 0.
        _, zp = self.per_tensor(op, y)
        in_shape = unbatched(x.shape)
        if len(in_shape) < len(x.shape):
            if widths[0] != (0, 0):
                in_shape = x.shape  # the batch dimension itself is padded
            else:
                widths = widths[1:]
        layer = self.make_layer(op, Pad, paddings=widths, pad_value=zp,
                                activation_dtype=x.dtype, name=f"pad_{op.index}",
                                input_shape=in_shape)
        out_shape = y.shape
        return self._node(op, layer, lambda xs: layer(xs[0].reshape(in_shape)).reshape(
            out_shape))

    def op_concatenation(self, op: OperatorInfo) -> Node:
        if not op.inputs or len(op.outputs) != 1:
            raise self.error(op, "needs at least one input and one output")
        xs_t = [self.tensor(i) for i in op.inputs]
        y = self.tensor(op.outputs[0])
        self.activation_dtype(op, *xs_t, y)
        if op.options.get("fused_activation_function", "NONE") != "NONE":
            raise self.error(op, "fused activation "
                             f"{op.options['fused_activation_function']!r} not supported "
                             "on CONCATENATION, allowed is NONE")
        # TFLite's int8/int16 kernels copy raw integers: every input must share the
        # output's scale and zero point (its Prepare refuses anything else).
        for t in xs_t:
            self.per_tensor(op, t)
            self.same_quantization(op, t, y)
        axis = op.options.get("axis", 0)
        rank = len(y.shape)
        if not -rank <= axis < rank:
            raise self.error(op, f"axis {axis} out of range for rank {rank}")
        axis %= rank
        shapes = [unbatched(t.shape) for t in xs_t]
        drop = all(len(sh) < rank for sh in shapes) and axis > 0
        layer = self.make_layer(
            op, Concatenation, input_shapes=shapes if drop else [t.shape for t in xs_t],
            axis=axis - 1 if drop else axis, activation_dtype=y.dtype,
            name=f"concatenation_{op.index}")
        out_shape = y.shape
        item_shapes = layer.input_shapes
        return self._node(op, layer, lambda xs: layer(*[a.reshape(sh) for a, sh in zip(
            xs, item_shapes, strict=True)]).reshape(out_shape), inputs=op.inputs)

    def _binary(self, op: OperatorInfo, cls: type, **options: Any) -> Node:
        """ADD / MUL: two tensors (either may be a constant) broadcasting against each
        other; the layer's ``from_quantization`` computes TFLite's Prepare parameters."""
        self.arity(op, (2,))
        a, b, y = (self.tensor(i) for i in (*op.inputs, op.outputs[0]))
        dt = self.activation_dtype(op, a, b, y)
        (s1, z1), (s2, z2), (so, zo) = (self.per_tensor(op, t) for t in (a, b, y))
        # codegen's view: fed operands without the batch dimension, a constant operand
        # folded into the layer (its leading 1s beyond the output's rank dropped)
        rank = len(unbatched(y.shape))
        for i, t in enumerate((a, b), start=1):
            if t.data is not None:
                data = t.data
                while data.ndim > rank and data.shape[0] == 1:
                    data = data[0]
                options[f"constant{i}"] = data
            else:
                options[f"input{i}_shape"] = unbatched(t.shape)
        try:
            layer = cls.from_quantization(
                input1_scale=s1, input1_zero_point=z1, input2_scale=s2, input2_zero_point=z2,
                output_scale=so, output_zero_point=zo, activation_dtype=dt,
                activation=self.activation_name(op), name=f"{op.opcode.lower()}_{op.index}",
                **options)
            shape = layer.output_shape_for(a.shape, b.shape)
        except ValueError as exc:
            raise self.error(op, str(exc)) from None
        if shape != y.shape:
            raise self.error(op, f"broadcast shape {shape} differs from the model's {y.shape}")
        constants = [t.data for t in (a, b)]
        fed = [t.index for t in (a, b) if t.data is None]

        def kernel(xs: list[np.ndarray]) -> np.ndarray:
            it = iter(xs)
            x1, x2 = (c if c is not None else next(it) for c in constants)
            return layer(x1, x2)
        return self._node(op, layer, kernel, inputs=fed)

    def op_add(self, op: OperatorInfo) -> Node:
        return self._binary(op, Add, pot_scale_int16=bool(op.options.get("pot_scale_int16",
                                                                         False)))

    def op_mul(self, op: OperatorInfo) -> Node:
        return self._binary(op, Mul)

    def op_mean(self, op: OperatorInfo) -> Node:
        self.arity(op, (2,))
        x, y = self.tensor(op.inputs[0]), self.tensor(op.outputs[0])
        dt = self.activation_dtype(op, x, y)
        (s_in, z_in), (s_out, z_out) = self.per_tensor(op, x), self.per_tensor(op, y)
        axis = self.constant(op, op.inputs[1], "axis", (np.int32, np.int64))
        keep_dims = bool(op.options.get("keep_dims", False))
        options = dict(input_scale=s_in, input_zero_point=z_in, output_scale=s_out,
                       output_zero_point=z_out, activation_dtype=dt, keep_dims=keep_dims,
                       name=f"mean_{op.index}")
        try:
            layer = Mean.from_quantization(axis=axis, **options)
            shape = layer.output_shape_for(x.shape)
            axes = layer.resolve_axis(len(x.shape))
            in_shape = unbatched(x.shape)
            if len(in_shape) < len(x.shape) and 0 not in axes:
                # the same mean on one item: axes shifted past the batch dimension
                layer = Mean.from_quantization(axis=[a - 1 for a in axes],
                                               input_shape=in_shape, **options)
        except ValueError as exc:
            raise self.error(op, str(exc)) from None
        if tuple(shape) != y.shape:
            raise self.error(op, f"output shape {tuple(shape)} differs from the model's "
                             f"{y.shape}")
        if layer.input_shape is None:
            return self._node(op, layer, lambda xs: layer(xs[0]))
        out_shape = y.shape
        return self._node(op, layer, lambda xs: layer(xs[0].reshape(in_shape)).reshape(
            out_shape))

    def _unary(self, op: OperatorInfo, cls: type, **options: Any) -> Node:
        """SOFTMAX / LOGISTIC: one input, the layer's ``from_quantization`` computes
        TFLite's Prepare parameters (it refuses the output scales TFLite refuses).
        SOFTMAX also takes int8 input with int16 output (TFLite ``Softmax<int8, int16>``,
        output zero point -32768)."""
        self.arity(op, (1,))
        x, y = self.tensor(op.inputs[0]), self.tensor(op.outputs[0])
        mixed = cls is Softmax and x.dtype == np.int8 and y.dtype == np.int16
        dt = self.activation_dtype(op, x) if mixed else self.activation_dtype(op, x, y)
        if mixed:
            options["output_dtype"] = np.int16
        (s_in, z_in) = self.per_tensor(op, x)
        (s_out, z_out) = self.per_tensor(op, y, int16_zero_point=not mixed)
        if x.shape != y.shape:
            raise self.error(op, f"input shape {x.shape} and output shape {y.shape} differ")
        try:
            layer = cls.from_quantization(
                input_scale=s_in, input_zero_point=z_in, output_scale=s_out,
                output_zero_point=z_out, activation_dtype=dt,
                name=f"{op.opcode.lower()}_{op.index}", input_shape=unbatched(x.shape),
                **options)
        except ValueError as exc:
            raise self.error(op, str(exc)) from None
        return self._node(op, layer, lambda xs: layer(xs[0]))

    def op_softmax(self, op: OperatorInfo) -> Node:
        return self._unary(op, Softmax, beta=float(op.options.get("beta", 1.0)))

    def op_logistic(self, op: OperatorInfo) -> Node:
        return self._unary(op, Logistic)

    def op_quantize(self, op: OperatorInfo) -> Node:
        """float32 -> int8/int16 (a float model's input): TFLite ``AffineQuantize``,
        ``q = clamp(round(x / scale) + zero_point)``, the quotient in float32 and rounded
        half away from zero.  int8/int16 -> int8/int16 (the converter's requantization,
        e.g. before a CONCATENATION of differently scaled tensors): TFLite ``Requantize``,
        ``clamp(MultiplyByQuantizedMultiplier(q - zp_in, QuantizeMultiplier(s_in / s_out))
        + zp_out)``."""
        self.arity(op, (1,))
        x, y = self.tensor(op.inputs[0]), self.tensor(op.outputs[0])
        if y.dtype not in _ACTIVATION_DTYPES or (x.dtype != np.float32
                                                 and x.dtype not in _ACTIVATION_DTYPES):
            raise self.error(op, f"{x.type_name} -> {y.type_name} not supported, allowed are "
                             "FLOAT32, INT8 or INT16 -> INT8 or INT16")
        scale, zp = self.per_tensor(op, y)
        name, in_shape = f"quantize_{op.index}", unbatched(x.shape)
        if x.dtype == np.float32:
            layer = self.make_layer(op, Quantize, scale=scale, zero_point=zp,
                                    output_dtype=y.dtype, name=name, input_shape=in_shape)
        else:
            s_in, zp_in = self.per_tensor(op, x)
            try:  # Prepare: the ratio of the two float scales, in double
                layer = Requantize.from_quantization(
                    input_scale=s_in, input_zero_point=zp_in, output_scale=scale,
                    output_zero_point=zp, activation_dtype=x.dtype, output_dtype=y.dtype,
                    name=name, input_shape=in_shape)
            except ValueError as exc:
                raise self.error(op, str(exc)) from None
        return self._node(op, layer, lambda xs: layer(xs[0]))

    def op_dequantize(self, op: OperatorInfo) -> Node:
        """int8/int16 -> float32 at the model's output: TFLite ``Dequantize``,
        ``float(scale * (q - zero_point))`` with the product in double."""
        self.arity(op, (1,))
        x, y = self.tensor(op.inputs[0]), self.tensor(op.outputs[0])
        if x.dtype not in _ACTIVATION_DTYPES or y.dtype != np.float32:
            raise self.error(op, f"{x.type_name} -> {y.type_name} not supported, allowed is "
                             "INT8 / INT16 -> FLOAT32 (float model output)")
        scale, zp = self.per_tensor(op, x)
        layer = self.make_layer(op, Dequantize, scale=scale, zero_point=zp,
                                activation_dtype=x.dtype, name=f"dequantize_{op.index}",
                                input_shape=unbatched(x.shape))
        return self._node(op, layer, lambda xs: layer(xs[0]))


def supported_ops() -> list[str]:
    """TFLite builtin op names :class:`Model` accepts."""
    return sorted(name[3:].upper() for name in vars(_Builder) if name.startswith("op_"))


class Model:
    """A TFLite model run by the reference layers.

    ``model(x)`` returns the output (a list when the model has several); ``x`` is an
    array of the input tensor's dtype and shape (a leading batch dimension of 1 may be
    left out), a list of such arrays for several inputs.  ``model.trace(x)`` returns
    every tensor computed on the way, the inputs included, keyed by TFLite tensor name.
    ``semantics='tflite'`` (default) follows the LiteRT interpreter's reference kernels
    (``BUILTIN_REF``); ``semantics='tflm'`` follows TFLite Micro's reference kernels where
    they differ: FULLY_CONNECTED requantizes with two roundings (int8) or the int64 path
    (16x8) instead of one (docs/semantics.md says why the results differ).
    """

    def __init__(self, info: ModelInfo, *, semantics: str = "tflite") -> None:
        if not isinstance(semantics, str) or semantics not in SEMANTICS:
            raise ValueError(f"semantics={semantics!r}: allowed are 'tflite' (the LiteRT "
                             "interpreter's reference kernels), 'tflm' (TFLite Micro's)")
        self.semantics = semantics
        self.info = info
        self.tensors = info.tensors
        builder = _Builder(info, semantics)
        self.nodes = tuple(builder.build(op) for op in info.operators)
        self.inputs = tuple(self.tensors[i] for i in info.inputs)
        self.outputs = tuple(self.tensors[i] for i in info.outputs)
        self._check_dataflow()
        # trace keys: TFLite names, made unique with '#<index>' where names repeat
        names = [t.name for t in self.tensors]
        self._keys = [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]

    @classmethod
    def from_tflite(cls, path: str | os.PathLike, *, semantics: str = "tflite") -> Model:
        """Load a .tflite flatbuffer (see the module doc for what is refused)."""
        return cls(read_tflite(path), semantics=semantics)

    def _check_dataflow(self) -> None:
        """Every tensor an operator reads is a model input, a constant or written by an
        earlier operator (TFLite stores operators in execution order)."""
        ready = set(self.info.inputs)
        for node in self.nodes:
            for i in node.inputs:
                if i not in ready and self.tensors[i].data is None:
                    raise ValueError(f"{node.operator.opcode} (operator {node.operator.index}): "
                                     f"input tensor {self.tensors[i].name!r} is computed by "
                                     "no earlier operator")
            ready.add(node.output)
        for t in self.outputs:
            if t.index not in ready:
                raise ValueError(f"model output {t.name!r} is computed by no operator")

    # ------------------------------------------------------------------ running
    def _feed(self, x: object) -> dict[int, np.ndarray]:
        arrays = [x] if len(self.inputs) == 1 else x
        if not isinstance(arrays, (list, tuple)) or len(arrays) != len(self.inputs):
            raise ValueError(f"x: the model has {len(self.inputs)} inputs, give a list of "
                             f"{len(self.inputs)} arrays")
        values = {}
        for t, a in zip(self.inputs, arrays, strict=True):
            if not isinstance(a, np.ndarray) or a.dtype != t.dtype:
                got = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
                raise ValueError(f"x: dtype {got} not allowed for input {t.name!r}, must be "
                                 f"a numpy {t.type_name.lower()} array")
            if a.shape != t.shape and (a.shape != t.shape[1:] or t.shape[:1] != (1,)):
                raise ValueError(f"x: shape {a.shape} not allowed for input {t.name!r}, must "
                                 f"be {t.shape}" + (f" or {t.shape[1:]}"
                                                    if t.shape[:1] == (1,) else ""))
            values[t.index] = a.reshape(t.shape)
        return values

    def _run(self, x: object) -> dict[int, np.ndarray]:
        values = self._feed(x)
        for node in self.nodes:
            values[node.output] = node.kernel([values[i] for i in node.inputs])
        return values

    def __call__(self, x: object) -> np.ndarray | list[np.ndarray]:
        values = self._run(x)
        outs = [values[t.index] for t in self.outputs]
        return outs[0] if len(outs) == 1 else outs

    def trace(self, x: object) -> dict[str, np.ndarray]:
        """Every computed tensor (inputs first, then operator outputs in execution order)
        keyed by TFLite tensor name."""
        return {self._keys[i]: a for i, a in self._run(x).items()}

    def key(self, tensor_index: int) -> str:
        """The :meth:`trace` key of a tensor."""
        return self._keys[tensor_index]

    def __repr__(self) -> str:
        ops = ", ".join(n.operator.opcode for n in self.nodes)
        return f"Model({self.info.path!r}, {len(self.nodes)} ops: {ops})"


def load(path: str | os.PathLike, *, semantics: str = "tflite") -> Model:
    """``Model.from_tflite(path)``."""
    return Model.from_tflite(path, semantics=semantics)


__all__ = ["Model", "Node", "load", "supported_ops"]
