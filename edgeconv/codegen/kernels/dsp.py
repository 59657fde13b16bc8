"""DSP-extension kernels for Cortex-M4/M7/M33 (templates ``codegen/kernels/dsp/``).

SMLAD on int16 pairs, with weights laid out at generation time in the order the inner
loop reads them.

- ``dsp_conv``: Conv2D with groups 1, int8 and 16x8 (1x1 included: its im2col is the
  unpacking of the input, amortized over all output channels): im2col of three output
  pixels into int16 pairs, SMLAD over blocks of two output channels. Weights stay int8
  (one byte each in flash): per block of two channels and pair of taps one word (c0 tap
  2j, c1 tap 2j, c0 tap 2j+1, c1 tap 2j+1), so that SXTB16 and SXTB16 ROR 8 give the two
  channels' int16 pairs; taps in column order: int8, padded to ``kp`` a multiple of 4
  and in SXTB16 order (the column is filled four taps at a time by SXTAB16, from the
  input where in_c % 4 == 0, else from the window's bytes gathered first); 16x8, in
  order, an odd count padded to ``kp = taps + taps % 2``. An odd last channel as kp
  bytes. Scratch: three int16 columns, ``6 * kp`` bytes (one, ``2 * kp``, for a layer of
  one output pixel, e.g. a fully connected one, computed by a plain loop). int8 layers
  requantized by ``r1`` run all blocks of a column in one asm statement (``column_asm``:
  registers saved once per column, the requantization fed from the accumulator
  registers, byte stores from the asm).
- ``dsp_dw``: DepthwiseConv2D, multiplier 1: groups of four channels per tap as pairs
  (int8: (0, 2), (1, 3) for SXTAB16), stored as two words of int16 pairs or (``k.weights
  == 'int8'``, see ``DW_WEIGHTS``) one word of four int8 unpacked by SXTB16 / SXTB16 ROR 8;
  then the remaining channels as int32 (scratch 0). Where in_c % 4 == 0, two adjacent
  interior pixels go together (the weights unpacked once for both).

Per channel each keeps the bias and multiplier as int32 and the shift as int8 (it lies
in [-31, 30]); 16x8 layers with an int64 bias whose shifts all lie in [-17, -1] requantize
with one SMMULR by a per-channel int32 factor and no shift table (``_requant``); 16x8 with
an int32 bias requantizes as int8 does. Each declines (generic
code is used) when the int32 accumulator could overflow. Every template keeps a plain C
body with the same results where ``__ARM_FEATURE_DSP`` is absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeconv.codegen.context import LayerContext
from edgeconv.codegen.cpus import Cpu
from edgeconv.codegen.kernels import packing as pk
from edgeconv.codegen.plan import Kernel, KernelPlan
from edgeconv.fixedpoint import INT32_MAX, reduce_multiplier

_SYMBOLS = ("weights", "bias", "mult", "shift")
DSP_CONV = Kernel("dsp_conv", "kernels/dsp/dsp_conv.c.j2", _SYMBOLS)
DSP_DW = Kernel("dsp_dw", "kernels/dsp/dsp_dw.c.j2", _SYMBOLS)
KERNELS = (DSP_CONV, DSP_DW)


# dsp_dw's weight storage: 'int8' (one byte a weight; two SXTB16 a tap and group of four
# channels, shared by the two pixels of the interior pair path) or 'int16' (pairs, one
# LDRD). On L4 (M4, -O3): int8 4.83 instructions/MAC and 3,424 B of flash, int16 4.73 and
# 3,984 B (before int8 weights and the pair path: 4.98 and 3,504 B).
DW_WEIGHTS = "int8"


def runs_on(cpu: Cpu) -> bool:
    """The DSP family serves cores with the DSP extension but no Helium."""
    return cpu.dsp and not cpu.mve


@dataclass(frozen=True, kw_only=True)
class ConvContext(pk.Requant):
    """``k`` of dsp_conv: ``kp`` int16 per column, the column ``fill`` mode (int8:
    ``sxtb16`` (in_c % 4 == 0) or ``bytes8``; 16x8: ``words`` (even in_c) or ``bytes``),
    the pixel slots of the column (3, or 1 for one output pixel), the pair steps per pass
    of the unrolled loop, blocks of two channels, packed int8
    weight words, the input offset pair, the bias and the ``_mult`` table, and whether
    one asm statement runs all blocks of a column (``column_asm``, see ``_column_asm``)."""

    kp: int
    fill: str
    slots: int
    pass_pairs: int
    n_blocks: int
    wwords: list[int]
    offset_pair: int
    bias32: list[int]
    mult32: list[int]
    column_asm: bool


@dataclass(frozen=True, kw_only=True)
class DepthwiseContext(pk.DepthwiseWords):
    """``k`` of dsp_dw: per group of four channels and tap the weights as one word of
    int8 (``weights='int8'``) or two words of int16 pairs (``'int16'``), then the tail;
    and the input offset pair."""

    weights: str
    offset_pair: int
    mult32: list[int]


def _requant(layer: Any, bound: int) -> dict[str, Any]:
    """The Requant fields and the ``_mult`` table: ``pk.requant``'s choice, except for 16x8
    layers with an int64 bias (``helper``: ``(acc * r + 2**(total - 1)) >> total`` with
    the reduced multiplier ``r < 2**15`` and ``total = 15 - shift``) whose shifts all lie
    in [-17, -1] (``total`` in [16, 32]): ``r16``, one SMMULR by ``r * 2**(32 - total)``
    (below 2**31), which is ``(acc * r * 2**(32 - total) + 2**31) >> 32``, the same value
    (no shift table; the result stays below 2**30 in magnitude, so there is nothing to
    wrap)."""
    fields = pk.requant(layer, bound)
    mult = np.asarray(layer.output_multiplier, np.int64)
    shift = np.asarray(layer.output_shift, np.int64)
    if (fields["requant"] == "helper" and pk.wide_acc(layer) and bool(np.all(mult >= 0))
            and bool(np.all((shift >= -17) & (shift <= -1)))):
        scaled = reduce_multiplier(mult) << (32 - (15 - shift))
        return {"requant": "r16", "shifts": [], "mult32": pk.ints(scaled)}
    return {**fields, "mult32": pk.ints(mult)}


def _pass_pairs(n_pairs: int) -> int:
    """Pair steps unrolled per pass of the inner loop: a divisor of ``n_pairs`` in 12..24
    where there is one (no remainder pass), else at most 24 (loop overhead 4 instructions
    a pass against 10 a pair step, code about 30 bytes a pair step)."""
    exact = [d for d in range(24, 11, -1) if n_pairs % d == 0]
    return exact[0] if exact else min(n_pairs, 24)


# dsp_conv's column asm (``_column_asm``) unrolls all pair steps of a block, with no loop,
# up to this many pairs (the first step then adds the biases in; longer columns go in
# passes of ``_pass_pairs``). 24 is where ``_pass_pairs`` stops too, so no layer's code
# grows; 32 would unroll L3 fully: on M4 -O3 1.40 estimated cycles/MAC, 1.04
# instructions/MAC and 6,688 B of flash against 1.44, 1.07 and 6,096 B in two passes of 16.
COLUMN_UNROLL = 24


def _column_asm(slots: int, n_pairs: int, n_blocks: int, requant: str) -> bool:
    """Whether one asm statement runs every block of a column, requantization included
    (``column_asm`` in the template): int8 layers requantized by ``r1``, three pixel slots,
    at least one block, and the column's ``12 * n_pairs`` bytes within SUBW's 12-bit
    immediate (the pointer is rewound by it after each block)."""
    return slots == 3 and requant == "r1" and n_blocks > 0 and 12 * n_pairs <= 4095


def _conv(ctx: LayerContext) -> KernelPlan | None:
    """im2col of pixel triples + SMLAD with 2-channel register blocks, int8 weights."""
    g, conv, layer = ctx.geo, ctx.conv, ctx.layer
    if conv.acc_bound > INT32_MAX:
        return None
    w = np.asarray(layer.weights, np.int64).reshape(g.out_c, g.taps)
    int16 = pk.is_int16(layer)
    if int16:
        fill = "words" if g.in_c % 2 == 0 else "bytes"
        kp = g.taps + (g.taps % 2)
    else:
        # int8: the column filled four taps at a time by SXTAB16 (taps in SXTB16 order),
        # from the input where in_c % 4 == 0, else from the window's bytes gathered first
        fill = "sxtb16" if g.in_c % 4 == 0 else "bytes8"
        kp = -(-g.taps // 4) * 4
    wk = np.zeros((g.out_c, kp), np.int64)
    wk[:, :g.taps] = w
    if not int16:
        wk = wk[:, pk.sxtb16_order(kp)]
    # (block, channel, pair, tap of pair) -> (block, pair, tap of pair, channel): the word
    # of pair j holds (c0 tap 2j, c1 tap 2j, c0 tap 2j+1, c1 tap 2j+1)
    n_blocks, blocked, tail = pk.blocked_rows(wk.reshape(g.out_c, kp // 2, 2),
                                              (kp // 2, 2), (0, 2, 3, 1), block=2)
    slots = 1 if g.out_h * g.out_w == 1 else 3
    n_pairs = kp // 2
    requant = _requant(layer, conv.acc_bound)
    column_asm = _column_asm(slots, n_pairs, n_blocks, requant["requant"])
    if slots == 1:
        # one pixel: blocks in groups of four (eight channels), the group's four words of
        # pair j one after another (the single-pixel loop reads them in order)
        n4 = n_blocks - n_blocks % 4
        blocked = np.concatenate([
            blocked[:n4].reshape(n4 // 4, 4, n_pairs, 2, 2).transpose(0, 2, 1, 3, 4).reshape(
                n4, n_pairs, 2, 2), blocked[n4:]])
        exact = [d for d in range(8, 3, -1) if n_pairs % d == 0]
        pass_pairs = exact[0] if exact else min(n_pairs, 8)
    elif column_asm and n_pairs <= COLUMN_UNROLL:
        pass_pairs = n_pairs
    else:
        pass_pairs = _pass_pairs(n_pairs)
    k = ConvContext(kp=kp, fill=fill, slots=slots, pass_pairs=pass_pairs,
                    n_blocks=n_blocks,
                    wwords=pk.pack_bytes(blocked) + pk.pack_bytes(tail),
                    offset_pair=pk.offset_pair(layer),
                    bias32=pk.ints(pk.bias_of(layer, g.out_c)),
                    column_asm=column_asm,
                    **requant)
    return DSP_CONV.plan(slots * kp * 2, k)  # `slots` columns of kp int16


def _depthwise(ctx: LayerContext, *, weights: str | None = None) -> KernelPlan | None:
    """Groups of four channels (SXTAB16 or 16x8 pairs, SMLABB / SMLATT on int16 weight
    pairs, stored as int8 words or int16 pairs; ``weights`` None: ``DW_WEIGHTS``), then
    channel by channel."""
    weights = DW_WEIGHTS if weights is None else weights
    if weights not in ("int8", "int16"):
        raise ValueError(f"weights={weights!r}: allowed are 'int8', 'int16'")
    g, conv, layer = ctx.geo, ctx.conv, ctx.layer
    if conv.depth_multiplier != 1 or conv.acc_bound > INT32_MAX:
        return None
    w = np.asarray(layer.weights, np.int64).reshape(g.k_h * g.k_w, g.in_c)
    grouped, tail = pk.depthwise_groups(w)
    int16 = pk.is_int16(layer)
    # the pairs' order: int8 (c0, c2), (c1, c3) for SXTAB16, 16x8 (c0, c1), (c2, c3); as
    # int8 words SXTB16 takes bytes (0, 2) and SXTB16 ROR 8 bytes (1, 3)
    order = [0, 1, 2, 3] if int16 else [0, 2, 1, 3]
    pairs = grouped[..., order]
    if weights == "int8":
        words = pk.pack_bytes(pairs[..., [0, 2, 1, 3]])
    else:
        words = pk.pack_pairs(pairs.reshape(-1, 2))
    k = DepthwiseContext(int16=int16, w_ctype="int32_t", weights=weights,
                         wwords=words + tail,
                         offset_pair=pk.offset_pair(layer),
                         bias32=pk.ints(pk.bias_of(layer, g.in_c)),
                         **_requant(layer, conv.acc_bound))
    return DSP_DW.plan(0, k)


def select(ctx: LayerContext) -> KernelPlan | None:
    """The DSP kernel for ``ctx``'s layer, or None."""
    return pk.route(ctx, _conv, _depthwise)
