"""A layer's geometry and accumulator bound, computed once per layer for codegen and
handed to every kernel (docs/architecture.md, "Template context")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

POOL_OPS = ("max_pool2d", "avg_pool2d")


@dataclass(frozen=True)
class Geometry:
    """NHWC geometry of a conv-like or pool layer for its input shape; ``Conv1D`` is the
    2-D case with height 1 (``in_h = out_h = k_h = 1``, ``stride_h = dil_h = 1``, no
    top/bottom pads). Pads are the ones actually applied (TFLite SAME puts the odd pad at
    the bottom/right)."""

    in_h: int
    in_w: int
    in_c: int
    out_h: int
    out_w: int
    out_c: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    dil_h: int
    dil_w: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int

    @property
    def taps(self) -> int:
        """Kernel taps times input channels: the length of one im2col column (groups 1)."""
        return self.k_h * self.k_w * self.in_c

    @property
    def pointwise(self) -> bool:
        """1x1 kernel, stride 1, no padding: output pixel p reads input pixel p."""
        return (self.k_h == self.k_w == 1 and self.stride_h == self.stride_w == 1
                and self.pad_top == self.pad_left == 0
                and (self.in_h, self.in_w) == (self.out_h, self.out_w))

    @property
    def needs_pad(self) -> bool:
        """Whether some output pixel has a tap outside the input."""
        bottom = (self.out_h - 1) * self.stride_h - self.pad_top \
            + (self.k_h - 1) * self.dil_h >= self.in_h
        right = (self.out_w - 1) * self.stride_w - self.pad_left \
            + (self.k_w - 1) * self.dil_w >= self.in_w
        return self.pad_top > 0 or self.pad_left > 0 or bottom or right

    def interior(self) -> list[int] | None:
        """Output rows oy0..oy1 and columns ox0..ox1 whose taps all lie inside the input,
        as [oy0, oy1, ox0, ox1], or None where there are none."""
        spans = []
        for pad, stride, dil, k, n_in, n_out in (
                (self.pad_top, self.stride_h, self.dil_h, self.k_h, self.in_h, self.out_h),
                (self.pad_left, self.stride_w, self.dil_w, self.k_w, self.in_w, self.out_w)):
            lo = -(-pad // stride)
            hi = min((n_in - 1 - (k - 1) * dil + pad) // stride, n_out - 1)
            if hi < lo:
                return None
            spans += [lo, hi]
        return spans


def geometry(layer: Any, op: str, in_shape: tuple[int, ...]) -> Geometry:
    """The geometry of ``layer`` (op name ``op``) for the unbatched ``in_shape``."""
    out_shape = tuple(int(d) for d in layer.output_shape_for(in_shape))
    pads = layer.pads_for(in_shape)
    if op == "conv1d":
        (iw, ic), (ow, oc) = in_shape, out_shape
        ((pl, pr),) = pads
        return Geometry(1, iw, ic, 1, ow, oc, 1, int(layer.weights.shape[1]), 1,
                        int(layer.stride[0]), 1, int(layer.dilation[0]), 0, 0, int(pl), int(pr))
    (ih, iw, ic), (oh, ow, oc) = in_shape, out_shape
    (pt, pb), (pl, pr) = pads
    if op in POOL_OPS:
        kh, kw = (int(k) for k in layer.pool_size)
        dh = dw = 1
    else:
        kh, kw = (int(k) for k in layer.weights.shape[1:3])
        dh, dw = (int(d) for d in layer.dilation)
    sh, sw = (int(s) for s in layer.stride)
    return Geometry(ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, dh, dw,
                    int(pt), int(pb), int(pl), int(pr))


def max_input_term(layer: Any) -> int:
    """Largest ``|input - input_zero_point|`` a conv-like layer can see."""
    if np.dtype(layer.activation_dtype) == np.dtype(np.int16):
        return 1 << 15
    zp = int(layer.input_zero_point)
    return max(127 - zp, zp + 128)


def acc_bound(weight_rows: np.ndarray, bias: np.ndarray | None, max_term: int) -> int:
    """Largest ``|bias + any partial sum of products|`` over the output channels (one row
    of ``weight_rows`` per channel) when every input term is at most ``max_term`` in
    magnitude (Python int, exact). Kernels that fold the input offset into the bias pass
    the folded bias and the bound of the raw input."""
    rows = np.abs(np.asarray(weight_rows).astype(object)).sum(axis=1)
    b = np.zeros(len(rows), dtype=object) if bias is None else \
        np.abs(np.asarray(bias).astype(object))
    return int(max(int(s) * max_term + int(c) for s, c in zip(rows, b, strict=True)))


def weight_rows(layer: Any, op: str) -> np.ndarray:
    """The weights as one row per output channel (depthwise: column c of (taps, C))."""
    w = np.asarray(layer.weights, dtype=np.int64)
    if op == "depthwise_conv2d":
        return w.reshape(-1, w.shape[-1]).T
    return w.reshape(w.shape[0], -1)
