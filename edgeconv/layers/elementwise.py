"""ADD and MUL of two quantized tensors with numpy broadcasting and a fused activation:
TFLite ``reference_integer_ops`` / ``reference_ops`` semantics, int8 and int16 (16x8).

Both ops work on the offset inputs ``x - zero_point`` in int32 and requantize with
``MultiplyByQuantizedMultiplier`` (gemmlowp double rounding by default, TFLite's
``TFLITE_SINGLE_ROUNDING`` build with ``rounding='single'``).  Broadcasting follows numpy's
rules, which are TFLite's (``BroadcastBinaryOpSimple`` over up to 6 dimensions).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgeconv import fixedpoint
from edgeconv.im2col import check_int
from edgeconv.layers import _quant
from edgeconv.layers import _validate as v
from edgeconv.layers._shaped import check_shape, need_shape

# TFLite's ADD pre-shifts the offset inputs left by 20 bits (int8) or 15 bits (int16)
# before rescaling them to a common scale; both keep ``(x - zp) << left_shift`` and the
# sum of two rescaled inputs inside int32.
ADD_LEFT_SHIFT = {np.dtype(np.int8): 20, np.dtype(np.int16): 15}


def _check_multiplier(name: str, value: object) -> int:
    return check_int(name, value, 0, fixedpoint.INT32_MAX)


class _Binary:
    """Name, dtype, clamp range and calling convention of the two-input ops."""

    op: ClassVar[str]

    def _init_common(self, *, input1_zero_point: object, input2_zero_point: object,
                     output_zero_point: object, activation_min: object, activation_max: object,
                     activation_dtype: object, rounding: object, name: object) -> None:
        self.activation_dtype = dt = v.check_activation_dtype(activation_dtype)
        self.name = v.check_name(name)
        self.input1_zero_point = v.check_zero_point("input1_zero_point", input1_zero_point, dt)
        self.input2_zero_point = v.check_zero_point("input2_zero_point", input2_zero_point, dt)
        self.output_zero_point = v.check_zero_point("output_zero_point", output_zero_point, dt)
        self.activation_min, self.activation_max = v.check_activation_range(
            activation_min, activation_max, dt)
        self.rounding = v.check_choice("rounding", rounding, v.ROUNDINGS)

    def _init_operands(self, input1_shape: object, input2_shape: object, constant1: object,
                       constant2: object) -> None:
        """The operands as codegen sees them: each is fed (``inputN_shape``, unbatched) or a
        constant folded into the layer (``constantN``, an array of ``activation_dtype``).
        ``input_shapes`` are the fed operands' shapes in order; ``input_shape`` is the
        single fed shape, or with two fed operands the packed shape ``(n1 + n2,)`` (both
        flattened, C order, one after the other)."""
        dt = self.activation_dtype
        shapes: list[tuple[int, ...] | None] = []
        constants: list[np.ndarray | None] = []
        for i, shape, const in ((1, input1_shape, constant1), (2, input2_shape, constant2)):
            checked = check_shape(f"input{i}_shape", shape)
            if const is not None:
                const = v.check_array(f"constant{i}", const, dt, (None,) * np.ndim(const))
                if const.ndim > 6:
                    raise ValueError(f"constant{i}: {const.ndim} dims, allowed are at most 6")
                if checked is not None and checked != const.shape:
                    raise ValueError(f"input{i}_shape={checked}: differs from constant{i}'s "
                                     f"shape {const.shape}")
                checked = const.shape
            shapes.append(checked)
            constants.append(const)
        self.constant1, self.constant2 = constants
        if constants[0] is not None and constants[1] is not None:
            raise ValueError("constant1, constant2: at most one operand may be constant")
        self.input1_shape, self.input2_shape = shapes
        self.input_shapes: tuple[tuple[int, ...], ...] | None = None
        self.input_shape: tuple[int, ...] | None = None
        if shapes[0] is None and shapes[1] is None:
            return
        if shapes[0] is None or shapes[1] is None:
            raise ValueError(f"input1_shape={shapes[0]}, input2_shape={shapes[1]}: give "
                             "both operand shapes (or a constant) or neither")
        self.output_shape_for(shapes[0], shapes[1])  # they must broadcast
        fed = tuple(s for s, c in zip(shapes, constants, strict=True) if c is None)
        self.input_shapes = fed  # type: ignore[assignment]
        self.input_shape = fed[0] if len(fed) == 1 else (sum(int(np.prod(s)) for s in fed),)

    def output_shape_for(self, shape1: tuple[int, ...],
                         shape2: tuple[int, ...] | None = None) -> tuple[int, ...]:
        """Broadcast shape of the two operands (numpy rules, as TFLite's); with one shape,
        that of the layer's own operands when it is their ``input_shape``."""
        if shape2 is None:
            if self.input_shape is None or tuple(shape1) != self.input_shape:
                raise ValueError(f"input_shape={shape1!r}: must be the layer's input_shape "
                                 f"{self.input_shape}")
            assert self.input1_shape is not None and self.input2_shape is not None
            shape1, shape2 = self.input1_shape, self.input2_shape
        try:
            return tuple(np.broadcast_shapes(tuple(shape1), tuple(shape2)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"x1.shape={tuple(shape1)}, x2.shape={tuple(shape2)}: the shapes "
                             "must broadcast (numpy rules)") from exc

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.output_shape_for(need_shape(self))

    def macs(self, input_shape: object = None) -> int:
        """One operation per output element."""
        return int(np.prod(self.output_shape))

    def _operands(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The two operands of one unbatched call on the fed input(s) ``x``."""
        assert self.input_shapes is not None and self.input_shape is not None
        fed = [x]
        if len(self.input_shapes) == 2:
            n1 = int(np.prod(self.input_shapes[0]))
            fed = [x[:n1].reshape(self.input_shapes[0]), x[n1:].reshape(self.input_shapes[1])]
        it = iter(fed)
        x1 = self.constant1 if self.constant1 is not None else next(it)
        x2 = self.constant2 if self.constant2 is not None else next(it)
        return x1, x2

    def _apply(self, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x1: np.ndarray, x2: np.ndarray | None = None) -> np.ndarray:
        """``layer(x1, x2)``: the op on two arrays broadcasting against each other.
        ``layer(x)``: on the layer's fed input(s), ``x`` shaped ``input_shape`` (two fed
        operands packed) or a batch ``(N, *input_shape)``; the output is shaped
        ``output_shape`` (or ``(N, *output_shape)``)."""
        if x2 is not None:
            return self._apply(x1, x2)
        if self.input_shape is None:
            raise ValueError("x2=None: a layer without input shapes needs both operands")
        shape = self.input_shape
        x = v.check_input("x", x1, self.activation_dtype)
        if x.shape == shape:
            return self._apply(*self._operands(x))
        if x.ndim == len(shape) + 1 and x.shape[1:] == shape and x.shape[0] >= 1:
            return np.stack([self._apply(*self._operands(item)) for item in x])
        raise ValueError(f"x: shape {x.shape} not allowed, must be {shape} or (N, *{shape})")

    def _offset_inputs(self, x1: object, x2: object) -> tuple[np.ndarray, np.ndarray]:
        """Checked inputs minus their zero points, int64, broadcast against each other."""
        dt = self.activation_dtype
        a = v.check_input("x1", x1, dt)
        b = v.check_input("x2", x2, dt)
        shape = self.output_shape_for(a.shape, b.shape)
        a64 = np.broadcast_to(a.astype(np.int64) - self.input1_zero_point, shape)
        b64 = np.broadcast_to(b.astype(np.int64) - self.input2_zero_point, shape)
        return a64, b64

    def _finish(self, scaled: np.ndarray) -> np.ndarray:
        """Add the output zero point, clamp to the activation range, cast."""
        out = scaled + self.output_zero_point
        np.clip(out, self.activation_min, self.activation_max, out=out)
        return out.astype(self.activation_dtype)

    def spec(self) -> dict[str, Any]:
        """Every integer parameter that affects the numbers."""
        fields = {k: val for k, val in vars(self).items() if not k.startswith("_")}
        for key, val in fields.items():
            if isinstance(val, np.ndarray):
                fields[key] = val.tolist()
            elif isinstance(val, tuple):
                fields[key] = [list(t) if isinstance(t, tuple) else t for t in val]
        fields["activation_dtype"] = self.activation_dtype.name
        return {"op": self.op, **fields}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, activation_dtype=" \
               f"{self.activation_dtype.name})"


class Add(_Binary):
    """Quantized ``x1 + x2`` (TFLite ADD, general rescaling path for int8 and int16).

    Per element, with ``a = x1 - input1_zero_point``, ``b = x2 - input2_zero_point``::

        a_s = MBQM(a << left_shift, input1_multiplier, input1_shift)
        b_s = MBQM(b << left_shift, input2_multiplier, input2_shift)
        y   = MBQM(a_s + b_s, output_multiplier, output_shift) + output_zero_point

    clamped to ``[activation_min, activation_max]``.  MBQM is
    ``MultiplyByQuantizedMultiplierSmallerThanOneExp`` (all shifts <= 0).  TFLite's
    OpData holds the negated input zero points as ``input1_offset``/``input2_offset``.
    The int16 power-of-two path (``pot_scale_int16`` with power-of-two scales, used in
    LSTMs) is not implemented; :meth:`from_quantization` refuses it.
    """

    op = "Add"

    def __init__(self, *, input1_multiplier: int, input1_shift: int, input2_multiplier: int,
                 input2_shift: int, output_multiplier: int, output_shift: int,
                 left_shift: int | None = None, input1_zero_point: int = 0,
                 input2_zero_point: int = 0, output_zero_point: int = 0,
                 activation_min: int | None = None, activation_max: int | None = None,
                 activation_dtype: object = np.int8, rounding: str = "double",
                 name: str | None = None,
                 input1_shape: tuple[int, ...] | None = None,
                 input2_shape: tuple[int, ...] | None = None,
                 constant1: np.ndarray | None = None,
                 constant2: np.ndarray | None = None) -> None:
        self._init_common(input1_zero_point=input1_zero_point,
                          input2_zero_point=input2_zero_point,
                          output_zero_point=output_zero_point, activation_min=activation_min,
                          activation_max=activation_max, activation_dtype=activation_dtype,
                          rounding=rounding, name=name)
        self._init_operands(input1_shape, input2_shape, constant1, constant2)
        max_left = ADD_LEFT_SHIFT[self.activation_dtype]
        self.left_shift = max_left if left_shift is None else check_int(
            "left_shift", left_shift, 0, max_left)
        self.input1_multiplier = _check_multiplier("input1_multiplier", input1_multiplier)
        self.input2_multiplier = _check_multiplier("input2_multiplier", input2_multiplier)
        self.output_multiplier = _check_multiplier("output_multiplier", output_multiplier)
        self.input1_shift = check_int("input1_shift", input1_shift, -31, 0)
        self.input2_shift = check_int("input2_shift", input2_shift, -31, 0)
        self.output_shift = check_int("output_shift", output_shift, -31, 0)
        self._rq1 = fixedpoint.Requantizer(self.input1_multiplier, self.input1_shift,
                                           self.rounding)
        self._rq2 = fixedpoint.Requantizer(self.input2_multiplier, self.input2_shift,
                                           self.rounding)
        self._rq_out = fixedpoint.Requantizer(self.output_multiplier, self.output_shift,
                                              self.rounding)

    @classmethod
    def from_quantization(cls, *, input1_scale: float, input1_zero_point: int,
                          input2_scale: float, input2_zero_point: int, output_scale: float,
                          output_zero_point: int, activation_dtype: object = np.int8,
                          activation: str = "NONE", pot_scale_int16: bool = False,
                          **kwargs: Any) -> Add:
        """Integer parameters as TFLite's ADD ``Prepare`` computes them (scales are rounded
        to float32 like a tensor's, the arithmetic is in double)::

            twice_max = 2 * max(s1, s2)
            input1: QuantizeMultiplierSmallerThanOneExp(s1 / twice_max)
            input2: QuantizeMultiplierSmallerThanOneExp(s2 / twice_max)
            output: QuantizeMultiplierSmallerThanOneExp(twice_max / (2**left_shift * s_out))

        ``activation`` is the fused activation's TFLite name (NONE, RELU, RELU6,
        RELU_N1_TO_1).  ``pot_scale_int16`` is the ADD option of that name: int16 models
        whose three scales are all powers of two then take TFLite's special path, which
        is refused here.  Other keywords (``rounding``, ``name``) go to the constructor.
        """
        dt = v.check_activation_dtype(activation_dtype)
        s1 = _quant.check_scale("input1_scale", input1_scale)
        s2 = _quant.check_scale("input2_scale", input2_scale)
        so = _quant.check_scale("output_scale", output_scale)
        zo = v.check_zero_point("output_zero_point", output_zero_point, dt)
        if not isinstance(pot_scale_int16, bool):
            raise ValueError(f"pot_scale_int16={pot_scale_int16!r}: must be a bool")
        if dt == np.int16 and pot_scale_int16 and all(
                np.frexp(s)[0] == 0.5 for s in (s1, s2, so)):
            raise ValueError("pot_scale_int16=True with power-of-two scales "
                             f"({s1}, {s2}, {so}): TFLite's int16 power-of-two ADD path is "
                             "not supported, allowed is the general path (pot_scale_int16="
                             "False or a scale that is not a power of two)")
        left_shift = ADD_LEFT_SHIFT[dt]
        twice_max = 2.0 * max(s1, s2)
        params = {}
        for key, real in (("input1", s1 / twice_max), ("input2", s2 / twice_max),
                          ("output", twice_max / (float(1 << left_shift) * so))):
            mult, shift = fixedpoint.quantize_multiplier(real)
            if shift > 0:
                raise ValueError(
                    f"output_scale={output_scale!r}: the {key} rescale {real:.6g} is >= 1 "
                    "(TFLite's QuantizeMultiplierSmallerThanOneExp needs < 1); allowed are "
                    f"output scales above {twice_max / 2.0 ** left_shift:.6g}")
            params[f"{key}_multiplier"], params[f"{key}_shift"] = mult, shift
        amin, amax = _quant.fused_activation_range(activation, so, zo, dt)
        return cls(**params, left_shift=left_shift, input1_zero_point=input1_zero_point,
                   input2_zero_point=input2_zero_point, output_zero_point=zo,
                   activation_min=amin, activation_max=amax, activation_dtype=dt, **kwargs)

    def _apply(self, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        """Exact ``x1 + x2`` (arrays of ``activation_dtype`` broadcasting against each
        other); returns the broadcast shape in ``activation_dtype``."""
        a, b = self._offset_inputs(x1, x2)
        # |x - zp| <= 2**16 and left_shift <= 15 (int16), or <= 255 and <= 20 (int8): the
        # shifted values fit in int32, and so does the sum of the two rescaled ones.
        total = self._rq1(a << self.left_shift) + self._rq2(b << self.left_shift)
        return self._finish(self._rq_out(total))


class Mul(_Binary):
    """Quantized ``x1 * x2`` (TFLite MUL, int8 and int16)::

        y = MBQM((x1 - input1_zero_point) * (x2 - input2_zero_point),
                 output_multiplier, output_shift) + output_zero_point

    clamped to ``[activation_min, activation_max]``; MBQM is
    ``MultiplyByQuantizedMultiplier`` (shift in [-31, 30]).  The product fits in int32:
    at most ``255**2`` for int8 and ``2**30`` for int16 (zero points 0).
    """

    op = "Mul"

    def __init__(self, *, output_multiplier: int, output_shift: int,
                 input1_zero_point: int = 0, input2_zero_point: int = 0,
                 output_zero_point: int = 0, activation_min: int | None = None,
                 activation_max: int | None = None, activation_dtype: object = np.int8,
                 rounding: str = "double", name: str | None = None,
                 input1_shape: tuple[int, ...] | None = None,
                 input2_shape: tuple[int, ...] | None = None,
                 constant1: np.ndarray | None = None,
                 constant2: np.ndarray | None = None) -> None:
        self._init_common(input1_zero_point=input1_zero_point,
                          input2_zero_point=input2_zero_point,
                          output_zero_point=output_zero_point, activation_min=activation_min,
                          activation_max=activation_max, activation_dtype=activation_dtype,
                          rounding=rounding, name=name)
        self._init_operands(input1_shape, input2_shape, constant1, constant2)
        self.output_multiplier = _check_multiplier("output_multiplier", output_multiplier)
        self.output_shift = check_int("output_shift", output_shift, -31, 30)
        self._rq_out = fixedpoint.Requantizer(self.output_multiplier, self.output_shift,
                                              self.rounding)

    @classmethod
    def from_quantization(cls, *, input1_scale: float, input1_zero_point: int,
                          input2_scale: float, input2_zero_point: int, output_scale: float,
                          output_zero_point: int, activation_dtype: object = np.int8,
                          activation: str = "NONE", **kwargs: Any) -> Mul:
        """Integer parameters as TFLite's MUL ``Prepare`` computes them:
        ``QuantizeMultiplier(s1 * s2 / s_out)`` where, as in the C++ expression on three
        ``float`` fields, the product and the quotient are rounded to float32.
        ``activation`` as in :meth:`Add.from_quantization`."""
        dt = v.check_activation_dtype(activation_dtype)
        s1 = np.float32(_quant.check_scale("input1_scale", input1_scale))
        s2 = np.float32(_quant.check_scale("input2_scale", input2_scale))
        so = np.float32(_quant.check_scale("output_scale", output_scale))
        zo = v.check_zero_point("output_zero_point", output_zero_point, dt)
        with np.errstate(over="ignore", under="ignore"):
            real = float(s1 * s2 / so)  # float32 arithmetic throughout
        if not np.isfinite(real) or real == 0.0:
            raise ValueError(f"input1_scale={input1_scale!r}, input2_scale={input2_scale!r}, "
                             f"output_scale={output_scale!r}: s1 * s2 / s_out in float32 is "
                             f"{real}, must be finite and > 0")
        mult, shift = fixedpoint.quantize_multiplier(real)
        amin, amax = _quant.fused_activation_range(activation, float(so), zo, dt)
        return cls(output_multiplier=mult, output_shift=shift,
                   input1_zero_point=input1_zero_point, input2_zero_point=input2_zero_point,
                   output_zero_point=zo, activation_min=amin, activation_max=amax,
                   activation_dtype=dt, **kwargs)

    def _apply(self, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        """Exact ``x1 * x2`` (broadcasting); returns ``activation_dtype``."""
        a, b = self._offset_inputs(x1, x2)
        return self._finish(self._rq_out(a * b))
