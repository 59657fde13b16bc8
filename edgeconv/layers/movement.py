"""Data movement of the whole-model path: PAD and CONCATENATION (TFLite reference kernels
on int8 / int16 tensors; they copy raw integers, no arithmetic)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgeconv.im2col import check_int
from edgeconv.layers import _validate as v
from edgeconv.layers._shaped import check_shape, need_shape, per_item


class Pad:
    """TFLite PAD: ``paddings[d] = (before, after)`` elements around dimension ``d`` of the
    unbatched input, filled with ``pad_value`` (TFLite's PAD without a value input fills
    with the output zero point, the quantized 0.0)."""

    op: ClassVar[str] = "Pad"

    def __init__(self, *, paddings: object, pad_value: int = 0,
                 activation_dtype: object = np.int8, name: str | None = None,
                 input_shape: tuple[int, ...] | None = None) -> None:
        self.activation_dtype = dt = v.check_activation_dtype(activation_dtype)
        self.name = v.check_name(name)
        rows = np.asarray(paddings, dtype=object) if not isinstance(paddings, np.ndarray) \
            else paddings
        if (rows.ndim != 2 or rows.shape[1:] != (2,) or not 1 <= rows.shape[0] <= 6
                or any(isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 0
                       for p in rows.ravel().tolist())):
            raise ValueError(f"paddings={paddings!r}: must be 1 to 6 pairs (before, after) of "
                             "non-negative ints, one per dimension of the unbatched input")
        self.paddings = tuple((int(a), int(b)) for a, b in rows.tolist())
        self.pad_value = check_int("pad_value", pad_value, *v.dtype_range(dt))
        self.input_shape = check_shape("input_shape", input_shape)
        if self.input_shape is not None:
            self.output_shape_for(self.input_shape)

    def output_shape_for(self, input_shape: object) -> tuple[int, ...]:
        shape = check_shape("input_shape", input_shape)
        assert shape is not None
        if len(shape) != len(self.paddings):
            raise ValueError(f"input_shape={shape}: must have {len(self.paddings)} dims, one "
                             "per paddings pair")
        return tuple(s + a + b for s, (a, b) in zip(shape, self.paddings, strict=True))

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.output_shape_for(need_shape(self))

    def macs(self, input_shape: object = None) -> int:
        """No arithmetic (one store per output element)."""
        return 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``x`` (``input_shape`` or a batch of it) padded with ``pad_value``."""
        def run(item: np.ndarray) -> np.ndarray:
            item = v.check_input("x", item, self.activation_dtype)
            if item.ndim != len(self.paddings):
                raise ValueError(f"x: shape {item.shape}, must have {len(self.paddings)} dims")
            return np.pad(item, self.paddings, constant_values=self.pad_value)
        return per_item(x, self.input_shape, run)

    def spec(self) -> dict[str, Any]:
        return {"op": self.op, "activation_dtype": self.activation_dtype.name,
                "input_shape": None if self.input_shape is None else list(self.input_shape),
                "paddings": [list(p) for p in self.paddings], "pad_value": self.pad_value}

    def __repr__(self) -> str:
        return f"Pad(name={self.name!r}, paddings={self.paddings})"


class Concatenation:
    """TFLite CONCATENATION of int8 / int16 tensors along ``axis`` (of the unbatched
    shapes; negative counts from the end).  TFLite's quantized kernels copy the raw
    integers: its Prepare requires every input to share the output's scale and zero
    point, so there is no requantization (a model that needs one carries a QUANTIZE op,
    :class:`edgeconv.layers.quantize.Requantize`).

    ``input_shapes`` are the unbatched shapes of the inputs in order; ``input_shape`` is
    the packed shape ``(n0 + n1 + ...,)`` (each input flattened, C order) or, for one
    input, its own shape.  ``layer(packed)`` or ``layer(x0, x1, ...)``."""

    op: ClassVar[str] = "Concatenation"

    def __init__(self, *, input_shapes: object, axis: int = -1,
                 activation_dtype: object = np.int8, name: str | None = None) -> None:
        self.activation_dtype = v.check_activation_dtype(activation_dtype)
        self.name = v.check_name(name)
        if not isinstance(input_shapes, (tuple, list)) or not input_shapes:
            raise ValueError(f"input_shapes={input_shapes!r}: must be a non-empty sequence of "
                             "shapes")
        shapes = tuple(check_shape(f"input_shapes[{i}]", s) for i, s in enumerate(input_shapes))
        rank = len(shapes[0])  # type: ignore[arg-type]
        axis = check_int("axis", axis, -rank, rank - 1)
        self.axis = axis % rank
        for i, s in enumerate(shapes):
            assert s is not None
            if len(s) != rank or s[:self.axis] + s[self.axis + 1:] != \
                    shapes[0][:self.axis] + shapes[0][self.axis + 1:]:  # type: ignore[index]
                raise ValueError(f"input_shapes[{i}]={s}: must match input_shapes[0]="
                                 f"{shapes[0]} in every dimension but axis {self.axis}")
        self.input_shapes = shapes
        sizes = [int(np.prod(s)) for s in shapes]  # type: ignore[arg-type]
        self.input_shape = shapes[0] if len(shapes) == 1 else (sum(sizes),)

    def output_shape_for(self, input_shape: object) -> tuple[int, ...]:
        if tuple(input_shape) != self.input_shape:  # type: ignore[arg-type]
            raise ValueError(f"input_shape={input_shape!r}: must be the layer's input_shape "
                             f"{self.input_shape}")
        first = self.input_shapes[0]
        assert first is not None
        total = sum(s[self.axis] for s in self.input_shapes)  # type: ignore[index]
        return first[:self.axis] + (total,) + first[self.axis + 1:]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.output_shape_for(self.input_shape)

    def macs(self, input_shape: object = None) -> int:
        """No arithmetic."""
        return 0

    def _split(self, packed: np.ndarray) -> list[np.ndarray]:
        if len(self.input_shapes) == 1:
            return [packed]
        parts, at = [], 0
        for s in self.input_shapes:
            n = int(np.prod(s))  # type: ignore[arg-type]
            parts.append(packed[at:at + n].reshape(s))
            at += n
        return parts

    def __call__(self, x: np.ndarray, *more: np.ndarray) -> np.ndarray:
        """The inputs concatenated along ``axis``: ``layer(x0, x1, ...)`` (unbatched
        arrays shaped ``input_shapes``), or ``layer(packed)`` with ``packed`` shaped
        ``input_shape`` or ``(N, *input_shape)``."""
        dt = self.activation_dtype
        if more:
            xs = [v.check_input(f"x{i}", a, dt) for i, a in enumerate((x, *more))]
            if [a.shape for a in xs] != list(self.input_shapes):
                raise ValueError(f"x: shapes {[a.shape for a in xs]}, must be "
                                 f"{list(self.input_shapes)}")
            return np.concatenate(xs, axis=self.axis)
        x = v.check_input("x", x, dt)
        if x.shape == self.input_shape:
            return np.concatenate(self._split(x), axis=self.axis)
        if x.ndim == len(self.input_shape) + 1 and x.shape[1:] == self.input_shape:
            return np.stack([np.concatenate(self._split(item), axis=self.axis) for item in x])
        raise ValueError(f"x: shape {x.shape} not allowed, must be {self.input_shape} or "
                         f"(N, *{self.input_shape})")

    def spec(self) -> dict[str, Any]:
        return {"op": self.op, "activation_dtype": self.activation_dtype.name,
                "input_shapes": [list(s) for s in self.input_shapes],  # type: ignore[arg-type]
                "axis": self.axis}

    def __repr__(self) -> str:
        return f"Concatenation(name={self.name!r}, axis={self.axis}, inputs={self.input_shapes})"
