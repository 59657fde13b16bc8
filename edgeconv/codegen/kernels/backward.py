"""Backward-pass kernels (templates ``codegen/kernels/backward/``), portable C99 for every
CPU: the layers of :mod:`edgeconv.backprop`, bit-exact with :mod:`edgeconv.grad`.

Every gradient kernel sums exactly into an accumulator array in scratch (int32 when the
layer's worst case ``terms * max|grad_output| * max|operand|`` fits, else int64; the
layer refuses worst cases of ``2**61`` or more, as the reference does), then requantizes
the whole tensor as :func:`edgeconv.grad.quantize_gradient`: the power-of-two format is
chosen **at run time from the tensor's max** (``edgeconv_grad_exponent``: the smallest
``e`` with ``2*peak < (2*qmax + 1) * D * 2**e``), each element is rounded to nearest
(ties away from zero, ``edgeconv_grad_round``) and saturated to ``[-qmax, qmax]``; the
last output element is ``frac_bits = -e``. For int32 sums and ``D = 1`` the rounding is
one arithmetic shift, ``(a + 2**(e-1) - [a < 0]) >> e``, while ``(qmax + 1) * 2**e <=
2**31`` (no overflow); the rule keeps ``|a| / 2**e < qmax + 1/2``, so it never saturates.

- ``bwd_conv_input`` (ConvBackward part 'input'; Conv2D, Conv1D, DepthwiseConv2D): scatter
  ``dL/dx[iy, ix, c] += sum_m g[oy, ox, grp*OG + m] * w[grp*OG + m, ky, kx, c - grp*ICG]``
  over output pixels and in-image taps (col2im of ``g @ W``). Weights packed
  ``[ky][kx][grp][ic][m]`` (the output channels of a group innermost, contiguous with
  ``g``). Scratch: ``in_h*in_w*in_c`` accumulators.
- ``bwd_conv_weights`` (part 'weights'): ``dL/dw[o, ky, kx, ic] = sum_{oy, ox}
  (x[iy, ix, grp*ICG + ic] - zero_point) * g[oy, ox, o]`` over the output pixels whose
  tap is in the image; written in the layer's weight layout (OHWI; depthwise
  ``(KH, KW, C*M)``). Scratch: one accumulator per weight.
- ``bwd_conv_input_dsp`` (part 'input', groups 1, int32 sums, CPUs with the DSP
  extension): per output pixel ``g`` as int16 pairs, then four input channels at a time
  SMLAD against the weights packed as int16 pairs ``[ky][kx][ic][pair]`` (output channels
  padded to even; up to 32 pairs the dot products are unrolled in inline assembly, one LDRD
  per two pairs). Scratch: ``in_h*in_w*in_c`` int32 + ``out_c`` rounded up to even int16.
- ``bwd_conv_input_dw_dsp`` (part 'input', DepthwiseConv2D with multiplier 1, int8, int32
  sums, DSP CPUs): gathered per input pixel: the taps some output pixel reaches are listed
  once, then four channels at a time one LDR of ``g``, SXTB16 to the pairs ``(c, c+2)``,
  ``(c+1, c+3)`` and SMLABB/SMLATT against the weights packed as the same pairs; each sum
  stored once. Scratch: ``in_h*in_w*in_c`` int32.
- ``bwd_conv_weights_dsp`` (part 'weights', groups 1, DSP CPUs): output positions in blocks
  of ``WEIGHTS_BLOCK`` (fewer positions: their count rounded up to a multiple of 4); per
  block ``g`` transposed to int16 ``[o][pb]``, per tap the centred input to int16
  ``[ic][pb]`` (zeros outside the image); register blocks of (o, ic) rows, 2x2 (4x1 for
  one input channel) by SMLAD in inline assembly (int32 sums), 2x1 by SMLALD (int64).
  Scratch: the accumulators + ``2 * block * (out_c + in_c)`` with the counts rounded up
  to the register block (zero rows).
- ``bwd_conv_weights_small`` (part 'weights', groups 1, ``out_c <= 2`` and ``out_c * in_c
  <= 8``, int32 sums; every CPU, ahead of the DSP kernel): per tap the ``out_c x in_c``
  sums in registers over the output positions whose tap is in the image, each input and
  gradient row read once, no transposition (the DSP kernel's per-tap transposition of the
  input costs about as much as the MACs when each input element serves only one or two
  output channels). Scratch: one accumulator per weight.
- ``bwd_conv_bias`` (part 'bias'): ``dL/db[o] = sum g[., o]``. Scratch: ``out_c``
  accumulators.
- ``bwd_max_pool``: each window's gradient to its first maximal in-image tap (row-major,
  strict ``>``); ``bwd_avg_pool``: ``g * (D / n)`` to each of the window's ``n``
  in-image taps, ``D`` the lcm of the window sizes (denominator of the exact gradient).
  Scratch: ``in_h*in_w*in_c`` accumulators.
- ``sgd`` (SGDUpdate): the elementwise step of :func:`edgeconv.backprop.sgd_update` with
  ``edgeconv_round_shift_sat32``; no scratch.
- ``bwd_signal_input``, ``bwd_signal_kernel`` (SignalBackward): ``grad_output`` placed at
  its positions of the full ``M + N - 1`` output (table ``<name>_index``, -1 for the
  correlate layout's constant zeros), then the valid correlation with the taps as
  convolved (``<name>_taps``; 'input') or with ``x`` ('kernel', reversed for correlate).
  Scratch: the ``M`` or ``N`` accumulators + ``M + N - 1`` int32.
- ``fir_train`` (FirTrainStep): q15 valid convolution, saturated errors, the squared
  error sum (uint64), the gradient ``sum_t e[t] * x[t + taps - 1 - k]`` (int64), its
  run-time format, the SGD step. Scratch: ``taps`` int64 accumulators (+4 to align)
  and ``T`` int16 errors.
- ``dense_train`` (DenseTrainStep): the classifier head's logits (int64), the first
  maximum, the errors against the one-hot target, their int16 format, the weight and bias
  gradient sums (int32 while ``batch * 32767 * 255`` fits), each gradient's format, the SGD
  step (optionally with momentum), the learning rates read from the input. Scratch: ``B*O``
  int64 logits (+4 to align), ``O*K + O`` sums, ``B*O`` int16 errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeconv.codegen.context import LayerContext
from edgeconv.codegen.cpus import Cpu
from edgeconv.codegen.cpus import cpu as cpu_named
from edgeconv.codegen.kernels import packing as pk
from edgeconv.codegen.plan import Kernel, KernelPlan
from edgeconv.fixedpoint import INT32_MAX, dtype_bounds

OPS = ("conv_backward", "pool_backward", "sgd_update", "fir_train_step", "signal_backward",
       "dense_train_step")
_T = "kernels/backward/"
CONV_INPUT = Kernel("bwd_conv_input", _T + "conv_input.c.j2", ("weights",))
CONV_WEIGHTS = Kernel("bwd_conv_weights", _T + "conv_weights.c.j2", ())
CONV_INPUT_DSP = Kernel("bwd_conv_input_dsp", _T + "conv_input_dsp.c.j2", ("weights",))
CONV_WEIGHTS_DSP = Kernel("bwd_conv_weights_dsp", _T + "conv_weights_dsp.c.j2", ())
CONV_INPUT_DW_DSP = Kernel("bwd_conv_input_dw_dsp", _T + "conv_input_dw_dsp.c.j2", ("weights",))
CONV_WEIGHTS_SMALL = Kernel("bwd_conv_weights_small", _T + "conv_weights_small.c.j2", ())
CONV_BIAS = Kernel("bwd_conv_bias", _T + "conv_bias.c.j2", ())
MAX_POOL = Kernel("bwd_max_pool", _T + "pool.c.j2", ())
AVG_POOL = Kernel("bwd_avg_pool", _T + "pool.c.j2", ())
SGD = Kernel("sgd", _T + "sgd.c.j2", ())
FIR_TRAIN = Kernel("fir_train", _T + "fir_train.c.j2", ())
SIGNAL_INPUT = Kernel("bwd_signal_input", _T + "signal.c.j2", ("index", "taps"))
SIGNAL_KERNEL = Kernel("bwd_signal_kernel", _T + "signal.c.j2", ("index",))
DENSE_TRAIN = Kernel("dense_train", _T + "dense_train.c.j2", ())
KERNELS = (CONV_INPUT, CONV_WEIGHTS, CONV_INPUT_DSP, CONV_WEIGHTS_DSP, CONV_WEIGHTS_SMALL,
           CONV_INPUT_DW_DSP, CONV_BIAS, MAX_POOL,
           AVG_POOL, SGD, FIR_TRAIN, SIGNAL_INPUT, SIGNAL_KERNEL, DENSE_TRAIN)
WEIGHTS_BLOCK = 64  # output positions per block of bwd_conv_weights_dsp
SMALL_OUT_C = 2  # bwd_conv_weights_small: at most this many output channels
SMALL_BLOCK = 8  # ... and out_c * in_c register sums
Q_LIMIT = 1 << 62  # (2*qmax + 1) * D must stay below this for the 64-bit format rule


@dataclass(frozen=True)
class GradContext:
    """``k`` of the gradient templates.

    ``acc_ctype``: the accumulator; ``n_acc``: accumulators (the gradient's elements);
    ``x_count``: elements of ``x`` ahead of ``grad_output`` in the input vector (0 when
    the kernel takes ``grad_output`` only); ``qmax``, ``den``, ``q`` = ``(2*qmax + 1) *
    den``: the format rule's constants; ``groups``, ``icpg``, ``ocpg``: grouping (depthwise:
    ``in_c``, 1, the multiplier); ``depthwise``: weight layout ``(KH, KW, C*M)``;
    ``input_offset``: ``-input_zero_point``; ``weights``: packed weights (part 'input');
    ``wwords``, ``ocp``: the DSP kernel's int16 weight pairs and padded channel count;
    ``block``: positions per block of ``bwd_conv_weights_dsp``, ``block_o`` x ``block_i``
    its register block."""

    acc_ctype: str
    n_acc: int
    x_count: int
    qmax: int
    den: int
    q: int
    groups: int = 1
    icpg: int = 1
    ocpg: int = 1
    depthwise: bool = False
    input_offset: int = 0
    weights: tuple[int, ...] = ()
    wwords: tuple[int, ...] = ()
    ocp: int = 0
    block: int = 0
    block_o: int = 2
    block_i: int = 2


@dataclass(frozen=True)
class SgdContext:
    """``k`` of ``sgd``: the layer's constants (module docstring of edgeconv.backprop)."""

    count: int
    lr_mult: int
    lr_shift: int
    momentum: int | None
    velocity_frac_bits: int
    w_min: int
    w_max: int


def runs_on(cpu: Cpu) -> bool:
    """Portable C: every CPU."""
    return True


def _acc_ctype(terms: tuple[int, ...]) -> str:
    return "int32_t" if int(np.prod(terms, dtype=object)) <= INT32_MAX else "int64_t"


def _acc_scratch(acc_ctype: str, count: int) -> int:
    """Scratch bytes of ``count`` accumulators; int64 ones get 4 bytes to align to 8."""
    return count * 4 if acc_ctype == "int32_t" else count * 8 + 4


def _grad_constants_for(grad_dtype: object, den: int, name: str) -> dict[str, int]:
    qmax = dtype_bounds(grad_dtype)[1]
    q = (2 * qmax + 1) * den
    if q >= Q_LIMIT:
        raise ValueError(f"layer {name!r}: (2*qmax + 1) * denominator = {q}: allowed range "
                         "is < 2**62 (64-bit format rule)")
    return {"qmax": qmax, "den": den, "q": q}


def _grad_constants(layer: Any, den: int) -> dict[str, int]:
    return _grad_constants_for(layer.grad_dtype, den, layer.name)


def _packed_input_weights(layer: object, groups: int, icpg: int, ocpg: int) -> tuple[int, ...]:
    """Forward weights as ``[ky][kx][grp][ic][m]`` (output channel ``grp*OG + m``)."""
    fwd = layer.layer  # type: ignore[attr-defined]
    w = np.asarray(fwd.weights, np.int64)
    if w.ndim == 3:  # Conv1D (O, KW, I/g) -> OHWI with H = 1
        w = w[:, None]
    if type(fwd).__name__ == "DepthwiseConv2D":  # (1, KH, KW, C*M) -> OHWI (C*M, KH, KW, 1)
        w = w[0].transpose(2, 0, 1)[..., None]
    _, kh, kw, _ = w.shape
    packed = w.reshape(groups, ocpg, kh, kw, icpg).transpose(2, 3, 0, 4, 1)
    return tuple(int(v) for v in packed.ravel())


def _ohwi(fwd: Any) -> np.ndarray:
    """Forward weights as OHWI (Conv1D: H = 1)."""
    w = np.asarray(fwd.weights, np.int64)
    return w[:, None] if w.ndim == 3 else w


def _dw_input_words(fwd: Any, in_c: int) -> tuple[int, ...]:
    """bwd_conv_input_dw_dsp's weight rows: per tap, per four channels c the int16 pairs
    ``(w[c], w[c+2])``, ``(w[c+1], w[c+3])``, then the ``in_c % 4`` last channels."""
    w = np.asarray(fwd.weights, np.int64)[0]  # (KH, KW, C), multiplier 1
    kh, kw, _ = w.shape
    c4 = in_c // 4
    # [..., q, j, i] = w[4q + 2i + j]: pair j holds channels 4q + j and 4q + 2 + j
    quads = w[..., :4 * c4].reshape(kh, kw, c4, 2, 2).swapaxes(-1, -2)
    words = np.asarray(pk.pack_pairs(quads), np.int64).reshape(kh, kw, 2 * c4)
    rows = np.concatenate([words, w[..., 4 * c4:]], axis=-1)
    return tuple(int(v) for v in rows.ravel())


def _dsp_plan(ctx: LayerContext, common: dict[str, Any]) -> KernelPlan | None:
    """The DSP variants: groups 1, not depthwise (SMLAD needs int32 sums for 'input';
    'weights' uses SMLALD for int64 ones); depthwise 'input' with multiplier 1, int8 and
    int32 sums."""
    layer, geo = ctx.layer, ctx.geo
    assert geo is not None
    if not cpu_named(ctx.cpu).dsp:
        return None
    if common["depthwise"]:
        if layer.part != "input" or common["ocpg"] != 1 or ctx.in_ctype != "int8_t" \
                or common["acc_ctype"] != "int32_t":
            return None
        k = GradContext(x_count=0, wwords=_dw_input_words(layer.layer, geo.in_c), **common)
        return CONV_INPUT_DW_DSP.plan(common["n_acc"] * 4, k)
    if common["groups"] != 1:
        return None
    if layer.part == "input" and common["acc_ctype"] == "int32_t":
        ocp = geo.out_c + geo.out_c % 2
        w = np.zeros((ocp, geo.k_h, geo.k_w, geo.in_c), np.int64)
        w[:geo.out_c] = _ohwi(layer.layer)
        pairs = w.transpose(1, 2, 3, 0).reshape(-1, 2)
        k = GradContext(x_count=0, wwords=tuple(pk.pack_pairs(pairs)), ocp=ocp, **common)
        return CONV_INPUT_DSP.plan(common["n_acc"] * 4 + ocp * 2, k)
    if layer.part == "weights":
        positions = geo.out_h * geo.out_w
        # a multiple of 4: whole LDRD loads of two SMLAD pairs (word-aligned rows)
        block = min(WEIGHTS_BLOCK, -(-positions // 4) * 4)
        # register block (output, input channels): 2x2; 4x1 for one input channel; 2x1
        # for int64 sums (SMLALD)
        bo, bi = (2, 1) if common["acc_ctype"] == "int64_t" else \
            ((4, 1) if geo.in_c == 1 else (2, 2))
        k = GradContext(x_count=geo.in_h * geo.in_w * geo.in_c, block=block, block_o=bo,
                        block_i=bi, input_offset=-int(layer.layer.input_zero_point), **common)
        rows = -(-geo.out_c // bo) * bo + -(-geo.in_c // bi) * bi  # padded with zero rows
        scratch = _acc_scratch(common["acc_ctype"], common["n_acc"]) + 2 * block * rows
        return CONV_WEIGHTS_DSP.plan(scratch, k)
    return None


def _conv_plan(ctx: LayerContext) -> KernelPlan:
    layer, geo = ctx.layer, ctx.geo
    assert geo is not None
    fwd = layer.layer
    depthwise = type(fwd).__name__ == "DepthwiseConv2D"
    groups = geo.in_c if depthwise else int(fwd.groups)
    icpg = 1 if depthwise else int(fwd.weights.shape[-1])
    ocpg = geo.out_c // groups
    n_acc = ctx.output_count - 1
    acc = _acc_ctype(layer.acc_terms())
    common = dict(acc_ctype=acc, n_acc=n_acc, groups=groups, icpg=icpg, ocpg=ocpg,
                  depthwise=depthwise, **_grad_constants(layer, 1))
    scratch = _acc_scratch(acc, n_acc)
    if layer.part == "weights" and acc == "int32_t" and groups == 1 and not depthwise \
            and geo.out_c <= SMALL_OUT_C and geo.out_c * geo.in_c <= SMALL_BLOCK:
        k = GradContext(x_count=geo.in_h * geo.in_w * geo.in_c,
                        input_offset=-int(fwd.input_zero_point), **common)
        return CONV_WEIGHTS_SMALL.plan(scratch, k)
    dsp = _dsp_plan(ctx, common)
    if dsp is not None:
        return dsp
    if layer.part == "input":
        k = GradContext(x_count=0, weights=_packed_input_weights(layer, groups, icpg, ocpg),
                        **common)
        return CONV_INPUT.plan(scratch, k)
    if layer.part == "weights":
        k = GradContext(x_count=geo.in_h * geo.in_w * geo.in_c,
                        input_offset=-int(fwd.input_zero_point), **common)
        return CONV_WEIGHTS.plan(scratch, k)
    return CONV_BIAS.plan(scratch, GradContext(x_count=0, **common))


def _pool_plan(ctx: LayerContext) -> KernelPlan:
    layer, geo = ctx.layer, ctx.geo
    assert geo is not None
    n_acc = ctx.output_count - 1
    fh_fw = geo.k_h * geo.k_w
    gmax = -int(np.iinfo(layer.activation_dtype).min)
    acc = _acc_ctype((gmax, layer.denominator, fh_fw))
    kernel = MAX_POOL if layer.kind == "max" else AVG_POOL
    k = GradContext(acc_ctype=acc, n_acc=n_acc, x_count=n_acc if layer.kind == "max" else 0,
                    **_grad_constants(layer, layer.denominator))
    return kernel.plan(_acc_scratch(acc, n_acc), k)


def _sgd_plan(ctx: LayerContext) -> KernelPlan:
    layer = ctx.layer
    lo, hi = dtype_bounds(layer.weight_dtype)
    return SGD.plan(0, SgdContext(count=layer.count, lr_mult=layer.lr.mult,
                                  lr_shift=layer.lr.shift, momentum=layer.momentum,
                                  velocity_frac_bits=layer.velocity_frac_bits,
                                  w_min=lo, w_max=hi))


def _fir_plan(ctx: LayerContext) -> KernelPlan:
    layer = ctx.layer
    k = GradContext(acc_ctype="int64_t", n_acc=layer.taps, x_count=layer.taps,
                    **_grad_constants_for(np.int16, 1, layer.name))
    return FIR_TRAIN.plan(_acc_scratch("int64_t", layer.taps) + 2 * layer.outputs, k)


def _dense_train_plan(ctx: LayerContext) -> KernelPlan:
    layer = ctx.layer
    o, k, b = layer.classes, layer.features, layer.batch
    acc = _acc_ctype((b, 32767, 255))  # e_q * (x - zero point) summed over the batch
    size = 4 if acc == "int32_t" else 8
    scratch = 8 * b * o + 4 + size * (o * k + o) + 2 * b * o
    k_ctx = GradContext(acc_ctype=acc, n_acc=o * k + o, x_count=0,
                        **_grad_constants_for(np.int16, 1, layer.name))
    return DENSE_TRAIN.plan(scratch, k_ctx)


def _signal_plan(ctx: LayerContext) -> KernelPlan:
    layer = ctx.layer
    m, n = layer.layer.input_length, layer.layer.kernel.size
    acc = _acc_ctype(layer.acc_terms())
    n_acc = m if layer.part == "input" else n
    k = GradContext(acc_ctype=acc, n_acc=n_acc, x_count=m if layer.part == "kernel" else 0,
                    **_grad_constants(layer, 1))
    scratch = _acc_scratch(acc, n_acc) + 4 * (m + n - 1)  # + the full-length g (int32)
    return (SIGNAL_INPUT if layer.part == "input" else SIGNAL_KERNEL).plan(scratch, k)


def select(ctx: LayerContext) -> KernelPlan | None:
    """The kernel of a backward layer (``ctx.op`` in OPS), None for every other op."""
    if ctx.op == "conv_backward":
        return _conv_plan(ctx)
    if ctx.op == "pool_backward":
        return _pool_plan(ctx)
    if ctx.op == "sgd_update":
        return _sgd_plan(ctx)
    if ctx.op == "fir_train_step":
        return _fir_plan(ctx)
    if ctx.op == "signal_backward":
        return _signal_plan(ctx)
    if ctx.op == "dense_train_step":
        return _dense_train_plan(ctx)
    return None
