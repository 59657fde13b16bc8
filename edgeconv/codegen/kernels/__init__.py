"""The kernel families, in the order codegen tries them.

Each family is one module (``mve``, ``dsp``, ``m0``; ``generic`` last, for every op and
CPU) that states in one place what it accepts, its weight packing, its scratch formula,
its typed template context and the symbols its templates emit (``KERNELS``), with its
templates under ``codegen/kernels/<family>/``. A family module has:

- ``runs_on(cpu: Cpu) -> bool``: whether codegen may use it for that CPU;
- ``select(ctx: LayerContext) -> KernelPlan | None``: a plan for a layer it accepts;
- ``KERNELS``: its :class:`~edgeconv.codegen.plan.Kernel` declarations.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from edgeconv.codegen.context import LayerContext, layer_context
from edgeconv.codegen.cpus import cpu as cpu_named
from edgeconv.codegen.kernels import backward, dsp, filter2d, generic, m0, match2d, mve, nnops
from edgeconv.codegen.plan import Kernel, KernelPlan

FAST_FAMILIES: tuple[ModuleType, ...] = (mve, dsp, m0, filter2d, match2d)
ALL_KERNELS: tuple[Kernel, ...] = tuple(
    k for family in (*FAST_FAMILIES, generic, nnops, backward) for k in family.KERNELS)


def select_fast(ctx: LayerContext) -> KernelPlan | None:
    """The first fast family that runs on ``ctx.cpu`` and accepts the layer, or None to
    use the generic kernels; the backward layers' kernels (every CPU) for those."""
    cpu = cpu_named(ctx.cpu)
    if ctx.op in backward.OPS:
        return backward.select(ctx)
    for family in FAST_FAMILIES:
        if family.runs_on(cpu):
            plan = family.select(ctx)
            if plan is not None:
                return plan
    return None


def fast_plan(layer: Any, cpu: str, input_shape: tuple[int, ...] | None = None
              ) -> KernelPlan | None:
    """The fast kernel plan codegen chooses for ``layer`` on ``cpu`` (for ``input_shape``,
    default the layer's own), or None where the generic kernels run."""
    cpu_named(cpu)
    name = getattr(layer, "name", None) or "layer"
    return select_fast(layer_context(layer, name, cpu, input_shape))
