"""edgeconv: fixed-point convolution for microcontrollers.

A bit-exact reference model (TFLite int8/16x8 layers, CMSIS-DSP Q-format signal
functions), C code generation through jinja2, and verification on native, emulated
and real targets.
"""

__version__ = "0.1.0"

from edgeconv import fixedpoint, grad, signal  # noqa: F401  (public submodules)
from edgeconv.im2col import col2im, im2col
from edgeconv.layers import (
    AvgPool2D,
    Conv1D,
    Conv2D,
    DepthwiseConv2D,
    FullyConnected,
    MaxPool2D,
)
from edgeconv.model import Model, load

__all__ = [
    "AvgPool2D", "Conv1D", "Conv2D", "DepthwiseConv2D", "FullyConnected", "MaxPool2D",
    "Model", "col2im", "im2col", "load",
]
