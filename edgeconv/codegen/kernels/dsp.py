"""DSP-extension kernels for Cortex-M4/M7/M33 (templates ``codegen/kernels/dsp/``).

SMLAD on int16 pairs, with weights expanded at generation time to int16 pairs in the
order the inner loop reads them (two per int32 word, element 0 in the low half).

- ``dsp_conv_1x1``: int8 Conv2D, groups 1, 1x1, stride 1, no pads, in_c % 4 == 0, read in
  place (scratch 0). Weights per 4-channel block and group of four input channels, in
  SXTB16 order (0, 2), (1, 3); the input offset folded into the bias.
- ``dsp_conv``: every other Conv2D with groups 1, int8 and 16x8: im2col of two output
  pixels into int16 pairs. Weights per 4-channel block as pairs of taps (SXTB16 order
  where int8 and in_c % 4 == 0), an odd tap count padded to ``kp = taps + taps % 2``.
  Scratch: two int16 columns, ``4 * kp`` bytes.
- ``dsp_dw``: DepthwiseConv2D, multiplier 1: groups of four channels per tap as pairs
  (int8: (0, 2), (1, 3) for SXTAB16), then the remaining channels as int32 (scratch 0).

Each declines (generic code is used) when the int32 accumulator could overflow. Every
template keeps a plain C body with the same results where ``__ARM_FEATURE_DSP`` is absent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeconv.codegen.context import LayerContext
from edgeconv.codegen.cpus import Cpu
from edgeconv.codegen.geometry import acc_bound
from edgeconv.codegen.kernels import packing as pk
from edgeconv.codegen.plan import Kernel, KernelPlan
from edgeconv.fixedpoint import INT32_MAX

_SYMBOLS = ("weights", "bias", "mult", "shift")
DSP_CONV_1X1 = Kernel("dsp_conv_1x1", "kernels/dsp/dsp_conv_1x1.c.j2", _SYMBOLS)
DSP_CONV = Kernel("dsp_conv", "kernels/dsp/dsp_conv.c.j2", _SYMBOLS)
DSP_DW = Kernel("dsp_dw", "kernels/dsp/dsp_dw.c.j2", _SYMBOLS)
KERNELS = (DSP_CONV_1X1, DSP_CONV, DSP_DW)


def runs_on(cpu: Cpu) -> bool:
    """The DSP family serves cores with the DSP extension but no Helium."""
    return cpu.dsp and not cpu.mve


@dataclass(frozen=True, kw_only=True)
class ConvContext(pk.Requant):
    """``k`` of dsp_conv: ``kp`` int16 per column, the column ``fill`` mode (``sxtb16``,
    ``words`` (16x8, even in_c) or ``bytes``), blocks of four channels, packed weight
    words, the input offset pair and the bias."""

    kp: int
    fill: str
    n_blocks: int
    wwords: list[int]
    offset_pair: int
    bias32: list[int]


@dataclass(frozen=True, kw_only=True)
class Conv1x1Context(pk.Requant):
    """``k`` of dsp_conv_1x1: the input offset is folded into ``bias32``."""

    n_blocks: int
    wwords: list[int]
    bias32: list[int]


@dataclass(frozen=True, kw_only=True)
class DepthwiseContext(pk.DepthwiseWords):
    """``k`` of dsp_dw: int16 weight pairs per group of four channels, then the tail,
    and the input offset pair."""

    offset_pair: int


def _conv(ctx: LayerContext) -> KernelPlan | None:
    """im2col of pixel pairs + SMLAD with 4-channel register blocks."""
    g, conv, layer = ctx.geo, ctx.conv, ctx.layer
    if conv.acc_bound > INT32_MAX:
        return None
    w = np.asarray(layer.weights, np.int64).reshape(g.out_c, g.taps)
    sxtb16 = not pk.is_int16(layer) and g.in_c % 4 == 0
    order = pk.sxtb16_order(g.taps) if sxtb16 else np.arange(g.taps)
    kp = g.taps + (g.taps % 2)
    wk = np.zeros((g.out_c, kp), np.int64)
    wk[:, :g.taps] = w[:, order]
    n_blocks, blocked, tail = pk.blocked_rows(wk.reshape(g.out_c, kp // 2, 2),
                                              (kp // 2, 2), (0, 2, 1, 3))
    fill = "sxtb16" if sxtb16 else ("words" if pk.is_int16(layer) and g.in_c % 2 == 0
                                    else "bytes")
    k = ConvContext(kp=kp, fill=fill, n_blocks=n_blocks,
                    wwords=pk.pack_pairs(blocked) + pk.pack_pairs(tail),
                    offset_pair=pk.offset_pair(layer),
                    bias32=pk.ints(pk.bias_of(layer, g.out_c)),
                    **pk.requant(layer, conv.acc_bound))
    return DSP_CONV.plan(2 * kp * 2, k)  # two columns of kp int16


def _conv_1x1(ctx: LayerContext) -> KernelPlan | None:
    """1x1 stride-1 unpadded int8 conv as a GEMM on the input in place (no scratch)."""
    g, layer = ctx.geo, ctx.layer
    w = np.asarray(layer.weights, np.int64).reshape(g.out_c, g.in_c)
    bias = pk.bias_of(layer, g.out_c) - int(layer.input_zero_point) * w.sum(axis=1)
    bound = acc_bound(w, bias, 128)
    if bound > INT32_MAX:
        return None
    pairs = w[:, pk.sxtb16_order(g.in_c)].reshape(g.out_c, g.in_c // 4, 2, 2)
    n_blocks, blocked, tail = pk.blocked_rows(pairs, (g.in_c // 4, 2, 2), (0, 2, 3, 1, 4))
    k = Conv1x1Context(n_blocks=n_blocks,
                       wwords=pk.pack_pairs(blocked) + pk.pack_pairs(tail),
                       bias32=pk.ints(bias), **pk.requant(layer, bound))
    return DSP_CONV_1X1.plan(0, k)


def _depthwise(ctx: LayerContext) -> KernelPlan | None:
    """Groups of four channels (SXTAB16 or 16x8 pairs, SMLABB / SMLATT on int16 weight
    pairs), then channel by channel."""
    g, conv, layer = ctx.geo, ctx.conv, ctx.layer
    if conv.depth_multiplier != 1 or conv.acc_bound > INT32_MAX:
        return None
    w = np.asarray(layer.weights, np.int64).reshape(g.k_h * g.k_w, g.in_c)
    grouped, tail = pk.depthwise_groups(w)
    int16 = pk.is_int16(layer)
    order = [0, 1, 2, 3] if int16 else [0, 2, 1, 3]
    k = DepthwiseContext(int16=int16, w_ctype="int32_t",
                         wwords=pk.pack_pairs(grouped[..., order].reshape(-1, 2)) + tail,
                         offset_pair=pk.offset_pair(layer),
                         bias32=pk.ints(pk.bias_of(layer, g.in_c)),
                         **pk.requant(layer, conv.acc_bound))
    return DSP_DW.plan(0, k)


def _any_conv(ctx: LayerContext) -> KernelPlan | None:
    """``dsp_conv_1x1`` where it applies, else ``dsp_conv``."""
    if not pk.is_int16(ctx.layer) and ctx.geo.pointwise and ctx.geo.in_c % 4 == 0:
        return _conv_1x1(ctx)
    return _conv(ctx)


def select(ctx: LayerContext) -> KernelPlan | None:
    """The DSP kernel for ``ctx``'s layer, or None."""
    return pk.route(ctx, _any_conv, _depthwise)
