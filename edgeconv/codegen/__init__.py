"""C99 code generation for edgeconv layers through jinja2 templates (``codegen/``).

``generate(layers, out_dir)`` writes ``<prefix>.h`` and ``<prefix>.c``: one function per
layer, ``static const`` weights and requantization parameters, compile-time shapes, and
the strategy and scratch size of each layer in the header. ``registry=True`` adds the
table the firmware harness runs (``edgeconv_registry.c``, ``edgeconv_registry_config.h``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from edgeconv.codegen import kernels
from edgeconv.codegen.context import LayerContext, layer_context, op_of, quant_facts
from edgeconv.codegen.cpus import CPU_NAMES as CPUS
from edgeconv.codegen.cpus import cpu as cpu_named
from edgeconv.codegen.kernels import generic, shared
from edgeconv.codegen.kernels.generic import DEFAULT_SCRATCH_BUDGET, strategies_for
from edgeconv.codegen.names import (
    c_comment,
    c_initializer,
    c_int,
    c_plus,
    c_string,
    check_identifier,
    check_layer_names,
)
from edgeconv.codegen.network import Network, network_plan
from edgeconv.codegen.plan import KernelPlan
from edgeconv.resources import templates_dir

REGISTRY_SOURCE = "edgeconv_registry.c"
REGISTRY_CONFIG = "edgeconv_registry_config.h"
Strategy = str | Mapping[str, str] | None
# Every layer reserves the symbols any kernel declares (not only its own kernel's), so a
# set of layer names valid for one CPU is valid for every CPU and strategy.
SYMBOL_SUFFIXES = tuple(sorted({s for k in (*kernels.ALL_KERNELS, *shared.KERNELS)
                                 for s in k.symbols}))


@dataclass(frozen=True)
class GeneratedLayer:
    """What was generated for one layer."""

    name: str
    op: str
    strategy: str
    scratch_bytes: int
    input_count: int
    output_count: int
    input_dtype: str
    output_dtype: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    # Element counts of the inputs of a multi-input op (ADD, MUL, CONCATENATION): its
    # function takes one pointer per input; the packed input buffer holds them in order.
    input_counts: tuple[int, ...] = ()

    @property
    def input_ctype(self) -> str:
        """C type of an input element (``int8_t``, ``int16_t``, ``int32_t``, ``float``)."""
        return "float" if self.input_dtype == "float32" else f"{self.input_dtype}_t"

    @property
    def output_ctype(self) -> str:
        """C type of an output element."""
        return "float" if self.output_dtype == "float32" else f"{self.output_dtype}_t"

    @property
    def input_elem_bytes(self) -> int:
        return _bytes(self.input_dtype)

    @property
    def output_elem_bytes(self) -> int:
        return _bytes(self.output_dtype)

    @property
    def input_offsets(self) -> tuple[int, ...]:
        """Element offset of each input of a multi-input op in the packed buffer."""
        offsets, at = [], 0
        for count in self.input_counts:
            offsets.append(at)
            at += count
        return tuple(offsets)


@dataclass(frozen=True)
class GeneratedCode:
    """Paths written by :func:`generate`, the layer-set hash and per-layer info."""

    header: Path
    source: Path
    registry_source: Path | None
    registry_config: Path | None
    hash: str
    layers: tuple[GeneratedLayer, ...]

    @property
    def sources(self) -> tuple[Path, ...]:
        """The C files to compile."""
        return tuple(p for p in (self.source, self.registry_source) if p is not None)


@dataclass(frozen=True)
class _Planned:
    ctx: LayerContext
    plan: KernelPlan


def _check_options(cpu: object, scratch_budget: object) -> int:
    cpu_named(cpu)
    if scratch_budget is None:
        return DEFAULT_SCRATCH_BUDGET
    if isinstance(scratch_budget, bool) or not isinstance(scratch_budget, (int, np.integer)) \
            or scratch_budget < 0:
        raise ValueError(f"scratch_budget={scratch_budget!r}: allowed is an int >= 0 or None")
    return int(scratch_budget)


def _forced(strategy: Strategy, names: list[str], ops: list[str]) -> list[str | None]:
    """Per layer: the strategy the user forces, or None to let the generator choose."""
    if strategy is None:
        return [None] * len(names)
    if isinstance(strategy, str):
        if strategy not in ("direct", "im2col"):
            raise ValueError(f"strategy={strategy!r}: allowed are 'direct', 'im2col', a dict "
                             f"layer name -> strategy, or None")
        # A global 'im2col' applies to the ops that have it; the others stay direct.
        return [strategy if strategy in strategies_for(op) else "direct" for op in ops]
    if not isinstance(strategy, Mapping):
        raise ValueError(f"strategy={strategy!r}: allowed are 'direct', 'im2col', a dict "
                         f"layer name -> strategy, or None")
    unknown = sorted(set(strategy) - set(names))
    if unknown:
        raise ValueError(f"strategy: layer name {unknown[0]!r} is not among the layers "
                         f"{names}")
    forced: list[str | None] = []
    for name, op in zip(names, ops, strict=True):
        choice = strategy.get(name)
        if choice is not None and choice not in strategies_for(op):
            raise ValueError(f"strategy[{name!r}]={choice!r}: allowed for {op} are "
                             f"{', '.join(strategies_for(op))}")
        forced.append(choice)
    return forced


def _layer_list(layers: Any, prefix: str) -> list[Any]:
    """The layers to generate: a model becomes ``Network(model, name=prefix)``, and every
    network is preceded by its node layers."""
    if hasattr(layers, "nodes") and hasattr(layers, "tensors"):  # an edgeconv.model.Model
        layers = [Network(layers, name=prefix)]
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or not layers:
        raise ValueError(f"layers={layers!r}: allowed is a non-empty sequence of layers or "
                         "an edgeconv.Model")
    out: list[Any] = []
    for layer in layers:
        if isinstance(layer, Network):  # its node layers first, once
            out.extend(node for node in layer.layers if not any(node is o for o in out))
        out.append(layer)
    return out


def expand_layers(layers: Sequence[Any] | Any, prefix: str = "net") -> list[Any]:
    """The layers :func:`generate` writes functions for: a model becomes
    ``Network(model, name=prefix)``, every network comes after its node layers."""
    return _layer_list(layers, prefix)


def registry_layers(layers: Sequence[Any] | Any, prefix: str = "net") -> list[Any]:
    """The layers of the firmware registry, in its order: :func:`expand_layers` without
    the nodes of networks built with ``nodes=False``."""
    expanded = _layer_list(layers, prefix)
    hidden = {id(node) for layer in expanded if isinstance(layer, Network) and not layer.nodes
              for node in layer.layers}
    return [layer for layer in expanded if id(layer) not in hidden]


def plan_layers(layers: Sequence[Any] | Any, *, prefix: str = "edgeconv_net",
                strategy: Strategy = None, scratch_budget: int | None = None,
                cpu: str = "generic", specialize: str = "speed") -> list[_Planned]:
    """Validate the layers and options and choose a kernel plan for every layer (a model's
    or network's node layers first, then the network itself over its arena);
    ``specialize="size"``: the layers :mod:`edgeconv.codegen.kernels.shared` covers call
    one kernel per kind."""
    budget = _check_options(cpu, scratch_budget)
    size = shared.check_specialize(specialize) == "size"
    layers = _layer_list(layers, prefix)
    ops = [op_of(layer) for layer in layers]
    names = check_layer_names([getattr(layer, "name", None) for layer in layers], prefix,
                              SYMBOL_SUFFIXES)
    planned: list[_Planned] = []
    scratch: dict[str, int] = {}
    for layer, name, forced in zip(layers, names, _forced(strategy, names, ops), strict=True):
        ctx = layer_context(layer, name, cpu)
        if ctx.op == "network":
            plan = network_plan(layer, scratch)
        elif size and ctx.op in shared.OPS:
            plan = shared.layer_plan(ctx, budget)
        else:
            # Backward layers have one kernel each: a forced generic strategy does not apply.
            plan = kernels.select_fast(ctx) \
                if forced is None or ctx.op in kernels.backward.OPS else None
            plan = plan or generic.select(ctx, forced, budget)
        scratch[name] = plan.scratch_bytes
        planned.append(_Planned(ctx, plan))
    if size:
        shared.bind([p.plan for p in planned], prefix)
    return planned


def _to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (type, np.dtype)):
        return np.dtype(value).name
    raise TypeError(f"spec value {value!r} is not JSON-able")


def _hash(planned: list[_Planned], cpu: str) -> str:
    doc = {"cpu": cpu, "layers": [
        {"name": p.ctx.name, "spec": p.ctx.layer.spec(), "strategy": p.plan.strategy,
         "scratch_bytes": p.plan.scratch_bytes, "template": p.plan.template}
        for p in planned]}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=_to_json)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def layer_set_hash(layers: Sequence[Any], *, cpu: str = "generic", strategy: Strategy = None,
                   scratch_budget: int | None = None, prefix: str = "edgeconv_net",
                   specialize: str = "speed") -> str:
    """16 hex chars of SHA-256 over every layer's name, ``spec()``, chosen strategy,
    template and scratch size, and the CPU; equal to ``generate(...).hash`` for the same
    arguments, computed without rendering anything."""
    planned = plan_layers(layers, prefix=prefix, strategy=strategy,
                          scratch_budget=scratch_budget, cpu=cpu, specialize=specialize)
    return _hash(planned, cpu)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True,
                             autoescape=False)
    env.filters.update(c_int=c_int, c_initializer=c_initializer, c_comment=c_comment,
                       c_string=c_string, c_plus=c_plus)
    return env


# Shared helpers (codegen/_helpers.c.j2) and the helpers each one calls.
HELPER_DEPS: dict[str, tuple[str, ...]] = {
    "edgeconv_wrap32": (), "edgeconv_clamp": (), "edgeconv_srdhm": (), "edgeconv_rdbp": (),
    "edgeconv_mbqm_double": ("edgeconv_wrap32", "edgeconv_srdhm", "edgeconv_rdbp"),
    "edgeconv_mbqm_single": ("edgeconv_wrap32",), "edgeconv_mbqm_int64": ("edgeconv_wrap32",),
    "edgeconv_sext64": (), "edgeconv_acc128_add": (),
    "edgeconv_acc128_shift": ("edgeconv_sext64", "edgeconv_acc128_add"),
    "edgeconv_round_once_wide": ("edgeconv_wrap32",), "edgeconv_clz32": (),
    "edgeconv_reciprocal": ("edgeconv_clz32", "edgeconv_wrap32", "edgeconv_srdhm",
                            "edgeconv_clamp"),
    "edgeconv_lut16": (),
    "edgeconv_grad_fits": (), "edgeconv_grad_bit_length": (),
    "edgeconv_grad_exponent": ("edgeconv_grad_fits", "edgeconv_grad_bit_length"),
    "edgeconv_grad_round": (), "edgeconv_grad_round32": (), "edgeconv_round_shift_sat32": (),
}


def _helpers_used(bodies: list[str]) -> set[str]:
    """The shared helpers the rendered layer bodies call, with their dependencies (only
    those are emitted: clang warns about unused static inline functions)."""
    todo = [h for h in HELPER_DEPS if any(re.search(rf"\b{h}\b", b) for b in bodies)]
    used: set[str] = set()
    while todo:
        helper = todo.pop()
        if helper not in used:
            used.add(helper)
            todo.extend(HELPER_DEPS[helper])
    return used


def _dtype_name(ctype: str) -> str:
    return "float32" if ctype == "float" else ctype.removesuffix("_t")


def _info(p: _Planned) -> GeneratedLayer:
    ctx = p.ctx
    return GeneratedLayer(name=ctx.name, op=ctx.op, strategy=p.plan.strategy,
                          scratch_bytes=p.plan.scratch_bytes, input_count=ctx.input_count,
                          output_count=ctx.output_count,
                          input_dtype=_dtype_name(ctx.in_ctype),
                          output_dtype=_dtype_name(ctx.out_ctype),
                          input_shape=ctx.input_shape, output_shape=ctx.output_shape,
                          input_counts=ctx.input_counts if len(ctx.input_counts) > 1 else ())


def generate(layers: Sequence[Any] | Any, out_dir: str | Path, prefix: str = "edgeconv_net", *,
             strategy: Strategy = None, scratch_budget: int | None = None,
             cpu: str = "generic", registry: bool = False,
             specialize: str = "speed") -> GeneratedCode:
    """Write ``<prefix>.h`` and ``<prefix>.c`` for ``layers`` into ``out_dir``.

    ``layers`` is a sequence of layers (a :class:`~edgeconv.codegen.network.Network` among
    them brings its node layers and ``<name>_run``), or an ``edgeconv.Model``: then the
    model becomes one network named ``prefix`` (``<prefix>_run``, ``<PREFIX>_ARENA_BYTES``).

    ``strategy``: None (a fast kernel from :mod:`edgeconv.codegen.kernels` if any, else
    the default rule of :mod:`edgeconv.codegen.kernels.generic`), ``'direct'`` or ``'im2col'`` for
    every layer that has it, or a dict layer name -> strategy. ``scratch_budget``: bytes a
    layer may use (default ``DEFAULT_SCRATCH_BUDGET``). ``registry``: also write the
    firmware harness's layer table. ``specialize``: ``'speed'`` (every layer its own
    kernel, shapes as constants) or ``'size'`` (conv-like, pool and FC layers of one kind
    share one kernel taking their parameters at run time: less flash, more instructions;
    :mod:`edgeconv.codegen.kernels.shared`).
    """
    if not isinstance(registry, bool):
        raise ValueError(f"registry={registry!r}: allowed are True, False")
    out = _out_dir(out_dir)
    planned = plan_layers(layers, prefix=prefix, strategy=strategy,
                          scratch_budget=scratch_budget, cpu=cpu, specialize=specialize)
    layer_hash = _hash(planned, cpu)
    infos = tuple(_info(p) for p in planned)
    env = _environment()
    bodies = [env.get_template(p.plan.template).render(
        p.ctx.template_vars(), strategy=p.plan.strategy, scratch_bytes=p.plan.scratch_bytes,
        k=p.plan.context) for p in planned]
    bodies = [k.source for k in shared_kernels(planned)] + bodies
    common = dict(prefix=prefix, guard=f"EDGECONV_NET_{prefix.upper()}_H", hash=layer_hash,
                  layers=[dict(info=info, facts=quant_facts(p.ctx),
                               net=p.plan.context if p.ctx.op == "network" else None,
                               strip_rows=getattr(p.plan.context, "strip_rows", None))
                          for info, p in zip(infos, planned, strict=True)])
    out.mkdir(parents=True, exist_ok=True)
    header, source = out / f"{prefix}.h", out / f"{prefix}.c"
    header.write_text(env.get_template("network.h.j2").render(common))
    source.write_text(env.get_template("network.c.j2").render(
        common, bodies=bodies, helpers=_helpers_used(bodies)))
    reg_source = reg_config = None
    if registry:
        shown = {id(layer) for layer in registry_layers([p.ctx.layer for p in planned])}
        entries = [e for e, p in zip(common["layers"], planned, strict=True)
                   if id(p.ctx.layer) in shown]
        regs = [e["info"] for e in entries]
        reg_common = {**common, "layers": entries}
        reg_source, reg_config = out / REGISTRY_SOURCE, out / REGISTRY_CONFIG
        reg_source.write_text(env.get_template("registry.c.j2").render(reg_common))
        reg_config.write_text(env.get_template("registry_config.h.j2").render(
            reg_common, max_scratch=max([1] + [i.scratch_bytes for i in regs]),
            max_input=max([1] + [i.input_count * _bytes(i.input_dtype) for i in regs]),
            max_output=max([1] + [i.output_count * _bytes(i.output_dtype) for i in regs])))
    return GeneratedCode(header, source, reg_source, reg_config, layer_hash, infos)


def shared_kernels(planned: list[_Planned]) -> list[shared.SharedKernel]:
    """The shared kernels (specialize="size") the planned layers call, in order."""
    out: list[shared.SharedKernel] = []
    for p in planned:
        kernel = getattr(p.plan.context, "kernel", None) if p.plan.kernel is shared.SHARED \
            else None
        if kernel is not None and not any(kernel is k for k in out):
            out.append(kernel)
    return out


def _out_dir(out_dir: object) -> Path:
    """``out_dir`` as a Path; ValueError unless it is path-like and not an existing file."""
    if not isinstance(out_dir, (str, os.PathLike)):
        raise ValueError(f"out_dir={out_dir!r}: must be a str or a path")
    out = Path(out_dir)
    if any(p.exists() and not p.is_dir() for p in (out, *out.parents)):
        raise ValueError(f"out_dir={str(out)!r}: is or lies under a file, must be a directory")
    return out


def _bytes(dtype: str) -> int:
    return int(np.dtype(dtype).itemsize)


__all__ = ["CPUS", "GeneratedCode", "GeneratedLayer", "Network", "check_identifier",
           "expand_layers", "generate", "layer_set_hash", "plan_layers", "registry_layers"]
