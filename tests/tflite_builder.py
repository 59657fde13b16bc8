"""Write tiny single-operator .tflite files with the ``tflite`` package's flatbuffer
builders (the classes generated from TFLite's schema), for ops and variants the Keras
converter never emits (SQUEEZE) or refuses to emit (mismatched quantization), so the
LiteRT interpreter can judge them."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

import flatbuffers
import numpy as np
import tflite


def _module(name: str) -> Any:
    """The generated module (not the class the package re-exports under that name)."""
    return importlib.import_module(f"tflite.{name}")


@dataclasses.dataclass(frozen=True)
class Spec:
    """One tensor: TensorType name, shape, quantization (one scale, or a list of
    per-channel scales along ``axis`` with zero points 0), constant data."""

    name: str
    shape: tuple[int, ...]
    type_name: str = "INT8"
    scale: float | list[float] | None = None
    zero_point: int = 0
    data: np.ndarray | None = None
    axis: int = 0


def _vector(builder: flatbuffers.Builder, values: Any, dtype: type) -> int:
    return builder.CreateNumpyVector(np.asarray(values, dtype=dtype))


def _tensor(builder: flatbuffers.Builder, spec: Spec, buffer: int) -> int:
    T, Q = _module("Tensor"), _module("QuantizationParameters")
    name = builder.CreateString(spec.name)
    shape = _vector(builder, spec.shape, np.int32)
    quant = None
    if spec.scale is not None:
        scales = np.atleast_1d(np.asarray(spec.scale, dtype=np.float32))
        scale = _vector(builder, scales, np.float32)
        zp = _vector(builder, np.full(scales.size, spec.zero_point), np.int64)
        Q.Start(builder)
        Q.AddScale(builder, scale)
        Q.AddZeroPoint(builder, zp)
        Q.AddQuantizedDimension(builder, spec.axis)
        quant = Q.End(builder)
    T.Start(builder)
    T.AddShape(builder, shape)
    T.AddType(builder, getattr(tflite.TensorType, spec.type_name))
    T.AddBuffer(builder, buffer)
    T.AddName(builder, name)
    if quant is not None:
        T.AddQuantization(builder, quant)
    return T.End(builder)


def _options(builder: flatbuffers.Builder, table: str, fields: dict[str, Any]) -> int:
    """A builtin options table; list values become int32 vectors."""
    table_mod = _module(table)
    vectors = {k: _vector(builder, v, np.int32) for k, v in fields.items()
               if isinstance(v, (list, tuple))}
    table_mod.Start(builder)
    for key, value in fields.items():
        getattr(table_mod, f"Add{key}")(builder, vectors.get(key, value))
    return table_mod.End(builder)


def single_op_model(opcode: str, inputs: list[Spec], outputs: list[Spec], *,
                    options: tuple[str, dict[str, Any]] | None = None) -> bytes:
    """A model whose only operator ``opcode`` reads ``inputs`` (constant ones carry
    ``data``) and writes ``outputs``; the non-constant inputs are the model inputs."""
    builder = flatbuffers.Builder(1024)
    specs = [*inputs, *outputs]
    # buffer 0 is the empty sentinel; every tensor gets its own buffer
    B = _module("Buffer")
    buffers = []
    for spec in [None, *specs]:
        data = None if spec is None or spec.data is None else _vector(
            builder, np.frombuffer(np.ascontiguousarray(spec.data).tobytes(), np.uint8),
            np.uint8)
        B.Start(builder)
        if data is not None:
            B.AddData(builder, data)
        buffers.append(B.End(builder))
    tensors = [_tensor(builder, s, i + 1) for i, s in enumerate(specs)]
    opts = None if options is None else _options(builder, *options)
    Op, Graph, Code, Mod = (_module(n) for n in ("Operator", "SubGraph", "OperatorCode", "Model"))
    op_inputs = _vector(builder, range(len(inputs)), np.int32)
    op_outputs = _vector(builder, range(len(inputs), len(specs)), np.int32)
    Op.Start(builder)
    Op.AddOpcodeIndex(builder, 0)
    Op.AddInputs(builder, op_inputs)
    Op.AddOutputs(builder, op_outputs)
    if opts is not None:
        Op.AddBuiltinOptionsType(builder, getattr(tflite.BuiltinOptions, options[0]))
        Op.AddBuiltinOptions(builder, opts)
    operator = Op.End(builder)

    def vector_of(items: list[int]) -> int:
        builder.StartVector(4, len(items), 4)
        for item in reversed(items):
            builder.PrependUOffsetTRelative(item)
        return builder.EndVector()

    tensor_vec, op_vec = vector_of(tensors), vector_of([operator])
    graph_inputs = _vector(builder, [i for i, s in enumerate(inputs) if s.data is None],
                           np.int32)
    graph_outputs = _vector(builder, range(len(inputs), len(specs)), np.int32)
    Graph.Start(builder)
    Graph.AddTensors(builder, tensor_vec)
    Graph.AddInputs(builder, graph_inputs)
    Graph.AddOutputs(builder, graph_outputs)
    Graph.AddOperators(builder, op_vec)
    graph = Graph.End(builder)
    code = getattr(tflite.BuiltinOperator, opcode)
    Code.Start(builder)
    Code.AddDeprecatedBuiltinCode(builder, min(code, 127))
    Code.AddBuiltinCode(builder, code)
    Code.AddVersion(builder, 1)
    opcode_entry = Code.End(builder)
    codes, graphs, buffer_vec = (vector_of([opcode_entry]), vector_of([graph]),
                                 vector_of(buffers))
    Mod.Start(builder)
    Mod.AddVersion(builder, 3)
    Mod.AddOperatorCodes(builder, codes)
    Mod.AddSubgraphs(builder, graphs)
    Mod.AddBuffers(builder, buffer_vec)
    builder.Finish(Mod.End(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())

