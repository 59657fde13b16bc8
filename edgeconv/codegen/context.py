"""The common template context of one layer (docs/architecture.md, "Template context"):
everything a kernel needs to know about the layer, computed once."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from edgeconv.codegen.geometry import (
    Geometry,
    acc_bound,
    geometry,
    max_input_term,
    weight_rows,
)
from edgeconv.codegen.names import c_comment, ints
from edgeconv.fixedpoint import INT32_MAX
from edgeconv.signal import KINDS, MODES, shift_limit
from edgeconv.signal2d import BOUNDARIES, _axis_region, _index_map

# Class name (anywhere in the MRO) -> op name.
_OPS = {"Conv2D": "conv2d", "DepthwiseConv2D": "depthwise_conv2d", "Conv1D": "conv1d",
        "MaxPool2D": "max_pool2d", "AvgPool2D": "avg_pool2d", "SignalFilter": "signal_filter",
        "Network": "network", "SignalFilter2D": "signal_filter2d",
        "MatchTemplate": "match_template",
        "FullyConnected": "fully_connected", "Add": "add", "Mul": "mul", "Mean": "mean",
        "Softmax": "softmax", "Logistic": "logistic", "Pad": "pad",
        "Concatenation": "concatenation", "Requantize": "requantize", "Quantize": "quantize",
        "Dequantize": "dequantize", "ConvBackward": "conv_backward",
        "PoolBackward": "pool_backward", "SGDUpdate": "sgd_update",
        "FirTrainStep": "fir_train_step", "SignalBackward": "signal_backward",
        "DenseTrainStep": "dense_train_step"}
# edgeconv.backprop's layers: kernels in edgeconv.codegen.kernels.backward.
BACKWARD_OPS = ("conv_backward", "pool_backward", "sgd_update", "fir_train_step",
                "signal_backward", "dense_train_step")
CONV_OPS = ("conv2d", "depthwise_conv2d", "conv1d")
# The whole-model ops (kernels in edgeconv.codegen.kernels.nnops): no window geometry;
# their kernel family reads the layer itself.
NN_OPS = ("fully_connected", "add", "mul", "mean", "softmax", "logistic", "pad",
          "concatenation", "requantize", "quantize", "dequantize")
_CTYPES = {1: "int8_t", 2: "int16_t", 4: "int32_t"}
INT64_ACC_LIMIT = 1 << 47  # domain of fixedpoint.multiply_by_quantized_multiplier_int64
AVG_POOL_MAX_WINDOW = 65535  # 65535 * 32768 < 2**31: the C sum of int16 values fits int32


def ctype_of(dtype: Any) -> str:
    """The C type of a numpy dtype: ``int8_t``, ``int16_t``, ``int32_t`` or ``float``."""
    dt = np.dtype(dtype)
    if dt == np.float32:
        return "float"
    if dt.kind != "i" or dt.itemsize not in _CTYPES:
        raise ValueError(f"dtype {dt.name}: allowed are int8, int16, int32, float32")
    return _CTYPES[dt.itemsize]


def op_of(layer: Any) -> str:
    """The op name of ``layer`` from its class (or a base class)."""
    for cls in type(layer).__mro__:
        if cls.__name__ in _OPS:
            return _OPS[cls.__name__]
    raise ValueError(f"layer={layer!r}: not a supported layer type ({', '.join(_OPS)})")


@dataclass(frozen=True)
class ConvParams:
    """Conv-like layers: weights, bias and requantization as the templates read them."""

    groups: int
    in_c_per_group: int
    out_c_per_group: int
    depth_multiplier: int
    weights: list[int]
    bias: list[int] | None
    bias_ctype: str
    acc_ctype: str
    acc_wraps: bool
    multiplier: list[int]
    shift: list[int]
    input_offset: int
    output_offset: int
    rounding: str
    requantize: str
    acc_bound: int


@dataclass(frozen=True, kw_only=True)
class QNumerics:
    """The requantization of a Q-format filter (1-D or 2-D): an optional rounding add in
    an ``accumulator``-bit sum, a right shift by ``frac_bits`` (the layer's ``shift``),
    saturation to ``[out_min, out_max]`` (``out_bits`` wide) or wrapping."""

    rounding: str
    round_add: int
    saturate: bool
    accumulator: int
    frac_bits: int
    out_bits: int
    out_min: int
    out_max: int


@dataclass(frozen=True, kw_only=True)
class SignalParams(QNumerics):
    """Q-format 1-D filters (``SignalFilter``)."""

    kernel: list[int]
    taps: list[int]
    n_kernel: int
    n_in: int
    kind: str
    mode: str
    fmt: str
    stride: int
    output_length: int
    first: int
    lead_zeros: int
    trail_zeros: int


@dataclass(frozen=True, kw_only=True)
class Signal2DParams(QNumerics):
    """Q-format 2-D filters (``SignalFilter2D``), in the correlation orientation:
    ``out[i, j] = sum_{k, l} taps[k * n2 + l] * xe[rows[i + k], cols[j + l]]``, where
    ``rows`` / ``cols`` give the source row / column of each extended index (the boundary
    applied; -1 reads ``fillvalue``). The numerics are those of ``SignalParams``."""

    taps: list[int]
    n1: int
    n2: int
    in_h: int
    in_w: int
    out_h: int
    out_w: int
    rows: list[int]
    cols: list[int]
    col_off: int
    kind: str
    mode: str
    boundary: str
    fillvalue: int
    fmt: str


@dataclass(frozen=True)
class LayerContext:
    """One layer as codegen sees it. ``geo`` is None for signal filters; ``conv`` holds
    the conv-like layers' parameters, ``signal`` the signal filters'."""

    layer: Any
    name: str
    op: str
    cpu: str
    in_ctype: str
    out_ctype: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_count: int
    output_count: int
    input_counts: tuple[int, ...] = ()  # per input of a multi-input op (packed in order)
    geo: Geometry | None = None
    act_min: int = 0
    act_max: int = 0
    conv: ConvParams | None = None
    signal: SignalParams | None = None
    signal2d: Signal2DParams | None = None

    @property
    def NAME(self) -> str:  # noqa: N802 - the macro prefix, as templates spell it
        return self.name.upper()

    def template_vars(self) -> dict[str, Any]:
        """The variables a layer template receives: these fields, ``NAME``, and the
        conv or signal parameters flattened in."""
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name not in ("conv", "signal", "signal2d")}
        out["NAME"] = self.NAME
        for part in (self.conv, self.signal, self.signal2d):
            if part is not None:
                out.update({f.name: getattr(part, f.name) for f in fields(part)})
        return out


def _input_shape(layer: Any) -> tuple[int, ...]:
    shape = getattr(layer, "input_shape", None)
    if shape is None:
        raise ValueError(f"layer {layer.name!r}: input_shape=None, codegen needs a shape")
    return tuple(int(d) for d in shape)


def _conv_params(layer: Any, op: str, geo: Geometry) -> ConvParams:
    # 16x8 with an int64 bias: int64 accumulator and the 64-bit requantization. int8 and
    # 16x8 with an int32 bias (TFLite's ConvPerChannel<int32_t>): an int32 accumulator
    # requantized like int8 (the layer's ``accumulator_dtype``).
    wide = np.dtype(layer.accumulator_dtype) == np.int64
    out_c = geo.out_c
    if op == "depthwise_conv2d":
        dm = int(layer.depth_multiplier)
        groups, icpg, ocpg = geo.in_c, 1, dm
    else:
        dm = 1
        groups = int(layer.groups)
        icpg = int(layer.weights.shape[-1])
        ocpg = out_c // groups
    bound = acc_bound(weight_rows(layer, op), layer.bias, max_input_term(layer))
    if wide:
        if bound >= INT64_ACC_LIMIT:
            raise ValueError(f"layer {layer.name!r}: accumulator bound {bound} outside the "
                             f"16x8 requantization domain [-2**47, 2**47)")
        requantize = "edgeconv_mbqm_int64"
    else:
        rounding = str(layer.rounding)
        if rounding not in ("double", "single"):
            raise ValueError(f"layer {layer.name!r}: rounding={rounding!r}: allowed are "
                             f"'double', 'single'")
        requantize = f"edgeconv_mbqm_{rounding}"
    shift = ints(layer.output_shift)
    lo, hi = (-31, 7) if wide else (-31, 30)
    bad = [s for s in shift if not lo <= s <= hi]
    if bad:
        raise ValueError(f"layer {layer.name!r}: output_shift={bad[0]}: allowed range is "
                         f"[{lo}, {hi}]")
    return ConvParams(
        groups=groups, in_c_per_group=icpg, out_c_per_group=ocpg, depth_multiplier=dm,
        weights=ints(layer.weights), bias=None if layer.bias is None else ints(layer.bias),
        bias_ctype="int64_t" if wide else "int32_t",
        # int32 accumulator: the reference wraps the exact accumulator to int32 (as
        # TFLite's int32 sum does); when that can happen, C sums in int64 and wraps
        # explicitly (no UB).
        acc_ctype="int64_t" if wide or bound > INT32_MAX else "int32_t",
        acc_wraps=not wide and bound > INT32_MAX,
        multiplier=ints(np.broadcast_to(layer.output_multiplier, (out_c,))),
        shift=ints(np.broadcast_to(shift, (out_c,))),
        input_offset=-int(layer.input_zero_point), output_offset=int(layer.output_zero_point),
        rounding=str(layer.rounding), requantize=requantize, acc_bound=bound)


def layer_context(layer: Any, name: str, cpu: str,
                  input_shape: tuple[int, ...] | None = None) -> LayerContext:
    """Everything a layer template needs except the kernel's own context, for
    ``input_shape`` (default: the layer's own)."""
    op = op_of(layer)
    if op in BACKWARD_OPS:
        return _backward_context(layer, name, cpu, op)
    in_shape = _input_shape(layer) if input_shape is None else tuple(int(d) for d in input_shape)
    ctype = ctype_of(layer.activation_dtype)
    out_ctype = ctype_of(getattr(layer, "output_dtype", None) or layer.activation_dtype)
    common = dict(layer=layer, name=name, op=op, cpu=cpu, in_ctype=ctype, out_ctype=out_ctype,
                  input_shape=in_shape, input_count=int(np.prod(in_shape)))
    if op == "network":
        out_shape = tuple(int(d) for d in layer.output_shape)
        ctx = LayerContext(**common, output_shape=out_shape,
                           output_count=int(np.prod(out_shape)))
    elif op in NN_OPS:
        shapes = getattr(layer, "input_shapes", None) or (in_shape,)
        if len(shapes) > 1 and in_shape != tuple(layer.input_shape):
            raise ValueError(f"layer {name!r}: input_shape={in_shape}: a {op} layer with "
                             f"{len(shapes)} inputs is generated for its own packed shape "
                             f"{tuple(layer.input_shape)} only")
        out_shape = tuple(int(d) for d in layer.output_shape_for(in_shape))
        ctx = LayerContext(**common, output_shape=out_shape,
                           output_count=int(np.prod(out_shape)),
                           input_counts=tuple(int(np.prod(s)) for s in shapes))
    elif op == "signal_filter":
        sig = _signal_params(layer)
        out_shape: tuple[int, ...] = (sig.output_length,)
        ctx = LayerContext(**common, output_shape=out_shape, output_count=sig.output_length,
                           signal=sig)
    elif op == "match_template":  # kernels in edgeconv.codegen.kernels.match2d
        out_shape = tuple(int(d) for d in layer.output_shape_for(in_shape))
        ctx = LayerContext(**common, output_shape=out_shape,
                           output_count=int(np.prod(out_shape)))
    elif op == "signal_filter2d":
        sig2 = _signal2d_params(layer, in_shape)
        ctx = LayerContext(**common, output_shape=(sig2.out_h, sig2.out_w),
                           output_count=sig2.out_h * sig2.out_w, signal2d=sig2)
    else:
        geo = geometry(layer, op, in_shape)
        if op == "avg_pool2d" and geo.k_h * geo.k_w > AVG_POOL_MAX_WINDOW:
            raise ValueError(f"layer {name!r}: pool_size {geo.k_h}x{geo.k_w}: window "
                             f"area allowed range is [1, {AVG_POOL_MAX_WINDOW}] (int32 sum)")
        out_shape = tuple(int(d) for d in layer.output_shape_for(in_shape))
        ctx = LayerContext(**common, output_shape=out_shape,
                           output_count=int(np.prod(out_shape)), geo=geo,
                           act_min=int(layer.activation_min), act_max=int(layer.activation_max),
                           conv=_conv_params(layer, op, geo) if op in CONV_OPS else None)
    _check_index_range(ctx)
    return ctx


def _backward_context(layer: Any, name: str, cpu: str, op: str) -> LayerContext:
    """A backward layer: flat vectors in and out (dtypes of their own); ``geo`` is the
    forward layer's geometry (None for the SGD and FIR train steps and signal filters)."""
    in_shape, out_shape = tuple(layer.input_shape), tuple(layer.output_shape)
    geo = None
    if op in ("conv_backward", "pool_backward"):
        fwd = layer.layer
        geo = geometry(fwd, op_of(fwd), tuple(fwd.input_shape))
    ctx = LayerContext(layer=layer, name=name, op=op, cpu=cpu,
                       in_ctype=ctype_of(layer.activation_dtype),
                       out_ctype=ctype_of(layer.output_dtype),
                       input_shape=in_shape, output_shape=out_shape,
                       input_count=int(np.prod(in_shape)), output_count=int(np.prod(out_shape)),
                       geo=geo)
    _check_index_range(ctx)
    return ctx


def _check_index_range(ctx: LayerContext) -> None:
    """Generated index arithmetic is int32: every array index and loop bound the
    templates form stays below the largest of these sizes."""
    sig = ctx.signal
    sizes = {"input elements": ctx.input_count, "output elements": ctx.output_count,
             "weights": len(ctx.conv.weights) if ctx.conv else 0,
             "output_length * stride + input_length + kernel length":
                 sig.output_length * sig.stride + sig.n_in + sig.n_kernel if sig else 0}
    for what, size in sizes.items():
        if size > INT32_MAX // 2:
            raise ValueError(f"layer {ctx.name!r}: {what} = {size}: allowed range is "
                             f"[1, {INT32_MAX // 2}] (32-bit index arithmetic)")


def _signal_params(layer: Any) -> SignalParams:
    """Q-format filter: the taps as convolved (reversed for correlate), where output 0
    sits in the full result, and the requantization constants."""
    kernel = ints(layer.kernel)
    m, n = int(layer.input_length), len(kernel)
    kind, mode, fmt = str(layer.kind), str(layer.mode), str(layer.fmt)
    for what, value, allowed in (("kind", kind, ("convolve", "correlate")),
                                 ("mode", mode, ("full", "same", "valid")),
                                 ("fmt", fmt, ("q7", "q15", "q31"))):
        if value not in allowed:
            raise ValueError(f"layer {layer.name!r}: {what}={value!r}: allowed are "
                             f"{', '.join(allowed)}")
    first = {"same": (n - 1) // 2, "valid": min(m, n) - 1}.get(mode, 0)
    padded = kind == "correlate" and mode == "full"
    return SignalParams(
        kernel=kernel, taps=kernel[::-1] if kind == "correlate" else kernel, n_kernel=n,
        n_in=m, kind=kind, mode=mode, fmt=fmt, stride=int(layer.stride),
        output_length=int(layer.output_length), first=first,
        lead_zeros=max(m - n, 0) if padded else 0, trail_zeros=max(n - m, 0) if padded else 0,
        **_q_numerics(layer))


def _q_numerics(layer: Any) -> dict[str, Any]:
    """The requantization constants of a Q-format filter (1-D or 2-D): optional rounding
    add in the accumulator, shift (``frac_bits``: the layer's ``shift``, by default the
    format's fraction bits), saturate or wrap to the format's ``out_bits``."""
    out_bits = {"q7": 8, "q15": 16, "q31": 32}[str(layer.fmt)]
    frac_bits = int(layer.shift)  # the format's fraction bits unless the layer says
    accumulator = int(layer.accumulator)
    if not 8 <= accumulator <= 128:
        raise ValueError(f"layer {layer.name!r}: accumulator={accumulator}: allowed range "
                         f"is [8, 128]")
    rounding = str(layer.rounding)
    if rounding not in ("floor", "nearest"):
        raise ValueError(f"layer {layer.name!r}: rounding={rounding!r}: allowed are "
                         f"'floor', 'nearest'")
    if not 0 <= frac_bits <= shift_limit(accumulator):
        raise ValueError(f"layer {layer.name!r}: shift={frac_bits}: allowed range is "
                         f"[0, {shift_limit(accumulator)}]")
    return dict(rounding=rounding,
                round_add=(1 << (frac_bits - 1)) if rounding == "nearest" and frac_bits else 0,
                saturate=bool(layer.saturate), accumulator=accumulator, frac_bits=frac_bits,
                out_bits=out_bits, out_min=-(1 << (out_bits - 1)),
                out_max=(1 << (out_bits - 1)) - 1)


def _source_indices(start: int, length: int, size: int, boundary: str) -> list[int]:
    """Source index of extended positions ``start .. start + length - 1`` of an axis of
    ``size`` samples under ``boundary`` (signal2d's own rule); -1 where 'fill' reads the
    fill value."""
    idx = np.arange(start, start + length)
    if boundary == "fill":
        return ints(np.where((idx >= 0) & (idx < size), idx, -1))
    return ints(_index_map(idx, size, boundary))


def _signal2d_params(layer: Any, in_shape: tuple[int, ...]) -> Signal2DParams:
    """The taps as correlated (flipped for convolve), the extended rows and columns the
    outputs read, and the requantization constants."""
    kind, mode, fmt, boundary = (str(layer.kind), str(layer.mode), str(layer.fmt),
                                 str(layer.boundary))
    for what, value, allowed in (("kind", kind, KINDS), ("mode", mode, MODES),
                                 ("fmt", fmt, ("q7", "q15", "q31")),
                                 ("boundary", boundary, BOUNDARIES)):
        if value not in allowed:
            raise ValueError(f"layer {layer.name!r}: {what}={value!r}: allowed are "
                             f"{', '.join(allowed)}")
    if len(in_shape) != 2:
        raise ValueError(f"layer {layer.name!r}: input_shape={in_shape}: must be (H, W)")
    kernel = np.asarray(layer.kernel, dtype=np.int64)
    (in_h, in_w), (n1, n2) = in_shape, kernel.shape
    taps = kernel[::-1, ::-1] if kind == "convolve" else kernel
    (r0, out_h), (c0, out_w) = (_axis_region(kind, mode, m, n)
                                for m, n in ((in_h, n1), (in_w, n2)))
    fillvalue = int(layer.fillvalue)
    if mode == "valid":  # as the reference: 'valid' outputs never read the boundary
        boundary, fillvalue = "fill", 0
    row_off, col_off = r0 - (n1 - 1), c0 - (n2 - 1)
    return Signal2DParams(
        taps=ints(taps), n1=int(n1), n2=int(n2), in_h=in_h, in_w=in_w, out_h=out_h,
        out_w=out_w, rows=_source_indices(row_off, out_h + n1 - 1, in_h, boundary),
        cols=_source_indices(col_off, out_w + n2 - 1, in_w, boundary), col_off=col_off,
        kind=kind, mode=mode, boundary=boundary, fillvalue=fillvalue, fmt=fmt,
        **_q_numerics(layer))


def quant_facts(ctx: LayerContext) -> list[str]:
    """Lines for the header's comment block: what the numbers mean (sanitized)."""
    facts = [f"op {ctx.op}, input {ctx.input_shape} {ctx.in_ctype}, "
             f"output {ctx.output_shape} {ctx.out_ctype}"]
    sig, geo, conv = ctx.signal, ctx.geo, ctx.conv
    sig2 = ctx.signal2d
    if sig2 is not None:
        facts.append(f"{sig2.kind} mode={sig2.mode} fmt={sig2.fmt} kernel {sig2.n1}x{sig2.n2} "
                     f"boundary={sig2.boundary} fillvalue={sig2.fillvalue} "
                     f"rounding={sig2.rounding} saturate={sig2.saturate} "
                     f"accumulator={sig2.accumulator}")
    if ctx.op == "match_template":
        facts.append(f"match_template method={ctx.layer.method} fmt={ctx.layer.fmt} "
                     f"template {ctx.layer.template.shape[0]}x{ctx.layer.template.shape[1]}")
    if ctx.op in NN_OPS:
        if len(ctx.input_counts) > 1:
            facts.append(f"inputs packed in order, element counts {list(ctx.input_counts)}")
        scalars = {k: val for k, val in ctx.layer.spec().items()
                   if k not in ("op", "input_shape") and not isinstance(val, (list, tuple))}
        facts.append(f"parameters {scalars}")
    if sig is not None:
        opts = {k: getattr(ctx.layer, k) for k in ("rounding", "saturate", "accumulator")
                if hasattr(ctx.layer, k)}
        facts.append(f"{sig.kind} mode={sig.mode} fmt={sig.fmt} "
                     f"taps={sig.n_kernel} stride={sig.stride} {opts}")
    if geo is not None:
        facts.append(f"window {geo.k_h}x{geo.k_w} stride {geo.stride_h}x{geo.stride_w} "
                     f"dilation {geo.dil_h}x{geo.dil_w} pads t{geo.pad_top} "
                     f"b{geo.pad_bottom} l{geo.pad_left} r{geo.pad_right}")
        facts.append(f"activation range [{ctx.act_min}, {ctx.act_max}]")
    if conv is not None:
        facts.append(f"input_zero_point {-conv.input_offset}, output_zero_point "
                     f"{conv.output_offset}, rounding {conv.rounding}, groups "
                     f"{conv.groups}, depth_multiplier {conv.depth_multiplier}")
        facts.append(f"per-channel real scale = multiplier * 2**(shift - 31); requantized by "
                     f"{conv.requantize}")
        facts.append(f"output_multiplier {conv.multiplier}")
        facts.append(f"output_shift {conv.shift}")
    return [c_comment(f) for f in facts]
