"""Layer ops of the fixed-point reference model (TFLite int8 / 16x8 semantics, NHWC)."""

from edgeconv.layers.conv import Conv2D
from edgeconv.layers.conv1d import Conv1D
from edgeconv.layers.depthwise import DepthwiseConv2D
from edgeconv.layers.pool import AvgPool2D, MaxPool2D

__all__ = ["AvgPool2D", "Conv1D", "Conv2D", "DepthwiseConv2D", "MaxPool2D"]
