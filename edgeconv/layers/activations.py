"""SOFTMAX and LOGISTIC: TFLite reference-kernel semantics (``BUILTIN_REF``), int8 and int16.

- Softmax int8 (``reference_ops::Softmax``): gemmlowp fixed point.  Each input's difference
  to its row maximum is scaled to Q5.26 by ``input_multiplier``/``input_left_shift``, turned
  into ``exp`` in Q0.31 (``exp_on_negative_values``), summed in Q12.19; the reciprocal of
  the sum (``GetReciprocal``) times each exp is the output, in units of 1/256 from -128.
  Differences below ``diff_min`` contribute nothing and give -128.
- Softmax int16 (``reference_ops::SoftmaxInt16``): two 513-entry interpolated tables,
  ``exp`` on [-10, 0] and ``1 / (1 + x)`` on [0, 1], built once by TFLite's
  ``LUTPopulate`` (double precision); the output is in units of 1/32768.
- Logistic int8: a 256-entry table of ``1 / (1 + exp(-x))`` built in float32 from the
  input and output quantization (TFLite's ``LUTPopulate<int8_t>``), then a lookup.
- Logistic int16 (``reference_integer_ops::Logistic``): the input is rescaled
  (``input_multiplier``/``input_left_shift``) so that 2**9 units are 1/24 in x, and a
  256-entry Q0.16 table of ``sigmoid(i / 24)`` is interpolated linearly.

These are the semantics of TFLite's default (double-rounding) build.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from edgeconv import fixedpoint
from edgeconv.fixedpoint import _exp_on_negative_values, _rdbp, _srdhm, _wrap32
from edgeconv.im2col import check_int
from edgeconv.layers import _quant
from edgeconv.layers import _validate as v
from edgeconv.layers._shaped import SameShape, check_shape
from edgeconv.layers.reduce import check_activation_none

SOFTMAX_SCALED_DIFF_INTEGER_BITS = 5  # Q5.26 input of exp(): differences down to -32
SOFTMAX_ACCUMULATION_INTEGER_BITS = 12  # Q12.19 sum of up to 4096 exps
_INT16_RANGE = 65535  # int16 max - min, the span TFLite's int16 tables are built over


# ------------------------------------------------------------------------ tables

def lut_populate_int16(transform: Callable[[float], float], input_scale: float,
                       input_zero_point: int, output_scale: float,
                       output_zero_point: int) -> np.ndarray:
    """TFLite ``LUTPopulate<int16_t>`` in double precision: 513 samples of ``transform``
    over the int16 input range, each sample biased by half the rounding error that linear
    interpolation makes at the midpoint to the next sample.  Uses Python floats (IEEE
    doubles) and ``math`` (the C library), in TFLite's order of operations."""
    def rnd(f: float) -> float:  # TfLiteRound / std::round: halves away from zero
        return math.copysign(math.floor(abs(f) + 0.5), f)

    input_min = input_scale * (-32768 - input_zero_point)
    input_max = input_scale * (32767 - input_zero_point)
    output_min = output_scale * (-32768 - output_zero_point)
    output_max = output_scale * (32767 - output_zero_point)
    step = (input_max - input_min) / 512
    half_step = step / 2
    scaling_inv = 65536.0 / (output_max - output_min)
    lut = np.empty(513, np.int16)
    for i in range(512):
        val = transform(input_min + i * step)
        val_mid = transform(input_min + i * step + half_step)
        val_next = transform(input_min + (i + 1) * step)
        sample = rnd(val * scaling_inv)
        midpoint_interp = rnd((val_next * scaling_inv + rnd(val * scaling_inv)) / 2)
        midpoint_err = midpoint_interp - rnd(val_mid * scaling_inv)
        lut[i] = min(max(sample - rnd(midpoint_err / 2), -32768.0), 32767.0)
    lut[512] = min(max(rnd(transform(input_max) * scaling_inv), -32768.0), 32767.0)
    return lut


@functools.cache
def softmax_int16_tables() -> tuple[np.ndarray, np.ndarray]:
    """The two constant tables of int16 softmax (read-only): ``exp(x)`` for x in [-10, 0]
    (input zero point 32767, so the int16 input 32767 is x = 0) and ``1 / (1 + x)`` for x
    in [0, 1] (zero point -32768); both output at scale 2/65535."""
    exp_lut = lut_populate_int16(math.exp, 10.0 / _INT16_RANGE, 32767, 2.0 / _INT16_RANGE, 0)
    recip_lut = lut_populate_int16(lambda x: 1.0 / (1.0 + x), 1.0 / _INT16_RANGE, -32768,
                                   2.0 / _INT16_RANGE, 0)
    exp_lut.setflags(write=False)
    recip_lut.setflags(write=False)
    return exp_lut, recip_lut


# TFLite's ``sigmoid_table_uint16`` (also CMSIS-NN's): sigmoid(i / 24) in Q0.16 for
# i = 0..255.  Its entries are round(65536 * sigmoid(i / 24)) except at the indices below,
# where the published table is one higher (the last entry is the 16-bit maximum).
_SIGMOID_TABLE_PLUS_ONE = (4, 8, 12, 14, 15, 16, 17, 19, 20, 21, 22, 25, 27, 28, 29, 30, 31,
                           33, 34, 35, 37, 39, 40, 41, 43, 44, 45, 46, 49, 50, 54, 62, 63, 64,
                           66, 82, 86, 93, 100, 103, 112, 116, 135, 255)


@functools.cache
def sigmoid_table_uint16() -> np.ndarray:
    """TFLite's 256-entry Q0.16 table of ``sigmoid(i / 24)`` (read-only, int64)."""
    table = np.array([math.floor(65536.0 / (1.0 + math.exp(-i / 24.0)) + 0.5)
                      for i in range(256)], dtype=np.int64)
    table[list(_SIGMOID_TABLE_PLUS_ONE)] += 1
    table.setflags(write=False)
    return table


def _logistic_lut_int8(input_scale: float, input_zero_point: int, output_scale: float,
                       output_zero_point: int) -> np.ndarray:
    """TFLite ``LUTPopulate<int8_t>`` with ``1.0f / (1.0f + expf(-x))``, all in float32:
    entry ``k`` is the output for the input ``k - 128``."""
    f32 = np.float32
    values = np.arange(-128, 128, dtype=np.int64)
    dequantized = f32(input_scale) * (values - input_zero_point).astype(f32)
    # expf as the correctly rounded float32 of the double exp (glibc's expf agrees except
    # in rare last-bit cases that cannot move a rounding at the output's 1/256 steps)
    exp_neg = np.exp(-dequantized.astype(np.float64)).astype(f32)
    transformed = f32(1.0) / (f32(1.0) + exp_neg)
    rescaled = _quant.round_half_away(transformed * (f32(1.0) / f32(output_scale)))
    quantized = np.trunc(rescaled.astype(f32) + f32(output_zero_point))
    return np.clip(quantized, -128, 127).astype(np.int8)


def _check_lut(name: str, value: object, dtype: type, size: int) -> np.ndarray:
    return v.check_array(name, value, dtype, (size,))


# ------------------------------------------------------------------------- softmax

class Softmax(SameShape):
    """Quantized softmax over the last axis (TFLite SOFTMAX, reference kernels).

    int8 (input any scale and zero point, output scale 1/256 and zero point -128):
    ``input_multiplier``/``input_left_shift`` scale ``beta * input_scale`` into Q5.26
    (``left_shift >= 0``), ``diff_min`` (negative) drops differences that would overflow.
    int8 input may also give int16 output (``output_dtype=np.int16``: scale 1/65536, zero
    point -32768), TFLite's ``Softmax<int8_t, int16_t>``, the same arithmetic with 16
    output bits.  int16 (zero points 0, output scale 1/32768): ``input_multiplier``/
    ``input_left_shift`` are ``QuantizeMultiplier(beta * input_scale / (10 / 65535))``
    and map the differences onto the exp table's [-65535, 0] = [-10, 0]; ``diff_min``
    is unused.
    """

    op: ClassVar[str] = "Softmax"

    def __init__(self, *, input_multiplier: int, input_left_shift: int,
                 diff_min: int | None = None, activation_dtype: object = np.int8,
                 output_dtype: object = None, name: str | None = None,
                 input_shape: tuple[int, ...] | None = None) -> None:
        self.activation_dtype = dt = v.check_activation_dtype(activation_dtype)
        self.input_shape = check_shape("input_shape", input_shape)
        self.output_dtype = dt if output_dtype is None else v.check_activation_dtype(
            output_dtype)
        if dt == np.int16 and self.output_dtype != np.int16:
            raise ValueError(f"output_dtype={output_dtype!r}: int16 softmax gives int16, "
                             "allowed are None and numpy.int16")
        self.name = v.check_name(name)
        self.input_multiplier = check_int("input_multiplier", input_multiplier, 0,
                                          fixedpoint.INT32_MAX)
        if dt == np.int8:
            self.input_left_shift = check_int("input_left_shift", input_left_shift, 0, 30)
            if diff_min is None:
                raise ValueError("diff_min=None: int8 softmax needs diff_min, an integer in "
                                 "[-(2**31 - 1), 0]")
            # |diff| * 2**left_shift must stay inside int32 for every difference kept.
            bound = fixedpoint.INT32_MAX >> self.input_left_shift
            self.diff_min: int | None = check_int("diff_min", diff_min, -bound, 0)
        else:
            self.input_left_shift = check_int("input_left_shift", input_left_shift, -31, 30)
            if diff_min is not None:
                raise ValueError(f"diff_min={diff_min!r}: int16 softmax takes no diff_min, "
                                 "allowed is None")
            self.diff_min = None

    @classmethod
    def from_quantization(cls, *, input_scale: float, input_zero_point: int = 0,
                          output_scale: float, output_zero_point: int,
                          activation_dtype: object = np.int8, beta: float = 1.0,
                          activation: str = "NONE", output_dtype: object = None,
                          **kwargs: Any) -> Softmax:
        """Parameters as TFLite's ``SoftmaxPrepare`` (reference kernel) computes them.

        int8: ``PreprocessSoftmaxScaling``: ``QuantizeMultiplierGreaterThanOne(min(beta *
        s_in * 2**26, 2**31 - 1))`` (double), ``diff_min = -floor(31 * 2**26 /
        2**left_shift)`` (``CalculateInputRadius``).  int16: ``QuantizeMultiplier(
        float32(s_in * beta) / (10 / 65535))``.  The output must be quantized as TFLite
        requires: int8 scale 1/256 (within 0.1%) and zero point -128, int16 1/32768 and 0
        (1/65536 and -32768 for int16 output from int8 input).  ``beta`` is a float32
        like the SoftmaxOptions field."""
        check_activation_none(activation)
        dt = v.check_activation_dtype(activation_dtype)
        s_in = _quant.check_scale("input_scale", input_scale)
        s_out = _quant.check_scale("output_scale", output_scale)
        v.check_zero_point("input_zero_point", input_zero_point, dt)
        b = _quant.check_scale("beta", beta)
        out_dt = dt if output_dtype is None else v.check_activation_dtype(output_dtype)
        unit, zp = {(np.int8, np.int8): (256, -128), (np.int8, np.int16): (65536, -32768),
                    (np.int16, np.int16): (32768, 0)}.get((dt.type, out_dt.type), (0, 0))
        if unit == 0:
            raise ValueError(f"output_dtype={output_dtype!r}: int16 softmax gives int16, "
                             "allowed are None and numpy.int16")
        if abs(np.float32(s_out) - np.float32(1.0 / unit)) > np.float32(0.001 / unit) \
                or output_zero_point != zp:
            raise ValueError(f"output_scale={output_scale!r}, output_zero_point="
                             f"{output_zero_point!r}: TFLite's {dt.name} softmax needs "
                             f"output scale 1/{unit} and zero point {zp}")
        if dt == np.int16:
            real = float(np.float32(s_in) * np.float32(b)) / (10.0 / 65535.0)
            mult, shift = fixedpoint.quantize_multiplier(real)
            return cls(input_multiplier=mult, input_left_shift=shift, activation_dtype=dt,
                       output_dtype=out_dt, **kwargs)
        integer_bits = SOFTMAX_SCALED_DIFF_INTEGER_BITS
        real = min(b * s_in * float(1 << (31 - integer_bits)), float((1 << 31) - 1))
        mult, shift = fixedpoint.quantize_multiplier(real)
        if real <= 1.0 or shift < 0:
            raise ValueError(f"beta={beta!r}, input_scale={input_scale!r}: beta * input_scale "
                             f"* 2**26 = {real:.6g} must be > 1 (TFLite's "
                             "QuantizeMultiplierGreaterThanOne)")
        radius = math.floor(((1 << integer_bits) - 1) * float(1 << (31 - integer_bits))
                            / float(1 << shift))
        return cls(input_multiplier=mult, input_left_shift=shift, diff_min=-radius,
                   activation_dtype=dt, output_dtype=out_dt, **kwargs)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Exact softmax of ``x`` (``activation_dtype``, at least 1 dim) over its last axis."""
        x = v.check_input("x", x, self.activation_dtype)
        if x.ndim == 0 or x.shape[-1] == 0:
            raise ValueError(f"x: shape {x.shape}, must have at least 1 dim and a non-empty "
                             "last axis")
        xi = x.astype(np.int64)
        diff = xi - xi.max(axis=-1, keepdims=True)
        if self.activation_dtype == np.int16:
            return self._int16(diff)
        return self._int8(diff)

    def _int8(self, diff: np.ndarray) -> np.ndarray:
        assert self.diff_min is not None
        kept = diff >= self.diff_min
        # MultiplyByQuantizedMultiplierGreaterThanOne: the difference in Q5.26
        scaled = _srdhm(np.where(kept, diff, 0) << self.input_left_shift,
                        np.int64(self.input_multiplier))
        exps = _exp_on_negative_values(scaled, SOFTMAX_SCALED_DIFF_INTEGER_BITS)  # Q0.31
        # Q0.31 -> Q12.19 (gemmlowp Rescale: a rounding right shift by 12), summed with
        # int32 (wrapping) adds.
        terms = np.where(kept, _rdbp(exps, SOFTMAX_ACCUMULATION_INTEGER_BITS), 0)
        total = _wrap32(terms.sum(axis=-1, keepdims=True))
        recip, bits_over_unit = fixedpoint.get_reciprocal(
            total, SOFTMAX_ACCUMULATION_INTEGER_BITS)
        lo, hi = v.dtype_range(self.output_dtype)
        exponent = bits_over_unit + 31 - 8 * self.output_dtype.itemsize
        if exponent.size and (exponent.min() < 0 or exponent.max() > 31):
            raise ValueError("x: a row's sum of exponentials is out of the range TFLite's "
                             "int8 softmax handles (last axis too long)")
        out = _rdbp(_srdhm(recip, exps), exponent) + lo
        return np.where(kept, np.clip(out, lo, hi), lo).astype(self.output_dtype)

    def _int16(self, diff: np.ndarray) -> np.ndarray:
        exp_lut, recip_lut = softmax_int16_tables()
        rq = fixedpoint.Requantizer(self.input_multiplier, self.input_left_shift, "double")
        # diff in [-65535, 0] scaled so that -65535 is exp(-10), recentred on int16
        sym = np.clip(rq(diff) + 32767, -32768, 32767)
        exps = fixedpoint.lut_lookup_int16(sym, exp_lut)  # Q0.15
        total = exps.sum(axis=-1, keepdims=True)  # Q16.15, > 0 (the maximum gives ~1.0)
        headroom_plus_one = fixedpoint.count_leading_zeros32(total)
        # total normalized to [1, 2) in Q1.15 ... minus 1.5 (1 + the table's zero point)
        shifted = ((total << (headroom_plus_one - 1)) + (1 << 13)) >> 14
        sym_sum = np.clip(shifted - ((1 << 15) + (1 << 16)), -32768, 32767)
        recip = fixedpoint.lut_lookup_int16(sym_sum, recip_lut)
        right_shift = 31 - headroom_plus_one
        out = (exps * recip + (np.int64(1) << (right_shift - 1))) >> right_shift
        return np.clip(out, 0, 32767).astype(np.int16)

    def spec(self) -> dict[str, Any]:
        """Every parameter that affects the numbers."""
        return {"op": self.op, "activation_dtype": self.activation_dtype.name,
                "output_dtype": self.output_dtype.name,
                "input_shape": None if self.input_shape is None else list(self.input_shape),
                "input_multiplier": self.input_multiplier,
                "input_left_shift": self.input_left_shift, "diff_min": self.diff_min}

    def __repr__(self) -> str:
        return f"Softmax(name={self.name!r}, activation_dtype={self.activation_dtype.name})"


# ------------------------------------------------------------------------ logistic

class Logistic(SameShape):
    """Quantized ``1 / (1 + exp(-x))`` (TFLite LOGISTIC, reference kernels).

    int8: ``lut`` holds the 256 outputs for the inputs -128 .. 127 (in that order), as
    :meth:`from_quantization` builds them from the quantization.  int16 (zero points 0,
    output scale 1/32768): the input times ``input_multiplier`` (rounded right shift by
    ``input_left_shift``) is an index into ``sigmoid(i / 24)`` in steps of 2**-9; a
    multiplier of 0 means TFLite's power-of-two case (multiplier 3, no shift).
    """

    op: ClassVar[str] = "Logistic"

    def __init__(self, *, lut: np.ndarray | None = None, input_multiplier: int | None = None,
                 input_left_shift: int | None = None, activation_dtype: object = np.int8,
                 name: str | None = None, input_shape: tuple[int, ...] | None = None) -> None:
        self.activation_dtype = dt = v.check_activation_dtype(activation_dtype)
        self.input_shape = check_shape("input_shape", input_shape)
        self.name = v.check_name(name)
        if dt == np.int8:
            if input_multiplier is not None or input_left_shift is not None:
                raise ValueError(f"input_multiplier={input_multiplier!r}, input_left_shift="
                                 f"{input_left_shift!r}: int8 logistic takes a lut only, "
                                 "allowed are None")
            if lut is None:
                raise ValueError("lut=None: int8 logistic needs lut, a numpy int8 array of "
                                 "256 entries")
            self.lut: np.ndarray | None = _check_lut("lut", lut, np.int8, 256)
            self.input_multiplier = self.input_left_shift = None
        else:
            if lut is not None:
                raise ValueError("lut: int16 logistic takes input_multiplier and "
                                 "input_left_shift, allowed is lut=None")
            self.lut = None
            # |x| * multiplier must fit in int32 for x = -32768.
            self.input_multiplier = check_int("input_multiplier", input_multiplier, 0, 65535)
            self.input_left_shift = check_int("input_left_shift", input_left_shift, 0, 31)

    @classmethod
    def from_quantization(cls, *, input_scale: float, input_zero_point: int,
                          output_scale: float, output_zero_point: int,
                          activation_dtype: object = np.int8, activation: str = "NONE",
                          **kwargs: Any) -> Logistic:
        """Parameters as TFLite's ``SigmoidPrepare`` (reference kernel) computes them.

        int8: output scale exactly 1/256; the table as ``LUTPopulate<int8_t>``.  int16:
        zero points 0, output scale exactly 1/32768; a power-of-two input scale of 2**-12
        (within TFLite's ``CheckedLog2`` tolerance) gives multiplier 0, any other scale
        ``m = s_in * 4096 * 3`` doubled (``input_left_shift`` counting) while ``m <=
        32767 / 2``, then truncated to an integer."""
        check_activation_none(activation)
        dt = v.check_activation_dtype(activation_dtype)
        s_in = _quant.check_scale("input_scale", input_scale)
        s_out = _quant.check_scale("output_scale", output_scale)
        zp_in = v.check_zero_point("input_zero_point", input_zero_point, dt)
        zp_out = v.check_zero_point("output_zero_point", output_zero_point, dt)
        unit = 256 if dt == np.int8 else 32768
        if s_out != 1.0 / unit:
            raise ValueError(f"output_scale={output_scale!r}: TFLite's {dt.name} logistic "
                             f"needs output scale 1/{unit} exactly")
        if dt == np.int8:
            return cls(lut=_logistic_lut_int8(s_in, zp_in, s_out, zp_out), activation_dtype=dt,
                       **kwargs)
        f32 = np.float32
        log2 = f32(np.log(f32(s_in))) * (f32(1.0) / f32(np.log(f32(2.0))))
        log2_rounded = float(_quant.round_half_away(log2))
        left_shift = (15 - 3) + int(log2_rounded)
        if abs(float(f32(log2 - f32(log2_rounded)))) < 1e-3 and left_shift == 0:
            return cls(input_multiplier=0, input_left_shift=0, activation_dtype=dt, **kwargs)
        multiplier = s_in * 4096.0 * 3.0
        left_shift = 0
        while multiplier <= 32767.0 / 2.0 and left_shift <= 30:
            left_shift += 1
            multiplier *= 2.0
        if multiplier > 65535:
            raise ValueError(f"input_scale={input_scale!r}: the input multiplier "
                             f"{int(multiplier)} overflows int32 products, allowed are input "
                             "scales below 65536 / 12288")
        return cls(input_multiplier=int(multiplier), input_left_shift=left_shift,
                   activation_dtype=dt, **kwargs)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Exact logistic of ``x`` (``activation_dtype``, any shape)."""
        x = v.check_input("x", x, self.activation_dtype)
        if self.lut is not None:
            return self.lut[x.astype(np.int64) + 128]
        multiplier, shift = self.input_multiplier, self.input_left_shift
        assert multiplier is not None and shift is not None
        if multiplier == 0:  # power-of-two input scale
            multiplier, shift = 3 << shift, 0
        rounding = (1 << (shift - 1)) if shift > 0 else 0
        scaled = (x.astype(np.int64) * multiplier + rounding) >> shift
        magnitude = np.abs(scaled)
        index = magnitude >> 9  # 2**9 steps per table entry
        table = sigmoid_table_uint16()
        lo = table[np.minimum(index, 254)]
        hi = table[np.minimum(index, 254) + 1]
        # Q0.16 table value with 9 fraction bits of linear interpolation (Q0.25)
        result = np.where(index >= 255, 0x7FFF << 10, (lo << 9) + (magnitude & 0x1FF) * (hi - lo))
        # sigmoid(-x) = 1 - sigmoid(x); both rounded to Q0.15 by the final shift
        result = np.where(scaled >= 0, result + (1 << 9), (1 << 25) - result + (1 << 9) - 1)
        return (result >> 10).astype(np.int16)

    def spec(self) -> dict[str, Any]:
        """Every parameter that affects the numbers."""
        return {"op": self.op, "activation_dtype": self.activation_dtype.name,
                "input_shape": None if self.input_shape is None else list(self.input_shape),
                "lut": None if self.lut is None else self.lut.tolist(),
                "input_multiplier": self.input_multiplier,
                "input_left_shift": self.input_left_shift}

    def __repr__(self) -> str:
        return f"Logistic(name={self.name!r}, activation_dtype={self.activation_dtype.name})"
