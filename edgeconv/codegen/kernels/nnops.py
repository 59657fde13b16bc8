"""Portable kernels of the whole-model ops (templates ``codegen/kernels/nnops/``), one per
op, for every CPU; codegen reaches them through ``generic.select`` (they have no direct /
im2col variants and no Cortex-M fast path yet).

- ``fully_connected``: ``FullyConnected``, int8 and 16x8, per-tensor and per-channel.
  Weights ``(O, K)`` int8 as the layer holds them; per-channel multiplier and shift
  arrays; the requantization the layer's ``rounding`` names (``'single'``, TFLite's FC,
  by ``edgeconv_round_once_wide`` for 16x8).  int8 sums in int32 (int64 and an explicit
  wrap when the bound can pass 2**31). No scratch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeconv.codegen.context import INT64_ACC_LIMIT, NN_OPS, LayerContext
from edgeconv.codegen.cpus import Cpu
from edgeconv.codegen.geometry import acc_bound, max_input_term
from edgeconv.codegen.plan import Kernel, KernelPlan
from edgeconv.fixedpoint import INT32_MAX

_T = "kernels/nnops/"
KERNEL = {
    "fully_connected": Kernel("fully_connected", _T + "fully_connected.c.j2",
                              ("weights", "bias", "mult", "shift")),
}
KERNELS = tuple(KERNEL.values())
OPS = NN_OPS


def runs_on(cpu: Cpu) -> bool:
    """Portable C: every CPU."""
    return True


def _ints(values: Any) -> list[int]:
    return [int(v) for v in np.asarray(values).ravel()]


# ------------------------------------------------------------------------- contexts

@dataclass(frozen=True)
class FcContext:
    """``k`` of fully_connected: weights ``(O, K)`` row-major and the requantization."""

    out_c: int
    in_k: int
    weights: list[int]
    bias: list[int] | None
    bias_ctype: str
    acc_ctype: str
    acc_wraps: bool
    multiplier: list[int]
    shift: list[int]
    input_offset: int
    output_offset: int
    requantize: str
    act_min: int
    act_max: int


def _fully_connected(ctx: LayerContext) -> KernelPlan:
    layer = ctx.layer
    wide = np.dtype(layer.activation_dtype) == np.int16
    zp = int(layer.input_zero_point)
    bound = acc_bound(np.asarray(layer.weights, np.int64), layer.bias, max_input_term(layer))
    if wide and bound >= INT64_ACC_LIMIT:
        raise ValueError(f"layer {ctx.name!r}: accumulator bound {bound} outside the 16x8 "
                         "requantization domain [-2**47, 2**47)")
    if wide:
        requantize = {"single": "edgeconv_round_once_wide",
                      "int64": "edgeconv_mbqm_int64"}[layer.rounding]
    else:
        requantize = f"edgeconv_mbqm_{layer.rounding}"
    k = FcContext(
        out_c=int(layer.out_channels), in_k=int(layer.in_features),
        weights=_ints(layer.weights), bias=None if layer.bias is None else _ints(layer.bias),
        bias_ctype="int64_t" if wide else "int32_t",
        acc_ctype="int64_t" if wide or bound > INT32_MAX else "int32_t",
        acc_wraps=not wide and bound > INT32_MAX,
        multiplier=_ints(layer.output_multiplier), shift=_ints(layer.output_shift),
        input_offset=-zp, output_offset=0 if wide else int(layer.output_zero_point),
        requantize=requantize, act_min=int(layer.activation_min),
        act_max=int(layer.activation_max))
    return KERNEL["fully_connected"].plan(0, k)


_BUILDERS = {"fully_connected": _fully_connected}


def select(ctx: LayerContext) -> KernelPlan | None:
    """The kernel of a whole-model op, None for any other op."""
    builder = _BUILDERS.get(ctx.op)
    return None if builder is None else builder(ctx)
