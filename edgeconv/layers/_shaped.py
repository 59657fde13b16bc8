"""The codegen side of the whole-model ops: a fixed unbatched ``input_shape`` and the
batch convention of the conv layers (``x`` shaped ``input_shape`` or ``(N, *input_shape)``).

The element-wise, reduction and data-movement ops work on arrays of any rank, so a leading
batch dimension cannot be told from the data alone; with ``input_shape`` set, an input of
shape ``(N, *input_shape)`` is run item by item.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def check_shape(name: str, value: object, max_ndim: int = 6) -> tuple[int, ...] | None:
    """None, or a tuple of 1 to ``max_ndim`` positive ints."""
    if value is None:
        return None
    if (not isinstance(value, (tuple, list)) or not 1 <= len(value) <= max_ndim
            or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1
                   for d in value)):
        raise ValueError(f"{name}={value!r}: must be None or a tuple of 1 to {max_ndim} "
                         "positive ints (without the batch dimension)")
    return tuple(int(d) for d in value)


def need_shape(layer: object) -> tuple[int, ...]:
    """``layer.input_shape``; ValueError when it is None."""
    shape = getattr(layer, "input_shape", None)
    if shape is None:
        raise ValueError(f"input_shape=None: {type(layer).__name__} {getattr(layer, 'name', '')!r}"
                         " needs input_shape for output_shape")
    return tuple(shape)


def per_item(x: object, shape: tuple[int, ...] | None,
             run: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``run(x)``, or ``stack([run(item) for item in x])`` when ``x`` is a batch of
    ``shape`` (a numpy array of shape ``(N, *shape)``, N >= 1)."""
    if (shape is not None and isinstance(x, np.ndarray) and x.ndim == len(shape) + 1
            and x.shape[1:] == shape and x.shape[0] >= 1):
        return np.stack([run(item) for item in x])
    return run(x)  # type: ignore[arg-type]


class SameShape:
    """``output_shape_for``, ``output_shape`` and ``macs`` of an element-wise op (or one
    over the last axis) whose output has its input's shape."""

    input_shape: tuple[int, ...] | None

    def output_shape_for(self, input_shape: object) -> tuple[int, ...]:
        shape = check_shape("input_shape", input_shape)
        assert shape is not None
        return shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return need_shape(self)

    def macs(self, input_shape: object = None) -> int:
        """One operation per element (no multiply-accumulates in the conv sense)."""
        shape = need_shape(self) if input_shape is None else self.output_shape_for(input_shape)
        return int(np.prod(shape))
