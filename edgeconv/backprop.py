"""Codegen-able backward layers and the fixed-point SGD step (issue 9, item 3).

Each class here is a *layer object* (docs/architecture.md, "Layer objects") whose call is
one piece of the backward pass of a forward layer, exactly as :mod:`edgeconv.grad`
computes it in fixed point, so the code generator can emit it and the firmware harness
and protocol can run and verify it unchanged: one integer vector in, one out.

- :class:`ConvBackward` ``(layer, part=...)`` for ``Conv2D``, ``Conv1D`` and
  ``DepthwiseConv2D``: ``part='input'`` (input: ``grad_output``), ``'weights'``
  (input: ``x`` then ``grad_output``), ``'bias'`` (input: ``grad_output``).
- :class:`DenseBackward` ``(layer, part=..., batch=N)`` for ``FullyConnected`` on ``N``
  samples: ConvBackward of the equivalent 1x1 convolution of a 1 x N image.
- :class:`PoolBackward` ``(layer)`` for ``MaxPool2D`` (input: ``x`` then
  ``grad_output``) and ``AvgPool2D`` (input: ``grad_output``).
- :class:`SignalBackward` ``(filter, part=...)`` for q7/q15 ``SignalFilter``:
  ``part='input'`` (input: ``grad_output``), ``'kernel'`` (input: ``x`` then
  ``grad_output``).
- :class:`SGDUpdate` (``count``, learning rate, optional momentum): int32 vector
  ``(weights, grad values, grad frac_bits[, velocity])`` in, ``(new weights[, new
  velocity])`` out; the reference is :func:`sgd_update`.
- :class:`FirTrainStep` and :class:`DenseTrainStep`: whole training steps (a q15 FIR
  filter; a fully connected classifier head with momentum) for ``edgeconv demo train``.

Vectors are flattened in C order and concatenated.  The backward layers' output is the
:class:`edgeconv.grad.FixedGrad` of the gradient, flattened, followed by one element: its
``frac_bits`` (the format is chosen from the tensor's max at run time, so the C computes
it too and reports it; ``values * 2**-frac_bits`` is the gradient).  Input dtype: the
forward layer's ``activation_dtype`` (``grad_output`` is given in it as well); output
dtype: ``grad_dtype`` (default the same).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeconv import fixedpoint
from edgeconv import grad as _grad
from edgeconv.layers import AvgPool2D, Conv1D, Conv2D, DepthwiseConv2D, FullyConnected, MaxPool2D
from edgeconv.layers import _validate as v

PARTS = ("input", "weights", "bias")
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _check_layer(layer: object, allowed: tuple[type, ...]) -> Any:
    if not isinstance(layer, allowed):
        names = ", ".join(c.__name__ for c in allowed)
        raise ValueError(f"layer: {type(layer).__name__} not allowed, must be one of {names}")
    if getattr(layer, "input_shape", None) is None:
        raise ValueError(f"layer: {layer.name!r} has input_shape=None; the backward layer "
                         "needs the forward layer's input shape")
    return layer


def _split_batch(x: object, n: int, dtype: np.dtype, what: str) -> tuple[np.ndarray, bool]:
    arr = np.asarray(x)
    if arr.dtype != dtype or arr.ndim not in (1, 2) or arr.shape[-1] != n:
        raise ValueError(f"x: {arr.dtype} {arr.shape} not allowed, must be {dtype.name} "
                         f"({n},) or (batch, {n}): {what}")
    return arr.reshape(-1, n), arr.ndim == 2


def _peak_bound(dtype: np.dtype) -> int:
    return -int(np.iinfo(dtype).min)


class _BackwardLayer:
    """Shared calling convention: a flat integer vector in, FixedGrad values + frac_bits
    out, batch by looping."""

    op: str
    input_parts: tuple[str, ...]
    activation_dtype: np.dtype
    grad_dtype: np.dtype
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    name: str | None

    def _init_io(self, sizes: dict[str, int], result_count: int, grad_dtype: object,
                 name: object) -> None:
        self.name = v.check_name(name)
        self.grad_dtype = _grad._check_grad_dtype(self.activation_dtype if grad_dtype is None
                                                  else grad_dtype)
        self.output_dtype = self.grad_dtype
        self._sizes = sizes
        self.input_shape = (sum(sizes[p] for p in self.input_parts),)
        self.output_shape = (result_count + 1,)

    def output_shape_for(self, input_shape: object) -> tuple[int, ...]:
        if tuple(input_shape) != self.input_shape:  # type: ignore[arg-type]
            raise ValueError(f"input_shape={input_shape!r}: must be {self.input_shape}")
        return self.output_shape

    def split(self, vector: np.ndarray) -> dict[str, np.ndarray]:
        """The named operands of one input vector (flat views)."""
        out, at = {}, 0
        for part in self.input_parts:
            out[part] = vector[at:at + self._sizes[part]]
            at += self._sizes[part]
        return out

    def _gradient(self, parts: dict[str, np.ndarray]) -> _grad.FixedGrad:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        batch, batched = _split_batch(x, self.input_shape[0], self.activation_dtype,
                                      " + ".join(self.input_parts))
        rows = []
        for vector in batch:
            g = self._gradient(self.split(vector))
            rows.append(np.concatenate([g.values.ravel().astype(np.int64), [g.frac_bits]]))
        out = np.asarray(rows, np.int64).astype(self.grad_dtype)
        return out if batched else out[0]

    @staticmethod
    def frac_bits_range(grad_dtype: np.dtype, denominator: int) -> tuple[int, int]:
        """Bounds of the format rule's ``frac_bits`` for exact sums below 2**61 divided
        by ``denominator``: ``-e`` with ``2 <= 2*peak < 2**62``."""
        qmax = fixedpoint.dtype_bounds(grad_dtype)[1]
        lo = -_grad._exponent(1, denominator, qmax)
        hi = -_grad._exponent(_grad.ACC_LIMIT - 1, denominator, qmax)
        return hi, lo

    def _check_frac_bits_fit(self, denominator: int) -> None:
        lo, hi = self.frac_bits_range(self.grad_dtype, denominator)
        info = np.iinfo(self.grad_dtype)
        if lo < info.min or hi > info.max:
            raise ValueError(f"grad_dtype={self.grad_dtype.name}: frac_bits in [{lo}, {hi}] "
                             "does not fit the output vector's dtype")


class ConvBackward(_BackwardLayer):
    """One gradient of a Conv2D / Conv1D / DepthwiseConv2D layer (``layer.backward``).

    ``part='input'``: ``dL/dx`` (input vector: ``grad_output``; shaped like ``x``);
    ``'weights'``: ``dL/dw`` in the layer's weight layout (input: ``x`` then
    ``grad_output``); ``'bias'``: ``dL/db`` (input: ``grad_output``).  ``grad_output``
    is ``dL/dacc`` in the layer's output shape (see ``layer.backward``), in the layer's
    activation dtype; ``x`` is the layer's raw input (its zero point is subtracted, as
    ``layer.backward`` does).  The weights and parameters are the forward layer's, fixed
    at construction (a copy)."""

    op = "conv_backward"

    def __init__(self, layer: Conv2D | Conv1D | DepthwiseConv2D, *, part: str,
                 grad_dtype: object = None, name: object = None) -> None:
        self.layer = _check_layer(layer, (Conv2D, Conv1D, DepthwiseConv2D))
        self.part = v.check_choice("part", part, PARTS)
        if part == "bias" and layer.bias is None:
            raise ValueError("part='bias': the layer has no bias (bias=None)")
        self.activation_dtype = np.dtype(layer.activation_dtype)
        self.input_parts = ("x", "grad_output") if part == "weights" else ("grad_output",)
        n_x = math.prod(layer.input_shape)
        n_out = math.prod(layer.output_shape)
        result = {"input": n_x, "weights": layer.weights.size, "bias": layer.output_shape[-1]}
        self._init_io({"x": n_x, "grad_output": n_out}, result[part], grad_dtype, name)
        self._check_frac_bits_fit(1)
        _grad._check_acc(f"{self.name}: worst case", *self.acc_terms())

    def acc_terms(self) -> tuple[int, int, int]:
        """(terms, |grad_output| bound, |other operand| bound) of the largest exact sum:
        the C accumulator is int32 when their product fits, else int64."""
        layer = self.layer
        g = _peak_bound(self.activation_dtype)
        positions = math.prod(layer.output_shape[:-1])
        kh_kw = math.prod(layer.weights.shape[1:-1])  # KH*KW (Conv1D: KW)
        if self.part == "input":
            og = layer.output_shape[-1] // (layer.input_shape[-1] if isinstance(
                layer, DepthwiseConv2D) else layer.groups)
            return og * kh_kw, g, 128
        if self.part == "weights":
            zp = int(layer.input_zero_point)  # |x - zero point| bound (16x8: zero point 0)
            x = max(127 - zp, zp + 128) if self.activation_dtype == np.int8 else 32768
            return positions, g, x
        return positions, g, 1

    def _gradient(self, parts: dict[str, np.ndarray]) -> _grad.FixedGrad:
        layer = self.layer
        gy = parts["grad_output"].reshape(layer.output_shape)
        if "x" in parts:
            x = parts["x"].reshape(layer.input_shape)
        else:  # dL/dx and dL/db do not depend on x
            x = np.full(layer.input_shape, layer.input_zero_point, self.activation_dtype)
        gx, gw, gb = layer.backward(x, gy, grad_dtype=self.grad_dtype)
        return {"input": gx, "weights": gw, "bias": gb}[self.part]

    def macs(self, input_shape: object = None) -> int:
        return self.layer.macs() if self.part != "bias" else math.prod(self.layer.output_shape)

    def spec(self) -> dict[str, Any]:
        return {"op": self.op, "name": self.name, "part": self.part,
                "grad_dtype": self.grad_dtype.name, "forward": self.layer.spec(),
                "forward_input_shape": list(self.layer.input_shape)}

    def __repr__(self) -> str:
        return f"ConvBackward({self.layer!r}, part={self.part!r}, name={self.name!r})"


class DenseBackward(ConvBackward):
    """One gradient of a :class:`edgeconv.FullyConnected` layer for a batch of ``batch``
    samples, as :func:`edgeconv.grad.dense_backward` (``layer.backward``) computes it.

    A fully connected layer on ``batch`` samples is the 1x1 convolution of a 1 x
    ``batch`` image with ``K`` channels (weights ``(O, 1, 1, K)``): its input gradient is
    per sample, its weight and bias gradients sum over the image's positions, i.e. over
    the batch.  So this is :class:`ConvBackward` of that convolution, with the same
    vectors: ``part='input'`` (input: ``grad_output`` ``(batch, O)``; result ``(batch,
    K)``), ``'weights'`` (input: ``x`` ``(batch, K)`` then ``grad_output``; result ``(O,
    K)``), ``'bias'`` (input: ``grad_output``; result ``(O,)``), and the same generated
    kernels (``bwd_conv_*``, the DSP ones on DSP cores)."""

    def __init__(self, layer: FullyConnected, *, part: str, batch: int = 1,
                 grad_dtype: object = None, name: object = None) -> None:
        if not isinstance(layer, FullyConnected):
            raise ValueError(f"layer: {type(layer).__name__} not allowed, must be "
                             "FullyConnected")
        self.batch = v.check_int("batch", batch, 1)
        o, k = layer.weights.shape
        conv = Conv2D(weights=layer.weights.reshape(o, 1, 1, k), bias=layer.bias,
                      output_multiplier=layer.output_multiplier,
                      output_shift=layer.output_shift,
                      input_zero_point=layer.input_zero_point,
                      output_zero_point=layer.output_zero_point,
                      activation_min=layer.activation_min,
                      activation_max=layer.activation_max,
                      activation_dtype=layer.activation_dtype, input_shape=(1, self.batch, k),
                      name=layer.name)
        self.dense = layer
        super().__init__(conv, part=part, grad_dtype=grad_dtype, name=name)

    def __repr__(self) -> str:
        return (f"DenseBackward({self.dense!r}, part={self.part!r}, batch={self.batch}, "
                f"name={self.name!r})")


class PoolBackward(_BackwardLayer):
    """``dL/dx`` of a MaxPool2D (input vector: ``x`` then ``grad_output``) or AvgPool2D
    (input: ``grad_output``) layer, as ``layer.backward``: ``grad_output`` in the
    layer's output shape and activation dtype; the result shaped like ``x``."""

    op = "pool_backward"

    def __init__(self, layer: MaxPool2D | AvgPool2D, *, grad_dtype: object = None,
                 name: object = None) -> None:
        self.layer = _check_layer(layer, (MaxPool2D, AvgPool2D))
        self.kind = "max" if isinstance(layer, MaxPool2D) else "avg"
        self.activation_dtype = np.dtype(layer.activation_dtype)
        self.input_parts = ("x", "grad_output") if self.kind == "max" else ("grad_output",)
        n_x = math.prod(layer.input_shape)
        self._init_io({"x": n_x, "grad_output": math.prod(layer.output_shape)}, n_x,
                      grad_dtype, name)
        self.denominator = self._denominator()
        self._check_frac_bits_fit(self.denominator)
        fh, fw = layer.pool_size
        _grad._check_acc(f"{self.name}: worst case", _peak_bound(self.activation_dtype),
                         self.denominator, fh * fw)

    def window_counts(self) -> np.ndarray:
        """In-image taps of every window, ``(OH, OW)`` (the average's divisors)."""
        (pt, pb), (pl, pr) = self.layer.pads_for(self.layer.input_shape)
        h, w, _ = self.layer.input_shape
        oh, ow, _ = self.layer.output_shape
        (fh, fw), (sh, sw) = self.layer.pool_size, self.layer.stride
        rows = [min(oy * sh - pt + fh, h) - max(oy * sh - pt, 0) for oy in range(oh)]
        cols = [min(ox * sw - pl + fw, w) - max(ox * sw - pl, 0) for ox in range(ow)]
        return np.outer(rows, cols)

    def _denominator(self) -> int:
        """The average pool's exact gradient is ``A / D`` with ``D`` the lcm of the window
        sizes (edgeconv.grad.avg_pool2d_backward); 1 for the max pool."""
        if self.kind == "max":
            return 1
        return math.lcm(*np.unique(self.window_counts()).tolist())

    def _gradient(self, parts: dict[str, np.ndarray]) -> _grad.FixedGrad:
        layer = self.layer
        gy = parts["grad_output"].reshape(layer.output_shape)
        x = parts["x"].reshape(layer.input_shape) if "x" in parts else \
            np.zeros(layer.input_shape, self.activation_dtype)
        return layer.backward(x, gy, grad_dtype=self.grad_dtype)

    def macs(self, input_shape: object = None) -> int:
        fh, fw = self.layer.pool_size
        return math.prod(self.layer.output_shape) * fh * fw

    def spec(self) -> dict[str, Any]:
        return {"op": self.op, "name": self.name, "kind": self.kind,
                "grad_dtype": self.grad_dtype.name, "forward": self.layer.spec(),
                "forward_input_shape": list(self.layer.input_shape)}

    def __repr__(self) -> str:
        return f"PoolBackward({self.layer!r}, name={self.name!r})"


class SignalBackward(_BackwardLayer):
    """One gradient of a q7/q15 :class:`edgeconv.signal.SignalFilter` (every kind, mode
    and stride), as :func:`edgeconv.grad.signal_backward`: ``part='input'`` gives
    ``dL/dx`` (input vector: ``grad_output``), ``'kernel'`` gives ``dL/dh`` (input: ``x``
    then ``grad_output``), before the filter's own requantization.  The filter's kernel
    is fixed at construction (a copy)."""

    op = "signal_backward"

    def __init__(self, layer: Any, *, part: str, grad_dtype: object = None,
                 name: object = None) -> None:
        from edgeconv.signal import SignalFilter, _select

        if not isinstance(layer, SignalFilter):
            raise ValueError(f"layer: {type(layer).__name__} not allowed, must be SignalFilter")
        if layer.fmt not in ("q7", "q15"):
            raise ValueError(f"layer: fmt={layer.fmt!r} not allowed, must be 'q7' or 'q15' "
                             "(edgeconv.grad takes int8/int16 operands)")
        self.layer = layer
        self.part = v.check_choice("part", part, ("input", "kernel"))
        self.activation_dtype = np.dtype(layer.activation_dtype)
        m, n = layer.input_length, layer.kernel.size
        self.input_parts = ("x", "grad_output") if part == "kernel" else ("grad_output",)
        self._init_io({"x": m, "grad_output": layer.output_length},
                      m if part == "input" else n, grad_dtype, name)
        self._check_frac_bits_fit(1)
        # Position in the full (M + N - 1) output of each output sample; -1 for the
        # constant zeros of the integer correlate 'full' layout.
        self.full_index = _select(np.arange(1, m + n), layer.kind, layer.mode, m, n, True,
                                  layer.stride).astype(np.int64) - 1
        _grad._check_acc(f"{self.name}: worst case", *self.acc_terms())

    def acc_terms(self) -> tuple[int, int, int]:
        """(terms, |grad_output| bound, |other operand| bound) of the largest exact sum."""
        g = _peak_bound(self.activation_dtype)
        if self.part == "input":
            return self.layer.kernel.size, g, int(np.abs(self.layer.kernel.astype(
                np.int64)).max())
        return self.layer.input_length, g, g

    def _gradient(self, parts: dict[str, np.ndarray]) -> _grad.FixedGrad:
        layer = self.layer
        x = parts.get("x", np.zeros(layer.input_length, self.activation_dtype))
        gx, gh = _grad.signal_backward(x, layer.kernel, parts["grad_output"], kind=layer.kind,
                                       mode=layer.mode, stride=layer.stride,
                                       grad_dtype=self.grad_dtype)
        return gx if self.part == "input" else gh

    def macs(self, input_shape: object = None) -> int:
        return self.layer.input_length * self.layer.kernel.size

    def spec(self) -> dict[str, Any]:
        return {"op": self.op, "name": self.name, "part": self.part,
                "grad_dtype": self.grad_dtype.name, "forward": self.layer.spec()}

    def __repr__(self) -> str:
        return f"SignalBackward({self.layer!r}, part={self.part!r}, name={self.name!r})"


# ------------------------------------------------------------------------------ SGD

def round_shift(a: np.ndarray, shift: int) -> np.ndarray:
    """``round(a * 2**-shift)`` exactly (to nearest, ties away from zero) for int64 ``a``
    and any integer ``shift`` (negative: a left shift), saturated to int32.  For
    ``|a| < 2**62`` a shift beyond +-64 gives what +-64 gives (0, or saturation), so
    it is clamped there first."""
    shift = max(-64, min(64, int(shift)))
    a = np.asarray(a, np.int64).astype(object)
    if shift > 0:
        mag = (np.abs(a) + (1 << (shift - 1))) >> shift
    else:
        mag = np.abs(a) << -shift
    out = np.where(a < 0, -mag, mag)
    return np.clip(out, INT32_MIN, INT32_MAX).astype(np.int64)


@dataclass(frozen=True)
class LearningRate:
    """A fixed-point factor ``mult * 2**-shift`` (``mult`` in [0, 32767])."""

    mult: int
    shift: int

    @classmethod
    def from_float(cls, value: float) -> LearningRate:
        """The nearest ``mult * 2**-shift`` with ``mult`` in [16384, 32767]."""
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"value={value!r}: must be a positive finite number")
        mant, exp = math.frexp(value)  # value = mant * 2**exp, mant in [0.5, 1)
        mult = round(mant * 32768)
        shift = 15 - exp
        if mult == 32768:
            mult, shift = 16384, shift - 1
        return cls(mult, shift)

    @property
    def value(self) -> float:
        return math.ldexp(self.mult, -self.shift)


def sgd_update(weights: np.ndarray, grad: _grad.FixedGrad, *, lr: LearningRate,
               weight_dtype: object = np.int8, momentum: int | None = None,
               velocity: np.ndarray | None = None, velocity_frac_bits: int = 16
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """One SGD step in fixed point: ``w <- w - lr * g`` (``g = grad.values *
    2**-grad.frac_bits`` in the weights' integer units).

    Without momentum: ``w_new = sat(w - round(lr.mult * g_values * 2**-(frac_bits +
    lr.shift)))``.  With ``momentum`` ``mu`` (Q15 integer in [0, 32767], ``mu/32768``)
    and the velocity ``v`` (int32 with ``velocity_frac_bits`` fraction bits):
    ``v_new = sat32(round(mu * v * 2**-15) + round(g_values * 2**(F - frac_bits)))``
    (each round saturated to int32 first), ``w_new = sat(w - round(lr.mult * v_new *
    2**-(F + lr.shift)))``.  ``round`` is to nearest, ties away from zero; ``sat`` to
    ``weight_dtype``.  Returns ``(w_new, v_new)`` (``v_new`` None without momentum)."""
    wd = fixedpoint.int_dtype(weight_dtype)
    w = np.asarray(weights).astype(np.int64)
    g = grad.values.astype(np.int64).reshape(w.shape)
    if momentum is None:
        delta = round_shift(lr.mult * g, grad.frac_bits + lr.shift)
        return fixedpoint.saturate(w - delta, wd), None
    vel = np.asarray(velocity).astype(np.int64).reshape(w.shape)
    decayed = round_shift(momentum * vel, 15)
    added = round_shift(g, grad.frac_bits - velocity_frac_bits)
    v_new = np.clip(decayed + added, INT32_MIN, INT32_MAX)
    delta = round_shift(lr.mult * v_new, velocity_frac_bits + lr.shift)
    return fixedpoint.saturate(w - delta, wd), v_new.astype(np.int32)


class SGDUpdate:
    """The SGD step of :func:`sgd_update` as a layer for ``count`` weights.

    Input (int32): ``weights (count), grad values (count), grad frac_bits (1)`` and,
    with ``momentum``, ``velocity (count)``.  Output (int32): ``new weights (count)``
    and, with momentum, ``new velocity (count)``.  ``lr``: a :class:`LearningRate` or a
    float; ``momentum``: None or the Q15 integer ``mu`` in [0, 32767]."""

    op = "sgd_update"

    def __init__(self, count: int, *, lr: LearningRate | float, weight_dtype: object = np.int8,
                 momentum: int | None = None, velocity_frac_bits: int = 16,
                 name: object = None) -> None:
        self.count = v.check_int("count", count, 1)
        self.lr = lr if isinstance(lr, LearningRate) else LearningRate.from_float(lr)
        if not (0 <= self.lr.mult <= 32767 and -31 <= self.lr.shift <= 62):
            raise ValueError(f"lr={self.lr!r}: mult in [0, 32767] and shift in [-31, 62]")
        self.weight_dtype = fixedpoint.int_dtype(weight_dtype)
        if self.weight_dtype not in (np.dtype(np.int8), np.dtype(np.int16)):
            raise ValueError(f"weight_dtype={weight_dtype!r}: allowed are numpy.int8, "
                             "numpy.int16")
        if momentum is not None:
            momentum = v.check_int("momentum", momentum, 0)
            if momentum > 32767:
                raise ValueError(f"momentum={momentum}: allowed range is [0, 32767] (Q15)")
        self.momentum = momentum
        self.velocity_frac_bits = v.check_int("velocity_frac_bits", velocity_frac_bits, 0)
        if self.velocity_frac_bits > 30:
            raise ValueError(f"velocity_frac_bits={velocity_frac_bits}: allowed range is "
                             "[0, 30]")
        self.name = v.check_name(name)
        self.activation_dtype = np.dtype(np.int32)
        self.output_dtype = np.dtype(np.int32)
        extra = 0 if momentum is None else count
        self.input_shape = (2 * count + 1 + extra,)
        self.output_shape = (count + extra,)

    def output_shape_for(self, input_shape: object) -> tuple[int, ...]:
        if tuple(input_shape) != self.input_shape:  # type: ignore[arg-type]
            raise ValueError(f"input_shape={input_shape!r}: must be {self.input_shape}")
        return self.output_shape

    def __call__(self, x: np.ndarray) -> np.ndarray:
        batch, batched = _split_batch(x, self.input_shape[0], self.activation_dtype,
                                      "weights + grad + frac_bits [+ velocity]")
        n, rows = self.count, []
        for vec in batch.astype(np.int64):
            w, g, fb = vec[:n], vec[n:2 * n], int(vec[2 * n])
            grad = _grad.FixedGrad(g.astype(np.int32), fb, np.dtype(np.int32))
            w_new, v_new = sgd_update(w, grad, lr=self.lr, weight_dtype=self.weight_dtype,
                                      momentum=self.momentum,
                                      velocity=None if self.momentum is None else vec[2 * n + 1:],
                                      velocity_frac_bits=self.velocity_frac_bits)
            rows.append(np.concatenate([w_new.astype(np.int64)]
                                       + ([] if v_new is None else [v_new.astype(np.int64)])))
        out = np.asarray(rows).astype(np.int32)
        return out if batched else out[0]

    def macs(self, input_shape: object = None) -> int:
        return self.count * (1 if self.momentum is None else 3)

    def spec(self) -> dict[str, Any]:
        return {"op": self.op, "name": self.name, "count": self.count,
                "lr": [self.lr.mult, self.lr.shift], "weight_dtype": self.weight_dtype.name,
                "momentum": self.momentum, "velocity_frac_bits": self.velocity_frac_bits}

    def __repr__(self) -> str:
        return (f"SGDUpdate({self.count}, lr={self.lr}, momentum={self.momentum}, "
                f"name={self.name!r})")


# ------------------------------------------------------------------- FIR train step

class FirTrainStep:
    """One training step of a 1-D FIR filter on the board (issue 9, item 4a), a layer.

    Model: ``y = signal.convolve(x, w, 'valid')`` in q15 (``taps`` weights ``w``, ``length``
    samples ``x``, ``T = length - taps + 1`` outputs: exact 64-bit sums shifted right by
    15, floor, saturated: CMSIS-DSP's ``arm_conv_q15``); error ``e = sat16(y - target)``;
    loss ``MSE = mean(e_real**2)``.  Gradient: :func:`edgeconv.grad.signal_backward` of
    ``e`` (int16 FixedGrad, the run-time format rule), i.e. ``G[k] = sum_t e[t] *
    x[t + taps - 1 - k]``; ``dMSE/dw_real = (2/T) * 2**-30 * G``.  Update:
    :func:`sgd_update` (no momentum, int16 weights) with ``lr`` the real step size on the
    MSE, so the integer learning rate is ``lr * 2**-14 / T`` (a :class:`LearningRate`).

    Input (int16): ``w (taps), x (length), target (T)``.  Output (int32): ``new w
    (taps)``, then the exact sum of squared errors ``sum e**2`` (``< T * 2**30``, in units
    of ``2**-30``) as two words, low 32 bits (two's complement) and high; the MSE is
    ``sum / T * 2**-30``."""

    op = "fir_train_step"
    LOSS_FRAC_BITS = 30

    def __init__(self, taps: int, length: int, *, lr: float, name: object = None) -> None:
        self.taps = v.check_int("taps", taps, 1)
        self.length = v.check_int("length", length, self.taps)
        self.outputs = self.length - self.taps + 1
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr={lr!r}: must be a positive finite number")
        self.lr_real = float(lr)
        self.lr = LearningRate.from_float(lr * 2.0**-14 / self.outputs)
        if not -31 <= self.lr.shift <= 62:
            raise ValueError(f"lr={lr!r}: integer learning rate {self.lr} out of range")
        self.name = v.check_name(name)
        self.activation_dtype = np.dtype(np.int16)
        self.output_dtype = np.dtype(np.int32)
        self.input_shape = (self.taps + self.length + self.outputs,)
        self.output_shape = (self.taps + 2,)

    def output_shape_for(self, input_shape: object) -> tuple[int, ...]:
        if tuple(input_shape) != self.input_shape:  # type: ignore[arg-type]
            raise ValueError(f"input_shape={input_shape!r}: must be {self.input_shape}")
        return self.output_shape

    def pack(self, w: np.ndarray, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        """The input vector of one step (int16 arrays of lengths taps, length, T)."""
        parts = {"w": (w, self.taps), "x": (x, self.length), "target": (target, self.outputs)}
        for what, (arr, n) in parts.items():
            arr = np.asarray(arr)
            if arr.dtype != np.int16 or arr.shape != (n,):
                raise ValueError(f"{what}: {arr.dtype} {arr.shape} not allowed, must be int16 "
                                 f"({n},)")
        return np.concatenate([w, x, target]).astype(np.int16)

    def step(self, w: np.ndarray, x: np.ndarray, target: np.ndarray
             ) -> tuple[np.ndarray, int, _grad.FixedGrad]:
        """``(new w int16, sum of squared errors, the gradient FixedGrad)`` of one step."""
        from edgeconv import signal

        y = signal.convolve(x, w, "valid").astype(np.int64)
        e = fixedpoint.saturate(y - target.astype(np.int64), np.int16)
        sq = int((e.astype(np.int64) ** 2).sum())
        _, gw = _grad.signal_backward(x, w, e, kind="convolve", mode="valid",
                                      grad_dtype=np.int16)
        w_new, _ = sgd_update(w, gw, lr=self.lr, weight_dtype=np.int16)
        return w_new, sq, gw

    def loss(self, output: np.ndarray) -> float:
        """The MSE (real) from one step's output vector."""
        sse = (int(output[self.taps]) & 0xFFFFFFFF) | (int(output[self.taps + 1]) << 32)
        return sse / self.outputs * 2.0**-self.LOSS_FRAC_BITS

    def __call__(self, x: np.ndarray) -> np.ndarray:
        batch, batched = _split_batch(x, self.input_shape[0], self.activation_dtype,
                                      "w + x + target")
        n, m = self.taps, self.length
        rows = []
        for vec in batch:
            w_new, sse, _ = self.step(vec[:n], vec[n:n + m], vec[n + m:])
            low = sse & 0xFFFFFFFF
            rows.append(np.concatenate([w_new.astype(np.int64),
                                        [low - (1 << 32) if low >> 31 else low, sse >> 32]]))
        out = np.asarray(rows).astype(np.int32)
        return out if batched else out[0]

    def macs(self, input_shape: object = None) -> int:
        return 2 * self.taps * self.outputs

    def spec(self) -> dict[str, Any]:
        return {"op": self.op, "name": self.name, "taps": self.taps, "length": self.length,
                "lr": [self.lr.mult, self.lr.shift]}

    def __repr__(self) -> str:
        return f"FirTrainStep({self.taps}, {self.length}, lr={self.lr_real}, name={self.name!r})"


# ----------------------------------------------------------------- dense train step

class DenseTrainStep:
    """One SGD step of a fully connected classifier head on the board (issue 9, item 4b),
    a layer: the last layer of a CNN fine-tuned on a batch of its (frozen) features.

    Model: ``z[n, o] = b[o] + sum_k w[o, k] * (x[n, k] - input_zero_point)`` (exact int64;
    ``w`` int16, ``b`` int32, ``x`` the int8 features of ``batch`` samples); the predicted
    class is the first maximal ``z[n, :]``.  Loss: half the squared error against one-hot
    targets of height ``target`` (in the units of ``z``), summed over classes and
    averaged over the batch; its gradient ``dL/dz = e / batch`` with the error ``e = z -
    target * onehot`` (exact int64).  ``e`` is requantized to int16 by
    :func:`edgeconv.grad.quantize_gradient` (format from its max at run time: ``e ~=
    e_q * 2**-fe``), then :func:`edgeconv.grad.dense_backward` of ``e_q`` gives
    ``dL/dw`` and ``dL/db`` as int16 :class:`edgeconv.grad.FixedGrad` (format rule again;
    the real sums are ``values * 2**-(frac_bits + fe)``), and :func:`sgd_update` updates
    ``w`` (saturated to int16) and ``b`` (int32) with the learning rates given at run time
    (so a schedule needs no new firmware) and, with ``momentum``, the velocities (int32,
    ``velocity_frac_bits`` fraction bits, which may be negative: the sums can exceed
    int32).  With ``s_x`` and ``s_w`` the scales of features and weights, the real step
    size ``lr`` of the float model is ``lr * s_x**2 / batch`` for ``w`` and ``lr /
    batch`` for ``b`` (:meth:`learning_rates`).

    Input (int32): ``w (O*K), b (O)``, with momentum ``vw (O*K), vb (O)``, then
    ``lr_w.mult, lr_w.shift, lr_b.mult, lr_b.shift``, ``x`` (the ``batch*K`` int8 features
    packed four to a word, little-endian as every target here, the last word padded
    with zeros: :attr:`x_words` words), ``labels (batch)``.  Output (int32): the new
    ``w, b`` (and ``vw, vb``), then the number of correct predictions (before the step),
    ``fe``, and the sum of ``e_q**2`` (low 32 bits two's complement, high word): the loss
    is ``sum * 2**(-2 fe) / (2 * batch)`` in the units of ``z``, squared."""

    op = "dense_train_step"

    def __init__(self, features: int, classes: int, batch: int, *, input_zero_point: int,
                 target: int, momentum: int | None = None, velocity_frac_bits: int = 0,
                 name: object = None) -> None:
        self.features = v.check_int("features", features, 1)
        self.classes = v.check_int("classes", classes, 2)
        self.batch = v.check_int("batch", batch, 1)
        self.input_zero_point = v.check_int("input_zero_point", input_zero_point, -128)
        if self.input_zero_point > 127:
            raise ValueError(f"input_zero_point={input_zero_point}: allowed range is "
                             "[-128, 127]")
        self.target = v.check_int("target", target, 1)
        if self.target >= 1 << 40:
            raise ValueError(f"target={target}: allowed range is [1, 2**40)")
        # |z| <= K * 32768 * 255 + 2**31 and |e| <= that + target: far below 2**61.
        if self.features > 1 << 16:
            raise ValueError(f"features={features}: allowed range is [1, 65536]")
        if momentum is not None:
            momentum = v.check_int("momentum", momentum, 0)
            if momentum > 32767:
                raise ValueError(f"momentum={momentum}: allowed range is [0, 32767] (Q15)")
        self.momentum = momentum
        self.velocity_frac_bits = int(velocity_frac_bits)
        if isinstance(velocity_frac_bits, bool) or velocity_frac_bits != self.velocity_frac_bits \
                or not -30 <= self.velocity_frac_bits <= 30:
            raise ValueError(f"velocity_frac_bits={velocity_frac_bits!r}: allowed range is "
                             "[-30, 30]")
        self.name = v.check_name(name)
        self.activation_dtype = np.dtype(np.int32)
        self.output_dtype = np.dtype(np.int32)
        n_w = self.classes * self.features + self.classes
        self.state_count = n_w * (1 if momentum is None else 2)
        self.x_words = -(-self.batch * self.features // 4)
        self.input_shape = (self.state_count + 4 + self.x_words + self.batch,)
        self.output_shape = (self.state_count + 4,)

    def output_shape_for(self, input_shape: object) -> tuple[int, ...]:
        if tuple(input_shape) != self.input_shape:  # type: ignore[arg-type]
            raise ValueError(f"input_shape={input_shape!r}: must be {self.input_shape}")
        return self.output_shape

    @staticmethod
    def learning_rates(lr: float, *, feature_scale: float, batch: int
                       ) -> tuple[LearningRate, LearningRate]:
        """The integer learning rates ``(lr_w, lr_b)`` of the real step size ``lr``."""
        return (LearningRate.from_float(lr * feature_scale ** 2 / batch),
                LearningRate.from_float(lr / batch))

    def pack(self, state: np.ndarray, lr_w: LearningRate, lr_b: LearningRate,
             x: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The input vector: ``state`` (int32, ``w, b[, vw, vb]`` flat), the learning
        rates, ``x`` (int8 ``(batch, K)``) and ``labels`` (``batch`` ints in
        ``[0, classes)``)."""
        state = np.asarray(state)
        if state.shape != (self.state_count,) or state.dtype.kind != "i":
            raise ValueError(f"state: {state.dtype} {state.shape} not allowed, must be an "
                             f"integer ({self.state_count},) array")
        x = np.asarray(x)
        if x.dtype != np.int8 or x.shape != (self.batch, self.features):
            raise ValueError(f"x: {x.dtype} {x.shape} not allowed, must be int8 "
                             f"({self.batch}, {self.features})")
        labels = np.asarray(labels)
        if labels.shape != (self.batch,) or labels.dtype.kind not in "iu" or labels.size and (
                labels.min() < 0 or labels.max() >= self.classes):
            raise ValueError(f"labels: must be {self.batch} integers in [0, {self.classes})")
        for what, lr in (("lr_w", lr_w), ("lr_b", lr_b)):
            if not (0 <= lr.mult <= 32767 and -31 <= lr.shift <= 62):
                raise ValueError(f"{what}={lr!r}: mult in [0, 32767] and shift in [-31, 62]")
        packed = np.zeros(4 * self.x_words, np.int8)
        packed[:x.size] = x.ravel()
        return np.concatenate([state.astype(np.int64),
                               [lr_w.mult, lr_w.shift, lr_b.mult, lr_b.shift],
                               packed.view("<i4").astype(np.int64), labels.astype(np.int64)]
                              ).astype(np.int32)

    def split_state(self, state: np.ndarray) -> dict[str, np.ndarray]:
        """``w (O, K)``, ``b (O,)`` and, with momentum, ``vw``, ``vb`` of a state vector
        (views)."""
        o, k = self.classes, self.features
        names = ("w", "b", "vw", "vb") if self.momentum is not None else ("w", "b")
        out, at = {}, 0
        for what in names:
            shape = (o, k) if what in ("w", "vw") else (o,)
            out[what] = state[at:at + math.prod(shape)].reshape(shape)
            at += math.prod(shape)
        return out

    def step(self, vector: np.ndarray) -> np.ndarray:
        """The output vector of one input vector (the reference of the C kernel)."""
        n_state, k, b_n = self.state_count, self.features, self.batch
        vec = vector.astype(np.int64)
        s = self.split_state(vec[:n_state])
        lr_w = LearningRate(int(vec[n_state]), int(vec[n_state + 1]))
        lr_b = LearningRate(int(vec[n_state + 2]), int(vec[n_state + 3]))
        words = vector[n_state + 4:n_state + 4 + self.x_words].astype("<i4")
        x = words.view(np.int8)[:b_n * k].astype(np.int64).reshape(b_n, k)
        labels = vec[n_state + 4 + self.x_words:]
        if labels.min() < 0 or labels.max() >= self.classes:
            raise ValueError(f"x: labels {labels.tolist()} not allowed, must be in "
                             f"[0, {self.classes})")
        xc = x - self.input_zero_point  # [-255, 255]
        z = xc @ s["w"].T + s["b"]  # exact: |z| < 2**40
        correct = int((np.argmax(z, axis=1) == labels).sum())
        e = z.copy()
        e[np.arange(b_n), labels] -= self.target
        e_q = _grad.quantize_gradient(e, grad_dtype=np.int16)
        sse = int((e_q.values.astype(np.int64) ** 2).sum())
        _, g_w, g_b = _grad.dense_backward(xc.astype(np.int16), s["w"].astype(np.int16),
                                           e_q.values, grad_dtype=np.int16)
        new = []
        for what, g, lr, wd in (("w", g_w, lr_w, np.int16), ("b", g_b, lr_b, np.int32)):
            total = _grad.FixedGrad(g.values, g.frac_bits + e_q.frac_bits, g.dtype)
            w_new, v_new = sgd_update(s[what], total, lr=lr, weight_dtype=wd,
                                      momentum=self.momentum,
                                      velocity=s.get("v" + what),
                                      velocity_frac_bits=self.velocity_frac_bits)
            new.append((w_new, v_new))
        parts = [new[0][0], new[1][0]]
        if self.momentum is not None:
            parts += [new[0][1], new[1][1]]
        low = sse & 0xFFFFFFFF
        tail = [correct, e_q.frac_bits, low - (1 << 32) if low >> 31 else low, sse >> 32]
        return np.concatenate([np.asarray(p, np.int64).ravel() for p in parts]
                              + [np.asarray(tail, np.int64)]).astype(np.int32)

    def results(self, output: np.ndarray) -> tuple[np.ndarray, int, float]:
        """``(new state, correct predictions, loss in squared z units)`` of an output."""
        n = self.state_count
        correct, fe = int(output[n]), int(output[n + 1])
        sse = (int(output[n + 2]) & 0xFFFFFFFF) | (int(output[n + 3]) << 32)
        return output[:n].astype(np.int32), correct, math.ldexp(sse, -2 * fe) / (2 * self.batch)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        batch, batched = _split_batch(x, self.input_shape[0], self.activation_dtype,
                                      "state + learning rates + x + labels")
        out = np.stack([self.step(vec) for vec in batch])
        return out if batched else out[0]

    def macs(self, input_shape: object = None) -> int:
        return 2 * self.batch * self.classes * self.features  # forward + dL/dw

    def ram_bytes(self, scratch: int) -> dict[str, int]:
        """RAM of one step on the board by role (bytes), given the kernel's scratch: the
        features kept for the backward pass (int8 each, as the frozen layers produce
        them, and as the int32 words the harness's vector carries), the gradients
        (scratch: logits/errors, int16 errors, gradient sums), the optimizer state (the
        velocities) and the weights being trained."""
        o, k, b = self.classes, self.features, self.batch
        return {"weights (int16 w, int32 b)": 2 * o * k + 4 * o,
                "features kept for backward (int8)": b * k,
                "gradients and errors (scratch)": scratch,
                "optimizer state (velocities)": 0 if self.momentum is None else 4 * (o * k + o)}

    def spec(self) -> dict[str, Any]:
        return {"op": self.op, "name": self.name, "features": self.features,
                "classes": self.classes, "batch": self.batch,
                "input_zero_point": self.input_zero_point, "target": self.target,
                "momentum": self.momentum, "velocity_frac_bits": self.velocity_frac_bits}

    def __repr__(self) -> str:
        return (f"DenseTrainStep({self.features}, {self.classes}, {self.batch}, "
                f"momentum={self.momentum}, name={self.name!r})")
