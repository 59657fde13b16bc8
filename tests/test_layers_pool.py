"""MaxPool2D / AvgPool2D: hand-checked values, direct == vectorized, from_float."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import edgeconv


def test_avg_rounds_half_away_from_zero_and_excludes_padding() -> None:
    x = np.array([[5, -5], [0, 0]], dtype=np.int8)[:, :, None]  # 2x2x1
    # 2x2 window, stride 1, SAME: pads (0, 1) on both axes; counts 4, 2, 2, 1.
    layer = edgeconv.AvgPool2D(pool_size=2, stride=1, padding="same")
    expected = np.array([[0, -3], [0, 0]])  # 0/4 = 0; -5/2 = -2.5 -> -3
    np.testing.assert_array_equal(layer(x)[:, :, 0], expected)
    x = np.array([[5, 0], [2, 0]], dtype=np.int8)[:, :, None]
    expected = np.array([[2, 0], [1, 0]])  # 7/4 = 1.75 -> 2; 0/2; 2/2 = 1; 0/1
    np.testing.assert_array_equal(layer(x, method="direct")[:, :, 0], expected)
    np.testing.assert_array_equal(layer(x)[:, :, 0], expected)
    x = np.array([[3, 0], [0, 0]], dtype=np.int8)[:, :, None]
    assert layer(x)[0, 0, 0] == 1  # 3/4 = 0.75 -> 1
    x = np.array([[-6, 0], [0, 0]], dtype=np.int8)[:, :, None]
    assert layer(x)[0, 0, 0] == -2  # -6/4 = -1.5 -> -2 (away from zero)


def test_max_ignores_padding_and_clamps() -> None:
    x = np.full((3, 3, 2), -100, dtype=np.int8)
    x[2, 2, 1] = 50
    layer = edgeconv.MaxPool2D(pool_size=2, stride=2, padding="same", activation_max=40)
    out = layer(x)
    assert out.shape == (2, 2, 2)
    np.testing.assert_array_equal(out[:, :, 0], -100)  # padding never wins
    np.testing.assert_array_equal(out[:, :, 1], [[-100, -100], [-100, 40]])


@st.composite
def pool_configs(draw: st.DrawFn) -> tuple[dict, np.ndarray]:
    int16 = draw(st.booleans())
    dtype = np.int16 if int16 else np.int8
    lo, hi = (-(1 << 15), (1 << 15) - 1) if int16 else (-128, 127)
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["same", "valid", "explicit"]))
    if padding == "explicit":
        padding = tuple((draw(st.integers(0, e - 1)), draw(st.integers(0, e - 1))) for e in k)
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    if padding == "valid":
        assume(h >= k[0] and w >= k[1])
    elif padding != "same":
        assume(h + sum(padding[0]) >= k[0] and w + sum(padding[1]) >= k[1])
    amin = draw(st.integers(lo, hi))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(lo, hi + 1, size=(draw(st.integers(1, 2)), h, w,
                                       draw(st.integers(1, 3)))).astype(dtype)
    return dict(pool_size=k, stride=stride, padding=padding, activation_min=amin,
                activation_max=draw(st.integers(amin, hi)), activation_dtype=dtype), x


@pytest.mark.parametrize("cls", [edgeconv.MaxPool2D, edgeconv.AvgPool2D])
@settings(max_examples=80, deadline=None)
@given(cfg=pool_configs())
def test_direct_equals_vectorized(cls: type, cfg: tuple[dict, np.ndarray]) -> None:
    kwargs, x = cfg
    layer = cls(**kwargs)
    fast = layer(x)
    assert fast.dtype == x.dtype
    assert fast.shape == (x.shape[0], *layer.output_shape_for(x.shape[1:]))
    np.testing.assert_array_equal(fast, layer(x, method="direct"))


def test_from_float_activation_range_and_defaults() -> None:
    pool = edgeconv.MaxPool2D.from_float(pool_size=(2, 3), scale=0.05, zero_point=-10,
                                         activation="relu6", input_shape=(6, 9, 4), name="mp")
    assert (pool.activation_min, pool.activation_max) == (-10, 110)  # -10 + 6 / 0.05
    assert pool.stride == (2, 3) and pool.pool_size == (2, 3)  # stride defaults to pool
    assert pool.output_shape == (3, 3, 4) and pool.macs() == 3 * 3 * 4 * 6
    avg = edgeconv.AvgPool2D.from_float(pool_size=2, scale=1e-3, activation_dtype=np.int16)
    assert (avg.activation_min, avg.activation_max) == (-32768, 32767)
    assert avg.spec()["op"] == "AvgPool2D" and avg.pads_for((4, 4, 1)) == ((0, 0), (0, 0))
