"""A model as one generated C network: the nodes' layers, and ``<name>_run()`` over one
arena planned at generation time (:mod:`edgeconv.codegen.arena`).

``Network(model, name="net")`` is codegen-able like a layer: ``codegen.generate([network],
...)`` (or ``codegen.generate(model, ..., prefix="net")``) writes one function per node
(``net_00_conv``, ...) and ``int net_run(const T_in *input, T_out *output, void *arena)``,
which calls them in order on tensors at fixed offsets of ``arena``
(``NET_ARENA_BYTES`` bytes, 4-byte aligned). The model input is read from ``input`` and
the output written to ``output`` directly; every other tensor and every scratch buffer
lives in the arena. RESHAPE and SQUEEZE cost nothing: their output is their input's
storage. ADD and MUL write their output in place of an input that dies there (its storage
read by no later step) when that input has the output's element count and type: their
kernel (``nnops`` ``binary.c.j2``) walks the output in order and reads both operands'
element ``o`` before it writes ``output[o]``, and an unbroadcast operand is read at index
``o`` itself, so no element is overwritten before it is read.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeconv.codegen.arena import ArenaPlan, Buffer, plan_arena
from edgeconv.codegen.names import MAX_NAME_LENGTH, check_identifier

ALIAS_OPS = ("RESHAPE", "SQUEEZE")
# elementwise kernels that may write their output over a same-sized input (module doc)
IN_PLACE_OPS = ("ADD", "MUL")
_SHORT = {"CONV_2D": "conv", "DEPTHWISE_CONV_2D": "dw", "FULLY_CONNECTED": "fc",
          "MAX_POOL_2D": "maxpool", "AVERAGE_POOL_2D": "avgpool", "MEAN": "mean",
          "ADD": "add", "MUL": "mul", "SOFTMAX": "softmax", "LOGISTIC": "logistic",
          "PAD": "pad", "CONCATENATION": "concat", "QUANTIZE": "quantize",
          "DEQUANTIZE": "dequantize"}
ALIGNMENT = 4


def _has_kernel(layer: Any) -> bool:
    """Whether codegen has a kernel for the layer's class."""
    from edgeconv.codegen.context import op_of

    try:
        op_of(layer)
    except ValueError:
        return False
    return True


def unbatched(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A TFLite tensor shape without its leading batch dimension of 1."""
    shape = tuple(int(d) for d in shape)
    return shape[1:] if len(shape) > 1 and shape[0] == 1 else shape


@dataclass(frozen=True)
class Step:
    """One step of ``<name>_run``: ``kind`` is ``'kernel'`` (call ``layer``'s function),
    ``'alias'`` (RESHAPE/SQUEEZE: the output is the input's storage, no code) or ``'copy'``
    (a RESHAPE/SQUEEZE into the model output: memcpy); tensor indices of the model."""

    index: int
    opcode: str
    kind: str
    inputs: tuple[int, ...]
    output: int
    layer: Any = None


class Network:
    """A single-input, single-output model (:class:`edgeconv.model.Model`) as one
    codegen-able unit; ``name`` is the stem of every C symbol (``<name>_run``,
    ``<name>_<nn>_<op>``, ``<NAME>_ARENA_BYTES``). ``nodes``: the firmware harness's
    registry lists every node too, so each can run on its own (``session.trace``); without
    them the harness needs buffers for the network's input, output and arena only."""

    op = "Network"

    def __init__(self, model: Any, *, name: str = "net", nodes: bool = True) -> None:
        check_identifier(name, "name")
        if len(name) + len("_99_avgpool") > MAX_NAME_LENGTH:
            raise ValueError(f"name={name!r}: length {len(name)}, allowed range is "
                             f"[1, {MAX_NAME_LENGTH - len('_99_avgpool')}] (node functions "
                             f"are named <name>_<nn>_<op>)")
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ValueError(f"model: {len(model.inputs)} inputs and {len(model.outputs)} "
                             "outputs, allowed is one of each")
        if not isinstance(nodes, bool):
            raise ValueError(f"nodes={nodes!r}: allowed are True, False")
        self.model = model
        self.nodes = nodes
        self.stem = name
        self.name = f"{name}_run"
        tin, tout = model.inputs[0], model.outputs[0]
        self.input_tensor, self.output_tensor = tin.index, tout.index
        self.input_shape = unbatched(tin.shape)
        self.output_shape = unbatched(tout.shape)
        self.activation_dtype = tin.dtype
        self.output_dtype = tout.dtype
        self.steps = tuple(self._step(i, node) for i, node in enumerate(model.nodes))

    # ---------------------------------------------------------------- the steps
    def _step(self, index: int, node: Any) -> Step:
        op = node.operator
        if op.opcode in ALIAS_OPS:
            # the model output has its own storage (``output``): copy into it
            kind = "copy" if node.output == self.output_tensor else "alias"
            return Step(index, op.opcode, kind, node.inputs[:1], node.output)
        if node.layer is None or op.opcode not in _SHORT or not _has_kernel(node.layer):
            names = [self.model.tensors[i].name for i in node.inputs]
            raise ValueError(f"{op.opcode} (operator {op.index}, inputs {names}): codegen has "
                             f"no C kernel for this op yet")
        layer = copy.copy(node.layer)
        layer.name = f"{self.stem}_{index:02d}_{_SHORT[op.opcode]}"
        shapes = [unbatched(self.model.tensors[i].shape) for i in node.inputs]
        fed = int(sum(np.prod(s) for s in shapes))
        if getattr(layer, "input_shape", None) is None:  # the graph left it to us
            setter = getattr(layer, "_set_input_shape", None)
            if setter is not None:
                setter(shapes[0])
            else:
                layer.input_shape = shapes[0]
        if int(np.prod(layer.input_shape)) != fed:  # multi-input layers take them packed
            raise ValueError(f"{op.opcode} (operator {op.index}): the layer takes "
                             f"{int(np.prod(layer.input_shape))} input elements, the model "
                             f"feeds {fed}")
        want = int(np.prod(self.model.tensors[node.output].shape))
        got = int(np.prod(layer.output_shape))
        if got != want:
            raise ValueError(f"{op.opcode} (operator {op.index}): the layer gives {got} "
                             f"outputs, the model's tensor holds {want}")
        return Step(index, op.opcode, "kernel", tuple(node.inputs), node.output, layer)

    def _root(self, tensor: int) -> int:
        """The tensor whose storage ``tensor`` uses (through aliases)."""
        by_output = {s.output: s for s in self.steps if s.kind == "alias"}
        while tensor in by_output:
            tensor = by_output[tensor].inputs[0]
        return tensor

    @property
    def layers(self) -> list[Any]:
        """The node layers, in execution order (each gets one C function)."""
        return [s.layer for s in self.steps if s.kind == "kernel"]

    # ---------------------------------------------------------------- the arena
    def location(self, tensor: int) -> str:
        """``'input'``, ``'output'`` or ``'arena'`` for a tensor's storage."""
        if tensor == self.output_tensor:
            return "output"
        return "input" if self._root(tensor) == self.input_tensor else "arena"

    def buffers(self, scratch: dict[str, int]) -> list[Buffer]:
        """Arena buffers: tensors by lifetime, and each kernel's scratch (``scratch``:
        bytes by layer name) for its own step."""
        tensors = self.model.tensors
        last: dict[int, int] = {}
        for s in self.steps:
            for t in s.inputs:
                last[t] = s.index
        out: list[Buffer] = []
        for s in self.steps:
            if self.location(s.output) == "arena":
                size = int(np.prod(tensors[s.output].shape)) * tensors[s.output].dtype.itemsize
                alias = None
                if s.kind == "alias" and self.location(s.inputs[0]) == "arena":
                    alias = f"t{s.inputs[0]}"
                elif s.kind == "kernel" and s.opcode in IN_PLACE_OPS:
                    alias = self._in_place_input(s, last)
                out.append(Buffer(f"t{s.output}", size, s.index, last.get(s.output, s.index),
                                  alias_of=alias))
            if s.kind == "kernel" and scratch.get(s.layer.name, 0) > 0:
                out.append(Buffer(f"scratch{s.index}", scratch[s.layer.name], s.index, s.index))
        return out

    def _in_place_input(self, step: Step, last: dict[int, int]) -> str | None:
        """The buffer an ADD / MUL step may overwrite with its output: the first input in
        the arena with the output's bytes and element count (so not broadcast) whose
        storage no later step reads (through RESHAPE aliases too); None if there is none."""
        tensors = self.model.tensors
        out = tensors[step.output]
        for t in step.inputs:
            t_in = tensors[t]
            if self.location(t) != "arena" or t_in.dtype != out.dtype \
                    or int(np.prod(t_in.shape)) != int(np.prod(out.shape)):
                continue
            root = self._root(t)
            sharing = [u for u in last if self.location(u) == "arena" and self._root(u) == root]
            if all(last[u] <= step.index for u in sharing):
                return f"t{t}"
        return None

    def plan(self, scratch: dict[str, int]) -> ArenaPlan:
        """The arena plan for the node kernels' scratch sizes."""
        return plan_arena(self.buffers(scratch), alignment=ALIGNMENT)

    # ---------------------------------------------------------------- as a layer
    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The model's output for ``x`` (shaped ``input_shape``, or batched)."""
        x = np.asarray(x)
        if x.shape == self.input_shape:
            return np.asarray(self.model(x)).reshape(self.output_shape)
        return np.stack([self(item) for item in x])

    def macs(self) -> int:
        """Multiply-accumulates per inference of the layers that count them."""
        return int(sum(layer.macs() for layer in self.layers if hasattr(layer, "macs")))

    def spec(self) -> dict[str, Any]:
        """Every node layer's name and spec, and the step list."""
        return {"nodes": self.nodes, "steps": [[s.opcode, s.kind, list(s.inputs), s.output,
                           None if s.layer is None else s.layer.name] for s in self.steps],
                "layers": {layer.name: layer.spec() for layer in self.layers}}

    def fingerprint(self) -> str:
        """16 hex chars identifying the network's numbers (for caches and reports)."""
        text = json.dumps(self.spec(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------- codegen
_CTYPE = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "float32": "float"}
NETWORK_KERNEL_TEMPLATE = "network_run.c.j2"


@dataclass(frozen=True)
class Call:
    """One statement of ``<name>_run``: a call of ``function`` (None: ``memcpy`` of
    ``copy_bytes``) on C expressions for its inputs, output and scratch."""

    comment: str
    function: str | None
    inputs: tuple[str, ...]
    output: str
    scratch: str
    copy_bytes: int = 0


@dataclass(frozen=True)
class TensorSlot:
    """A line of the header's memory map."""

    name: str
    where: str
    offset: int
    size: int
    first: int
    last: int


@dataclass(frozen=True)
class NetContext:
    """``k`` of ``network_run.c.j2`` and the header's network block."""

    stem: str
    arena_bytes: int
    calls: tuple[Call, ...]
    slots: tuple[TensorSlot, ...]
    steps: int
    peak_live_bytes: int
    input_count: int
    output_count: int
    input_scale: float | None
    input_zero_point: int | None
    output_scale: float | None
    output_zero_point: int | None


def _quant(t: Any) -> tuple[float | None, int | None]:
    q = t.quantization
    if q is None or q.scale.size != 1:
        return None, None
    return float(q.scale.ravel()[0]), int(q.zero_point.ravel()[0])


def network_plan(net: Network, scratch: dict[str, int]) -> Any:
    """The plan of ``net``'s run function, given its node layers' scratch bytes."""
    from edgeconv.codegen.plan import Kernel

    arena = net.plan(scratch)
    tensors = net.model.tensors

    def pointer(tensor: int, *, const: bool) -> str:
        ctype = _CTYPE[tensors[tensor].dtype.name]
        where = net.location(tensor)
        if where == "input":
            return "input"
        if where == "output":
            return "output"
        qual = "const " if const else ""
        return f"({qual}{ctype} *)({qual}void *)(arena + {arena.offsets[f't{tensor}']})"

    calls = []
    for s in net.steps:
        out_name = tensors[s.output].name
        if s.kind == "alias":
            continue
        if s.kind == "copy":
            size = int(np.prod(tensors[s.output].shape)) * tensors[s.output].dtype.itemsize
            calls.append(Call(f"{s.index}: {s.opcode} into the output ({out_name})", None,
                              (pointer(s.inputs[0], const=True),), "output", "NULL", size))
            continue
        sb = scratch.get(s.layer.name, 0)
        scratch_expr = f"(void *)(arena + {arena.offsets[f'scratch{s.index}']})" if sb else "NULL"
        calls.append(Call(f"{s.index}: {s.opcode} -> {out_name}", s.layer.name,
                          tuple(pointer(t, const=True) for t in s.inputs),
                          pointer(s.output, const=False), scratch_expr))
    slots = tuple(TensorSlot(tensors[int(b.name[1:])].name if b.name.startswith("t")
                             else b.name, "arena", arena.offsets[b.name], b.size, b.first,
                             b.last) for b in arena.buffers)
    (in_scale, in_zp), (out_scale, out_zp) = (_quant(tensors[net.input_tensor]),
                                              _quant(tensors[net.output_tensor]))
    k = NetContext(net.stem, arena.size, tuple(calls), slots, len(net.steps),
                   arena.peak_live_bytes(), int(np.prod(net.input_shape)),
                   int(np.prod(net.output_shape)), in_scale, in_zp, out_scale, out_zp)
    return Kernel("network", NETWORK_KERNEL_TEMPLATE, ()).plan(arena.size, k)
