"""Cortex-M fast kernels chosen at generation time from a layer's shape and the CPU."""

from __future__ import annotations

from typing import Any

from edgeconv.kernel_plan import KernelPlan


def select(layer: Any, input_shape: tuple[int, ...], cpu: str) -> KernelPlan | None:
    """Return a fast kernel plan for ``layer`` on ``cpu``, or None to use the generic kernels."""
    return None
