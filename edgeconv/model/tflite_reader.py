"""Read a .tflite flatbuffer into plain dataclasses.

The flatbuffer is decoded with the ``tflite`` package (PyPI; the classes generated from
TFLite's ``schema.fbs``), never by hand.  What comes out is independent of that package:
tensors with shape, numpy dtype, quantization (per-tensor or per-channel) and constant
data, operators with their builtin name and options as a dict of snake_case keys, and
the model's input and output tensor indices.  Only the first subgraph (the model's main
function) is read.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
from typing import Any

import numpy as np
import tflite
from tflite.utils import BUILTIN_OPCODE2NAME

# TensorType enum -> numpy dtype (types that cannot be held by numpy map to None).
_DTYPES: dict[int, np.dtype | None] = {
    tflite.TensorType.FLOAT32: np.dtype(np.float32),
    tflite.TensorType.FLOAT16: np.dtype(np.float16),
    tflite.TensorType.FLOAT64: np.dtype(np.float64),
    tflite.TensorType.INT8: np.dtype(np.int8),
    tflite.TensorType.INT16: np.dtype(np.int16),
    tflite.TensorType.INT32: np.dtype(np.int32),
    tflite.TensorType.INT64: np.dtype(np.int64),
    tflite.TensorType.UINT8: np.dtype(np.uint8),
    tflite.TensorType.UINT16: np.dtype(np.uint16),
    tflite.TensorType.UINT32: np.dtype(np.uint32),
    tflite.TensorType.UINT64: np.dtype(np.uint64),
    tflite.TensorType.BOOL: np.dtype(np.bool_),
}
_TYPE_NAMES = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
_OPTION_NAMES = {v: k for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_")}
_PADDINGS = {tflite.Padding.SAME: "same", tflite.Padding.VALID: "valid"}
# Fused activations by their TFLite names: NONE, RELU, RELU6, RELU_N1_TO_1, TANH, ...
_ACTIVATIONS = {v: k for k, v in vars(tflite.ActivationFunctionType).items()
                if not k.startswith("_")}
_FILE_IDENTIFIER = b"TFL3"


@dataclasses.dataclass(frozen=True)
class Quantization:
    """Affine quantization ``real = scale * (q - zero_point)``.  ``scale`` (float32) and
    ``zero_point`` (int64) have one entry per tensor or one per channel along ``axis``."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    def same_as(self, other: Quantization | None) -> bool:
        """Equal scales and zero points (exactly, as TFLite's Prepare compares them)."""
        return (other is not None and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.zero_point, other.zero_point))

    def __str__(self) -> str:
        if not self.per_channel:
            return f"scale={float(self.scale[0]):.9g}, zero_point={int(self.zero_point[0])}"
        return f"{self.scale.size} per-channel scales along axis {self.axis}"


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One tensor: ``dtype`` is None for a type numpy cannot hold (``type_name`` says
    which); ``data`` holds a constant tensor's values (shaped), None otherwise."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype | None
    type_name: str
    quantization: Quantization | None
    data: np.ndarray | None = dataclasses.field(repr=False, default=None)

    @property
    def is_constant(self) -> bool:
        return self.data is not None


@dataclasses.dataclass(frozen=True)
class OperatorInfo:
    """One operator: builtin name (``'CONV_2D'``; ``'CUSTOM:<code>'`` for custom ops),
    tensor indices (-1 marks an omitted optional input) and builtin options as a dict
    with snake_case keys (``padding`` as ``'same'``/``'valid'``,
    ``fused_activation_function`` by its TFLite name: ``'NONE'``, ``'RELU'``, ...)."""

    index: int
    opcode: str
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """The first subgraph of a .tflite model."""

    path: str
    version: int
    description: str
    tensors: tuple[TensorInfo, ...]
    operators: tuple[OperatorInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    subgraph_count: int


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _decode(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _read_options(table: Any, options_type: int) -> dict[str, Any]:
    """Every scalar and vector field of a builtin options table, by snake_case name."""
    class_name = _OPTION_NAMES.get(options_type)
    if table is None or class_name in (None, "NONE"):
        return {}
    cls = getattr(tflite, class_name, None)
    if cls is None:
        return {}
    options = cls()
    options.Init(table.Bytes, table.Pos)
    result: dict[str, Any] = {}
    for attr, func in vars(cls).items():
        if (not callable(func) or not attr[:1].isupper() or attr == "Init"
                or attr.startswith("GetRootAs") or attr.endswith(("BufferHasIdentifier",
                                                                  "IsNone", "Length"))):
            continue
        params = list(inspect.signature(func).parameters)
        if attr.endswith("AsNumpy"):
            value = getattr(options, attr)()
            result[_snake(attr[:-len("AsNumpy")])] = (
                np.asarray(value).tolist() if not isinstance(value, int) else [])
        elif params == ["self"]:
            value = getattr(options, attr)()
            if not isinstance(value, (int, float, bool, bytes)):
                continue  # nested tables are not needed by any supported op
            result[_snake(attr)] = _decode(value)
    if "padding" in result:
        result["padding"] = _PADDINGS.get(result["padding"], result["padding"])
    if "fused_activation_function" in result:
        code = result["fused_activation_function"]
        result["fused_activation_function"] = _ACTIVATIONS.get(code, f"unknown({code})")
    return result


def _quantization(tensor: Any) -> Quantization | None:
    q = tensor.Quantization()
    if q is None or q.ScaleLength() == 0:
        return None
    scale = np.asarray(q.ScaleAsNumpy(), dtype=np.float32)
    zero_point = (np.asarray(q.ZeroPointAsNumpy(), dtype=np.int64) if q.ZeroPointLength()
                  else np.zeros(scale.size, np.int64))
    if zero_point.size == 1 and scale.size > 1:
        zero_point = np.repeat(zero_point, scale.size)
    return Quantization(scale=scale, zero_point=zero_point, axis=int(q.QuantizedDimension()))


def _constant(model: Any, tensor: Any, blob: bytes, dtype: np.dtype | None,
              shape: tuple[int, ...]) -> np.ndarray | None:
    index = tensor.Buffer()
    if index <= 0 or index >= model.BuffersLength():
        return None
    buffer = model.Buffers(index)
    if buffer.Offset() > 1:  # large models keep buffers after the flatbuffer
        raw = blob[buffer.Offset():buffer.Offset() + buffer.Size()]
    elif buffer.DataLength():
        raw = buffer.DataAsNumpy().tobytes()
    else:
        return None
    if dtype is None:
        return np.frombuffer(raw, np.uint8)
    return np.frombuffer(raw, dtype).reshape(shape).copy()


def _opcode_name(model: Any, opcode_index: int) -> tuple[str, int]:
    code = model.OperatorCodes(opcode_index)
    # Codes above 127 live in BuiltinCode; older files only fill DeprecatedBuiltinCode.
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    name = BUILTIN_OPCODE2NAME.get(builtin, f"BUILTIN_{builtin}")
    if name == "CUSTOM":
        name = f"CUSTOM:{_decode(code.CustomCode())}"
    return name, int(code.Version())


def read_tflite(path: str | os.PathLike) -> ModelInfo:
    """Parse the .tflite file at ``path``.  ValueError for a missing or unreadable file
    or one that is not a TFLite flatbuffer."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except (OSError, TypeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"path={str(path)!r}: cannot read the file ({reason})") from None
    if len(blob) < 8 or blob[4:8] != _FILE_IDENTIFIER:
        raise ValueError(f"path={str(path)!r}: not a TFLite flatbuffer (file identifier "
                         f"{blob[4:8]!r}, expected {_FILE_IDENTIFIER!r})")
    try:
        return _parse(str(path), blob)
    except ValueError:
        raise
    except Exception as exc:  # a corrupt flatbuffer raises anything from struct to Index
        raise ValueError(f"path={str(path)!r}: corrupt TFLite flatbuffer "
                         f"({type(exc).__name__}: {exc})") from None


def _parse(path: str, blob: bytes) -> ModelInfo:
    model = tflite.Model.GetRootAsModel(blob, 0)
    if model.SubgraphsLength() < 1:
        raise ValueError(f"path={path!r}: the model has no subgraph")
    graph = model.Subgraphs(0)
    tensors = []
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        dtype = _DTYPES.get(t.Type())
        shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        tensors.append(TensorInfo(
            index=i, name=_decode(t.Name()) or f"tensor_{i}", shape=shape, dtype=dtype,
            type_name=_TYPE_NAMES.get(t.Type(), f"type_{t.Type()}"),
            quantization=_quantization(t), data=_constant(model, t, blob, dtype, shape)))
    operators = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        name, version = _opcode_name(model, op.OpcodeIndex())
        operators.append(OperatorInfo(
            index=i, opcode=name, version=version,
            inputs=tuple(int(j) for j in op.InputsAsNumpy()) if op.InputsLength() else (),
            outputs=tuple(int(j) for j in op.OutputsAsNumpy()) if op.OutputsLength() else (),
            options=_read_options(op.BuiltinOptions(), op.BuiltinOptionsType())))
    return ModelInfo(
        path=path, version=int(model.Version()),
        description=_decode(model.Description()) or "",
        tensors=tuple(tensors), operators=tuple(operators),
        inputs=tuple(int(j) for j in graph.InputsAsNumpy()),
        outputs=tuple(int(j) for j in graph.OutputsAsNumpy()),
        subgraph_count=int(model.SubgraphsLength()))
