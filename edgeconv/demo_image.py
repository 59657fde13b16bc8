"""Pictures from the board: edge detection, blur and template search on a grayscale
scene, the filters run as generated C on a target (the emulated Cortex-M4 by default).

``run(out_dir)`` builds the scene of :func:`edgeconv.signal2d.demo_scene` (128 x 128,
an 8x8 patch pasted at ``(83, 77)``), runs the Sobel ``gx`` / ``gy`` and the 5x5
Gaussian (binomial) blur of :func:`edgeconv.signal2d.demo_kernels` as ``SignalFilter2D``
layers (Q15, ``same``, symmetric boundary) through ``edgeconv.targets.open``, checks
every board output against the reference model bit for bit, and writes the PNGs.
``|gx| + |gy|`` is formed on the host from the board's ``gx`` and ``gy`` (saturated to
Q15). The template search runs on the board too: a ``MatchTemplate`` layer (integer NCC,
Q15 scores) of the patch scaled as the image (pixel << 7: the same NCC, exactly), its
score map checked against ``match_template`` of the 8-bit scene and patch.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgeconv import targets
from edgeconv.fixedpoint import saturate
from edgeconv.signal2d import (
    MatchTemplate,
    SignalFilter2D,
    demo_kernels,
    demo_scene,
    match_template,
    save_images,
)

SHAPE = (128, 128)
TEMPLATE_AT = (83, 77)
SCALE = 2
FILES = ("input", "sobel", "blur", "match_scores", "match_box")


def demo_layers(shape: tuple[int, int] = SHAPE) -> list[SignalFilter2D]:
    """The three board filters: ``sobel_gx``, ``sobel_gy`` and ``blur`` (Q15)."""
    return [SignalFilter2D(kernel, mode="same", fmt="q15", boundary="symmetric",
                           input_shape=shape, name=name)
            for name, kernel in demo_kernels().items()]


def run(out_dir: str | Path, target: str = "qemu:mps2-an386", *,
        log: Callable[[str], None] | None = None) -> list[Path]:
    """Run the demo on ``target`` and write ``out_dir/<name>.png`` for each of ``FILES``
    (``SCALE`` times the scene's size); returns their paths.

    Raises RuntimeError when a board output differs from the reference model or the
    template is not found at ``TEMPLATE_AT``. ``log`` receives one line per step
    (default: print to stdout).
    """
    say = log if log is not None else (lambda line: print(line, file=sys.stdout))
    scene, patch = demo_scene(SHAPE, template_at=TEMPLATE_AT)
    x_q15 = scene.astype(np.int16) << 7  # pixel 0..255 -> Q15 0..0.996
    layers: list[SignalFilter2D | MatchTemplate] = [*demo_layers(SHAPE)]
    layers.append(MatchTemplate(patch.astype(np.int16) << 7, method="ncc", input_shape=SHAPE,
                                name="find"))
    found = match_template(scene, patch, "ncc")
    outputs = {}
    with targets.open(target, layers) as session:
        for layer in layers:
            got = session.run(layer.name, x_q15)
            want = layer(x_q15)
            if layer.name == "find" and not np.array_equal(want, found.scores):
                raise RuntimeError("the scaled template's scores differ from the 8-bit "
                                   "ones")  # NCC is scale-invariant: never
            if got.shape != want.shape or not np.array_equal(got, want):
                bad = int(np.count_nonzero(got != want)) if got.shape == want.shape \
                    else got.size
                raise RuntimeError(f"{layer.name} on {target}: {bad} of {want.size} "
                                   "outputs differ from the reference model")
            count = f", {session.last_count} {session.count_unit}" \
                if session.count_unit else ""
            what = (f"{layer.template.shape[0]}x{layer.template.shape[1]} Q15 NCC template "
                    "search" if isinstance(layer, MatchTemplate) else
                    f"{layer.kernel.shape[0]}x{layer.kernel.shape[1]} Q15 filter")
            say(f"  {layer.name}: {what} on {target}, bit-exact with the reference{count}")
            outputs[layer.name] = got
    edges = saturate(np.abs(outputs["sobel_gx"].astype(np.int64))
                     + np.abs(outputs["sobel_gy"].astype(np.int64)), np.int16)
    if found.location != TEMPLATE_AT:
        raise RuntimeError(f"template found at {found.location}, pasted at {TEMPLATE_AT}")
    say(f"  template found at {found.location} (score {found.score / 2**15:.4f})")
    box = [found.box]
    paths = save_images(out_dir, {"input": scene, "sobel": edges, "blur": outputs["blur"],
                                  "match_scores": outputs["find"], "match_box": scene},
                        boxes={"match_scores": box, "match_box": box}, scale=SCALE)
    for path in paths:
        say(f"  wrote {path}")
    return paths


def main(argv: list[str] | None = None) -> int:
    """``edgeconv demo image``: run the demo and print the paths of the pictures."""
    from edgeconv import progress
    from edgeconv.cli import HelpFormatter, boards_help

    parser = argparse.ArgumentParser(
        prog="edgeconv demo image", formatter_class=HelpFormatter,
        description="Edge detection (Sobel), blur (5x5 Gaussian) and template search on a "
                    "128x128 scene: the filters run as generated C on the target, each output "
                    "checked bit for bit; writes PNGs and prints their paths.",
        epilog="examples:\n  edgeconv demo image\n"
               "  edgeconv demo image --target native -o pictures/\n"
               "  edgeconv demo image --json -   (the paths as JSON on stdout)")
    parser.add_argument("--target", default="qemu:mps2-an386",
                        help=f"where the filters run: native, serial:<port>[@baud], or "
                             f"{boards_help()}")
    parser.add_argument("-o", "--output", default="demo-images", help="folder for the PNGs")
    parser.add_argument("--json", metavar="PATH",
                        help="also write the paths as JSON ('-' for stdout; the log goes to "
                             "stderr)")
    args = parser.parse_args(argv)
    out = sys.stderr if args.json else sys.stdout
    with progress.quiet(bool(args.json)):
        paths = run(args.output, args.target, log=lambda line: print(line, file=out))
    if args.json:
        text = json.dumps({"target": args.target,
                           "images": {p.stem: str(p) for p in paths}}, indent=2) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
