"""Small-layer shortcut: one exact matrix product and one table lookup per call.

A conv layer with a fixed input shape is a linear map of the raw input followed by a
per-channel requantization.  For a tiny layer the fixed cost of each numpy operation
dominates the arithmetic, so :class:`RequantTable` computes the output with as few
operations as possible: ``table[x.ravel() @ matrix + base]``.  ``table`` holds, channel
after channel, the requantized output of every accumulator the layer can reach with
inputs in its dtype range, computed once by the layer's own ``requantize`` (so the
lookup is exact by construction, int32 wrap-around included); ``base`` turns each output
element's raw sum into its accumulator (bias and zero-point offset) and that into its
position in its channel's section of the table.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class RequantTable:
    """``layer(x)`` for one unbatched input shape, and batches of it, by table lookup.

    Exactness of the float64 arithmetic: with 0 in the input range, every partial sum of
    ``x @ matrix`` is bounded by its column's accumulator span, ``base`` lies in
    ``[0, table size)`` and ``raw + base`` is a table index; all are integers below
    2**53."""

    def __init__(self, matrix: np.ndarray, base: np.ndarray, table: np.ndarray,
                 in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> None:
        self._matrix = matrix.astype(np.float64)
        self._matrix_t = np.ascontiguousarray(self._matrix.T)
        self._base = base.astype(np.float64)
        self._table = table
        self._dtype = table.dtype
        self._in_shape = in_shape
        self._out_shape = out_shape
        # Output shape by input shape for one input (unbatched or a batch of one).
        self._single = {in_shape: out_shape, (1, *in_shape): (1, *out_shape)}

    @classmethod
    def build(cls, matrix: np.ndarray, offset: np.ndarray,
              requantize: Callable[[np.ndarray], np.ndarray], input_range: tuple[int, int],
              in_shape: tuple[int, ...], out_shape: tuple[int, ...],
              limit: int) -> RequantTable | None:
        """The table of a layer with int64 accumulators ``x.ravel() @ matrix + offset``
        (``matrix`` integer-valued, ``(inputs, outputs)``, outputs flattened channels
        last) for inputs in ``input_range`` (which holds 0); ``requantize`` maps int64 accumulators
        (channels last) to outputs.  None when the table would exceed ``limit``
        (< 2**52) entries."""
        channels = out_shape[-1]
        lo, hi = accumulator_bounds(matrix, offset, input_range)
        lo, hi = lo.reshape(-1, channels).min(axis=0), hi.reshape(-1, channels).max(axis=0)
        rows = int((hi - lo).max()) + 1
        if rows * channels > limit:
            return None
        # Entry r of channel c's section: the output for accumulator lo[c] + r (up to
        # hi[c]).  ``requantize`` gets the channels-last transpose of a (C, rows) array,
        # so numpy's inner loops run along the rows.
        grid = np.minimum(lo[:, None] + np.arange(rows, dtype=np.int64), hi[:, None])
        table = requantize(grid.T).T.ravel()
        section = np.arange(channels, dtype=np.int64) * rows - lo
        base = np.tile(section, offset.size // channels) + offset
        return cls(matrix, base, table, in_shape, out_shape)

    def apply(self, x: object) -> np.ndarray | None:
        """The layer's output for ``x``, or None when ``x`` is not a numpy array of the
        table's dtype and input shape (unbatched or with a non-empty batch): the caller
        then takes its general path, which also reports errors."""
        if type(x) is not np.ndarray or x.dtype is not self._dtype:
            return None
        out_shape = self._single.get(x.shape)
        if out_shape is not None:  # one input: a matrix-vector product
            index = self._matrix_t.dot(x.ravel())
        elif x.shape[1:] == self._in_shape and x.shape[0]:
            index = x.reshape(x.shape[0], -1).dot(self._matrix)
            out_shape = (x.shape[0], *self._out_shape)
        else:
            return None
        index += self._base
        return self._table[index.astype(np.intp)].reshape(out_shape)


def accumulator_bounds(matrix: np.ndarray, offset: np.ndarray,
                       input_range: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Least and greatest ``x @ matrix + offset`` over inputs in ``input_range``, per
    output element (exact int64)."""
    w = matrix.astype(np.int64)
    low, high = w * input_range[0], w * input_range[1]
    return (np.minimum(low, high).sum(axis=0) + offset,
            np.maximum(low, high).sum(axis=0) + offset)
