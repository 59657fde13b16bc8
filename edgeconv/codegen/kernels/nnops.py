"""Portable kernels of the whole-model ops (templates ``codegen/kernels/nnops/``), one per
op, for every CPU; codegen reaches them through ``generic.select`` (they have no direct /
im2col variants and no Cortex-M fast path yet).

- ``fully_connected``: ``FullyConnected``, int8 and 16x8, per-tensor and per-channel.
  Weights ``(O, K)`` int8 as the layer holds them; per-channel multiplier and shift
  arrays; the requantization the layer's ``rounding`` names (``'single'``, TFLite's FC,
  by ``edgeconv_round_once_wide`` for 16x8).  int8 sums in int32 (int64 and an explicit
  wrap when the bound can pass 2**31). No scratch. ``fc_<conv kernel>``: where the CPU
  has a fast conv kernel for the equal 1x1 Conv2D on a 1x1xK input (int8 FC, and 16x8
  with rounding ``'int64'``; ``fc_as_conv1x1``), that kernel's template with the conv's
  variables, packing and scratch (e.g. ``fc_dsp_conv_1x1``: 1.48 instructions per MAC
  for 640 -> 128 on the Cortex-M4 against 6.05 for the portable loop).
- ``add``, ``mul``: ``Add`` / ``Mul`` with numpy (TFLite) broadcasting over up to 6
  dims: a loop nest over the output with each operand's strides (0 where it
  broadcasts), adjacent dimensions merged where every operand is contiguous. A constant
  operand is a ``<name>_const`` array. Two fed operands: two input pointers. int8 ADD
  reads each operand's rescaled value from a 256-entry table (``<name>_rescale1``,
  ``<name>_rescale2``, computed by the reference's requantizer). No scratch.
- ``mean``: ``Mean`` over any axes: outer loops over the kept dims, inner ones over the
  reduced dims; the ``1/n`` multiplier folded at generation time (``Mean.rescale_for``).
  No scratch.
- ``softmax``: int8 -> int8 / int16: the 256 possible differences to the row maximum get
  their exp (Q0.31, ``<name>_exp``) and its Q12.19 term (``<name>_term``) from the
  reference layer's own fixed-point functions at generation time; C sums the terms (int32
  wrap), takes gemmlowp's reciprocal (``edgeconv_reciprocal``) and scales. int16: TFLite's
  two 513-entry tables (``<name>_exp``, ``<name>_recip``) as const arrays, interpolated
  by ``edgeconv_lut16``. No scratch.
- ``logistic``: int8: the layer's 256-entry table (``<name>_lut``); int16: TFLite's
  interpolation over its 256-entry Q0.16 sigmoid table (``<name>_lut``). No scratch.
- ``pad``: fill with the pad value, then copy the input rows into place. No scratch.
- ``concatenation``: per outer index, one block copy per input. No scratch.
- ``requantize``: ``edgeconv_mbqm_double`` per element. No scratch.
- ``quantize`` (float32 -> int): float32 division, rounding half away from zero without
  libm (exact: ``q - trunc(q)`` is exact in float32), saturating int32 conversion.
- ``dequantize`` (int -> float32): the product in double, rounded once to float.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeconv import fixedpoint
from edgeconv.codegen.context import INT64_ACC_LIMIT, NN_OPS, LayerContext, layer_context
from edgeconv.codegen.cpus import Cpu
from edgeconv.codegen.geometry import acc_bound, max_input_term
from edgeconv.codegen.kernels import dsp, m0, mve
from edgeconv.codegen.names import ints
from edgeconv.codegen.plan import Kernel, KernelPlan
from edgeconv.fixedpoint import INT32_MAX
from edgeconv.layers import Conv2D
from edgeconv.layers.activations import (
    SOFTMAX_ACCUMULATION_INTEGER_BITS,
    SOFTMAX_SCALED_DIFF_INTEGER_BITS,
    sigmoid_table_uint16,
    softmax_int16_tables,
)

_T = "kernels/nnops/"
# An int8 FULLY_CONNECTED (and a 16x8 one with rounding 'int64') is a 1x1 Conv2D on a
# 1x1xK input with the same requantization; where a CPU has a fast conv kernel for it, the
# FC runs that kernel: one declaration per fast conv kernel it can reach.
# (One output pixel: never dsp_conv's column asm, so never its ``tables``.)
FC_AS_CONV = {k.strategy: Kernel("fc_" + k.strategy, _T + "fc_as_conv.c.j2",
                                 tuple(s for s in k.symbols if s != "tables"))
              for k in (mve.MVE_CONV, dsp.DSP_CONV, m0.M0_CONV)}
KERNEL = {
    "fully_connected": Kernel("fully_connected", _T + "fully_connected.c.j2",
                              ("weights", "bias", "mult", "shift")),
    "add": Kernel("add", _T + "binary.c.j2", ("const", "rescale1", "rescale2")),
    "mul": Kernel("mul", _T + "binary.c.j2", ("const",)),
    "mean": Kernel("mean", _T + "mean.c.j2", ()),
    "softmax": Kernel("softmax", _T + "softmax.c.j2", ("exp", "term", "recip")),
    "logistic": Kernel("logistic", _T + "logistic.c.j2", ("lut",)),
    "pad": Kernel("pad", _T + "pad.c.j2", ()),
    "concatenation": Kernel("concatenation", _T + "concatenation.c.j2", ()),
    "requantize": Kernel("requantize", _T + "requantize.c.j2", ()),
    "quantize": Kernel("quantize", _T + "quantize.c.j2", ()),
    "dequantize": Kernel("dequantize", _T + "dequantize.c.j2", ()),
}
KERNELS = (*KERNEL.values(), *FC_AS_CONV.values())
OPS = NN_OPS
SOFTMAX_MAX_DEPTH = 1 << SOFTMAX_ACCUMULATION_INTEGER_BITS
SOFTMAX16_MAX_DEPTH = 1 << 16


def runs_on(cpu: Cpu) -> bool:
    """Portable C: every CPU."""
    return True


# ------------------------------------------------------------------------ loop nests

@dataclass(frozen=True)
class Loop:
    """One loop of a nest: ``extent`` iterations; ``strides[j]`` is how far operand j's
    index moves per iteration (elements; 0 where it broadcasts)."""

    extent: int
    strides: tuple[int, ...]


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """C-order element strides of ``shape``."""
    strides, step = [], 1
    for extent in reversed(shape):
        strides.append(step)
        step *= extent
    return tuple(reversed(strides))


def loop_nest(extents: tuple[int, ...], strides: list[tuple[int, ...]]) -> list[Loop]:
    """Loops over ``extents`` (outer first) with per-operand ``strides``: extent-1 loops
    dropped, a loop merged into the one outside it when every operand steps over the
    inner one contiguously (outer stride == inner stride * inner extent)."""
    loops: list[Loop] = []
    for d, extent in enumerate(extents):
        if extent == 1:
            continue
        step = tuple(s[d] for s in strides)
        if loops and all(o == i * extent for o, i in zip(loops[-1].strides, step,
                                                          strict=True)):
            loops[-1] = Loop(loops[-1].extent * extent, step)
        else:
            loops.append(Loop(extent, step))
    return loops


def index_expr(loops: list[Loop], operand: int, var: str = "i", base: int = 0) -> str:
    """C expression of operand ``operand``'s index in the nest (loop variables
    ``<var>0``, ``<var>1``, ...)."""
    terms = [f"{var}{d} * {loop.strides[operand]}" if loop.strides[operand] != 1
             else f"{var}{d}" for d, loop in enumerate(loops) if loop.strides[operand]]
    if base:
        terms.append(str(base))
    return " + ".join(terms) or "0"


def _broadcast_strides(shape: tuple[int, ...], out: tuple[int, ...]) -> tuple[int, ...]:
    """Strides of ``shape`` read at the output positions of ``out`` (numpy broadcasting:
    shapes aligned at the end, extent-1 dims repeat)."""
    full = (1,) * (len(out) - len(shape)) + tuple(shape)
    own = contiguous_strides(full)
    return tuple(0 if e == 1 and o != 1 else s for e, o, s in zip(full, out, own, strict=True))


# ------------------------------------------------------------------------- contexts

@dataclass(frozen=True)
class FcContext:
    """``k`` of fully_connected: weights ``(O, K)`` row-major and the requantization."""

    out_c: int
    in_k: int
    weights: list[int]
    bias: list[int] | None
    bias_ctype: str
    acc_ctype: str
    acc_wraps: bool
    multiplier: list[int]
    shift: list[int]
    input_offset: int
    output_offset: int
    requantize: str
    act_min: int
    act_max: int


@dataclass(frozen=True)
class FcAsConvContext:
    """``k`` of the ``fc_<conv kernel>`` kernels: the FC as a 1x1 Conv2D (``conv_ctx``)
    and the fast conv kernel's plan for it; the template renders that kernel's template
    with the conv's variables (same function signature, same symbols)."""

    conv_ctx: LayerContext
    conv_plan: KernelPlan

    def render(self) -> str:
        from edgeconv.codegen import _environment  # the package imports this module

        return _environment().get_template(self.conv_plan.template).render(
            self.conv_ctx.template_vars(), strategy=self.conv_plan.strategy,
            scratch_bytes=self.conv_plan.scratch_bytes, k=self.conv_plan.context)


def fc_as_conv1x1(layer: Any) -> Conv2D | None:
    """The 1x1 Conv2D on a ``(1, 1, K)`` input that computes exactly what ``layer`` (a
    FullyConnected) computes, or None when the requantization differs (16x8 FC with
    one rounding, TFLite's default: conv 16x8 requantizes with the int64 path)."""
    wide = np.dtype(layer.activation_dtype) == np.int16
    if layer.rounding not in (("int64",) if wide else ("single", "double")):
        return None
    return Conv2D(weights=layer.weights.reshape(layer.out_channels, 1, 1, layer.in_features),
                  bias=layer.bias, output_multiplier=layer.output_multiplier,
                  output_shift=layer.output_shift, input_zero_point=layer.input_zero_point,
                  output_zero_point=layer.output_zero_point,
                  activation_min=layer.activation_min, activation_max=layer.activation_max,
                  activation_dtype=layer.activation_dtype,
                  rounding="double" if wide else layer.rounding,
                  input_shape=(1, 1, layer.in_features))


def _fully_connected(ctx: LayerContext) -> KernelPlan:
    from edgeconv.codegen.kernels import select_fast  # the package imports this module

    layer = ctx.layer
    conv = fc_as_conv1x1(layer)
    if conv is not None:
        conv_ctx = layer_context(conv, ctx.name, ctx.cpu)
        conv_plan = select_fast(conv_ctx)
        if conv_plan is not None:
            return FC_AS_CONV[conv_plan.strategy].plan(
                conv_plan.scratch_bytes, FcAsConvContext(conv_ctx, conv_plan))
    wide = np.dtype(layer.activation_dtype) == np.int16
    zp = int(layer.input_zero_point)
    bound = acc_bound(np.asarray(layer.weights, np.int64), layer.bias, max_input_term(layer))
    if wide and bound >= INT64_ACC_LIMIT:
        raise ValueError(f"layer {ctx.name!r}: accumulator bound {bound} outside the 16x8 "
                         "requantization domain [-2**47, 2**47)")
    if wide:
        requantize = {"single": "edgeconv_round_once_wide",
                      "int64": "edgeconv_mbqm_int64"}[layer.rounding]
    else:
        requantize = f"edgeconv_mbqm_{layer.rounding}"
    k = FcContext(
        out_c=int(layer.out_channels), in_k=int(layer.in_features),
        weights=ints(layer.weights), bias=None if layer.bias is None else ints(layer.bias),
        bias_ctype="int64_t" if wide else "int32_t",
        acc_ctype="int64_t" if wide or bound > INT32_MAX else "int32_t",
        acc_wraps=not wide and bound > INT32_MAX,
        multiplier=ints(layer.output_multiplier), shift=ints(layer.output_shift),
        input_offset=-zp, output_offset=0 if wide else int(layer.output_zero_point),
        requantize=requantize, act_min=int(layer.activation_min),
        act_max=int(layer.activation_max))
    return KERNEL["fully_connected"].plan(0, k)


@dataclass(frozen=True)
class BinaryContext:
    """``k`` of add / mul: the loop nest over the output, where each operand comes from
    (``fed``: input pointer name, or None for the constant), the constant's values."""

    loops: list[Loop]
    index1: str
    index2: str
    source1: str
    source2: str
    constant: list[int] | None
    constant_count: int
    params: dict[str, int]
    rescale1: list[int] | None = None
    rescale2: list[int] | None = None


def _binary(ctx: LayerContext) -> KernelPlan:
    layer = ctx.layer
    out = tuple(ctx.output_shape)
    shape1, shape2 = tuple(layer.input1_shape), tuple(layer.input2_shape)
    strides = [contiguous_strides(out), _broadcast_strides(shape1, out),
               _broadcast_strides(shape2, out)]
    loops = loop_nest(out, strides)
    fed = iter(["input0", "input1"] if len(ctx.input_counts) == 2 else ["input"])
    sources, constant = [], None
    for c in (layer.constant1, layer.constant2):
        if c is None:
            sources.append(next(fed))
        else:
            sources.append(f"{ctx.name}_const")
            constant = ints(c)
    names = ["input1_zero_point", "input2_zero_point", "output_zero_point", "activation_min",
             "activation_max", "output_multiplier", "output_shift"]
    if ctx.op == "add":
        names += ["left_shift", "input1_multiplier", "input1_shift", "input2_multiplier",
                  "input2_shift"]
    params = {n: int(getattr(layer, n)) for n in names}
    tables: dict[str, list[int]] = {}
    if ctx.op == "add" and np.dtype(layer.activation_dtype) == np.int8:
        # int8 ADD: each operand's rescaled value depends on its 256 possible values only
        # (MBQM((x - zp) << left_shift)), tabulated with the reference's requantizer
        values = np.arange(-128, 128, dtype=np.int64)
        for i in (1, 2):
            rescale = fixedpoint.Requantizer(params[f"input{i}_multiplier"],
                                             params[f"input{i}_shift"], layer.rounding)
            tables[f"rescale{i}"] = ints(rescale(
                (values - params[f"input{i}_zero_point"]) << params["left_shift"]))
    k = BinaryContext(loops=loops, index1=index_expr(loops, 1), index2=index_expr(loops, 2),
                      source1=sources[0], source2=sources[1], constant=constant,
                      constant_count=len(constant or []), params=params, **tables)
    return KERNEL[ctx.op].plan(0, k)


@dataclass(frozen=True)
class MeanContext:
    """``k`` of mean: outer loops over kept dims (``outer``), inner loops over the reduced
    ones (``inner``); ``count`` elements per mean and the folded requantization."""

    outer: list[Loop]
    inner: list[Loop]
    outer_index: str
    inner_index: str
    count: int
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int
    requantize: str
    out_min: int
    out_max: int


def _mean(ctx: LayerContext) -> KernelPlan:
    layer = ctx.layer
    shape = tuple(ctx.input_shape)
    axes = layer.resolve_axis(len(shape))
    own = contiguous_strides(shape)
    kept = [d for d in range(len(shape)) if d not in axes]
    reduced = sorted(axes)
    outer = loop_nest(tuple(shape[d] for d in kept), [tuple(own[d] for d in kept)])
    inner = loop_nest(tuple(shape[d] for d in reduced), [tuple(own[d] for d in reduced)])
    count = int(np.prod([shape[d] for d in reduced]))
    mult, shift = layer.rescale_for(count)
    info = np.iinfo(layer.activation_dtype)
    k = MeanContext(outer=outer, inner=inner, outer_index=index_expr(outer, 0, "o"),
                    inner_index=index_expr(inner, 0, "r"), count=count,
                    input_zero_point=int(layer.input_zero_point),
                    output_zero_point=int(layer.output_zero_point), multiplier=int(mult),
                    shift=int(shift), requantize=f"edgeconv_mbqm_{layer.rounding}",
                    out_min=int(info.min), out_max=int(info.max))
    return KERNEL["mean"].plan(0, k)


@dataclass(frozen=True)
class SoftmaxContext:
    """``k`` of softmax: ``rows`` rows of ``depth`` values (the last axis).  int8:
    ``exp[d]`` (Q0.31) and ``term[d]`` (Q12.19, 0 below ``diff_min``) for ``d = 255 -
    (max - x)``, i.e. index 255 is the maximum; ``out_bits`` 8 or 16. int16: the tables."""

    rows: int
    depth: int
    wide: bool
    exp: list[int]
    term: list[int]
    recip: list[int]
    out_bits: int
    out_min: int
    out_max: int
    input_multiplier: int
    input_left_shift: int


def _softmax(ctx: LayerContext) -> KernelPlan:
    layer = ctx.layer
    depth = int(ctx.input_shape[-1])
    rows = ctx.input_count // depth
    out_info = np.iinfo(layer.output_dtype)
    if np.dtype(layer.activation_dtype) == np.int16:
        if depth > SOFTMAX16_MAX_DEPTH:
            # the sum of up to 32767 per value must stay below 2**32 (CountLeadingZeros)
            raise ValueError(f"layer {ctx.name!r}: int16 softmax over {depth} values: "
                             f"allowed are at most {SOFTMAX16_MAX_DEPTH}")
        exp_lut, recip_lut = softmax_int16_tables()
        k = SoftmaxContext(rows=rows, depth=depth, wide=True, exp=ints(exp_lut), term=[],
                           recip=ints(recip_lut), out_bits=16, out_min=0,
                           out_max=int(out_info.max),
                           input_multiplier=int(layer.input_multiplier),
                           input_left_shift=int(layer.input_left_shift))
        return KERNEL["softmax"].plan(0, k)
    if depth >= SOFTMAX_MAX_DEPTH:
        # 4096 terms of up to 2**19 can wrap the Q12.19 int32 sum, which the reference
        # refuses at run time for such rows; C cannot, so generation refuses the layer
        raise ValueError(f"layer {ctx.name!r}: int8 softmax over {depth} values: allowed "
                         f"are at most {SOFTMAX_MAX_DEPTH - 1} (TFLite's Q12.19 sum)")
    diff = np.arange(-255, 1, dtype=np.int64)
    kept = diff >= layer.diff_min
    # exactly the reference's arithmetic (Softmax._int8), once per possible difference
    scaled = fixedpoint._srdhm(np.where(kept, diff, 0) << layer.input_left_shift,
                               np.int64(layer.input_multiplier))
    exps = fixedpoint._exp_on_negative_values(scaled, SOFTMAX_SCALED_DIFF_INTEGER_BITS)
    terms = np.where(kept, fixedpoint._rdbp(exps, SOFTMAX_ACCUMULATION_INTEGER_BITS), 0)
    k = SoftmaxContext(rows=rows, depth=depth, wide=False,
                       exp=ints(np.where(kept, exps, 0)), term=ints(terms), recip=[],
                       out_bits=out_info.bits, out_min=int(out_info.min),
                       out_max=int(out_info.max), input_multiplier=0, input_left_shift=0)
    return KERNEL["softmax"].plan(0, k)


@dataclass(frozen=True)
class LogisticContext:
    """``k`` of logistic: int8 the layer's table (index ``x + 128``); int16 TFLite's
    sigmoid table and the input rescale."""

    wide: bool
    lut: list[int]
    input_multiplier: int
    input_left_shift: int


def _logistic(ctx: LayerContext) -> KernelPlan:
    layer = ctx.layer
    if layer.lut is not None:
        k = LogisticContext(False, ints(layer.lut), 0, 0)
    else:
        mult, shift = int(layer.input_multiplier), int(layer.input_left_shift)
        if mult == 0:  # power-of-two input scale (see Logistic.__call__)
            mult, shift = 3 << shift, 0
        k = LogisticContext(True, ints(sigmoid_table_uint16()), mult, shift)
    return KERNEL["logistic"].plan(0, k)


@dataclass(frozen=True)
class PadContext:
    """``k`` of pad: the loop nest over the input with input and output strides, the
    output offset of input element 0."""

    loops: list[Loop]
    in_index: str
    out_index: str
    pad_value: int


def _pad(ctx: LayerContext) -> KernelPlan:
    layer = ctx.layer
    shape, out = tuple(ctx.input_shape), tuple(ctx.output_shape)
    out_strides = contiguous_strides(out)
    base = sum(before * s for (before, _), s in zip(layer.paddings, out_strides, strict=True))
    loops = loop_nest(shape, [contiguous_strides(shape), out_strides])
    k = PadContext(loops=loops, in_index=index_expr(loops, 0),
                   out_index=index_expr(loops, 1, base=base), pad_value=int(layer.pad_value))
    return KERNEL["pad"].plan(0, k)


@dataclass(frozen=True)
class ConcatContext:
    """``k`` of concatenation: ``outer`` repetitions; per input its block (elements per
    outer index) and where that block starts in the output's block of ``out_block``."""

    outer: int
    blocks: list[int]
    offsets: list[int]
    out_block: int
    sources: list[str]


def _concatenation(ctx: LayerContext) -> KernelPlan:
    layer = ctx.layer
    axis = layer.axis
    shapes = [tuple(s) for s in layer.input_shapes]
    outer = int(np.prod(shapes[0][:axis]))
    blocks = [int(np.prod(s[axis:])) for s in shapes]
    offsets = [sum(blocks[:i]) for i in range(len(blocks))]
    sources = ["input"] if len(shapes) == 1 else [f"input{i}" for i in range(len(shapes))]
    k = ConcatContext(outer=outer, blocks=blocks, offsets=offsets, out_block=sum(blocks),
                      sources=sources)
    return KERNEL["concatenation"].plan(0, k)


@dataclass(frozen=True)
class ScalarContext:
    """``k`` of requantize / quantize / dequantize: their scalar parameters."""

    params: dict[str, Any]


def _scalar(ctx: LayerContext) -> KernelPlan:
    spec = ctx.layer.spec()
    params = {key: val for key, val in spec.items() if isinstance(val, (int, float))}
    out = getattr(ctx.layer, "output_dtype", None)
    if out is not None and np.dtype(out).kind == "i":
        info = np.iinfo(out)
        params.update(out_min=int(info.min), out_max=int(info.max))
    if ctx.op in ("quantize", "dequantize"):
        params["scale_hex"] = float(np.float32(ctx.layer.scale)).hex() \
            if ctx.op == "quantize" else float(ctx.layer.scale).hex()
    return KERNEL[ctx.op].plan(0, ScalarContext(params))


_BUILDERS = {"fully_connected": _fully_connected, "add": _binary, "mul": _binary,
             "mean": _mean, "softmax": _softmax, "logistic": _logistic, "pad": _pad,
             "concatenation": _concatenation, "requantize": _scalar, "quantize": _scalar,
             "dequantize": _scalar}


def select(ctx: LayerContext) -> KernelPlan | None:
    """The kernel of a whole-model op, None for any other op."""
    builder = _BUILDERS.get(ctx.op)
    return None if builder is None else builder(ctx)
