"""Kernels and kernel plans: the contract between codegen and the kernel modules.

A kernel module (``edgeconv/codegen/kernels/<family>.py``, templates under
``codegen/kernels/<family>/``) declares each of its kernels as a :class:`Kernel`: the
strategy name written into the header, its template, and the static symbols its template
emits. Its ``select(ctx)`` returns a :class:`KernelPlan` for a layer it accepts (with the
scratch size and the kernel's typed template context), or None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kernel:
    """One kernel: ``strategy`` (``[A-Za-z0-9_]{1,32}``, written into the C header),
    ``template`` (path under ``codegen/``) and ``symbols``: the suffixes of every
    file-scope symbol ``<name>_<suffix>`` the template may emit for a layer ``<name>``
    (besides the function ``<name>`` itself). Codegen reserves exactly these."""

    strategy: str
    template: str
    symbols: tuple[str, ...]

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_]{1,32}", self.strategy):
            raise ValueError(f"strategy={self.strategy!r}: must match [A-Za-z0-9_]{{1,32}} "
                             f"(it is written into the C header as a string)")

    def plan(self, scratch_bytes: int, context: Any = None) -> KernelPlan:
        """A plan running this kernel with ``scratch_bytes`` of scratch and the template
        context ``context`` (read by the template as ``k``)."""
        return KernelPlan(self, scratch_bytes, context)


@dataclass(frozen=True)
class KernelPlan:
    """The kernel chosen for one layer, its scratch bytes (computed by the code that
    chose it) and its typed template context (``k`` in the template; None if unused)."""

    kernel: Kernel
    scratch_bytes: int
    context: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.scratch_bytes, bool) or not isinstance(self.scratch_bytes, int) \
                or self.scratch_bytes < 0:
            raise ValueError(f"scratch_bytes={self.scratch_bytes!r}: must be an int >= 0")

    @property
    def strategy(self) -> str:
        return self.kernel.strategy

    @property
    def template(self) -> str:
        return self.kernel.template

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.kernel.symbols
