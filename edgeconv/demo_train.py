"""Learning on the board (issue 9, item 4a): a 1-D FIR filter trained by fixed-point SGD
on the target.

``run_filter(target)`` builds firmware with one :class:`edgeconv.backprop.FirTrainStep`
layer and runs the training loop from the host: the host holds the weights (q15, start
at zero) and, per step, sends ``(weights, x, target)`` over the serial protocol; the board
computes the forward pass, the loss, the gradient (its format chosen at run time) and
the SGD update and returns ``(new weights, loss)``.  The data are (input, target) pairs:
``x`` uniform in ``[-amplitude, amplitude)`` (q15) and the target the float64
convolution of ``x`` with the true filter, rounded to q15 (computed on the host with
numpy, independently of the board's arithmetic).  Every step's reply is also checked
against the reference model on the host (bit-exact).

``edgeconv demo train [--target qemu:mps2-an386]`` (or ``python -m edgeconv.demo_train``)
prints the loss per epoch and the learned taps next to the true ones, then fine-tunes the
last layer of a small keyword CNN on the same target (item 4b, :mod:`edgeconv.demo_cnn`:
accuracy before and after next to the same fine-tuning in float on the host, the RAM of
a training step); ``--only filter`` or ``--only cnn`` runs one of the two.  Exit status
0 when the filter's loss fell at least 100x and the CNN's held-out accuracy rose and
ended within 2 points of the float fine-tuning.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgeconv.backprop import FirTrainStep

# The true filter: an 8-tap low-pass (Hann-windowed sinc, cut-off 0.2 cycles/sample), in
# float; the board learns it from data.
TRUE_TAPS = 8


def true_filter(taps: int = TRUE_TAPS) -> np.ndarray:
    """The filter the demo learns: a Hann-windowed sinc low-pass, unit DC gain."""
    n = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(0.4 * n) * np.hanning(taps + 2)[1:-1]
    return h / h.sum()


@dataclass(frozen=True)
class FilterResult:
    """What ``run_filter`` measured: the mean loss (real MSE) per epoch, the learned and
    true taps (float), and the number of steps, all bit-exact with the reference."""

    target: str
    losses: tuple[float, ...]
    learned: np.ndarray
    true: np.ndarray
    steps: int

    @property
    def reduction(self) -> float:
        """First epoch's loss over the last epoch's."""
        return self.losses[0] / max(self.losses[-1], np.finfo(float).tiny)

    @property
    def max_tap_error(self) -> float:
        return float(np.abs(self.learned - self.true).max())


def _q15(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def make_data(steps: int, *, taps: int, outputs: int, seed: int,
              amplitude: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` (x, target) pairs: x ``(steps, outputs + taps - 1)`` and target
    ``(steps, outputs)``, int16 q15."""
    rng = np.random.default_rng(seed)
    h = true_filter(taps)
    x = _q15(rng.uniform(-amplitude, amplitude, size=(steps, outputs + taps - 1)))
    xf = x.astype(np.float64) / 32768.0
    target = np.stack([np.convolve(row, h, "valid") for row in xf])
    return x, _q15(target)


def run_filter(target: str = "native", *, epochs: int = 8, steps_per_epoch: int = 8,
               outputs: int = 64, lr: float = 1.0, seed: int = 0,
               echo: Callable[[str], None] | None = print) -> FilterResult:
    """Train the FIR filter on ``target`` (a spec for :func:`edgeconv.targets.open`) and
    return the losses and taps; ``echo`` prints the progress (None: silent)."""
    import edgeconv.targets
    from edgeconv import progress

    taps = TRUE_TAPS
    layer = FirTrainStep(taps, outputs + taps - 1, lr=lr, name="fir_train")
    xs, ts = make_data(epochs * steps_per_epoch, taps=taps, outputs=outputs, seed=seed)
    w = np.zeros(taps, np.int16)
    losses = []
    say = echo or (lambda _text: None)
    say(f"learning a {taps}-tap FIR filter on {target}: {epochs} epochs x "
        f"{steps_per_epoch} steps, {outputs} outputs per step, lr {lr} "
        f"(integer {layer.lr.mult} * 2**-{layer.lr.shift})")
    with edgeconv.targets.open(target, [layer]) as session:
        for epoch in progress.bar(range(epochs), desc=f"{target}: training", unit="epoch"):
            total = 0.0
            for s in range(steps_per_epoch):
                i = epoch * steps_per_epoch + s
                vector = layer.pack(w, xs[i], ts[i])
                got = session.run(layer.name, vector)
                want = layer(vector)
                if not np.array_equal(got, want):
                    raise RuntimeError(f"step {i}: the board's reply {got.tolist()} differs "
                                       f"from the reference {want.tolist()}")
                w = got[:taps].astype(np.int16)
                total += layer.loss(got)
            loss = total / steps_per_epoch
            losses.append(loss)
            say(f"epoch {epoch + 1}: loss (MSE) {loss:.3e}")
    learned = w.astype(np.float64) / 32768.0
    true = true_filter(taps)
    say("tap   learned    true       error")
    for k in range(taps):
        say(f"{k:3d}  {learned[k]:+.5f}  {true[k]:+.5f}  {learned[k] - true[k]:+.2e}")
    result = FilterResult(target, tuple(losses), learned, true, epochs * steps_per_epoch)
    say(f"loss fell {result.reduction:.3g}x; largest tap error {result.max_tap_error:.2e}")
    return result


def main(argv: list[str] | None = None) -> int:
    """``edgeconv demo train``: exit 0 when the filter's loss fell at least 100 times and
    the fine-tuned CNN's accuracy rose and ended within 2 points of float."""
    from edgeconv import progress
    from edgeconv.cli import HelpFormatter, boards_help

    parser = argparse.ArgumentParser(
        prog="edgeconv demo train", description=__doc__.splitlines()[0],
        formatter_class=HelpFormatter,
        epilog="examples:\n  edgeconv demo train\n"
               "  edgeconv demo train --target qemu:mps2-an386 --epochs 4\n"
               "  edgeconv demo train --target qemu:mps2-an386 --only cnn")
    parser.add_argument("--target", default="native",
                        help="where the forward and backward passes run: native, "
                             f"serial:<port>[@baud], or {boards_help()}")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of each demo (8 for the filter, 5 for the CNN when not "
                             "given)")
    parser.add_argument("--only", choices=("filter", "cnn"), default=None,
                        help="run one demo (both when not given)")
    args = parser.parse_args(argv)
    ok = True
    if args.only != "cnn":
        result = run_filter(args.target, epochs=args.epochs or 8, echo=progress.write)
        ok = result.reduction >= 100
    if args.only != "filter":
        from edgeconv.demo_cnn import run_cnn

        if args.only is None:
            progress.write("")
        cnn = run_cnn(args.target, epochs=args.epochs or 5, echo=progress.write)
        ok = ok and cnn.after > cnn.before and cnn.gap_points <= 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
