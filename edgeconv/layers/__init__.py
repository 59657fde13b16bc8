"""Layer ops of the fixed-point reference model (TFLite int8 / 16x8 semantics, NHWC)."""

from edgeconv.layers.conv import Conv2D
from edgeconv.layers.conv1d import Conv1D

__all__ = ["Conv1D", "Conv2D"]
