"""Layer ops of the fixed-point reference model (TFLite int8 / 16x8 semantics, NHWC).

Each layer takes the integer parameters as TFLite and CMSIS-NN hold them (keyword
arguments, validated: bad input raises ValueError naming the argument, its value and the
allowed range), or is built from float parameters with the ``from_float`` classmethod.
``layer(x)`` returns the exact integer output; ``layer(x, method='direct')`` runs the
plain loop nest mirroring TFLite's reference kernel (the test oracle) instead of the
vectorized default (``'im2col'``).  Conv-like layers also expose ``accumulate(x)`` (the
exact accumulators before requantization) and ``requantize(acc)``.  The attributes are
the contract of docs/architecture.md.
"""

from edgeconv.layers.activations import Logistic, Softmax
from edgeconv.layers.conv import Conv2D
from edgeconv.layers.conv1d import Conv1D
from edgeconv.layers.dense import FullyConnected
from edgeconv.layers.depthwise import DepthwiseConv2D
from edgeconv.layers.elementwise import Add, Mul
from edgeconv.layers.pool import AvgPool2D, MaxPool2D
from edgeconv.layers.reduce import Mean

__all__ = ["Add", "AvgPool2D", "Conv1D", "Conv2D", "DepthwiseConv2D", "FullyConnected",
           "Logistic", "MaxPool2D", "Mean", "Mul", "Softmax"]
