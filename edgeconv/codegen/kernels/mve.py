"""Helium (MVE) kernels for the Cortex-M55 (templates ``codegen/kernels/mve/``).

- ``mve_conv``: Conv2D, groups 1, int8 and 16x8. Weights per 4-channel block (zero rows
  past out_c) and chunk of ``lanes`` taps (16 int8 / 8 int16), a tap already read by an
  earlier chunk weighted 0. Scratch: two columns of ``max(taps, lanes)`` input elements;
  0 when pointwise with in_c >= lanes (read in place).
- ``mve_dw16``: int8 DepthwiseConv2D, multiplier 1, "r1" requantization, at most nine
  taps, 16 channels or more: weights per group of 16 channels and tap (scratch 0).
- ``mve_dw``: every other DepthwiseConv2D with multiplier 1: int8 weights in groups of
  four channels per tap, then the remaining channels (scratch 0).

``mve_conv`` runs one assembly block per four output channels and two pixels (VMLADAVA
over raw columns, the input offset folded into the bias), with vector requantization
where it is exact. Each kernel declines (generic code is used) when the int32
accumulator could overflow; every template keeps a plain C body for other compilers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeconv.codegen.context import LayerContext
from edgeconv.codegen.cpus import Cpu
from edgeconv.codegen.geometry import Geometry, acc_bound
from edgeconv.codegen.kernels import packing as pk
from edgeconv.codegen.plan import Kernel, KernelPlan
from edgeconv.fixedpoint import INT32_MAX, reduce_multiplier

MVE_CONV = Kernel("mve_conv", "kernels/mve/mve_conv.c.j2",
                  ("weights", "params", "bias", "mult", "shift", "fill", "pixels"))
MVE_DW16 = Kernel("mve_dw16", "kernels/mve/mve_dw16.c.j2",
                  ("weights", "params", "bias", "mult", "shift", "pad"))
MVE_DW = Kernel("mve_dw", "kernels/mve/mve_dw.c.j2", ("weights", "bias", "mult", "shift", "data"))
KERNELS = (MVE_CONV, MVE_DW16, MVE_DW)

UNROLL = 4  # whole chunks per loop iteration in long columns
STRAIGHT_MAX = 8  # up to this many whole chunks after the first are unrolled completely
# Channel (within a group of 16) of each lane of the four int32x4 accumulators, one
# accumulator after the other: VMULLB / VMULLT int8 products widened by VMOVLB / VMOVLT.
DW16_LANES = (0, 4, 8, 12, 2, 6, 10, 14, 1, 5, 9, 13, 3, 7, 11, 15)


def runs_on(cpu: Cpu) -> bool:
    """Cores with Helium."""
    return cpu.mve


@dataclass(frozen=True)
class Chunks:
    """How the Helium block reads a column of ``taps`` in chunks of ``lanes``: the first
    chunk, ``loops`` iterations of ``unroll`` chunks, ``straight`` more chunks, then (where
    ``back`` > 0) the ``lanes`` taps that end the column, ``back`` before the pointer."""

    count: int
    back: int
    loops: int
    unroll: int
    straight: int


@dataclass(frozen=True, kw_only=True)
class ConvContext(pk.Requant):
    """``k`` of mve_conv (see :func:`_conv`)."""

    int16: bool
    lanes: int
    direct: bool
    n_blocks: int
    chunks: Chunks
    wbytes: list[int]
    params: list[int]
    pad_value: int
    col_stride: int
    interior: list[int] | None
    bias32: list[int]
    vreq: str | None
    left: bool
    all_right: bool


@dataclass(frozen=True, kw_only=True)
class Dw16Context(pk.Requant):
    """``k`` of mve_dw16 (see :func:`_dw16`)."""

    wbytes: list[int]
    params: list[int]
    folded: list[int]
    lanes: list[int]
    pairs: list[list[int]]
    zero_point: int
    needs_pad: bool


@dataclass(frozen=True, kw_only=True)
class DwContext(pk.Requant):
    """``k`` of mve_dw: int8 weights per group of four channels, then the tail; the
    right shifts as non-negative amounts (``neg_right``)."""

    int16: bool
    w_ctype: str
    wbytes: list[int]
    neg_right: list[int]
    bias32: list[int]


def chunks(taps: int, lanes: int) -> Chunks:
    """The :class:`Chunks` of a column of ``taps``."""
    count = -(-taps // lanes)
    back = lanes - taps % lanes if count > 1 and taps % lanes else 0
    middle = count - 1 - (1 if back else 0)
    loops = 0 if middle <= STRAIGHT_MAX else middle // UNROLL
    unroll = UNROLL if loops else 0
    return Chunks(count, back, loops, unroll, middle - loops * unroll)


def conv_weights(w: np.ndarray, lanes: int, n_blocks: int) -> list[int]:
    """Weights ``(out_c, taps)`` per block of four channels (zero rows past out_c) and
    chunk: chunk j reads taps min(j * lanes, taps - lanes) + i, weight 0 where the tap
    belongs to an earlier chunk or lies past the column."""
    out_c, taps = w.shape
    count = -(-taps // lanes)
    first = np.arange(count)[:, None] * lanes
    tap = np.minimum(first, max(taps - lanes, 0)) + np.arange(lanes)  # (chunk, lane)
    fresh = (tap >= first) & (tap < taps)
    rows = np.zeros((n_blocks * pk.OC_BLOCK, taps), np.int64)
    rows[:out_c] = w
    picked = np.where(fresh, rows[:, np.minimum(tap, taps - 1)], 0)  # (channel, chunk, lane)
    return pk.ints(picked.reshape(n_blocks, pk.OC_BLOCK, count, lanes).transpose(0, 2, 1, 3))


def conv_params(rows: np.ndarray, n_blocks: int) -> list[int]:
    """``mve_conv``'s per-block words: the bias and multiplier rows as four int32 each,
    then each shift row (values within int8) as one word of four int8 bytes, read with a
    widening VLDRB.S32 (12 bytes a channel become 9: 192 B on L5)."""
    blocks = rows.reshape(len(rows), n_blocks, pk.OC_BLOCK).transpose(1, 0, 2)
    shifts = blocks[:, 2:]
    if np.any(shifts < -128) or np.any(shifts > 127):
        raise ValueError(f"shift rows {shifts.min()}..{shifts.max()}: allowed are int8 values")
    packed = (shifts.astype(np.int64) & 0xFF) << (8 * np.arange(pk.OC_BLOCK))
    words = packed.sum(axis=2).astype(np.uint32).view(np.int32)
    return pk.ints(np.concatenate([blocks[:, :2].reshape(n_blocks, -1), words], axis=1))


def _vector_requant(layer: Any, out_c: int) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The exact vector requantization of ``mve_conv`` (``vreq``, None where there is none)
    and its per-channel rows:

    - ``double`` (int32 accumulator: int8 or 16x8 with an int32 bias; gemmlowp): rows
      multiplier, min(shift, 0) and, where some shift is positive (``left``),
      max(shift, 0); ``all_right``: every shift <= -1.
    - ``mulh`` (single rounding, or 16x8 with an int64 bias): every shift <= -2; rows
      multiplier (int64 bias: the reduced multiplier times 2**16) and shift + 1.
    """
    mult = np.broadcast_to(np.asarray(layer.output_multiplier, np.int64), (out_c,))
    shift = np.broadcast_to(np.asarray(layer.output_shift, np.int64), (out_c,))
    wide = pk.wide_acc(layer)
    if wide or layer.rounding == "single":
        if not bool(np.all(shift <= -2)):
            return {"vreq": None, "left": False, "all_right": False}, []
        m = reduce_multiplier(mult) << 16 if wide else mult
        return {"vreq": "mulh", "left": False, "all_right": True}, [m, shift + 1]
    left = bool(np.any(shift > 0))
    rows = [mult, np.minimum(shift, 0)] + ([np.maximum(shift, 0)] if left else [])
    return {"vreq": "double", "left": left, "all_right": bool(np.all(shift <= -1))}, rows


def _conv(ctx: LayerContext) -> KernelPlan | None:
    """Helium dot products (VMLADAV(A)) of raw int8/int16 columns, 2 pixels x 4 channels,
    vector requantization where exact."""
    g, layer = ctx.geo, ctx.layer
    w = np.asarray(layer.weights, np.int64).reshape(g.out_c, g.taps)
    int16 = pk.is_int16(layer)
    zp = int(layer.input_zero_point)
    bias = pk.bias_of(layer, g.out_c) - zp * w.sum(axis=1)
    bound = acc_bound(w, bias, 1 << 15 if int16 else 128)
    if bound > INT32_MAX:
        return None
    lanes = 8 if int16 else 16
    n_blocks = -(-g.out_c // pk.OC_BLOCK)
    vreq, vrows = _vector_requant(layer, g.out_c)
    rows = np.zeros((1 + len(vrows), n_blocks * pk.OC_BLOCK), np.int64)
    rows[:, :g.out_c] = [bias, *vrows]
    direct = g.pointwise and g.in_c >= lanes
    col_stride = max(g.taps, lanes)
    k = ConvContext(int16=int16, lanes=lanes, direct=direct, n_blocks=n_blocks,
                    chunks=chunks(g.taps, lanes), wbytes=conv_weights(w, lanes, n_blocks),
                    params=conv_params(rows, n_blocks),
                    pad_value=zp, col_stride=col_stride, interior=g.interior(),
                    bias32=pk.ints(bias), **vreq, **pk.requant(layer, bound))
    return MVE_CONV.plan(0 if direct else 2 * col_stride * (2 if int16 else 1), k)


def tap_pairs(w: np.ndarray) -> list[list[int]]:
    """Taps (0, 1), (2, 3), ... of int8 weights ``(tap, channel)``, each pair split in two
    where some channel has -128 at both: then the two int8 products of any inputs sum
    within int16 ([-32512, 32640])."""
    pairs: list[list[int]] = []
    for t in range(0, len(w) - 1, 2):
        safe = not bool(np.any((w[t] == -128) & (w[t + 1] == -128)))
        pairs += [[t, t + 1]] if safe else [[t], [t + 1]]
    return pairs + ([[len(w) - 1]] if len(w) % 2 else [])


def _dw16(layer: Any, g: Geometry, w: np.ndarray, bias: np.ndarray,
          requant: dict[str, Any]) -> KernelPlan:
    """Helium depthwise for int8 in the r1 mode, at most nine taps, 16 channels or more:
    groups of 16 channels into four int32x4 accumulators. The input offset is folded into
    the bias, bias + offset * sum(weights) (within the accumulator bound, so int32), and
    taps outside the input read a pixel of zero points, which then adds nothing. Per
    group, ``params`` holds the bias, the multiplier and the (negative) shift, each in
    accumulator lane order (``DW16_LANES``)."""
    n16 = -(-g.in_c // 16) * 16
    taps = g.k_h * g.k_w
    wpad = np.zeros((taps, n16), np.int64)
    wpad[:, :g.in_c] = w
    folded = bias - int(layer.input_zero_point) * w.sum(axis=0)
    rows = np.zeros((3, n16), np.int64)
    rows[:, :g.in_c] = [folded, *(np.broadcast_to(np.asarray(v, np.int64), (g.in_c,))
                                  for v in (layer.output_multiplier, layer.output_shift))]
    params = rows.reshape(3, -1, 16)[:, :, list(DW16_LANES)].transpose(1, 0, 2)
    k = Dw16Context(wbytes=pk.ints(wpad.reshape(taps, n16 // 16, 16).transpose(1, 0, 2)),
                    params=pk.ints(params), folded=pk.ints(folded), lanes=list(DW16_LANES),
                    pairs=tap_pairs(w), zero_point=int(layer.input_zero_point),
                    needs_pad=g.needs_pad, **requant)
    return MVE_DW16.plan(0, k)


def _depthwise(ctx: LayerContext) -> KernelPlan | None:
    """Depthwise, multiplier 1: groups of 16 channels (``mve_dw16``) where it applies,
    else int32x4 per four channels then one by one (``mve_dw``)."""
    g, conv, layer = ctx.geo, ctx.conv, ctx.layer
    if conv.depth_multiplier != 1 or conv.acc_bound > INT32_MAX:
        return None
    taps = g.k_h * g.k_w
    w = np.asarray(layer.weights, np.int64).reshape(taps, g.in_c)  # (tap, channel)
    bias = pk.bias_of(layer, g.in_c)
    requant = pk.requant(layer, conv.acc_bound)
    if requant["requant"] == "r1" and taps <= 9 and g.in_c >= 16:
        return _dw16(layer, g, w, bias, requant)
    grouped, tail = pk.depthwise_groups(w)
    k = DwContext(int16=pk.is_int16(layer), w_ctype="int8_t",
                  wbytes=pk.ints(grouped) + tail,
                  neg_right=pk.ints(np.asarray(layer.output_shift, np.int64)),
                  bias32=pk.ints(bias), **requant)
    return MVE_DW.plan(0, k)


def select(ctx: LayerContext) -> KernelPlan | None:
    """The Helium kernel for ``ctx``'s layer, or None."""
    return pk.route(ctx, _conv, _depthwise)
