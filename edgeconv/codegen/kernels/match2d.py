"""Template matching (``MatchTemplate``, op ``match_template``); templates under
``codegen/kernels/match2d/``.  Both kernels give the score map of
:func:`edgeconv.signal2d.match_template` bit for bit.

For the window at ``(i, j)`` (``n`` template pixels ``T``, image pixels ``I``): the cross
term ``C = sum(I T)``, the window sums ``S_I = sum(I)``, ``S_II = sum(I^2)``, and the
template's constants ``S_T``, ``S_TT`` and ``A = n S_TT - S_T^2`` (computed here, at
generation time).  ``'ssd'`` is ``S_II - 2 C + S_TT``; ``'sad'`` is ``sum|I - T|``;
``'ncc'`` is the Q15 rounding of ``num / sqrt(A B)`` with ``num = n C - S_I S_T``,
``B = n S_II - S_I^2`` (int64: ``MATCH_MAX_PIXELS`` keeps them below ``2**62``), formed
by ``edgeconv_tm_ncc_q15``: ``m = floor(2**16 |num| / sqrt(A B))`` is the largest
``m`` with ``m^2 A B <= 2**32 num^2`` (Cauchy-Schwarz: ``m <= 2**16``; the comparison on
exact products in 32-bit limbs).  Cores with a hardware square root (``__ARM_FP``
single precision: VSQRT.F32) start from a float estimate and correct it by comparisons
(up while ``m + 1`` passes, down while ``m`` fails: exact whatever the estimate, about
two comparisons); others find ``m`` bit by bit (17 comparisons).  The score is
``+-((m + 1) >> 1)``, ``+1`` saturated to 32767, 0 where ``A B = 0``: the reference's
``_ncc_q15``.

- ``direct`` (portable, every CPU): each output sums ``C``, ``S_I``, ``S_II`` (or
  ``|I - T|``) over its window in int64.  Template ``<name>_template``.  Scratch 0.
- ``match_rows`` (Cortex-M with the DSP extension: M4, M7, M33, M55): the cross term
  of a window row by SMLAD on pixel pairs (q7: one word of four pixels split by SXTB16 /
  SXTB16 ROR 8 into even and odd pixels, times the tap words ``(T[4q], T[4q+2])`` and
  ``(T[4q+1], T[4q+3])``; q15: unaligned words of two pixels times ``(T[2q], T[2q+1])``;
  SMLALD into 64 bits when ``2**15 sum|T|`` passes ``INT32_MAX``), the last
  ``tw % 4`` (q7) or ``tw % 2`` (q15) taps of a row one by one; ``'sad'`` of q7 by USADA8
  on four pixels at a time (both sides offset by 128, which keeps every difference).
  ``S_I`` and ``S_II`` from column sums over the template's height (kept per column in
  scratch and moved down one image row per output row), then a running sum along the
  row.  Tap words ``<name>_twords``, the taps multiplied one by one ``<name>_tail``
  (q15 ``'sad'``: every tap).  Scratch for ``'ncc'``: ``8 W`` (q7) or ``12 W`` (q15)
  bytes (int32 / int64 ``S_II`` columns first, then int32 ``S_I`` columns); ``'ssd'``:
  the ``S_II`` columns; ``'sad'``: 0.  Template rows of at most ``MAX_ROW_TAPS`` pixels
  (unrolled in the C).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeconv.codegen.context import LayerContext
from edgeconv.codegen.cpus import Cpu
from edgeconv.codegen.plan import Kernel, KernelPlan
from edgeconv.fixedpoint import INT32_MAX

OP = "match_template"
_T = "kernels/match2d/"
DIRECT = Kernel("direct", _T + "match_template.c.j2", ("template",))
ROWS = Kernel("match_rows", _T + "match_template.c.j2", ("twords", "tail"))
KERNELS = (ROWS,)  # DIRECT is registered with the generic kernels (generic.DIRECT)
# The row kernel unrolls one template row in the C; wider templates use ``direct``.
MAX_ROW_TAPS = 64


@dataclass(frozen=True)
class MatchContext:
    """``k`` of the match templates: the template (row-major) and its constants, and for
    ``match_rows`` the tap words of each template row (``words_per_row`` of them) and
    whether the cross term needs a 64-bit sum."""

    fast: bool
    method: str
    fmt: str
    th: int
    tw: int
    in_h: int
    in_w: int
    out_h: int
    out_w: int
    template: list[int]
    n: int
    s_t: int
    s_tt: int
    a: int
    twords: list[int]
    words_per_row: int
    tail0: int
    tail: list[int]
    acc64: bool


def _pair(lo: int, hi: int) -> int:
    """Two int16 as one int32 word, ``lo`` in the low half (SMLAD's operand layout)."""
    return int(np.array([lo, hi], np.int16).view(np.int32)[0])


def _bytes4(values: list[int]) -> int:
    """Four bytes as one int32 word, ``values[0]`` in the lowest byte."""
    return int(np.array(values, np.uint8).view(np.int32)[0])


def _tap_words(tpl: np.ndarray, method: str, fmt: str) -> list[int]:
    """Per template row: q7 ``(T[4q], T[4q+2])``, ``(T[4q+1], T[4q+3])`` for each full
    quad (``'sad'``: the quad's bytes offset by 128); q15 ``(T[2q], T[2q+1])``."""
    words: list[int] = []
    for row in tpl.tolist():
        if fmt == "q7":
            for q in range(len(row) // 4):
                quad = row[4 * q:4 * q + 4]
                if method == "sad":
                    words.append(_bytes4([(v + 128) & 0xFF for v in quad]))
                else:
                    words += [_pair(quad[0], quad[2]), _pair(quad[1], quad[3])]
        else:
            words += [_pair(row[2 * q], row[2 * q + 1]) for q in range(len(row) // 2)]
    return words


def _context(ctx: LayerContext, fast: bool) -> MatchContext:
    layer = ctx.layer
    tpl = np.asarray(layer.template, dtype=np.int64)
    (in_h, in_w), (th, tw) = ctx.input_shape, tpl.shape
    n, s_t, s_tt = int(tpl.size), int(tpl.sum()), int((tpl * tpl).sum())
    twords = _tap_words(tpl, layer.method, layer.fmt) if fast else []
    # taps from column tail0 on are multiplied one by one (all of them for q15 'sad')
    step = 4 if layer.fmt == "q7" else 2
    tail0 = 0 if layer.fmt == "q15" and layer.method == "sad" else int(tw) // step * step
    return MatchContext(
        fast=fast, method=str(layer.method), fmt=str(layer.fmt), th=int(th), tw=int(tw),
        in_h=in_h, in_w=in_w, out_h=ctx.output_shape[0], out_w=ctx.output_shape[1],
        template=[int(v) for v in tpl.ravel()], n=n, s_t=s_t, s_tt=s_tt,
        a=n * s_tt - s_t * s_t, twords=twords, words_per_row=len(twords) // int(th),
        tail0=tail0, tail=[int(v) for v in tpl[:, tail0:].ravel()] if fast else [],
        acc64=(layer.fmt == "q15" and layer.method != "sad"
               and (1 << 15) * int(np.abs(tpl).sum()) > INT32_MAX))


def portable(ctx: LayerContext) -> KernelPlan:
    """The ``direct`` plan (every CPU)."""
    return DIRECT.plan(0, _context(ctx, fast=False))


def runs_on(cpu: Cpu) -> bool:
    """The row kernel serves the Cortex-M cores with the DSP extension."""
    return cpu.is_arm and cpu.dsp


def select(ctx: LayerContext) -> KernelPlan | None:
    """The row kernel for a ``match_template`` layer it accepts, else None."""
    if ctx.op != OP or ctx.layer.template.shape[1] > MAX_ROW_TAPS:
        return None
    k = _context(ctx, fast=True)
    sq_bytes = 4 if k.fmt == "q7" else 8
    scratch = {"ncc": (4 + sq_bytes) * k.in_w, "ssd": sq_bytes * k.in_w, "sad": 0}
    return ROWS.plan(scratch[k.method], k)
