"""Code-size mode (``generate(..., specialize="size")``): the layers of one kind share one
kernel function that takes the layer's parameters at run time (templates
``codegen/kernels/shared/``).

In speed mode (the default) every layer gets its own kernel with its shapes, strides, pads
and offsets as compile-time constants: about 1.5-2 KB of code per conv layer on a
Cortex-M4. In size mode the conv-like and pool layers and FULLY_CONNECTED get

- one shared kernel per (op, template, element and accumulator types, requantization,
  bias or not, array types): the portable template of the op (``generic`` ``im2col`` for
  Conv2D / Conv1D, up to ``scratch_budget`` bytes of columns, and for
  DepthwiseConv2D, one patch; ``generic`` ``direct`` for the pools; ``nnops``
  ``fully_connected``), rendered once with every number a run-time C expression
  ``p-><field>`` (:class:`~edgeconv.codegen.names.CExpr`), so it does the same arithmetic
  as that speed-mode kernel, in the same order (bit-exact by construction, and tested
  against the reference model). im2col rather than direct: the pads are checked once per
  tap of a column for all its channels, not per tap and output channel (MobileNet on the
  M4: 8.5 instructions per MAC against 12.2 with the direct loops, arena +64 B);
- per layer: its const arrays (weights, bias, per-channel multiplier, and shift as int8), one
  ``static const`` parameter struct ``<name>_params`` and the layer function ``<name>``
  calling the shared kernel with it (so the header, the firmware registry and
  node-by-node runs are unchanged).

The struct holds only the fields the shared kernel reads, as ``int16_t`` where every layer
sharing it fits, else ``int32_t``. No fast Cortex-M family is used for these ops in size
mode: the M4 DSP, M0 and Helium kernels are specialised per layer (unrolled for their
channel counts and packings); size mode runs the portable loops on every CPU, slower.
Ops outside ``OPS`` (ADD, MEAN, SOFTMAX, ...) keep their own kernels.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from edgeconv.codegen.context import LayerContext
from edgeconv.codegen.kernels import generic, nnops
from edgeconv.codegen.names import CExpr
from edgeconv.codegen.plan import Kernel, KernelPlan

SPECIALIZE = ("speed", "size")
OPS = ("conv2d", "conv1d", "depthwise_conv2d", "max_pool2d", "avg_pool2d", "fully_connected")
SHARED = Kernel("shared", "kernels/shared/layer.c.j2",
                ("weights", "bias", "mult", "shift", "params"))
KERNELS = (SHARED,)
# Scalars a conv/pool template reads besides the geometry; FC's context ``k`` fields.
_CONV_SCALARS = ("groups", "in_c_per_group", "out_c_per_group", "depth_multiplier",
                 "input_offset", "output_offset", "act_min", "act_max")
_FC_SCALARS = ("out_c", "in_k", "input_offset", "output_offset", "act_min", "act_max")
# Compile-time properties: layers that differ in one of them get separate shared kernels.
_CONV_KEY = ("op", "in_ctype", "out_ctype", "acc_ctype", "acc_wraps", "requantize",
             "bias_ctype")
_FC_KEY = ("acc_ctype", "acc_wraps", "requantize", "bias_ctype")
_INT16 = (-(1 << 15), (1 << 15) - 1)
# One copy of a shared kernel, whatever the compiler's inlining heuristics say (at -O3 gcc
# inlined a kernel into each of its callers once the parameters were restrict-qualified).
_NOINLINE = """#ifndef EDGECONV_SHARED
#if defined(__GNUC__)
#define EDGECONV_SHARED __attribute__((noinline))
#else
#define EDGECONV_SHARED
#endif
#endif
"""


def check_specialize(specialize: object) -> str:
    """``specialize`` if allowed, else ValueError."""
    if specialize not in SPECIALIZE:
        raise ValueError(f"specialize={specialize!r}: allowed are 'speed', 'size'")
    return str(specialize)


@dataclass(frozen=True)
class Array:
    """One const array of a layer: ``<name>_<suffix>``, a pointer field of the params."""

    suffix: str
    ctype: str
    values: list[int]


class _RunTime:
    """A template variable whose attributes are run-time fields ``p-><attr>`` (recorded in
    ``used``), except ``fixed`` ones, which keep their compile-time values."""

    def __init__(self, used: list[str], fixed: dict[str, Any]) -> None:
        self._used, self._fixed = used, fixed

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        if attr in self._fixed:
            return self._fixed[attr]
        if attr not in self._used:
            self._used.append(attr)
        return CExpr(f"p->{attr}")


@dataclass(frozen=True)
class SharedParams:
    """``shared`` of a shared kernel's render: the C type of its parameter struct."""

    params_type: str


@dataclass
class SharedKernel:
    """One shared kernel: its function, the parameter struct and its C source (set by
    :func:`bind`)."""

    key: tuple[Any, ...]
    template: str
    name: str = ""
    params_type: str = ""
    fields: list[tuple[str, str]] = field(default_factory=list)  # (ctype, name)
    source: str = ""


@dataclass
class SharedLayerContext:
    """``k`` of ``shared/layer.c.j2``: the layer's arrays and run-time values, and the
    shared kernel it calls (set by :func:`bind`)."""

    op: str
    template: str
    key: tuple[Any, ...]
    variables: dict[str, Any]  # the portable template's variables (as in speed mode)
    values: dict[str, int]  # every run-time field the kernel may read
    arrays: list[Array]
    kernel: SharedKernel | None = None

    def initializer(self) -> list[str]:
        """The designated initializers of ``<name>_params``."""
        assert self.kernel is not None
        name = self.variables["name"]
        lines = [f".{a.suffix} = {name}_{a.suffix}" for a in self.arrays]
        lines += [f".{f} = {self.values[f]}" for _, f in self.kernel.fields
                  if f not in {a.suffix for a in self.arrays}]
        return lines


def layer_plan(ctx: LayerContext, budget: int = generic.DEFAULT_SCRATCH_BUDGET
               ) -> KernelPlan | None:
    """The size-mode plan of a layer whose op has a shared kernel, else None; ``budget``:
    the scratch bytes a Conv2D / Conv1D may use for im2col columns (one column at least)."""
    if ctx.op not in OPS:
        return None
    variables = ctx.template_vars()
    if ctx.op == "fully_connected":
        # the portable FC kernel (on a CPU with a fast conv kernel, speed mode runs the
        # FC as a 1x1 conv through it instead)
        base = nnops.select(dataclasses.replace(ctx, cpu="generic"))
        assert base is not None and base.template == nnops.KERNEL["fully_connected"].template
        k = base.context
        values = {f: int(getattr(k, f)) for f in _FC_SCALARS}
        key = tuple(getattr(k, f) for f in _FC_KEY) + (k.bias is not None,)
        arrays = [Array("weights", "int8_t", k.weights),
                  *([Array("bias", k.bias_ctype, k.bias)] if k.bias is not None else []),
                  Array("mult", "int32_t", k.multiplier),
                  Array("shift", _shift_ctype(k.shift), k.shift)]
        variables["k"] = k
    else:
        if ctx.op in generic.IM2COL:
            # im2col: the pads checked once per tap of a column for all its channels (the
            # direct loops check them per tap and output channel), the GEMM's inner loop
            # a plain dot product; depthwise one patch at a time
            base = generic.im2col_plan(ctx, 0 if ctx.op == "depthwise_conv2d" else budget,
                                       forced=True)
            assert base is not None
            variables["k"] = base.context
        else:
            base = generic.DIRECT[ctx.op].plan(0)
        assert ctx.geo is not None
        values = {f.name: int(getattr(ctx.geo, f.name)) for f in dataclasses.fields(ctx.geo)}
        conv = ctx.conv is not None
        values.update({f: int(variables[f]) for f in _CONV_SCALARS if f in variables})
        if "k" in variables:
            values["columns"] = variables["k"].columns
        key = tuple(variables.get(f) for f in _CONV_KEY) + (
            conv and variables["bias"] is not None,)
        arrays = []
        if conv:
            arrays = [Array("weights", "int8_t", variables["weights"]),
                      *([Array("bias", variables["bias_ctype"], variables["bias"])]
                        if variables["bias"] is not None else []),
                      Array("mult", "int32_t", variables["multiplier"]),
                      Array("shift", _shift_ctype(variables["shift"]), variables["shift"])]
    key = (ctx.op, base.template, ctx.in_ctype, ctx.out_ctype, *key,
           tuple(a.ctype for a in arrays))
    return SHARED.plan(base.scratch_bytes, SharedLayerContext(
        ctx.op, base.template, key, variables, values, arrays))


def _shift_ctype(shift: list[int]) -> str:
    """Per-channel shifts as int8 (one byte a channel, not four) where they fit: they are
    in [-31, 30] for every requantization codegen emits."""
    return "int8_t" if all(-128 <= v <= 127 for v in shift) else "int32_t"


def _symbolic(variables: dict[str, Any], op: str, used: list[str]) -> dict[str, Any]:
    """The template variables with every run-time number replaced by ``p-><field>``."""
    out = dict(variables)
    if op == "fully_connected":
        k = variables["k"]
        out["k"] = _RunTime(used, {f.name: getattr(k, f.name) for f in dataclasses.fields(k)
                                   if f.name not in _FC_SCALARS})
        return out
    fields = _RunTime(used, {})
    out["geo"] = fields
    out.update({f: getattr(fields, f) for f in _CONV_SCALARS if f in out})
    if "k" in out:  # im2col: columns per GEMM
        out["k"] = fields
    return out


def _ctype(values: list[int]) -> str:
    lo, hi = _INT16
    return "int16_t" if all(lo <= v <= hi for v in values) else "int32_t"


def bind(plans: list[KernelPlan], prefix: str) -> list[SharedKernel]:
    """Group the size-mode layers of ``plans`` by key, render one shared kernel per group
    (``<prefix>_shared_<op>``, ``_<n>`` added from the second of an op) and give every
    layer its kernel; returns the kernels in order of first use."""
    from edgeconv.codegen import _environment  # the package imports this module

    env = _environment()
    kernels: dict[tuple[Any, ...], SharedKernel] = {}
    members: dict[tuple[Any, ...], list[SharedLayerContext]] = {}
    for plan in plans:
        if plan.kernel is not SHARED:
            continue
        k: SharedLayerContext = plan.context
        if k.key not in kernels:
            count = sum(1 for other in kernels.values() if other.key[0] == k.op)
            kernels[k.key] = SharedKernel(k.key, k.template,
                                          f"{prefix}_shared_{k.op}" + (f"_{count}" if count
                                                                        else ""))
            members[k.key] = []
        members[k.key].append(k)
        k.kernel = kernels[k.key]
    for key, kernel in kernels.items():
        first = members[key][0]
        kernel.params_type = f"{kernel.name}_params_t"
        used: list[str] = []
        variables = _symbolic(first.variables, first.op, used)
        variables.update(name=kernel.name, NAME=kernel.name.upper())
        body = env.get_template(kernel.template).render(
            variables, strategy="direct", scratch_bytes=0,
            shared=SharedParams(kernel.params_type),
            **({"k": variables["k"]} if "k" in variables else {}))
        used = [f for f in used if re.search(rf"\bp->{f}\b", body)]  # read by the body
        pointers = [(f"const {a.ctype} *", a.suffix) for a in first.arrays]
        ints = [(_ctype([m.values[f] for m in members[key]]), f) for f in used]
        ints.sort(key=lambda item: item[0] == "int16_t")  # int32 first, then int16
        kernel.fields = pointers + ints
        struct = "\n".join(f"    {ctype}{'' if ctype.endswith('*') else ' '}{name};"
                           for ctype, name in kernel.fields)
        kernel.source = (f"{_NOINLINE}/* Run-time parameters of {kernel.name} "
                         f"(specialize=\"size\"): one const struct per layer. */\n"
                         f"typedef struct {{\n{struct}\n}} {kernel.params_type};\n\n{body}")
    return list(kernels.values())


__all__ = ["KERNELS", "OPS", "SHARED", "SPECIALIZE", "SharedKernel", "SharedLayerContext",
           "bind", "check_specialize", "layer_plan"]
