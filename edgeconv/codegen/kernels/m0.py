"""Kernels for cores without the DSP extension: Cortex-M0/M0+ (ARMv6-M) and Cortex-M3
(templates ``codegen/kernels/m0/``).

- ``m0_conv``: Conv2D, groups 1, int8 and 16x8. Products of unsigned bytes biased by 128,
  so that every operand load is one LDRB with an immediate offset; the bias terms are
  folded into per-channel constants at generation time and one per-pixel input sum.
  Weights ``w + 128`` as uint8 per 4-channel block, tap-major, then the remaining
  channels. Scratch: one column of ``taps`` bytes (``2 * taps`` for 16x8); 0 when
  pointwise (the input read in place).
- ``m0_dw``: DepthwiseConv2D, multiplier 1: int8 weights in groups of four channels per
  tap (one word, unpacked by SXTB / shifts), then the remaining channels; the input offset
  folded into the bias (scratch 0). ``m0_dw32`` (``DW_WEIGHTS = 'int32'``): the same with
  int32 weights, faster and larger.

Each declines (generic code is used) when the int32 accumulator could overflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeconv.codegen.context import LayerContext
from edgeconv.codegen.cpus import Cpu
from edgeconv.codegen.kernels import packing as pk
from edgeconv.codegen.plan import Kernel, KernelPlan
from edgeconv.fixedpoint import INT32_MAX

_SYMBOLS = ("weights", "bias", "mult", "shift")
M0_CONV = Kernel("m0_conv", "kernels/m0/m0_conv.c.j2", _SYMBOLS)
M0_DW = Kernel("m0_dw", "kernels/m0/m0_dw.c.j2", (*_SYMBOLS, "pad"))
M0_DW32 = Kernel("m0_dw32", "kernels/m0/m0_dw32.c.j2", _SYMBOLS)
KERNELS = (M0_CONV, M0_DW, M0_DW32)
UNROLL = 8  # taps per step of the m0_conv inner loop (LDRB immediate offsets reach 31)
# Columns of at most FULL_CHUNKS steps are unrolled whole; longer ones loop over a body of
# up to BODY_CHUNKS steps (L3's 8 steps unrolled whole cost 830 B more flash than two
# passes of 4, for 4 more instructions per 256 MACs)
# Depthwise weights: 'int8' (m0_dw) or 'int32' (m0_dw32); see _depthwise. On L4 (M0,
# -O3): int8 13.40 instructions/MAC and 3,344 B of flash, int32 12.76 and 5,504 B (before
# both: int32, 13.62 and 5,844 B; CMSIS-NN 37.63 and 3,440 B).
DW_WEIGHTS = "int8"
FULL_CHUNKS = 5
BODY_CHUNKS = 4


def runs_on(cpu: Cpu) -> bool:
    """Cortex-M cores without the DSP extension."""
    return cpu.is_arm and not cpu.dsp


@dataclass(frozen=True, kw_only=True)
class ConvContext(pk.Requant):
    """``k`` of m0_conv: ``direct`` (pointwise: the input is read in place), 4-channel
    blocks, unsigned weight bytes, the column load (``x_load``/``x_extend``/``x_bytes``),
    the column offset ``xoff`` and the column value of a pad (``pad_value``), the
    column's C types, and per-channel constants ``bias - pad_value * sum(w)`` mod 2**32."""

    direct: bool
    n_blocks: int
    wbytes: list[int]
    unroll: int
    loop: bool
    body_chunks: int
    x_load: str
    x_extend: str
    x_bytes: int
    xoff: int
    pad_value: int
    col_ctype: str
    col_const_ctype: str
    const32: list[int]


def _chunking(chunks: int) -> dict[str, Any]:
    """``loop`` and ``body_chunks`` of a column of ``chunks`` whole steps: unrolled whole
    when short, else a loop over the largest body of at most BODY_CHUNKS steps that
    divides it."""
    if chunks <= FULL_CHUNKS:
        return {"loop": False, "body_chunks": chunks}
    return {"loop": True,
            "body_chunks": max(d for d in range(1, BODY_CHUNKS + 1) if chunks % d == 0)}


def _conv(ctx: LayerContext) -> KernelPlan | None:
    """Unsigned-byte products with LDRB immediate offsets, 1 pixel x 4 channels."""
    g, conv, layer = ctx.geo, ctx.conv, ctx.layer
    if conv.acc_bound > INT32_MAX:
        return None
    w = np.asarray(layer.weights, np.int64).reshape(g.out_c, g.taps)
    int16 = pk.is_int16(layer)
    direct = g.pointwise
    xoff = 0 if direct else (1 << 15 if int16 else 1 << 7)
    zero = xoff + int(layer.input_zero_point)  # column value that contributes nothing
    n_blocks, blocked, tail = pk.blocked_rows(w + 128, (g.taps,), (0, 2, 1))
    col_ctype = "uint16_t" if int16 else "uint8_t"
    loads = {(False, False): ("ldrb", ""), (True, False): ("ldrh", ""),
             (False, True): ("ldrb", "sxtb"), (True, True): ("ldrh", "sxth")}
    x_load, x_extend = loads[(int16, direct)]
    k = ConvContext(direct=direct, n_blocks=n_blocks,
                    wbytes=pk.ints(blocked) + pk.ints(tail), unroll=UNROLL,
                    **_chunking(g.taps // UNROLL),
                    x_load=x_load, x_extend=x_extend, x_bytes=2 if int16 else 1, xoff=xoff,
                    pad_value=zero, col_ctype=col_ctype,
                    col_const_ctype=("int16_t" if int16 else "int8_t") if direct else col_ctype,
                    const32=pk.wrap32(pk.bias_of(layer, g.out_c) - zero * w.sum(axis=1)),
                    **pk.requant(layer, conv.acc_bound))
    return M0_CONV.plan(0 if direct else g.taps * (2 if int16 else 1), k)


@dataclass(frozen=True, kw_only=True)
class DepthwiseContext(pk.Requant):
    """``k`` of m0_dw: int8 weights ``wvals`` (``depthwise_groups`` order), per-channel
    ``bias32`` = bias + input_offset * sum(weights) mod 2**32, and the input value of a
    tap outside the input, ``pad_value`` (the zero point)."""

    wvals: list[int]
    bias32: list[int]
    pad_value: int


def _depthwise(ctx: LayerContext, *, weights: str | None = None) -> KernelPlan | None:
    """Scalar products four channels at a time, then one by one. ``weights`` (None:
    ``DW_WEIGHTS``): 'int8' (m0_dw: x * w with the input offset folded into the bias,
    the interior taps in Thumb-1 assembly) or 'int32' (m0_dw32: (x + input_offset) * w,
    one LDR with an immediate offset a weight)."""
    weights = DW_WEIGHTS if weights is None else weights
    if weights not in ("int8", "int32"):
        raise ValueError(f"weights={weights!r}: allowed are 'int8', 'int32'")
    g, conv, layer = ctx.geo, ctx.conv, ctx.layer
    if conv.depth_multiplier != 1 or conv.acc_bound > INT32_MAX:
        return None
    w = np.asarray(layer.weights, np.int64).reshape(g.k_h * g.k_w, g.in_c)
    grouped, tail = pk.depthwise_groups(w)
    requant = pk.requant(layer, conv.acc_bound)
    if weights == "int32":
        return M0_DW32.plan(0, pk.DepthwiseWords(int16=pk.is_int16(layer), w_ctype="int32_t",
                                               wwords=pk.ints(grouped) + tail,
                                               bias32=pk.ints(pk.bias_of(layer, g.in_c)),
                                               **requant))
    zp = int(layer.input_zero_point)
    return M0_DW.plan(0, DepthwiseContext(
        wvals=pk.ints(grouped) + tail,
        bias32=pk.wrap32(pk.bias_of(layer, g.in_c) - zp * w.sum(axis=0)),
        pad_value=zp, **requant))


def select(ctx: LayerContext) -> KernelPlan | None:
    """The M0 kernel for ``ctx``'s layer, or None."""
    return pk.route(ctx, _conv, _depthwise)
