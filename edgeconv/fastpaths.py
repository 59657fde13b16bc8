"""Cortex-M fast kernels chosen at generation time from a layer's shape and the CPU.

Two families, both bit-exact with the reference model (same int32 or int64 accumulator
value, same requantization):

- DSP (Cortex-M4/M7/M33/M55, ``__ARM_FEATURE_DSP``): SMLAD on int16 pairs, weights expanded
  to int16 pairs at generation time in the order the inner loop reads them.
  ``dsp_conv``: im2col of two output pixels into int16 pairs, blocks of four output
  channels (any Conv2D with groups 1, int8 or 16x8).  ``dsp_conv_1x1``: 1x1 stride-1
  unpadded int8 convolution read straight from the input with SXTB16 (no scratch).
  ``dsp_dw``: int8 depthwise, depth multiplier 1, channels in groups of four.
- ``m0`` (Cortex-M0/M0+/M3, no DSP): products of unsigned bytes biased by 128 so that
  every operand load is one LDRB with an immediate offset; the bias terms are folded
  into per-channel constants at generation time and one per-pixel input sum.

Every generated file also compiles on any C99 compiler: the DSP intrinsics have a plain C
fallback with the same results (see ``codegen/fast/_fast.j2``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeconv.fixedpoint import reduce_multiplier
from edgeconv.kernel_plan import KernelPlan

CPUS = ("generic", "cortex-m0", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33",
        "cortex-m55")
DSP_CPUS = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")
M0_CPUS = ("cortex-m0", "cortex-m3")
OC_BLOCK = 4  # output channels per register block (both families)
INT32_MAX = (1 << 31) - 1


@dataclass(frozen=True)
class Geometry:
    """NHWC geometry of a 2-D conv-like layer for one input shape."""

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
    pad_left: int

    @property
    def taps(self) -> int:
        """Kernel taps times input channels: the length of one im2col column."""
        return self.k_h * self.k_w * self.in_c


def _op(layer: Any) -> str:
    return str(getattr(layer, "op", type(layer).__name__))


def geometry(layer: Any, input_shape: tuple[int, ...]) -> Geometry:
    """Geometry of a 2-D ``Conv2D``/``DepthwiseConv2D`` for ``input_shape`` (H, W, C)."""
    if len(input_shape) != 3:
        raise ValueError(f"input_shape={input_shape!r}: must be (H, W, C)")
    in_h, in_w, in_c = (int(s) for s in input_shape)
    out_h, out_w, out_c = (int(s) for s in layer.output_shape_for(tuple(input_shape)))
    (pad_top, _), (pad_left, _) = layer.pads_for(tuple(input_shape))
    k_h, k_w = int(layer.weights.shape[1]), int(layer.weights.shape[2])
    return Geometry(in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w,
                    int(layer.stride[0]), int(layer.stride[1]),
                    int(layer.dilation[0]), int(layer.dilation[1]), int(pad_top), int(pad_left))


def _max_input_term(layer: Any) -> int:
    """Largest |input - zero_point| the layer can see."""
    if np.dtype(layer.activation_dtype) == np.dtype(np.int16):
        return 1 << 15
    zp = int(layer.input_zero_point)
    return max(127 - zp, zp + 128)


def _bias(layer: Any, out_c: int) -> np.ndarray:
    bias = getattr(layer, "bias", None)
    return np.zeros(out_c, np.int64) if bias is None else np.asarray(bias, np.int64)


def _acc_bound(w_rows: np.ndarray, bias: np.ndarray, max_term: int) -> int:
    """Bound on |bias + any partial sum of products| over the channels (rows of weights),
    with every input term bounded by ``max_term`` in magnitude."""
    return int(np.max(np.abs(w_rows.astype(np.int64)).sum(axis=1) * max_term + np.abs(bias)))


def _pack_pairs(pairs: np.ndarray) -> list[int]:
    """int16 pairs ``(..., 2)`` -> int32 words, element 0 in the low half."""
    lo = pairs[..., 0].astype(np.int64) & 0xFFFF
    hi = pairs[..., 1].astype(np.int64) & 0xFFFF
    words = (hi << 16) | lo
    return [int(v) for v in np.where(words >= 1 << 31, words - (1 << 32), words).ravel()]


def _sxtb16_order(n: int) -> np.ndarray:
    """Index permutation of ``n`` (a multiple of 4) elements into SXTB16 order:
    (0, 2), (1, 3), (4, 6), (5, 7), ... as consecutive pairs."""
    base = np.arange(n).reshape(-1, 4)
    return base[:, [0, 2, 1, 3]].ravel()


def _requant_context(layer: Any, bound: int) -> dict[str, Any]:
    """How the kernels requantize an accumulator bounded by ``bound``, fastest first:

    - ``r1``: int8, double rounding, multipliers >= 0, every shift <= -1 and
      ``bound < 2**30``: SRDHM as SMMULR(2 * acc, mult) on DSP cores, then
      RoundingDivideByPOT as ``((h + (h >> 31)) >> (right - 1)) + 1) >> 1``; the
      ``_shift`` table holds ``right - 1``.  No step can overflow under the bound.
    - ``double``: int8, double rounding, multipliers >= 0: the exact general form.
    - ``helper``: the shared helper chosen by codegen (single rounding, 16x8).
    """
    mult = np.asarray(layer.output_multiplier, np.int64)
    shift = np.asarray(layer.output_shift, np.int64)
    int8 = np.dtype(layer.activation_dtype) == np.dtype(np.int8)
    mode = "helper"
    if int8 and layer.rounding == "double" and bool(np.all(mult >= 0)):
        mode = "r1" if bound < (1 << 30) and bool(np.all(shift <= -1)) else "double"
    shifts = [int(-s - 1) for s in shift] if mode == "r1" else [int(s) for s in shift]
    return {"requant": mode, "shifts": shifts}


def _dsp_conv(layer: Any, g: Geometry) -> KernelPlan | None:
    """im2col of pixel pairs + SMLAD with 4-channel register blocks."""
    w = np.asarray(layer.weights, np.int64).reshape(g.out_c, g.taps)
    bound = _acc_bound(w, _bias(layer, g.out_c), _max_input_term(layer))
    if bound > INT32_MAX:
        return None
    sxtb16 = np.dtype(layer.activation_dtype) == np.dtype(np.int8) and g.in_c % 4 == 0
    order = _sxtb16_order(g.taps) if sxtb16 else np.arange(g.taps)
    kp = g.taps + (g.taps % 2)
    wk = np.zeros((g.out_c, kp), np.int64)
    wk[:, :g.taps] = w[:, order]
    pairs = wk.reshape(g.out_c, kp // 2, 2)
    n_blocks = g.out_c // OC_BLOCK
    blocked = pairs[:n_blocks * OC_BLOCK].reshape(n_blocks, OC_BLOCK, kp // 2, 2)
    words = _pack_pairs(blocked.transpose(0, 2, 1, 3)) + _pack_pairs(pairs[n_blocks * OC_BLOCK:])
    int16 = np.dtype(layer.activation_dtype) == np.dtype(np.int16)
    fill = "sxtb16" if sxtb16 else ("words" if int16 and g.in_c % 2 == 0 else "bytes")
    offset = -int(layer.input_zero_point) & 0xFFFF
    scratch = 2 * kp * 2  # two columns of kp int16
    ctx = {"geo": g, "kp": kp, "fill": fill, "n_blocks": n_blocks, "wwords": words,
           "offset_pair": _pack_pairs(np.array([offset, offset]))[0],
           "bias32": [int(b) for b in _bias(layer, g.out_c)], **_requant_context(layer, bound)}
    return KernelPlan("dsp_conv", "fast/dsp_conv.c.j2", scratch, {"fast": ctx})


def _dsp_conv_1x1(layer: Any, g: Geometry) -> KernelPlan | None:
    """1x1 stride-1 unpadded int8 conv as a GEMM on the input in place (no scratch)."""
    w = np.asarray(layer.weights, np.int64).reshape(g.out_c, g.in_c)
    bias = _bias(layer, g.out_c) - int(layer.input_zero_point) * w.sum(axis=1)
    bound = _acc_bound(w, bias, 128)
    if bound > INT32_MAX:
        return None
    order = _sxtb16_order(g.in_c)
    pairs = w[:, order].reshape(g.out_c, g.in_c // 4, 2, 2)  # channel, group, half, pair
    n_blocks = g.out_c // OC_BLOCK
    blocked = pairs[:n_blocks * OC_BLOCK].reshape(n_blocks, OC_BLOCK, g.in_c // 4, 2, 2)
    words = (_pack_pairs(blocked.transpose(0, 2, 3, 1, 4))
             + _pack_pairs(pairs[n_blocks * OC_BLOCK:]))
    ctx = {"geo": g, "n_blocks": n_blocks, "wwords": words,
           "bias32": [int(b) for b in bias], **_requant_context(layer, bound)}
    return KernelPlan("dsp_conv_1x1", "fast/dsp_conv_1x1.c.j2", 0, {"fast": ctx})


def _is_pointwise(g: Geometry) -> bool:
    """1x1 kernel, stride 1, no padding: output pixel p reads input pixel p."""
    return (g.k_h == g.k_w == 1 and g.stride_h == g.stride_w == 1
            and g.pad_top == g.pad_left == 0 and (g.in_h, g.in_w) == (g.out_h, g.out_w))


def _depthwise(layer: Any, g: Geometry, cpu: str) -> KernelPlan | None:
    """Depthwise, multiplier 1: Helium in groups of 16 channels (``_mve_dw16``) where it
    applies; else in groups of four channels then one by one, Helium (int32x4 VMLA), DSP
    (SXTAB16 or 16x8 pairs, SMLABB / SMLATT on int16 weight pairs) or M0 (scalar, int32
    weights)."""
    if int(layer.depth_multiplier) != 1:
        return None
    taps = g.k_h * g.k_w
    w = np.asarray(layer.weights, np.int64).reshape(taps, g.in_c)  # (tap, channel)
    bias = _bias(layer, g.in_c)
    bound = _acc_bound(w.T, bias, _max_input_term(layer))
    if bound > INT32_MAX:
        return None
    int16 = np.dtype(layer.activation_dtype) == np.dtype(np.int16)
    ctx = {"geo": g, "int16": int16, **_requant_context(layer, bound)}
    if cpu == "cortex-m55" and ctx["requant"] == "r1" and taps <= 9 and g.in_c >= 16:
        return _mve_dw16(layer, g, w, bias, ctx)
    n4 = g.in_c - g.in_c % 4
    grouped = w[:, :n4].reshape(taps, n4 // 4, 4).transpose(1, 0, 2)  # (group, tap, channel)
    tail = [int(v) for v in w[:, n4:].T.ravel()]  # remaining channels, tap by tap
    ctx["bias32"] = [int(b) for b in bias]
    if cpu == "cortex-m55":
        ctx.update(w_ctype="int8_t", wbytes=[int(v) for v in grouped.ravel()] + tail,
                   neg_right=[int(s) for s in np.asarray(layer.output_shift, np.int64)])
        return KernelPlan("mve_dw", "fast/mve_dw.c.j2", 0, {"fast": ctx})
    ctx["w_ctype"] = "int32_t"
    if cpu in DSP_CPUS:
        offset = -int(layer.input_zero_point) & 0xFFFF
        ctx["offset_pair"] = _pack_pairs(np.array([offset, offset]))[0]
        order = [0, 1, 2, 3] if int16 else [0, 2, 1, 3]
        ctx["wwords"] = _pack_pairs(grouped[..., order].reshape(-1, 2)) + tail
        return KernelPlan("dsp_dw", "fast/dsp_dw.c.j2", 0, {"fast": ctx})
    ctx["wwords"] = [int(v) for v in grouped.ravel()] + tail
    return KernelPlan("m0_dw", "fast/m0_dw.c.j2", 0, {"fast": ctx})


# Channel (within a group of 16) of each lane of the four int32x4 accumulators, one
# accumulator after the other: VMULLB / VMULLT int8 products widened by VMOVLB / VMOVLT.
MVE_DW16_LANES = (0, 4, 8, 12, 2, 6, 10, 14, 1, 5, 9, 13, 3, 7, 11, 15)


def _tap_pairs(w: np.ndarray) -> list[list[int]]:
    """Taps (0, 1), (2, 3), ... of int8 weights ``(tap, channel)``, each pair split in two
    where some channel has -128 at both: then the two int8 products of any inputs sum
    within int16 ([-32512, 32640])."""
    pairs: list[list[int]] = []
    for t in range(0, len(w) - 1, 2):
        safe = not bool(np.any((w[t] == -128) & (w[t + 1] == -128)))
        pairs += [[t, t + 1]] if safe else [[t], [t + 1]]
    return pairs + ([[len(w) - 1]] if len(w) % 2 else [])


def _needs_pad(g: Geometry) -> bool:
    """Whether some output pixel has a tap outside the input."""
    bottom = (g.out_h - 1) * g.stride_h - g.pad_top + (g.k_h - 1) * g.dil_h >= g.in_h
    right = (g.out_w - 1) * g.stride_w - g.pad_left + (g.k_w - 1) * g.dil_w >= g.in_w
    return g.pad_top > 0 or g.pad_left > 0 or bottom or right


def _mve_dw16(layer: Any, g: Geometry, w: np.ndarray, bias: np.ndarray,
              ctx: dict[str, Any]) -> KernelPlan:
    """Helium depthwise for int8 in the r1 mode, at most nine taps, 16 channels or more:
    groups of 16 channels into four int32x4 accumulators. The input offset is folded into
    the bias, bias + offset * sum(weights) (within the accumulator bound, so int32), and
    taps outside the input read a pixel of zero points, which then adds nothing. Per
    group, ``params`` holds the bias, the multiplier and the (negative) shift, each in
    accumulator lane order (``MVE_DW16_LANES``)."""
    n16 = -(-g.in_c // 16) * 16
    taps = g.k_h * g.k_w
    wpad = np.zeros((taps, n16), np.int64)
    wpad[:, :g.in_c] = w
    wbytes = [int(v) for v in wpad.reshape(taps, n16 // 16, 16).transpose(1, 0, 2).ravel()]
    folded = bias - int(layer.input_zero_point) * w.sum(axis=0)
    rows = np.zeros((3, n16), np.int64)
    rows[:, :g.in_c] = [folded, *(np.broadcast_to(np.asarray(v, np.int64), (g.in_c,))
                                  for v in (layer.output_multiplier, layer.output_shift))]
    params = rows.reshape(3, -1, 16)[:, :, list(MVE_DW16_LANES)].transpose(1, 0, 2)
    ctx.update(wbytes=wbytes, params=[int(v) for v in params.ravel()],
               folded=[int(v) for v in folded], lanes=list(MVE_DW16_LANES),
               pairs=_tap_pairs(w), zero_point=int(layer.input_zero_point),
               needs_pad=_needs_pad(g))
    return KernelPlan("mve_dw16", "fast/mve_dw16.c.j2", 0, {"fast": ctx})


MVE_UNROLL = 4  # whole chunks per loop iteration in long columns
MVE_STRAIGHT_MAX = 8  # up to this many whole chunks after the first are unrolled completely


def _mve_chunks(taps: int, lanes: int) -> dict[str, int]:
    """How the Helium block reads a column of ``taps`` in chunks of ``lanes``: the first
    chunk, ``loops`` iterations of ``unroll`` chunks, ``straight`` more chunks, then (where
    ``back`` > 0) the ``lanes`` taps that end the column, ``back`` before the pointer."""
    count = -(-taps // lanes)
    back = lanes - taps % lanes if count > 1 and taps % lanes else 0
    middle = count - 1 - (1 if back else 0)
    loops = 0 if middle <= MVE_STRAIGHT_MAX else middle // MVE_UNROLL
    unroll = MVE_UNROLL if loops else 0
    return {"count": count, "back": back, "loops": loops, "unroll": unroll,
            "straight": middle - loops * unroll}


def _mve_weights(w: np.ndarray, lanes: int, n_blocks: int) -> list[int]:
    """Weights ``(out_c, taps)`` per block of four channels (zero rows past out_c) and
    chunk: chunk j reads taps min(j * lanes, taps - lanes) + i, weight 0 where the tap
    belongs to an earlier chunk or lies past the column."""
    out_c, taps = w.shape
    count = -(-taps // lanes)
    first = np.arange(count)[:, None] * lanes
    tap = np.minimum(first, max(taps - lanes, 0)) + np.arange(lanes)  # (chunk, lane)
    fresh = (tap >= first) & (tap < taps)
    rows = np.zeros((n_blocks * OC_BLOCK, taps), np.int64)
    rows[:out_c] = w
    chunks = np.where(fresh, rows[:, np.minimum(tap, taps - 1)], 0)  # (channel, chunk, lane)
    blocked = chunks.reshape(n_blocks, OC_BLOCK, count, lanes).transpose(0, 2, 1, 3)
    return [int(v) for v in blocked.ravel()]


def _mve_requant(layer: Any, out_c: int) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The exact vector requantization of ``mve_conv`` (``vreq``, None where there is none)
    and its per-channel rows:

    - ``double`` (int8, gemmlowp): rows multiplier, min(shift, 0) and, where some shift is
      positive (``left``), max(shift, 0); ``all_right``: every shift <= -1.
    - ``mulh`` (single rounding, 16x8): every shift <= -2; rows multiplier (16x8: the
      reduced multiplier times 2**16) and shift + 1.
    """
    mult = np.broadcast_to(np.asarray(layer.output_multiplier, np.int64), (out_c,))
    shift = np.broadcast_to(np.asarray(layer.output_shift, np.int64), (out_c,))
    int16 = np.dtype(layer.activation_dtype) == np.dtype(np.int16)
    if int16 or layer.rounding == "single":
        if not bool(np.all(shift <= -2)):
            return {"vreq": None, "left": False, "all_right": False}, []
        m = reduce_multiplier(mult) << 16 if int16 else mult
        return {"vreq": "mulh", "left": False, "all_right": True}, [m, shift + 1]
    left = bool(np.any(shift > 0))
    rows = [mult, np.minimum(shift, 0)] + ([np.maximum(shift, 0)] if left else [])
    return {"vreq": "double", "left": left, "all_right": bool(np.all(shift <= -1))}, rows


def _interior(g: Geometry) -> list[int] | None:
    """Output rows oy0..oy1 and columns ox0..ox1 whose taps all lie inside the input, as
    [oy0, oy1, ox0, ox1], or None where there are none."""
    spans = []
    for pad, stride, dil, k, n_in, n_out in ((g.pad_top, g.stride_h, g.dil_h, g.k_h, g.in_h,
                                              g.out_h),
                                             (g.pad_left, g.stride_w, g.dil_w, g.k_w, g.in_w,
                                              g.out_w)):
        lo = -(-pad // stride)
        hi = min((n_in - 1 - (k - 1) * dil + pad) // stride, n_out - 1)
        if hi < lo:
            return None
        spans += [lo, hi]
    return spans


def _mve_conv(layer: Any, g: Geometry) -> KernelPlan | None:
    """Helium dot products (VMLADAV(A)) of raw int8/int16 columns, 2 pixels x 4 channels,
    vector requantization where exact."""
    w = np.asarray(layer.weights, np.int64).reshape(g.out_c, g.taps)
    int16 = np.dtype(layer.activation_dtype) == np.dtype(np.int16)
    zp = int(layer.input_zero_point)
    bias = _bias(layer, g.out_c) - zp * w.sum(axis=1)
    bound = _acc_bound(w, bias, 1 << 15 if int16 else 128)
    if bound > INT32_MAX:
        return None
    lanes = 8 if int16 else 16
    n_blocks = -(-g.out_c // OC_BLOCK)
    vreq, vrows = _mve_requant(layer, g.out_c)
    rows = np.zeros((1 + len(vrows), n_blocks * OC_BLOCK), np.int64)
    rows[:, :g.out_c] = [bias, *vrows]
    direct = _is_pointwise(g) and g.in_c >= lanes
    col_stride = max(g.taps, lanes)
    ctx = {"geo": g, "int16": int16, "lanes": lanes, "direct": direct, "n_blocks": n_blocks,
           "chunks": _mve_chunks(g.taps, lanes), "wbytes": _mve_weights(w, lanes, n_blocks),
           "params": [int(v) for v in rows.reshape(len(rows), n_blocks, OC_BLOCK)
                      .transpose(1, 0, 2).ravel()],
           "pad_value": zp, "col_stride": col_stride, "interior": _interior(g),
           "bias32": [int(b) for b in bias], **vreq, **_requant_context(layer, bound)}
    scratch = 0 if direct else 2 * col_stride * (2 if int16 else 1)  # two columns
    return KernelPlan("mve_conv", "fast/mve_conv.c.j2", scratch, {"fast": ctx})


def _wrap32(values: np.ndarray) -> list[int]:
    """Reduce int64 values modulo 2**32 into int32 (the kernels sum modulo 2**32)."""
    return [int(v) for v in ((values.astype(np.int64) + (1 << 31)) % (1 << 32) - (1 << 31))]


def _m0_conv(layer: Any, g: Geometry) -> KernelPlan | None:
    """Unsigned-byte products with LDRB immediate offsets, 1 pixel x 4 channels."""
    w = np.asarray(layer.weights, np.int64).reshape(g.out_c, g.taps)
    bias = _bias(layer, g.out_c)
    bound = _acc_bound(w, bias, _max_input_term(layer))
    if bound > INT32_MAX:
        return None
    int16 = np.dtype(layer.activation_dtype) == np.dtype(np.int16)
    direct = _is_pointwise(g)
    xoff = 0 if direct else (1 << 15 if int16 else 1 << 7)
    zero = xoff + int(layer.input_zero_point)  # column value that contributes nothing
    wu = w + 128
    n_blocks = g.out_c // OC_BLOCK
    blocked = wu[:n_blocks * OC_BLOCK].reshape(n_blocks, OC_BLOCK, g.taps).transpose(0, 2, 1)
    wbytes = [int(v) for v in blocked.ravel()] + [int(v) for v in wu[n_blocks * OC_BLOCK:].ravel()]
    col_ctype = "uint16_t" if int16 else "uint8_t"
    loads = {(False, False): ("ldrb", ""), (True, False): ("ldrh", ""),
             (False, True): ("ldrb", "sxtb"), (True, True): ("ldrh", "sxth")}
    x_load, x_extend = loads[(int16, direct)]
    ctx = {"geo": g, "direct": direct, "n_blocks": n_blocks, "wbytes": wbytes, "unroll": 8,
           "x_load": x_load, "x_extend": x_extend, "x_bytes": 2 if int16 else 1,
           "xoff": xoff, "pad_value": zero, "col_ctype": col_ctype,
           "col_const_ctype": ("int16_t" if int16 else "int8_t") if direct else col_ctype,
           "const32": _wrap32(bias - zero * w.sum(axis=1)), **_requant_context(layer, bound)}
    scratch = 0 if direct else g.taps * (2 if int16 else 1)
    return KernelPlan("m0_conv", "fast/m0_conv.c.j2", scratch, {"fast": ctx})


def select(layer: Any, input_shape: tuple[int, ...], cpu: str) -> KernelPlan | None:
    """Return a fast kernel plan for ``layer`` on ``cpu``, or None to use the generic kernels."""
    if cpu not in CPUS:
        raise ValueError(f"cpu={cpu!r}: allowed are {', '.join(CPUS)}")
    op = _op(layer)
    if cpu == "generic" or op not in ("Conv2D", "DepthwiseConv2D") or len(input_shape) != 3:
        return None
    g = geometry(layer, tuple(input_shape))
    int8 = np.dtype(layer.activation_dtype) == np.dtype(np.int8)
    if cpu == "cortex-m55" and op == "Conv2D" and int(layer.groups) == 1:
        return _mve_conv(layer, g)
    if cpu in DSP_CPUS and op == "Conv2D" and int(layer.groups) == 1:
        if int8 and _is_pointwise(g) and g.in_c % 4 == 0:
            return _dsp_conv_1x1(layer, g)
        return _dsp_conv(layer, g)
    if cpu in M0_CPUS and op == "Conv2D" and int(layer.groups) == 1:
        return _m0_conv(layer, g)
    if op == "DepthwiseConv2D":
        return _depthwise(layer, g, cpu)
    return None
