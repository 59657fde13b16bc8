"""Float -> integer parameter conversion for the ``from_float`` constructors, following
the TFLite converter: per-channel symmetric int8 weights, bias at ``s_in * s_w``,
``QuantizeMultiplier`` of ``s_in * s_w / s_out``, ``CalculateActivationRangeQuantized``.
Scales are float32 as TFLite stores them; products are formed in float64 as TFLite does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeconv import fixedpoint
from edgeconv.layers._validate import check_choice, dtype_range

ACTIVATIONS = ("relu", "relu6")


def check_scale(name: str, value: object) -> float:
    """A positive finite scale, rounded to float32 like a TFLite tensor's."""
    s = float("nan")
    if not isinstance(value, str | bytes | bool | np.bool_):
        try:
            s = float(np.float32(value))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            pass
    if not np.isfinite(s) or s <= 0:
        raise ValueError(f"{name}={value!r}: must be a finite float > 0")
    return s


def round_half_away(x: np.ndarray | float) -> np.ndarray:
    """``std::round``: to nearest, halves away from zero."""
    return fixedpoint.round_float(np.asarray(x, dtype=np.float64), "nearest")


def activation_range(activation: object, scale: float, zero_point: int,
                     dtype: np.dtype) -> tuple[int, int]:
    """TFLite ``CalculateActivationRangeQuantized`` for None / 'relu' / 'relu6' (the
    ``from_float`` spelling of :func:`fused_activation_range`)."""
    if activation is None:
        return dtype_range(dtype)
    check_choice("activation", activation, ACTIVATIONS)
    return fused_activation_range(str(activation).upper(), scale, zero_point, dtype)


FUSED_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
_FUSED_BOUNDS = {"NONE": (None, None), "RELU": (0.0, None), "RELU6": (0.0, 6.0),
                 "RELU_N1_TO_1": (-1.0, 1.0)}


def fused_activation_range(activation: object, scale: float, zero_point: int,
                           dtype: np.dtype) -> tuple[int, int]:
    """TFLite ``CalculateActivationRangeQuantized`` for a fused activation given by its
    TFLite name (``FUSED_ACTIVATIONS``): each real bound ``f`` becomes ``zero_point +
    round(f / scale)`` (float32 quotient, halves away from zero), intersected with the
    dtype range."""
    check_choice("activation", activation, FUSED_ACTIVATIONS)
    lo, hi = dtype_range(dtype)

    def quantize(f: float) -> int:
        with np.errstate(over="ignore"):
            q = float(round_half_away(np.float32(f) / np.float32(scale)))
        # a bound beyond every representable value leaves the dtype range in force
        return int(np.clip(zero_point + q, lo - 1, hi + 1)) if np.isfinite(q) else (
            lo - 1 if q < 0 else hi + 1)

    low, high = _FUSED_BOUNDS[activation]  # type: ignore[index]
    amin = lo if low is None else max(lo, quantize(low))
    amax = hi if high is None else min(hi, quantize(high))
    return amin, amax


def activation_bounds(activation: object) -> tuple[float | None, float | None]:
    """The real-valued clamp ``(low, high)`` of an activation (None for no bound): the
    ``from_float`` spellings (None, 'relu', 'relu6') or a TFLite name (``FUSED_ACTIVATIONS``)."""
    name = "NONE" if activation is None else str(activation).upper()
    check_choice("activation", name, FUSED_ACTIVATIONS)
    return _FUSED_BOUNDS[name]


def float_array(name: str, value: object, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A finite float64 array (of ``shape`` when given)."""
    arr = np.asarray(value, dtype=np.float64)
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name}: shape {arr.shape} not allowed, must be {shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: values must be finite floats")
    return arr


def quantize_weights(weights: np.ndarray, channel_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel symmetric int8: ``scale = max|w| / 127`` (1.0 for an all-zero channel),
    ``q = clip(round(w / scale), -127, 127)``.  Returns ``(q, float32 scales)``."""
    moved = np.moveaxis(weights, channel_axis, -1)
    peak = np.abs(moved).reshape(-1, moved.shape[-1]).max(axis=0)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(round_half_away(moved / scales.astype(np.float64)), -127, 127)
    return np.moveaxis(q.astype(np.int8), -1, channel_axis), scales


def quantize_bias(bias: np.ndarray | None, input_scale: float, weight_scales: np.ndarray,
                  dtype: np.dtype) -> np.ndarray | None:
    """``round(b / (s_in * s_w))`` as int32 (int8 layers) or int64 (16x8)."""
    if bias is None:
        return None
    bias_dtype = np.dtype(np.int64 if dtype == np.int16 else np.int32)
    q = round_half_away(bias / (input_scale * weight_scales.astype(np.float64)))
    lo, hi = dtype_range(bias_dtype)
    if q.size and (q.min() < lo or q.max() > hi):
        raise ValueError(f"bias: quantized value {q[np.argmax(np.abs(q))]:.0f} out of range "
                         f"[{lo}, {hi}] for input_scale={input_scale} and the weight scales")
    return q.astype(bias_dtype)


def output_multipliers(input_scale: float, weight_scales: np.ndarray,
                       output_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``QuantizeMultiplier(s_in * s_w / s_out)``."""
    real = input_scale * weight_scales.astype(np.float64) / output_scale
    return fixedpoint.quantize_multiplier_array(real)


def quant_spec(layer: Any) -> dict[str, Any]:
    """The JSON-able weights, bias and requantization of a conv-like or FC layer (the part
    of ``spec()`` they share).  A 16x8 layer with an int32 bias (TFLite's int32-bias
    kernel, see ``QuantizedConv``) adds ``"bias_dtype": "int32"``; no other spec changes."""
    extra = ({"bias_dtype": "int32"} if layer.activation_dtype == np.int16
             and getattr(layer, "accumulator_dtype", None) == np.int32 else {})
    return {
        "weights": layer.weights.tolist(),
        "bias": None if layer.bias is None else layer.bias.tolist(),
        "input_zero_point": layer.input_zero_point,
        "output_zero_point": layer.output_zero_point,
        "output_multiplier": layer.output_multiplier.tolist(),
        "output_shift": layer.output_shift.tolist(),
        "activation_min": layer.activation_min,
        "activation_max": layer.activation_max,
        "rounding": layer.rounding,
        **extra,
    }


def quantized_layer_params(w: np.ndarray, channel_axis: int, bias: object, *, s_in: float,
                           s_out: float, input_zero_point: int, output_zero_point: int,
                           activation: object, dtype: np.dtype) -> dict[str, Any]:
    """The integer keyword parameters of a conv-like or FC layer from float weights (per
    channel along ``channel_axis``) and bias, as TFLite's converter computes them."""
    q, w_scales = quantize_weights(w, channel_axis)
    b = None if bias is None else float_array("bias", bias, (len(w_scales),))
    multiplier, shift = output_multipliers(s_in, w_scales, s_out)
    amin, amax = activation_range(activation, s_out, output_zero_point, dtype)
    return dict(weights=q, bias=quantize_bias(b, s_in, w_scales, dtype),
                input_zero_point=input_zero_point, output_zero_point=output_zero_point,
                output_multiplier=multiplier, output_shift=shift, activation_min=amin,
                activation_max=amax, activation_dtype=dtype)


@dataclass(frozen=True, eq=False)
class FloatOrigin:
    """The float parameters a layer was quantized from by ``from_float``: ``weights`` in
    the layer's integer layout and ``bias`` (float64), the scales and the activation (None,
    'relu', 'relu6'). Kept on the layer as ``layer.float_origin`` so that the layer's fixed
    point can be compared with the float layer it stands for (``edgeconv report``)."""

    weights: np.ndarray
    bias: np.ndarray | None
    input_scale: float
    output_scale: float
    activation: str | None


def with_float_origin(layer: Any, weights: np.ndarray, bias: object, *, input_scale: float,
                      output_scale: float, activation: str | None) -> Any:
    """``layer`` with ``float_origin`` set (see :class:`FloatOrigin`); the arrays are
    copied and made read-only."""
    w = np.array(weights, dtype=np.float64)
    b = None if bias is None else np.array(bias, dtype=np.float64)
    for arr in (w, b):
        if arr is not None:
            arr.flags.writeable = False
    layer.float_origin = FloatOrigin(w, b, input_scale, output_scale, activation)
    return layer
