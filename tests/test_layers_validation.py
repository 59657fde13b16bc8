"""Every invalid argument raises ValueError naming the argument (and its value/range)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import edgeconv


def conv_kwargs(**changes: Any) -> dict[str, Any]:
    """A valid int8 Conv2D (4 out, 3x3, 2 in per group, groups=2) with ``changes``."""
    base: dict[str, Any] = dict(
        weights=np.ones((4, 3, 3, 2), np.int8), bias=np.zeros(4, np.int32),
        output_multiplier=np.full(4, 1 << 30, np.int32), output_shift=np.zeros(4, np.int32),
        groups=2, padding="same", input_shape=(5, 5, 4))
    return base | changes


def conv16_kwargs(**changes: Any) -> dict[str, Any]:
    return conv_kwargs(activation_dtype=np.int16, bias=np.zeros(4, np.int64)) | changes


def dw_kwargs(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(
        weights=np.ones((1, 3, 3, 4), np.int8), depth_multiplier=2,
        output_multiplier=np.full(4, 1 << 30, np.int32), output_shift=np.zeros(4, np.int32))
    return base | changes


CONV_CASES = [
    # (kwargs, argument named in the message, text that must also appear)
    (conv_kwargs(stride=0), "stride", "0"),
    (conv_kwargs(stride=(1, 2, 3)), "stride", "(1, 2, 3)"),
    (conv_kwargs(stride=1.5), "stride", "1.5"),
    (conv_kwargs(dilation=(0, 1)), "dilation", "0"),
    (conv_kwargs(groups=0), "groups", "0"),
    (conv_kwargs(groups=3), "groups", "3"),
    (conv_kwargs(groups=4), "input_shape", "groups * weights.shape[-1] = 4 * 2"),
    (conv_kwargs(padding="full"), "padding", "full"),
    (conv_kwargs(padding=-1), "padding", "-1"),
    (conv_kwargs(padding=((3, 0), (0, 0))), "padding", "[0, 2]"),
    (conv_kwargs(padding=((0, 0), (0, 5)), dilation=2), "padding", "[0, 4]"),
    (conv_kwargs(padding=((0, 0), (0,))), "padding", "0"),
    (conv_kwargs(input_zero_point=128), "input_zero_point", "[-128, 127]"),
    (conv_kwargs(output_zero_point=-129), "output_zero_point", "[-128, 127]"),
    (conv_kwargs(input_zero_point=True), "input_zero_point", "True"),
    (conv16_kwargs(input_zero_point=1), "input_zero_point", "[0, 0]"),
    (conv16_kwargs(output_zero_point=-1), "output_zero_point", "[0, 0]"),
    (conv_kwargs(activation_min=10, activation_max=5), "activation_min", "10"),
    (conv_kwargs(activation_max=128), "activation_max", "[-128, 127]"),
    (conv_kwargs(activation_min=-129), "activation_min", "[-128, 127]"),
    (conv16_kwargs(activation_max=40000), "activation_max", "32767"),
    (conv_kwargs(activation_dtype=np.int32), "activation_dtype", "int32"),
    (conv_kwargs(activation_dtype="float32"), "activation_dtype", "float32"),
    (conv_kwargs(weights=np.ones((4, 3, 3, 2), np.float32)), "weights", "float32"),
    (conv_kwargs(weights=np.full((4, 3, 3, 2), 200, np.int16)), "weights", "200"),
    (conv_kwargs(weights=np.ones((4, 3, 3, 2), bool)), "weights", "bool"),
    (conv_kwargs(weights=np.ones((4, 3, 3), np.int8)), "weights", "(4, 3, 3)"),
    (conv_kwargs(weights=np.ones((4, 0, 3, 2), np.int8)), "weights", "(4, 0, 3, 2)"),
    (conv_kwargs(weights=[[1]]), "weights", "[[1]]"),
    (conv_kwargs(bias=np.full(4, 1 << 31, np.int64)), "bias", "2147483648"),
    (conv_kwargs(bias=np.zeros(3, np.int32)), "bias", "(3,)"),
    (conv16_kwargs(bias=np.zeros(3, np.int32)), "bias", "(3,)"),  # 16x8 int32-bias kernel
    (conv_kwargs(output_multiplier=np.full(4, 1 << 31, np.int64)), "output_multiplier",
     "2147483648"),
    (conv_kwargs(output_multiplier=np.full(3, 1 << 30, np.int32)), "output_multiplier",
     "(3,)"),
    (conv_kwargs(output_multiplier=np.array([1, -1, 1, 1], np.int32)), "output_multiplier",
     "-1"),
    (conv_kwargs(output_shift=np.array([0, 31, 0, 0], np.int32)), "output_shift",
     "[-31, 30]"),
    (conv_kwargs(output_shift=np.array([0, -32, 0, 0], np.int32)), "output_shift",
     "[-31, 30]"),
    (conv16_kwargs(output_shift=np.array([0, 8, 0, 0], np.int32)), "output_shift",
     "[-31, 7]"),
    (conv_kwargs(output_shift=np.zeros((4, 1), np.int32)), "output_shift", "(4, 1)"),
    (conv_kwargs(rounding="up"), "rounding", "up"),
    (conv_kwargs(name="1st"), "name", "1st"),
    (conv_kwargs(name="a-b"), "name", "a-b"),
    (conv_kwargs(input_shape=(5, 5, 3)), "input_shape", "3"),
    (conv_kwargs(input_shape=(5, 5)), "input_shape", "(5, 5)"),
    (conv_kwargs(input_shape=(0, 5, 4)), "input_shape", "(0, 5, 4)"),
    (conv_kwargs(input_shape=(2, 5, 4), padding="valid"), "input_shape", "2"),
]


@pytest.mark.parametrize(("kwargs", "argument", "text"), CONV_CASES,
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(CONV_CASES)])
def test_conv2d_rejects(kwargs: dict[str, Any], argument: str, text: str) -> None:
    with pytest.raises(ValueError) as info:
        edgeconv.Conv2D(**kwargs)
    assert argument in str(info.value) and text in str(info.value)


DW_CASES = [
    (dw_kwargs(depth_multiplier=3), "depth_multiplier", "3"),
    (dw_kwargs(depth_multiplier=0), "depth_multiplier", "0"),
    (dw_kwargs(weights=np.ones((2, 3, 3, 4), np.int8)), "weights", "(2, 3, 3, 4)"),
    (dw_kwargs(input_shape=(5, 5, 4)), "input_shape", "4"),
    (dw_kwargs(bias=np.zeros(2, np.int32)), "bias", "(2,)"),
    (dw_kwargs(padding=((0, 0), (3, 0))), "padding", "[0, 2]"),
]


@pytest.mark.parametrize(("kwargs", "argument", "text"), DW_CASES,
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(DW_CASES)])
def test_depthwise_rejects(kwargs: dict[str, Any], argument: str, text: str) -> None:
    with pytest.raises(ValueError) as info:
        edgeconv.DepthwiseConv2D(**kwargs)
    assert argument in str(info.value) and text in str(info.value)


POOL_CASES = [
    (dict(pool_size=0), "pool_size", "0"),
    (dict(pool_size=(2, 2, 2)), "pool_size", "(2, 2, 2)"),
    (dict(pool_size=2, stride=0), "stride", "0"),
    (dict(pool_size=2, padding=((2, 0), (0, 0))), "padding", "[0, 1]"),
    (dict(pool_size=2, activation_min=5, activation_max=4), "activation_min", "5"),
    (dict(pool_size=2, activation_dtype=np.int16, activation_max=1 << 15), "activation_max",
     "32767"),
    (dict(pool_size=3, input_shape=(2, 2, 1)), "input_shape", "(2, 2, 1)"),
]


@pytest.mark.parametrize("cls", [edgeconv.MaxPool2D, edgeconv.AvgPool2D])
@pytest.mark.parametrize(("kwargs", "argument", "text"), POOL_CASES,
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(POOL_CASES)])
def test_pool_rejects(cls: type, kwargs: dict[str, Any], argument: str, text: str) -> None:
    with pytest.raises(ValueError) as info:
        cls(**kwargs)
    assert argument in str(info.value) and text in str(info.value)


def test_conv1d_rejects() -> None:
    base = dict(weights=np.ones((2, 3, 1), np.int8),
                output_multiplier=np.full(2, 1 << 30, np.int32),
                output_shift=np.zeros(2, np.int32))
    for changes, argument in [({"stride": (1, 1)}, "stride"),
                              ({"padding": ((0, 0), (1, 1))}, "padding"),
                              ({"padding": (3, 0)}, "padding"),
                              ({"input_shape": (4, 4, 1)}, "input_shape"),
                              ({"weights": np.ones((2, 1, 3, 1), np.int8)}, "weights")]:
        with pytest.raises(ValueError, match=argument):
            edgeconv.Conv1D(**base | changes)


CALL_CASES = [
    (lambda layer: layer(np.zeros((5, 5, 4), np.int16)), "x", "int16"),
    (lambda layer: layer(np.zeros((5, 5, 4)).tolist()), "x", "list"),
    (lambda layer: layer(np.zeros((6, 5, 4), np.int8)), "x", "(6, 5, 4)"),
    (lambda layer: layer(np.zeros((5, 4), np.int8)), "x", "(5, 4)"),
    (lambda layer: layer(np.zeros((1, 1, 5, 5, 4), np.int8)), "x", "(1, 1, 5, 5, 4)"),
    (lambda layer: layer(np.zeros((0, 5, 5, 4), np.int8)), "x", "empty batch"),
    (lambda layer: layer(np.zeros((5, 5, 4), np.int8), method="fast"), "method", "fast"),
    (lambda layer: layer.accumulate(np.zeros((5, 5, 4), np.int8), method=1), "method", "1"),
    (lambda layer: layer.output_shape_for((5, 5, 2)), "input_shape", "2"),
    (lambda layer: layer.macs((5, 5)), "input_shape", "(5, 5)"),
]


@pytest.mark.parametrize(("call", "argument", "text"), CALL_CASES,
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(CALL_CASES)])
def test_call_rejects(call: Callable[[Any], object], argument: str, text: str) -> None:
    layer = edgeconv.Conv2D(**conv_kwargs())
    with pytest.raises(ValueError) as info:
        call(layer)
    assert argument in str(info.value) and text in str(info.value)


def test_shape_checked_at_call_without_input_shape() -> None:
    layer = edgeconv.Conv2D(**conv_kwargs(input_shape=None, padding="valid"))
    with pytest.raises(ValueError, match=r"x\.shape.*3 input channels"):
        layer(np.zeros((5, 5, 3), np.int8))
    with pytest.raises(ValueError, match=r"x\.shape.*smaller than the dilated kernel"):
        layer(np.zeros((2, 5, 4), np.int8))
    with pytest.raises(ValueError, match="input_shape=None"):
        _ = layer.output_shape


FROM_FLOAT_CASES = [
    (dict(input_scale=0.0), "input_scale", "0.0"),
    (dict(output_scale=float("nan")), "output_scale", "nan"),
    (dict(output_scale="big"), "output_scale", "big"),
    (dict(input_scale="0.1"), "input_scale", "'0.1'"),
    (dict(activation="tanh"), "activation", "tanh"),
    (dict(output_zero_point=300), "output_zero_point", "300"),
    (dict(activation_dtype=np.int16, input_zero_point=3), "input_zero_point", "[0, 0]"),
    (dict(weights=np.full((2, 1, 1, 1), np.inf)), "weights", "finite"),
    (dict(bias=np.ones(3)), "bias", "(3,)"),
    (dict(bias=np.array([1e12, 0.0])), "bias", "[-2147483648, 2147483647]"),
]


@pytest.mark.parametrize(("changes", "argument", "text"), FROM_FLOAT_CASES,
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(FROM_FLOAT_CASES)])
def test_from_float_rejects(changes: dict[str, Any], argument: str, text: str) -> None:
    kwargs: dict[str, Any] = dict(weights=np.ones((2, 1, 1, 1)), bias=None, input_scale=0.1,
                                  output_scale=0.1) | changes
    with pytest.raises(ValueError) as info:
        edgeconv.Conv2D.from_float(**kwargs)
    assert argument in str(info.value) and text in str(info.value)


def test_pool_from_float_rejects() -> None:
    with pytest.raises(ValueError, match="scale"):
        edgeconv.MaxPool2D.from_float(pool_size=2, scale=-1.0)
    with pytest.raises(ValueError, match="zero_point"):
        edgeconv.AvgPool2D.from_float(pool_size=2, scale=1.0, zero_point=-200)


def test_requantize_rejects_bad_accumulators() -> None:
    layer = edgeconv.Conv2D(weights=np.ones((2, 1, 1, 3), np.int8),
                            output_multiplier=np.full(2, 1 << 30, np.int32),
                            output_shift=np.zeros(2, np.int32))
    with pytest.raises(ValueError, match="acc: dtype float64"):
        layer.requantize(np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match=r"acc.shape=\(4, 4, 3\).*2 output channels"):
        layer.requantize(np.zeros((4, 4, 3), np.int64))
    assert layer.requantize(np.full((1, 2), 6, np.int64)).tolist() == [[3, 3]]
