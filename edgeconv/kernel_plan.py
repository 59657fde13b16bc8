"""How one layer is computed in generated C: the strategy, its template and its scratch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
