"""Weight packing and requantization choices shared by the Cortex-M kernel families."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeconv.codegen.names import ints

OC_BLOCK = 4  # output channels per register block (every family)


@dataclass(frozen=True, kw_only=True)
class Requant:
    """How a fast kernel requantizes an accumulator (``k.requant``, ``k.shifts``):

    - ``r1``: int8, double rounding, multipliers >= 0, every shift <= -1 and the
      accumulator bound below 2**30: SRDHM as SMMULR(2 * acc, mult) on DSP cores, then
      RoundingDivideByPOT as ``((h + (h >> 31)) >> (right - 1)) + 1) >> 1``; ``shifts``
      holds ``right - 1``. No step can overflow under the bound.
    - ``double``: an int32 accumulator (int8, or 16x8 with an int32 bias), double
      rounding, multipliers >= 0: the exact general form.
    - ``helper``: the shared helper chosen by codegen (single rounding; 16x8 with an int64
      bias: the 64-bit requantization of an accumulator the bound keeps in int32).
    - ``r16`` (DSP family only, ``dsp._requant``): 16x8 with every shift in [-17, -1], one
      SMMULR by the reduced multiplier scaled by ``2**(32 - (15 - shift))``; no shifts.
    """

    requant: str
    shifts: list[int]


@dataclass(frozen=True, kw_only=True)
class DepthwiseWords(Requant):
    """``k`` of the depthwise kernels that read one weight word per tap and channel:
    groups of four channels per tap, then the remaining channels (``depthwise_groups``)."""

    int16: bool
    w_ctype: str
    wwords: list[int]
    bias32: list[int]


def route(ctx: Any, conv: Callable[[Any], Any], depthwise: Callable[[Any], Any]) -> Any:
    """A family's ``select``: Conv2D with groups 1 to ``conv``, DepthwiseConv2D to
    ``depthwise``, anything else declined (None)."""
    if ctx.op == "depthwise_conv2d":
        return depthwise(ctx)
    if ctx.op == "conv2d" and ctx.conv.groups == 1:
        return conv(ctx)
    return None


def requant(layer: Any, bound: int) -> dict[str, Any]:
    """The :class:`Requant` fields for ``layer`` with accumulators bounded by ``bound``."""
    mult = np.asarray(layer.output_multiplier, np.int64)
    shift = np.asarray(layer.output_shift, np.int64)
    int8 = np.dtype(layer.activation_dtype) == np.dtype(np.int8)
    mode = "helper"
    if not wide_acc(layer) and layer.rounding == "double" and bool(np.all(mult >= 0)):
        # r1 saturates to int8 (SSAT #8) on DSP cores: int8 only
        r1 = int8 and bound < (1 << 30) and bool(np.all(shift <= -1))
        mode = "r1" if r1 else "double"
    shifts = [int(-s - 1) for s in shift] if mode == "r1" else [int(s) for s in shift]
    return {"requant": mode, "shifts": shifts}


def is_int16(layer: Any) -> bool:
    """16x8 layer (int16 activations)."""
    return np.dtype(layer.activation_dtype) == np.dtype(np.int16)


def wide_acc(layer: Any) -> bool:
    """16x8 with an int64 bias: TFLite's int64 accumulator and 64-bit requantization (the
    fast kernels sum in int32 where the bound allows, then requantize that way). False for
    int8 and for 16x8 with an int32 bias (``accumulator_dtype`` int32: int8's
    requantization)."""
    return np.dtype(layer.accumulator_dtype) == np.dtype(np.int64)


def bias_of(layer: Any, out_c: int) -> np.ndarray:
    """The bias as int64, zeros where the layer has none."""
    bias = getattr(layer, "bias", None)
    return np.zeros(out_c, np.int64) if bias is None else np.asarray(bias, np.int64)


def pack_pairs(pairs: np.ndarray) -> list[int]:
    """int16 pairs ``(..., 2)`` -> int32 words, element 0 in the low half."""
    lo = pairs[..., 0].astype(np.int64) & 0xFFFF
    hi = pairs[..., 1].astype(np.int64) & 0xFFFF
    words = (hi << 16) | lo
    return ints(np.where(words >= 1 << 31, words - (1 << 32), words))


def pack_bytes(values: np.ndarray) -> list[int]:
    """int8 values (any shape, flattened in C order) -> int32 words, four bytes a word,
    byte 0 in the low byte (the order of a little-endian LDR), zero-padded to a whole word.
    SXTB16 of a word then gives the int16 pair (byte 0, byte 2), SXTB16 ROR 8 the pair
    (byte 1, byte 3)."""
    flat = np.asarray(values, np.int64).ravel()
    if flat.size and (flat.min() < -128 or flat.max() > 127):
        raise ValueError(f"values: must be int8, got range [{flat.min()}, {flat.max()}]")
    padded = np.zeros(-(-flat.size // 4) * 4, np.int64)
    padded[:flat.size] = flat & 0xFF
    quads = padded.reshape(-1, 4)
    words = quads[:, 0] | (quads[:, 1] << 8) | (quads[:, 2] << 16) | (quads[:, 3] << 24)
    return ints(np.where(words >= 1 << 31, words - (1 << 32), words))


def offset_pair(layer: Any) -> int:
    """The input offset ``-input_zero_point`` in both halves of a word."""
    offset = -int(layer.input_zero_point) & 0xFFFF
    return pack_pairs(np.array([offset, offset]))[0]


def sxtb16_order(n: int) -> np.ndarray:
    """Index permutation of ``n`` (a multiple of 4) elements into SXTB16 order:
    (0, 2), (1, 3), (4, 6), (5, 7), ... as consecutive pairs."""
    base = np.arange(n).reshape(-1, 4)
    return base[:, [0, 2, 1, 3]].ravel()


def wrap32(values: np.ndarray) -> list[int]:
    """Reduce int64 values modulo 2**32 into int32 (the kernels sum modulo 2**32)."""
    return ints((values.astype(np.int64) + (1 << 31)) % (1 << 32) - (1 << 31))


def depthwise_groups(w: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Depthwise weights ``(tap, channel)`` in groups of four channels,
    ``(group, tap, channel)``, and the remaining channels' weights, tap by tap."""
    taps, channels = w.shape
    n4 = channels - channels % 4
    grouped = w[:, :n4].reshape(taps, n4 // 4, 4).transpose(1, 0, 2)
    return grouped, ints(w[:, n4:].T)


def blocked_rows(rows: np.ndarray, inner: tuple[int, ...], order: tuple[int, ...], *,
                 block: int = OC_BLOCK) -> tuple[int, np.ndarray, np.ndarray]:
    """Split per-channel ``rows`` (channel first) into whole blocks of ``block``
    channels, each block reshaped to ``(n_blocks, block, *inner)`` and transposed by
    ``order``, and the remaining channels; returns (n_blocks, blocked, tail)."""
    n_blocks = rows.shape[0] // block
    blocked = rows[:n_blocks * block].reshape(n_blocks, block, *inner).transpose(order)
    return n_blocks, blocked, rows[n_blocks * block:]
