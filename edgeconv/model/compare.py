"""Run a .tflite model in the reference model and in the interpreter its semantics follow
(``'tflite'``: the LiteRT interpreter with its reference kernels; ``'tflm'``: TFLite Micro's
interpreter from the ``tflite-micro`` package, its kernels built for the host), every
intermediate tensor kept, and compare every tensor element for element."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from edgeconv.model.graph import Model


@dataclasses.dataclass(frozen=True)
class TensorComparison:
    """One tensor of the trace: ``operator`` is the index of the operator that wrote it
    (None for a model input); ``mismatches`` counts differing elements, ``max_abs_diff``
    is their largest absolute difference (0 when equal)."""

    name: str
    index: int
    opcode: str | None
    operator: int | None
    shape: tuple[int, ...]
    dtype: str
    mismatches: int
    max_abs_diff: float

    @property
    def equal(self) -> bool:
        return self.mismatches == 0

    def __str__(self) -> str:
        where = "input" if self.operator is None else f"{self.opcode} (operator {self.operator})"
        verdict = ("bit-exact" if self.equal else
                   f"{self.mismatches} of {int(np.prod(self.shape))} elements differ, max "
                   f"|diff| {self.max_abs_diff:g}")
        return f"{self.name} {self.shape} {self.dtype} from {where}: {verdict}"


def random_input(model: Model, seed: int = 0) -> list[np.ndarray]:
    """Uniform random arrays over each input's dtype range (floats: the range the input
    quantization covers, when the model quantizes its float input)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for t in model.inputs:
        if t.dtype is not None and t.dtype.kind == "i":
            info = np.iinfo(t.dtype)
            arrays.append(rng.integers(info.min, info.max, size=t.shape, endpoint=True,
                                       dtype=t.dtype))
        else:
            arrays.append(rng.normal(0.0, 2.0, size=t.shape).astype(t.dtype))
    return arrays


def tflite_tensors(path: str | os.PathLike, inputs: list[np.ndarray],
                   indices: list[int]) -> dict[int, np.ndarray]:
    """The LiteRT interpreter's values of the tensors ``indices`` after one invoke with
    the ``BUILTIN_REF`` op resolver (TFLite's reference kernels) and
    ``experimental_preserve_all_tensors=True``."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as exc:
        raise ImportError("compare_with_tflite needs the LiteRT interpreter: pip install "
                          "ai-edge-litert") from exc
    interpreter = Interpreter(model_path=os.fspath(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                              experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    for detail, array in zip(interpreter.get_input_details(), inputs, strict=True):
        interpreter.set_tensor(detail["index"], array.reshape(detail["shape"]))
    interpreter.invoke()
    return {i: interpreter.get_tensor(i) for i in indices}


def tflm_tensors(path: str | os.PathLike, inputs: list[np.ndarray],
                 indices: list[int]) -> dict[int, np.ndarray]:
    """TFLite Micro's values of the tensors ``indices`` after one invoke: the interpreter of
    the ``tflite-micro`` package (TFLM's reference kernels compiled for the host) in its
    ``kPreserveAllTensors`` configuration, where every tensor keeps its own storage."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as exc:
        raise ImportError("semantics='tflm' compares against TFLite Micro's interpreter: "
                          "pip install tflite-micro") from exc
    # the package's default arena (10x the file) is too small for tiny models
    interpreter = runtime.Interpreter.from_file(
        os.fspath(path), intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors,
        arena_size=10 * os.path.getsize(path) + (1 << 20))
    for i, array in enumerate(inputs):
        shape = interpreter.get_input_details(i)["shape"]
        interpreter.set_input(np.ascontiguousarray(array.reshape(shape)), i)
    interpreter.invoke()
    return {i: interpreter.GetTensor(i, 0)["tensor_data"] for i in indices}


INTERPRETERS = {"tflite": "the LiteRT interpreter (BUILTIN_REF)",
                "tflm": "TFLite Micro's interpreter (tflite-micro)"}


def compare_with_tflite(path: str | os.PathLike, x: object = None, *, seed: int = 0,
                        model: Model | None = None,
                        semantics: str | None = None) -> list[TensorComparison]:
    """Run ``path`` in :class:`Model` and in the interpreter of its semantics on ``x``
    (default: a seeded random input, see :func:`random_input`) and compare every tensor the
    model computes, in execution order.  ``semantics`` (``'tflite'``: the LiteRT
    interpreter's reference kernels, ``'tflm'``: TFLite Micro's interpreter) defaults to
    ``model.semantics``, else ``'tflite'``; a given ``model`` must have the same.
    ``first_difference(result)`` picks the first tensor that differs."""
    if semantics is None:
        semantics = "tflite" if model is None else model.semantics
    if model is None:
        model = Model.from_tflite(path, semantics=semantics)
    elif model.semantics != semantics:
        raise ValueError(f"semantics={semantics!r}: the model was loaded with "
                         f"semantics={model.semantics!r}, allowed is the same")
    if x is None:
        inputs = random_input(model, seed)
        x = inputs[0] if len(inputs) == 1 else inputs
    ours = model._run(x)
    fed = [ours[t.index] for t in model.inputs]
    oracle = tflm_tensors if semantics == "tflm" else tflite_tensors
    theirs = oracle(path, fed, list(ours))
    writer = {node.output: node.operator for node in model.nodes}
    results = []
    for index, mine in ours.items():
        ref = theirs[index].reshape(mine.shape)
        if mine.dtype.kind == "f":
            diff = np.abs(mine.astype(np.float64) - ref.astype(np.float64))
            differs = ~((mine == ref) | (np.isnan(mine) & np.isnan(ref)))
        else:
            diff = np.abs(mine.astype(np.int64) - ref.astype(np.int64))
            differs = diff != 0
        op = writer.get(index)
        results.append(TensorComparison(
            name=model.key(index), index=index, opcode=None if op is None else op.opcode,
            operator=None if op is None else op.index, shape=tuple(mine.shape),
            dtype=mine.dtype.name, mismatches=int(differs.sum()),
            max_abs_diff=float(diff[differs].max()) if differs.any() else 0.0))
    return results


def first_difference(results: list[TensorComparison]) -> TensorComparison | None:
    """The first tensor (in execution order) that differs, None when all are bit-exact."""
    return next((r for r in results if not r.equal), None)
