"""Backward kernels next to the forward ones on a target: instructions per MAC.

``python -m edgeconv.bench.backward --target qemu:mps2-an386`` builds the benchmark layers
(L1-L7 of :mod:`edgeconv.bench.layers`), their input gradients and weight gradients
(:class:`edgeconv.backprop.ConvBackward`) into one benchmark image
(:func:`edgeconv.bench.target.run`: QEMU ``-icount``, every output checked against the
reference model) and prints, per layer, the forward kernel's instructions per MAC and
those of the two backward kernels with their ratio to the forward (the goal of issue 9 is
at most 2 on Cortex-M4).  A backward layer has as many MACs as its forward layer.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from edgeconv.backprop import ConvBackward
from edgeconv.bench.layers import benchmark_layers
from edgeconv.bench.target import OPTS, run

DEFAULT_LAYERS = ("L1", "L2", "L4", "L5", "L6", "L7")  # L3 (1x1, 16x16x64) as L2 in shape


@dataclass(frozen=True)
class BackwardRow:
    """One benchmark layer: strategies and instructions per MAC of forward, dL/dx, dL/dw."""

    layer: str
    strategies: tuple[str, str, str]
    per_mac: tuple[float, float, float]
    scratch: tuple[int, int, int]
    mismatches: int

    @property
    def ratios(self) -> tuple[float, float]:
        """dL/dx and dL/dw instructions per MAC over the forward kernel's."""
        return self.per_mac[1] / self.per_mac[0], self.per_mac[2] / self.per_mac[0]


def measure(target: str = "qemu:mps2-an386", opt: str = "O3",
            layers: tuple[str, ...] = DEFAULT_LAYERS) -> list[BackwardRow]:
    """Run the forward and backward kernels of ``layers`` on ``target``."""
    forward = benchmark_layers()
    unknown = [n for n in layers if n not in forward]
    if unknown:
        raise ValueError(f"layers: {unknown[0]!r} not allowed, must be among "
                         f"{', '.join(forward)}")
    built = []
    for n in layers:
        built += [forward[n], ConvBackward(forward[n], part="input", name=f"{n}_dx"),
                  ConvBackward(forward[n], part="weights", name=f"{n}_dw")]
    by_name = {r.name: r for r in run(built, target, opt)}
    rows = []
    for n in layers:
        f, dx, dw = by_name[n], by_name[f"{n}_dx"], by_name[f"{n}_dw"]
        rows.append(BackwardRow(n, (f.strategy, dx.strategy, dw.strategy),
                                (f.per_mac, dx.per_mac, dw.per_mac),
                                (f.scratch_bytes, dx.scratch_bytes, dw.scratch_bytes),
                                f.mismatches + dx.mismatches + dw.mismatches))
    return rows


def table(rows: list[BackwardRow]) -> str:
    """A markdown table of ``rows``."""
    lines = ["| layer | forward | i/MAC | dL/dx | i/MAC | x fwd | dL/dw | i/MAC | x fwd |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        (sf, sx, sw), (pf, px, pw), (rx, rw) = r.strategies, r.per_mac, r.ratios
        lines.append(f"| {r.layer} | {sf} | {pf:.2f} | {sx} | {px:.2f} | {rx:.2f} | {sw} | "
                     f"{pw:.2f} | {rw:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgeconv.bench.backward",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="qemu:mps2-an386")
    parser.add_argument("--opt", default="O3", choices=OPTS)
    parser.add_argument("--layers", default=",".join(DEFAULT_LAYERS),
                        help="comma-separated benchmark layers")
    args = parser.parse_args(argv)
    rows = measure(args.target, args.opt, tuple(args.layers.split(",")))
    print(table(rows))
    print(f"mismatches against the reference: {sum(r.mismatches for r in rows)}")
    return 0 if all(r.mismatches == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
