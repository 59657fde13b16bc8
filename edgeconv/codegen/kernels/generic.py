"""Portable kernels for every op and CPU (templates ``codegen/kernels/generic/``).

- ``direct``: loops over output pixel, channel and window; no scratch. Every op
  (``signal_filter2d``: the portable kernel of :mod:`.filter2d`; ``match_template``:
  that of :mod:`.match2d`).
- ``im2col``: Conv2D/Conv1D: int16 columns (input offset added, pads as zeros) of up to
  ``IM2COL_MAX_COLUMNS`` output pixels, then a GEMM of each group's weights;
  DepthwiseConv2D: patches of ``k_h*k_w*in_c``. Scratch = columns * column bytes, column
  bytes = ``2 * k_h*k_w*in_c_per_group`` (conv) or ``2 * k_h*k_w*in_c`` (depthwise).
  Weights in the layer's own layout (OHWI; depthwise ``(KH, KW, C*dm)``).

Default rule (no fast kernel, no forced strategy): im2col for Conv2D/Conv1D when each
column serves at least 2 output channels of its group and one column fits the scratch
budget, direct otherwise; a forced ``'im2col'`` ignores the budget (one column at least).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeconv.codegen.context import LayerContext
from edgeconv.codegen.kernels import filter2d, match2d, nnops
from edgeconv.codegen.plan import Kernel, KernelPlan

# Scratch bytes a layer may use when the caller gives no budget (fits the smallest boards).
DEFAULT_SCRATCH_BUDGET = 2048
# im2col fills at most this many columns (output pixels) before running the GEMM.
IM2COL_MAX_COLUMNS = 4
STRATEGIES = ("direct", "im2col")

_CONV_SYMBOLS = ("weights", "bias", "mult", "shift")
_T = "kernels/generic/"
DIRECT = {
    "conv2d": Kernel("direct", _T + "conv_direct.c.j2", _CONV_SYMBOLS),
    "conv1d": Kernel("direct", _T + "conv_direct.c.j2", _CONV_SYMBOLS),
    "depthwise_conv2d": Kernel("direct", _T + "depthwise_direct.c.j2", _CONV_SYMBOLS),
    "max_pool2d": Kernel("direct", _T + "pool_direct.c.j2", ()),
    "avg_pool2d": Kernel("direct", _T + "pool_direct.c.j2", ()),
    "signal_filter": Kernel("direct", _T + "signal_filter.c.j2", ("kernel",)),
    "signal_filter2d": filter2d.DIRECT,
    "match_template": match2d.DIRECT,
}
IM2COL = {
    "conv2d": Kernel("im2col", _T + "conv_im2col.c.j2", _CONV_SYMBOLS),
    "conv1d": Kernel("im2col", _T + "conv_im2col.c.j2", _CONV_SYMBOLS),
    "depthwise_conv2d": Kernel("im2col", _T + "depthwise_im2col.c.j2", _CONV_SYMBOLS),
}
KERNELS = (*DIRECT.values(), *IM2COL.values())


@dataclass(frozen=True)
class Im2colContext:
    """``k`` of the im2col templates: output pixels (columns) filled per GEMM."""

    columns: int


def strategies_for(op: str) -> tuple[str, ...]:
    """Generic strategies available for ``op``."""
    return STRATEGIES if op in IM2COL else ("direct",)


def im2col_column_bytes(ctx: LayerContext) -> int:
    """Bytes of one im2col column: the int16 patch of one output pixel (one group for
    conv; all channels for depthwise)."""
    assert ctx.geo is not None and ctx.conv is not None
    taps = ctx.geo.k_h * ctx.geo.k_w
    channels = ctx.geo.in_c if ctx.op == "depthwise_conv2d" else ctx.conv.in_c_per_group
    return 2 * taps * channels


def im2col_plan(ctx: LayerContext, budget: int, *, forced: bool) -> KernelPlan | None:
    """im2col + GEMM with as many columns as ``budget`` holds (up to IM2COL_MAX_COLUMNS);
    None when not even one column fits, unless ``forced`` (then one column)."""
    assert ctx.geo is not None
    column = im2col_column_bytes(ctx)
    columns = min(IM2COL_MAX_COLUMNS, ctx.geo.out_h * ctx.geo.out_w, budget // column)
    if columns < 1:
        if not forced:
            return None
        columns = 1
    return IM2COL[ctx.op].plan(columns * column, Im2colContext(columns))


def select(ctx: LayerContext, forced: str | None, budget: int) -> KernelPlan:
    """The plan for a forced generic strategy, or the default rule (module docstring);
    the whole-model ops (FULLY_CONNECTED, ADD, SOFTMAX, ...) get their one kernel from
    :mod:`edgeconv.codegen.kernels.nnops`, whatever the strategy."""
    if ctx.op in nnops.OPS:
        plan = nnops.select(ctx)
        assert plan is not None
        return plan
    if ctx.op == match2d.OP:
        return match2d.portable(ctx)
    if forced == "im2col":
        plan = im2col_plan(ctx, budget, forced=True)
        assert plan is not None
        return plan
    if forced is None and ctx.op in ("conv2d", "conv1d") and ctx.conv is not None \
            and ctx.conv.out_c_per_group >= 2:
        plan = im2col_plan(ctx, budget, forced=False)
        if plan is not None:
            return plan
    return DIRECT[ctx.op].plan(0)
