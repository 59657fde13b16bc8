"""2-D signal filters (``SignalFilter2D``, op ``signal_filter2d``); templates under
``codegen/kernels/filter2d/``.

- ``direct`` (portable, every CPU, every fmt/mode/boundary/accumulator; the generic
  fallback): each output sums ``taps * extended sample`` over the kernel, the extension
  read through the tables ``<name>_rows`` / ``<name>_cols`` (source row / column of every
  extended index, -1 for the fill value), exact products modulo ``2**accumulator``, then
  the 1-D filters' requantization. Taps in the correlation orientation (flipped for
  convolve), row-major. Scratch 0.
- ``filter2d_rows`` (Cortex-M, every CPU of the table; SMLAD where the DSP extension is
  present, the same arithmetic in plain C elsewhere): q7 and q15 filters whose exact
  accumulator, rounding constant included, is bounded by ``INT32_MAX``
  (``2**(bits-1) * sum|taps| + round_add``, so the int32 sums never wrap and equal the
  reference's modular ones). The image is processed in strips of ``strip_rows`` output
  rows: the ``strip_rows + n1 - 1`` extended rows a strip reads are widened once to int16
  pairs in scratch (boundary applied; the interior copied a word at a time), then each
  block of ``block`` outputs of a row accumulates, per kernel row, SMLAD of aligned pixel
  pairs with tap pairs: even outputs take the pairs ``(t[2p], t[2p+1])``, odd outputs
  ``(t[2p-1], t[2p])`` and single taps through SMLATB / SMLABT / SMLABB, so every data word
  is loaded once per kernel row and block. Tap words ``<name>_twords``: per kernel row the
  even pairs, then the odd pairs (``n2 - 1`` words; one ``(t0, 0)`` word when ``n2 == 1``).
  A last partial block is computed whole and only its outputs stored (it reads
  initialized words of the row). With the DSP extension, a row whose tap words do not stay
  in registers runs as Thumb-2 assembly (``asm``, see ``_asm_row``).
  On Helium (M55) a row runs in blocks of eight outputs first: a vector of four row words
  splits into even and odd pixels (VMOVLB / VMOVLT), each tap is a VMLA by a scalar into
  the even-output and odd-output accumulators, and saturating narrows interleave them
  into eight outputs (``mve``: accumulator >= 32 bits and ``out_w >= 8``).
  Scratch: ``(strip_rows + n1 - 1) * row_words * 4`` bytes with ``row_words =
  (out_w + n2 + 3) // 2``; ``strip_rows`` is the largest that keeps the scratch within
  ``STRIP_SCRATCH_BUDGET`` (at least 1 row), and is stated in the header
  (``<NAME>_STRIP_ROWS``). Declined (``direct`` is used) for q31, when the bound fails
  and for kernels of more than ``MAX_TAPS`` taps (the kernel is unrolled in the C).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeconv.codegen.context import LayerContext
from edgeconv.codegen.cpus import Cpu
from edgeconv.codegen.plan import Kernel, KernelPlan
from edgeconv.fixedpoint import INT32_MAX

_T = "kernels/filter2d/"
DIRECT = Kernel("direct", _T + "filter2d_direct.c.j2", ("taps", "rows", "cols"))
ROWS = Kernel("filter2d_rows", _T + "filter2d_rows.c.j2", ("twords", "rows"))
KERNELS = (ROWS,)  # DIRECT is registered with the generic kernels (generic.DIRECT)

# Scratch the strip buffer of filter2d_rows may take (more rows per strip widen fewer
# rows twice); a strip has at least one output row whatever the budget.
STRIP_SCRATCH_BUDGET = 4096
# The row kernel unrolls the kernel in the generated C; larger kernels use ``direct``.
MAX_TAPS = 121
# Outputs per inner block (even): more amortise the tap loads, fewer need fewer registers.
BLOCK = 4
# Up to this many tap words the compiler keeps them in registers across the blocks; more
# are loaded per block through an opaque pointer (in pairs, not from the literal pool).
REGISTER_TAP_WORDS = 6


def runs_on(cpu: Cpu) -> bool:
    """The row kernel serves every Cortex-M CPU (SMLAD where the DSP extension is)."""
    return cpu.is_arm


@dataclass(frozen=True)
class Mac:
    """One multiply-accumulate instruction of the inner block: ``acc[out] +=`` the
    ``op`` (``smlad``, or ``smlaXY``: half X of the data word times half Y of the tap word,
    b = bottom, t = top) of data word ``data`` (relative to the block) and tap word
    ``tap`` (within its kernel row)."""

    out: int
    op: str
    data: int
    tap: int


@dataclass(frozen=True)
class RowsContext:
    """``k`` of filter2d_rows: tap words, the MAC plan of one kernel row for one block,
    the strip and buffer geometry, and where the widened rows copy the image directly."""

    twords: list[int]
    words_per_row: int
    macs: list[Mac]
    data_words: int
    block: int
    n_blocks: int
    strip_rows: int
    row_words: int
    mid_lo: int
    mid_hi: int
    opaque_taps: bool
    asm: bool
    mve: bool


def _pair(lo: int, hi: int) -> int:
    """Two int16 as one int32 word, ``lo`` in the low half (SMLAD's operand layout)."""
    return int(np.array([lo, hi], np.int16).view(np.int32)[0])


def _row_plan(taps: list[int], block: int) -> tuple[list[int], list[Mac]]:
    """Tap words of one kernel row and the MACs of a block of ``block`` outputs.

    Output ``2s`` of the block reads pixels ``2s .. 2s + n2 - 1``: data words
    ``s + p = (x[2s + 2p], x[2s + 2p + 1])`` times ``(t[2p], t[2p + 1])``, an odd last tap
    alone. Output ``2s + 1``: ``x[2s + 1] * t[0]`` (top of word s), then words ``s + p``
    times ``(t[2p - 1], t[2p])``, an even kernel's last tap alone.
    """
    n = len(taps)
    even = [(2 * p, 2 * p + 1) for p in range(n // 2)]           # full pairs, even outputs
    odd = [(2 * p - 1, 2 * p) for p in range(1, (n - 1) // 2 + 1)]  # full pairs, odd outputs
    pairs = even + odd or [(0, None)]
    words = [_pair(taps[a], 0 if b is None else taps[b]) for a, b in pairs]
    where = {}  # tap index -> (word, half) for the single taps
    for w, (a, b) in enumerate(pairs):
        where.setdefault(a, (w, "b"))
        if b is not None:
            where.setdefault(b, (w, "t"))
    macs: list[Mac] = []
    for s in range(block // 2):
        out_e, out_o = 2 * s, 2 * s + 1
        for p in range(n // 2):
            macs.append(Mac(out_e, "smlad", s + p, p))
        if n % 2:
            w, half = where[n - 1]
            macs.append(Mac(out_e, "smlab" + half, s + n // 2, w))
        w, half = where[0]
        macs.append(Mac(out_o, "smlat" + half, s, w))
        for p in range(1, (n - 1) // 2 + 1):
            macs.append(Mac(out_o, "smlad", s + p, len(even) + p - 1))
        if n % 2 == 0 and n > 1:
            w, half = where[n - 1]
            macs.append(Mac(out_o, "smlab" + half, s + n // 2, w))
    # Grouped by tap word: one or two tap words live at a time.
    return words, sorted(macs, key=lambda mac: (mac.tap, mac.data, mac.out))


def _asm_row(sig: Any, n_twords: int, row_bytes: int) -> bool:
    """Whether the DSP build runs whole rows in assembly: tap words too many for the
    compiler to keep in registers, at most four data words per kernel row (``n2 <= 5``),
    the plain requantization (saturate, >= 32-bit accumulator: one SSAT), at least one
    block, and row offsets within ADDW/SUBW's 12-bit immediate."""
    return (n_twords > REGISTER_TAP_WORDS and sig.n2 <= 5 and sig.saturate
            and sig.accumulator >= 32 and sig.out_w >= BLOCK
            and sig.n1 * row_bytes <= 4095)


def _rows(ctx: LayerContext) -> KernelPlan | None:
    sig = ctx.signal2d
    # the row kernels shift by the format's fraction bits (7 or 15) only
    if (sig is None or sig.fmt == "q31" or sig.n1 * sig.n2 > MAX_TAPS
            or sig.frac_bits != sig.out_bits - 1):
        return None
    bound = (1 << sig.frac_bits) * int(np.abs(np.asarray(sig.taps, np.int64)).sum()) \
        + sig.round_add
    if bound > INT32_MAX:
        return None
    twords: list[int] = []
    macs: list[Mac] = []
    for k in range(sig.n1):
        words, macs = _row_plan(sig.taps[k * sig.n2:(k + 1) * sig.n2], BLOCK)
        twords += words
    row_words = (sig.out_w + sig.n2 + 3) // 2
    row_bytes = 4 * row_words
    strip = max(1, min(sig.out_h, STRIP_SCRATCH_BUDGET // row_bytes - (sig.n1 - 1)))
    # Extended columns c with col_off + c inside the image are copied straight.
    mid_lo = min(max(0, -sig.col_off), len(sig.cols))
    mid_hi = max(mid_lo, min(len(sig.cols), sig.in_w - sig.col_off))
    k = RowsContext(twords=twords, words_per_row=len(twords) // sig.n1, macs=macs,
                    data_words=max(m.data for m in macs) + 1, block=BLOCK,
                    n_blocks=sig.out_w // BLOCK, strip_rows=strip, row_words=row_words,
                    mid_lo=mid_lo, mid_hi=mid_hi,
                    opaque_taps=len(twords) > REGISTER_TAP_WORDS,
                    asm=_asm_row(sig, len(twords), row_bytes),
                    mve=sig.accumulator >= 32 and sig.out_w >= 8)
    return ROWS.plan((strip + sig.n1 - 1) * row_bytes, k)


def select(ctx: LayerContext) -> KernelPlan | None:
    """The row kernel for a ``signal_filter2d`` layer it accepts, else None."""
    if ctx.op != "signal_filter2d":
        return None
    return _rows(ctx)
