"""Conv1D: Conv2D with H = 1 over NWC input, weights ``(O, KW, I/groups)``."""

from __future__ import annotations

from edgeconv.layers.conv import Conv2D


class Conv1D(Conv2D):
    """1D convolution computed as :class:`Conv2D` on a height-1 image.

    Input ``(W, C)`` or ``(N, W, C)``; ``stride``/``dilation`` are ``(s,)``/``(d,)``
    (an int is accepted); explicit padding is ``(left, right)`` or ``((left, right),)``;
    ``pads_for`` returns ``((left, right),)``.  Everything else as Conv2D.
    """

    op = "Conv1D"
    rank = 1
    _weight_ndim = 3
