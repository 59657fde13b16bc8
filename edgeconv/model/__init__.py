"""Whole models: a .tflite file read into a graph of reference layers.

``edgeconv.load(path)`` / ``Model.from_tflite(path)`` parse the flatbuffer
(:mod:`edgeconv.model.tflite_reader`), build one reference layer per operator
(:mod:`edgeconv.model.graph`) and run it; :func:`compare_with_tflite` checks every
tensor against the LiteRT interpreter's reference kernels.
"""

from edgeconv.model.compare import TensorComparison, compare_with_tflite, first_difference
from edgeconv.model.graph import Model, Node, load, supported_ops
from edgeconv.model.tflite_reader import (
    ModelInfo,
    OperatorInfo,
    Quantization,
    TensorInfo,
    read_tflite,
)

__all__ = [
    "Model", "ModelInfo", "Node", "OperatorInfo", "Quantization", "TensorComparison",
    "TensorInfo", "compare_with_tflite", "first_difference", "load", "read_tflite",
    "supported_ops",
]
