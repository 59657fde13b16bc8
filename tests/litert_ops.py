"""The single-op .tflite fixtures of tests/golden/ops/ run in the LiteRT interpreter.

Each fixture (built by tests/golden/generate_ops.py) holds one ADD, MUL, MEAN, SOFTMAX or
LOGISTIC operator, maybe behind a RESHAPE the converter put in front of a broadcast
operand.  ``OpFixture.run`` feeds the model inputs and returns the operator's own input
and output tensors as TFLite's reference kernels (``BUILTIN_REF``) computed them; the
tensors' scales and zero points come from the interpreter's tensor details, the builtin
options (not exposed by the interpreter) from the ``<id>.json`` written next to the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

OPS_DIR = Path(__file__).parent / "golden" / "ops"


def fixture_ids(op: str) -> list[str]:
    """Ids of the fixtures holding ``op`` (e.g. 'ADD'); at least one must exist."""
    ids = sorted(p.stem for p in OPS_DIR.glob("*.json")
                 if json.loads(p.read_text())["op"] == op)
    if not ids:
        raise FileNotFoundError(f"no {op} fixtures in {OPS_DIR}")
    return ids


@dataclass(frozen=True)
class Tensor:
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int


class OpFixture:
    """One fixture model loaded in the reference interpreter."""

    def __init__(self, fixture_id: str) -> None:
        self.id = fixture_id
        self.info: dict[str, Any] = json.loads((OPS_DIR / f"{fixture_id}.json").read_text())
        self.interp = Interpreter(
            model_path=str(OPS_DIR / f"{fixture_id}.tflite"), num_threads=1,
            experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
            experimental_preserve_all_tensors=True)
        self.interp.allocate_tensors()
        ops = [o for o in self.interp._get_ops_details()  # noqa: SLF001 - the graph's ops
               if o["op_name"] == self.info["op"]]
        if len(ops) != 1:
            raise RuntimeError(f"{fixture_id}: expected one {self.info['op']} operator")
        details = {d["index"]: d for d in self.interp.get_tensor_details()}
        self.op_inputs = [self._tensor(details[int(i)]) for i in ops[0]["inputs"]]
        self.output = self._tensor(details[int(ops[0]["outputs"][0])])
        self.model_inputs = [self._tensor(d) for d in self.interp.get_input_details()]

    @staticmethod
    def _tensor(d: dict[str, Any]) -> Tensor:
        q = d["quantization_parameters"]
        scales, zps = q["scales"], q["zero_points"]
        if scales.size > 1:
            raise RuntimeError(f"tensor {d['name']}: per-channel quantization")
        scale = float(scales[0]) if scales.size else 0.0
        zp = int(zps[0]) if zps.size else 0
        return Tensor(int(d["index"]), tuple(int(s) for s in d["shape"]),
                      np.dtype(d["dtype"]), scale, zp)

    @property
    def dtype(self) -> np.dtype:
        """The activation dtype: the operator's (first) input's."""
        return self.op_inputs[0].dtype

    def random_inputs(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Uniform integers over the whole dtype range for every model input."""
        return [rng.integers(np.iinfo(t.dtype).min, np.iinfo(t.dtype).max, size=t.shape,
                             endpoint=True, dtype=t.dtype) for t in self.model_inputs]

    def run(self, inputs: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        """Invoke on the model inputs; return the operator's inputs and output."""
        for t, x in zip(self.model_inputs, inputs, strict=True):
            self.interp.set_tensor(t.index, x)
        self.interp.invoke()
        op_in = [self.interp.get_tensor(t.index).copy() for t in self.op_inputs]
        return op_in, self.interp.get_tensor(self.output.index).copy()


@cache
def load(fixture_id: str) -> OpFixture:
    return OpFixture(fixture_id)


def input_cases(fx: OpFixture, n_random: int, seed: int) -> list[list[np.ndarray]]:
    """Random full-range inputs plus the extremes: every input at its minimum, at its
    maximum, and minimum against maximum (the saturating corners)."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(fx.dtype)
    cases = [fx.random_inputs(rng) for _ in range(n_random)]
    shapes = [t.shape for t in fx.model_inputs]
    for first, rest in ((info.min, info.min), (info.max, info.max), (info.min, info.max),
                        (info.max, info.min)):
        cases.append([np.full(s, first if i == 0 else rest, fx.dtype)
                      for i, s in enumerate(shapes)])
    return cases
