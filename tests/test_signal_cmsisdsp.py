"""edgeconv.signal Q-format defaults against the real CMSIS-DSP (``cmsisdsp`` package).

The package is a host build of CMSIS-DSP (generic C paths).  ``arm_correlate_*`` leaves
the ``|M - N|`` zero-padding slots of its ``2 * max(M, N) - 1`` output unwritten (they
hold whatever the buffer held), so those slots are compared with 0 -- the value CMSIS
expects the caller to have put there -- and all written slots must be equal.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeconv import signal as sig

dsp = pytest.importorskip("cmsisdsp")

FORMATS = {"q7": np.int8, "q15": np.int16, "q31": np.int32}
LENGTHS = [(1, 1), (1, 7), (7, 1), (2, 3), (3, 2), (5, 5), (16, 3), (3, 16), (33, 64),
           (64, 33), (100, 7), (1, 100)]


def _vectors(rng: np.random.Generator, dtype, length: int, style: int) -> np.ndarray:
    info = np.iinfo(dtype)
    if style == 0:  # uniform over the whole range
        return rng.integers(info.min, info.max, length, endpoint=True).astype(dtype)
    if style == 1:  # only the extremes: saturation and q31 accumulator wrap
        return rng.choice(np.array([info.min, info.max], dtype), length)
    out = rng.integers(info.min, info.max, length, endpoint=True).astype(dtype)
    out[rng.random(length) < 0.5] = info.min
    return out


def _written_slots(m: int, n: int) -> slice:
    return slice(m - n, None) if m > n else slice(0, m + n - 1)


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("m, n", LENGTHS)
@pytest.mark.parametrize("style", [0, 1, 2])
def test_conv_and_correlate_match_cmsisdsp(fmt, m, n, style):
    dtype = FORMATS[fmt]
    rng = np.random.default_rng([list(FORMATS).index(fmt), m, n, style])
    for _ in range(5):
        a, b = _vectors(rng, dtype, m, style), _vectors(rng, dtype, n, style)
        ref_conv = getattr(dsp, f"arm_conv_{fmt}")(a, m, b, n)
        got_conv = sig.convolve(a, b)
        assert got_conv.dtype == dtype
        assert got_conv.tolist() == np.asarray(ref_conv).tolist()

        ref_corr = np.asarray(getattr(dsp, f"arm_correlate_{fmt}")(a, m, b, n))
        got_corr = sig.correlate(a, b)
        assert got_corr.size == ref_corr.size == 2 * max(m, n) - 1
        written = _written_slots(m, n)
        assert got_corr[written].tolist() == ref_corr[written].tolist()
        padding = np.ones(got_corr.size, bool)
        padding[written] = False
        assert not got_corr[padding].any()


def test_q31_accumulator_wrap_seen_in_cmsisdsp():
    """Three INT32_MIN**2 products sum to 3 * 2**62, which wraps the 64-bit accumulator;
    the q31 output is a plain cast, no saturation (values checked by hand)."""
    mn = np.full(3, -(2 ** 31), np.int32)
    ref = np.asarray(dsp.arm_conv_q31(mn, 3, mn, 3)).tolist()
    # sums 2**62, 2**63, 3*2**62 -> wrapped 2**62, -2**63, -2**62 -> >> 31: 2**31, -2**32,
    # -2**31 -> int32 casts: INT32_MIN, 0, INT32_MIN
    assert ref == [-(2 ** 31), 0, -(2 ** 31), 0, -(2 ** 31)]
    assert sig.convolve(mn, mn).tolist() == ref
