"""How one layer is computed in generated C: the strategy, its template and its scratch."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Scratch bytes a layer may use when the caller gives no budget (fits the smallest boards).
DEFAULT_SCRATCH_BUDGET = 2048
# im2col fills at most this many columns (output pixels) before running the GEMM.
IM2COL_MAX_COLUMNS = 4
GENERIC_STRATEGIES = ("direct", "im2col")

_DIRECT_TEMPLATES = {"conv2d": "conv_direct.c.j2", "conv1d": "conv_direct.c.j2",
                     "depthwise_conv2d": "depthwise_direct.c.j2",
                     "max_pool2d": "pool_direct.c.j2", "avg_pool2d": "pool_direct.c.j2",
                     "signal_filter": "signal_filter.c.j2"}
_IM2COL_TEMPLATES = {"conv2d": "conv_im2col.c.j2", "conv1d": "conv_im2col.c.j2",
                     "depthwise_conv2d": "depthwise_im2col.c.j2"}


@dataclass(frozen=True)
class KernelPlan:
    """A kernel chosen for one layer.

    ``strategy`` is the name written into the generated header (``"direct"``,
    ``"im2col"``, ``"dsp_conv_1x1"``, ...); ``template`` the jinja2 template under
    ``codegen/`` that renders the layer's function; ``scratch_bytes`` the scratch the
    rendered kernel needs, computed by the same code that chose it; ``context`` extra
    template variables (for example weights reordered at generation time).
    """

    strategy: str
    template: str
    scratch_bytes: int
    context: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.strategy, str) or not re.fullmatch(r"[A-Za-z0-9_]{1,32}",
                                                                   self.strategy):
            raise ValueError(f"strategy={self.strategy!r}: must match [A-Za-z0-9_]{{1,32}} "
                             f"(it is written into the C header as a string)")
        if isinstance(self.scratch_bytes, bool) or not isinstance(self.scratch_bytes, int) \
                or self.scratch_bytes < 0:
            raise ValueError(f"scratch_bytes={self.scratch_bytes!r}: must be an int >= 0")


def strategies_for(op: str) -> tuple[str, ...]:
    """Generic strategies available for ``op``."""
    return GENERIC_STRATEGIES if op in _IM2COL_TEMPLATES else ("direct",)


def direct_plan(ctx: dict[str, Any]) -> KernelPlan:
    """Direct loops over the output; no scratch."""
    return KernelPlan("direct", _DIRECT_TEMPLATES[ctx["op"]], 0)


def im2col_column_bytes(ctx: dict[str, Any]) -> int:
    """Bytes of one im2col column: the int16 patch of one output pixel (one group for
    conv; all channels for depthwise), input offset already added, pads as zeros."""
    taps = ctx["k_h"] * ctx["k_w"]
    channels = ctx["in_c"] if ctx["op"] == "depthwise_conv2d" else ctx["in_c_per_group"]
    return 2 * taps * channels


def im2col_plan(ctx: dict[str, Any], budget: int, *, forced: bool) -> KernelPlan | None:
    """im2col + GEMM with as many columns as ``budget`` holds (up to IM2COL_MAX_COLUMNS);
    None when not even one column fits, unless ``forced`` (then one column)."""
    column = im2col_column_bytes(ctx)
    columns = min(IM2COL_MAX_COLUMNS, ctx["out_h"] * ctx["out_w"], budget // column)
    if columns < 1:
        if not forced:
            return None
        columns = 1
    return KernelPlan("im2col", _IM2COL_TEMPLATES[ctx["op"]], columns * column,
                      {"im2col_columns": columns, "im2col_column_len": column // 2})


def generic_plan(ctx: dict[str, Any], forced: str | None, budget: int) -> KernelPlan:
    """The plan for a forced generic strategy, or the default rule: im2col for Conv2D and
    Conv1D when every output column is reused by at least 2 output channels of its group
    and one column fits ``budget``; direct loops otherwise."""
    if forced == "im2col":
        plan = im2col_plan(ctx, budget, forced=True)
        assert plan is not None
        return plan
    if forced is None and ctx["op"] in ("conv2d", "conv1d") and ctx["out_c_per_group"] >= 2:
        plan = im2col_plan(ctx, budget, forced=False)
        if plan is not None:
            return plan
    return direct_plan(ctx)
