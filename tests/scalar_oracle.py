"""Scalar TFLite/gemmlowp requantization on Python ints, written from the definitions
(independent of edgeconv.fixedpoint): the loop oracles of the op tests use it."""

from __future__ import annotations


def wrap32(v: int) -> int:
    """Two's-complement wrap to int32 (a C cast)."""
    return (v + (1 << 31)) % (1 << 32) - (1 << 31)


def mbqm(x: int, m: int, shift: int, rounding: str) -> int:
    """MultiplyByQuantizedMultiplier on Python ints, written from gemmlowp's definitions."""
    if rounding == "single":
        total = 31 - shift
        return wrap32((x * m + (1 << (total - 1))) >> total)
    x = wrap32(x << max(shift, 0))
    if x == m == -(1 << 31):
        high = (1 << 31) - 1
    else:  # SaturatingRoundingDoublingHighMul: nudge, then C division toward zero
        p = x * m
        p += (1 << 30) if p >= 0 else 1 - (1 << 30)
        high = abs(p) // (1 << 31) * (1 if p >= 0 else -1)
    right = max(-shift, 0)
    mask = (1 << right) - 1
    threshold = (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if (high & mask) > threshold else 0)
