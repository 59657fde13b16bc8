"""Counts on the emulated boards track the work (issue 14): the micro:bit's nRF51 TIMER0
and the netduinoplus2's SysTick ran on the host's clock (12 outputs: 10,280 ticks; 4,000:
13,321), so they measured the emulator. Every QEMU board now runs under ``-icount`` by
default and reports instructions."""

from __future__ import annotations

import numpy as np
import pytest

from edgeconv import targets
from edgeconv.signal import SignalFilter

TAPS = np.array([1, -1, 2, 3, -2, 1, 1, 2], dtype=np.int8)
OUTPUTS = (12, 400, 2000)


def _fir_layers() -> list[SignalFilter]:
    return [SignalFilter(TAPS, mode="valid", fmt="q7", input_length=n + len(TAPS) - 1,
                         name=f"fir_{n}") for n in OUTPUTS]


def _counts(spec: str) -> tuple[str | None, list[int]]:
    layers = _fir_layers()
    counts = []
    with targets.open(spec, layers) as session:
        for layer in layers:
            # One value everywhere: every output takes the same path through the kernel
            # (no data-dependent saturation), so its cost per output is one constant.
            x = np.full(layer.input_shape, 3, dtype=np.int8)
            np.testing.assert_array_equal(session.run(layer.name, x), layer(x))
            counts.append(session.last_count)
        return session.count_unit, counts


@pytest.mark.parametrize("spec, same_code_on", [("qemu:microbit", "qemu:mps2-an385:cortex-m0"),
                                                ("qemu:netduinoplus2", None)])
def test_counts_are_instructions_that_scale_with_the_outputs(spec, same_code_on):
    unit, counts = _counts(spec)
    assert unit == "instructions", (unit, counts)
    # The FIR loop costs the same per output at every length: the count is linear in the
    # outputs (to within a tick, 8 instructions) and far from flat.
    per_output = (counts[2] - counts[1]) / (OUTPUTS[2] - OUTPUTS[1])
    assert per_output > 10
    predicted = counts[1] - per_output * (OUTPUTS[1] - OUTPUTS[0])
    assert abs(counts[0] - predicted) <= 16, counts
    if same_code_on is not None:
        # The same Cortex-M0 code on the MPS2 board, counted by its FPGAIO counter.
        other_unit, other = _counts(same_code_on)
        assert other_unit == "instructions"
        for ours, theirs in zip(counts, other, strict=True):
            assert abs(ours - theirs) <= 16, (counts, other)
