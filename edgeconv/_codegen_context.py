"""The common template context of one layer (docs/architecture.md, "Template context")."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeconv._codegen_names import c_comment

# Class name (anywhere in the MRO) -> op name.
_OPS = {"Conv2D": "conv2d", "DepthwiseConv2D": "depthwise_conv2d", "Conv1D": "conv1d",
        "MaxPool2D": "max_pool2d", "AvgPool2D": "avg_pool2d", "SignalFilter": "signal_filter"}
CONV_OPS = ("conv2d", "depthwise_conv2d", "conv1d")
POOL_OPS = ("max_pool2d", "avg_pool2d")
_CTYPES = {1: "int8_t", 2: "int16_t", 4: "int32_t"}
INT32_MAX = (1 << 31) - 1
INT64_ACC_LIMIT = 1 << 47  # domain of fixedpoint.multiply_by_quantized_multiplier_int64
AVG_POOL_MAX_WINDOW = 65535  # 65535 * 32768 < 2**31: the C sum of int16 values fits int32


def op_of(layer: Any) -> str:
    """The op name of ``layer`` from its class (or a base class)."""
    for cls in type(layer).__mro__:
        if cls.__name__ in _OPS:
            return _OPS[cls.__name__]
    raise ValueError(f"layer={layer!r}: not a supported layer type ({', '.join(_OPS)})")


def _ints(values: Any) -> list[int]:
    return [int(v) for v in np.asarray(values).ravel()]


def _input_shape(layer: Any) -> tuple[int, ...]:
    shape = getattr(layer, "input_shape", None)
    if shape is None:
        raise ValueError(f"layer {layer.name!r}: input_shape=None, codegen needs a shape")
    return tuple(int(d) for d in shape)


def _geometry(layer: Any, op: str, in_shape: tuple[int, ...]) -> dict[str, int]:
    """Normalized NHWC geometry; Conv1D becomes height 1."""
    out_shape = tuple(int(d) for d in layer.output_shape_for(in_shape))
    pads = layer.pads_for(in_shape)
    if op == "conv1d":
        (iw, ic), (ow, oc) = in_shape, out_shape
        ((pl, pr),) = pads
        return dict(in_h=1, in_w=iw, in_c=ic, out_h=1, out_w=ow, out_c=oc,
                    k_h=1, k_w=int(layer.weights.shape[1]), stride_h=1,
                    stride_w=int(layer.stride[0]), dil_h=1, dil_w=int(layer.dilation[0]),
                    pad_top=0, pad_bottom=0, pad_left=int(pl), pad_right=int(pr))
    (ih, iw, ic), (oh, ow, oc) = in_shape, out_shape
    (pt, pb), (pl, pr) = pads
    if op in POOL_OPS:
        kh, kw = (int(k) for k in layer.pool_size)
        dh = dw = 1
    else:
        kh, kw = (int(k) for k in layer.weights.shape[1:3])
        dh, dw = (int(d) for d in layer.dilation)
    sh, sw = (int(s) for s in layer.stride)
    return dict(in_h=ih, in_w=iw, in_c=ic, out_h=oh, out_w=ow, out_c=oc, k_h=kh, k_w=kw,
                stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=int(pt),
                pad_bottom=int(pb), pad_left=int(pl), pad_right=int(pr))


def _acc_bound(layer: Any, op: str, wide: bool) -> int:
    """Largest ``|sum of products + bias|`` any input can produce (Python int)."""
    w = np.abs(np.asarray(layer.weights, dtype=np.int64))
    if op == "depthwise_conv2d":
        per_channel = w.reshape(-1, w.shape[-1]).sum(axis=0)
    else:
        per_channel = w.reshape(w.shape[0], -1).sum(axis=1)
    if wide:
        x_max = 1 << 15
    else:
        zp = int(layer.input_zero_point)
        x_max = max(abs(-128 - zp), abs(127 - zp))
    bias = np.zeros(per_channel.shape, dtype=object) if layer.bias is None else \
        np.abs(np.asarray(layer.bias).astype(object))
    return int(max(int(s) * x_max + int(b) for s, b in zip(per_channel, bias, strict=True)))


def _conv_context(layer: Any, op: str, geo: dict[str, int]) -> dict[str, Any]:
    wide = np.dtype(layer.activation_dtype) == np.int16
    out_c = geo["out_c"]
    if op == "depthwise_conv2d":
        dm = int(layer.depth_multiplier)
        groups, icpg, ocpg = geo["in_c"], 1, dm
    else:
        dm = 1
        groups = int(layer.groups)
        icpg = int(layer.weights.shape[-1])
        ocpg = out_c // groups
    bound = _acc_bound(layer, op, wide)
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
    shift = _ints(layer.output_shift)
    lo, hi = (-31, 7) if wide else (-31, 30)
    bad = [s for s in shift if not lo <= s <= hi]
    if bad:
        raise ValueError(f"layer {layer.name!r}: output_shift={bad[0]}: allowed range is "
                         f"[{lo}, {hi}]")
    return dict(
        groups=groups, in_c_per_group=icpg, out_c_per_group=ocpg, depth_multiplier=dm,
        weights=_ints(layer.weights), bias=None if layer.bias is None else _ints(layer.bias),
        bias_ctype="int64_t" if wide else "int32_t",
        # int8: the reference wraps the exact accumulator to int32 (as TFLite's int32 sum
        # does); when that can happen, C sums in int64 and wraps explicitly (no UB).
        acc_ctype="int64_t" if wide or bound > INT32_MAX else "int32_t",
        acc_wraps=not wide and bound > INT32_MAX,
        multiplier=_ints(np.broadcast_to(layer.output_multiplier, (out_c,))),
        shift=_ints(np.broadcast_to(shift, (out_c,))),
        input_offset=-int(layer.input_zero_point), output_offset=int(layer.output_zero_point),
        rounding=str(layer.rounding), requantize=requantize, acc_bound=bound)


def layer_context(layer: Any, name: str, cpu: str) -> dict[str, Any]:
    """Everything a layer template needs except the plan (strategy, scratch, plan.context)."""
    op = op_of(layer)
    in_shape = _input_shape(layer)
    in_bytes = np.dtype(layer.activation_dtype).itemsize
    ctx: dict[str, Any] = dict(layer=layer, name=name, NAME=name.upper(), op=op, cpu=cpu,
                               in_ctype=_CTYPES[in_bytes], out_ctype=_CTYPES[in_bytes],
                               input_shape=in_shape,
                               input_count=int(np.prod(in_shape)))
    if op == "signal_filter":
        ctx.update(_signal_context(layer))
        ctx["output_shape"] = (ctx["output_length"],)
    else:
        geo = _geometry(layer, op, in_shape)
        ctx.update(geo)
        ctx.update(act_min=int(layer.activation_min), act_max=int(layer.activation_max))
        if op in CONV_OPS:
            ctx.update(_conv_context(layer, op, geo))
        elif op == "avg_pool2d" and geo["k_h"] * geo["k_w"] > AVG_POOL_MAX_WINDOW:
            raise ValueError(f"layer {name!r}: pool_size {geo['k_h']}x{geo['k_w']}: window "
                             f"area allowed range is [1, {AVG_POOL_MAX_WINDOW}] (int32 sum)")
        ctx["output_shape"] = tuple(int(d) for d in layer.output_shape_for(in_shape))
    ctx["output_count"] = int(np.prod(ctx["output_shape"]))
    _check_index_range(ctx)
    return ctx


def _check_index_range(ctx: dict[str, Any]) -> None:
    """Generated index arithmetic is int32: every array index and loop bound the
    templates form stays below the largest of these sizes."""
    sizes = {"input elements": ctx["input_count"], "output elements": ctx["output_count"],
             "weights": len(ctx.get("weights", ())),
             "output_length * stride + input_length + kernel length":
                 ctx.get("output_length", 0) * ctx.get("stride", 1) + ctx.get("n_in", 0)
                 + ctx.get("n_kernel", 0)}
    for what, size in sizes.items():
        if size > INT32_MAX // 2:
            raise ValueError(f"layer {ctx['name']!r}: {what} = {size}: allowed range is "
                             f"[1, {INT32_MAX // 2}] (32-bit index arithmetic)")


def _signal_context(layer: Any) -> dict[str, Any]:
    """Q-format filter: the taps as convolved (reversed for correlate), where output 0
    sits in the full result, and the requantization constants."""
    kernel = _ints(layer.kernel)
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
    frac_bits = {"q7": 7, "q15": 15, "q31": 31}[fmt]
    out_bits = 1 + frac_bits
    accumulator = int(layer.accumulator)
    if not 8 <= accumulator <= 128:
        raise ValueError(f"layer {layer.name!r}: accumulator={accumulator}: allowed range "
                         f"is [8, 128]")
    rounding = str(layer.rounding)
    if rounding not in ("floor", "nearest"):
        raise ValueError(f"layer {layer.name!r}: rounding={rounding!r}: allowed are "
                         f"'floor', 'nearest'")
    return dict(kernel=kernel, taps=kernel[::-1] if kind == "correlate" else kernel,
                n_kernel=n, n_in=m, kind=kind, mode=mode, fmt=fmt, stride=int(layer.stride),
                output_length=int(layer.output_length), first=first,
                lead_zeros=max(m - n, 0) if padded else 0,
                trail_zeros=max(n - m, 0) if padded else 0,
                rounding=rounding, round_add=(1 << (frac_bits - 1)) if rounding == "nearest"
                else 0, saturate=bool(layer.saturate), accumulator=accumulator,
                frac_bits=frac_bits, out_bits=out_bits, out_min=-(1 << frac_bits),
                out_max=(1 << frac_bits) - 1)


def quant_facts(ctx: dict[str, Any]) -> list[str]:
    """Lines for the header's comment block: what the numbers mean (sanitized)."""
    op = ctx["op"]
    facts = [f"op {op}, input {ctx['input_shape']} {ctx['in_ctype']}, "
             f"output {ctx['output_shape']} {ctx['out_ctype']}"]
    if op == "signal_filter":
        layer = ctx["layer"]
        opts = {k: getattr(layer, k) for k in ("rounding", "saturate", "accumulator")
                if hasattr(layer, k)}
        facts.append(f"{ctx['kind']} mode={ctx['mode']} fmt={ctx['fmt']} "
                     f"taps={ctx['n_kernel']} stride={ctx['stride']} {opts}")
    else:
        facts.append(f"window {ctx['k_h']}x{ctx['k_w']} stride {ctx['stride_h']}x"
                     f"{ctx['stride_w']} dilation {ctx['dil_h']}x{ctx['dil_w']} pads "
                     f"t{ctx['pad_top']} b{ctx['pad_bottom']} l{ctx['pad_left']} "
                     f"r{ctx['pad_right']}")
        facts.append(f"activation range [{ctx['act_min']}, {ctx['act_max']}]")
    if op in CONV_OPS:
        facts.append(f"input_zero_point {-ctx['input_offset']}, output_zero_point "
                     f"{ctx['output_offset']}, rounding {ctx['rounding']}, groups "
                     f"{ctx['groups']}, depth_multiplier {ctx['depth_multiplier']}")
        facts.append(f"per-channel real scale = multiplier * 2**(shift - 31); requantized by "
                     f"{ctx['requantize']}")
        facts.append(f"output_multiplier {ctx['multiplier']}")
        facts.append(f"output_shift {ctx['shift']}")
    return [c_comment(f) for f in facts]
