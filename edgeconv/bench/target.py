"""On-target benchmark: instructions, estimated cycles, flash, scratch and stack of layers.

``python -m edgeconv.bench.target --target qemu:mps2-an386`` (also reached as
``edgeconv bench``) generates the benchmark layers L1-L7 for the target's CPU, links them
into a small bare-metal image (``codegen/bench/``) that runs each layer once on fixed
input, and runs it under QEMU with ``-icount shift=3``: the FPGAIO counter then ticks once
every 5 instructions.  The image first times a loop of known length (calibration, checked
to within 10 instructions) and checks every output element against the reference model.
Flash per layer is measured from the ELF with ``arm-none-eabi-nm --size-sort -S`` by the
layer's symbol prefix; peak stack by stack painting on the device.  Cycles are estimated by
a second run of the same image with an executed-instruction trace and the CPU's timing
table (:mod:`edgeconv.bench.cycles`, which says what the model covers and what not);
``--no-cycles`` skips it.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from edgeconv import progress
from edgeconv.bench import cycles as cycle_model
from edgeconv.bench.layers import benchmark_input, benchmark_layers
from edgeconv.codegen.context import ctype_of
from edgeconv.codegen.cpus import cpu as cpu_named
from edgeconv.resources import templates_dir
from edgeconv.targets.boards import BOARDS, Board

__all__ = ["BOARDS", "LayerResult", "build", "flash_bytes", "main", "run"]

OPTS = ("O3", "Os")
CALIB_N = 20000  # calibration loop iterations: 2 * n + 1 instructions
CALIB_TOLERANCE = 10  # instructions
# The trace counts from the layer's call instruction to its return, the counter between
# two reads less the cost of two back-to-back reads: a few instructions of argument set-up
# apart at most.
TRACE_TOLERANCE = 16  # instructions
PAINT_WORDS = 2048  # stack painted below main's frame (8 KiB)

# CMSIS-NN 7.0 anchor figures (same compiler, flags and counting, -O3): instructions/MAC.
ANCHOR_IPM = {
    "L1": {"cortex-m4": 4.82, "cortex-m0": 11.70, "cortex-m55": 1.36},
    "L2": {"cortex-m4": 1.93, "cortex-m0": 6.70, "cortex-m55": 0.25},
    "L3": {"cortex-m4": 2.07, "cortex-m0": 7.55, "cortex-m55": 0.39},
    "L4": {"cortex-m4": 8.61, "cortex-m0": 37.63, "cortex-m55": 2.30},
    "L5": {"cortex-m4": 3.47, "cortex-m0": 9.41, "cortex-m55": 0.90},
    "L6": {"cortex-m4": 2.19, "cortex-m0": 7.24, "cortex-m55": 0.47},
    "L7": {"cortex-m4": 15.05, "cortex-m0": 27.13, "cortex-m55": 6.55},
}
ANCHOR_SCRATCH = {"L1": 112, "L2": 1152, "L5": 160, "L6": 1152}  # bytes; others not given
# CMSIS-NN 7.0 estimated cycles/MAC (issue 13): the same build (compiler, flags, -O3, layer
# parameters, outputs bit-exact) counted by an independent re-count that logged one line per
# executed instruction and applied the Cortex-M4 TRM timings (load pipelining, LDM/LDRD
# 1 + N, multiplies 1) with 0 flash wait states and 2-cycle taken branches: the defaults of
# edgeconv.bench.cycles, which the markdown table compares them with.
ANCHOR_CPM = {
    "L1": {"cortex-m4": 6.28}, "L2": {"cortex-m4": 2.35}, "L3": {"cortex-m4": 2.47},
    "L4": {"cortex-m4": 10.49}, "L5": {"cortex-m4": 4.47}, "L6": {"cortex-m4": 2.93},
    "L7": {"cortex-m4": 22.21},
}
# CMSIS-NN flash per layer, bytes: the .text of the kernel functions the layer's call links
# plus its constant arrays (int8 weights, int32 bias - int64 for the 16x8 L6 - and the int32
# per-channel multipliers and shifts), counted as flash_bytes counts ours: symbol sizes from
# arm-none-eabi-nm --size-sort -S.  Measured (issue 13) by linking, per layer and CPU, a
# one-call image with the sources of the CMSIS-NN v7.0 era (Debian arm-none-eabi-gcc 12.2,
# the CPU flags of edgeconv.codegen.cpus, -O3 -ffunction-sections -fdata-sections
# -Wl,--gc-sections) and keeping the symbols the call adds to an image without it; the
# image ran once on QEMU (mps2-an386 / mps2-an385 / mps3-an547) and every output equalled
# the layer's.
# The call is the kernel arm_convolve_wrapper_s8 / _s16 and arm_depthwise_conv_wrapper_s8
# select for the layer's parameters: arm_convolve_s8 (L1, L2, L5, L7; it links
# arm_nn_mat_mult_kernel_s8_s16, its grouped twin arm_nn_mat_mult_kernel_row_offset_s8_s16
# and arm_s8_to_s16_unordered_with_offset on M4 / arm_q7_to_q15_with_offset on M0),
# arm_convolve_1x1_s8_fast + arm_nn_mat_mult_nt_t_s8 (L3), arm_depthwise_conv_3x3_s8 (L4),
# arm_convolve_s16 + arm_nn_mat_mult_kernel_s16 (L6); on M55 (MVE) arm_convolve_s8 and
# arm_convolve_1x1_s8_fast link arm_nn_mat_mult_nt_t_s8, L4 is arm_depthwise_conv_s8_opt +
# arm_nn_depthwise_conv_nt_t_s8 (the wrapper takes no 3x3 kernel with MVE) and L6 links
# arm_nn_mat_mult_nt_t_s16.  Not counted, so the figures are a lower bound of a real build:
# the wrappers themselves (through a wrapper every kernel it can select is linked), libc
# memcpy/memset (470 B on M4, 308 B on M0, called by the im2col kernels; M55 copies with MVE
# and links none) and libgcc helpers (M0: 64-bit multiply and division, up to 922 B).
# Sources read from ARM-software/CMSIS-NN, each file at its last 2023-2024 version in the
# search index (commit where the index named one): arm_convolve_s8.c V.3.7.0 (27 Feb 2024),
# arm_nn_mat_mult_kernel_s8_s16.c V.2.0.0 (29 May 2023), arm_nn_mat_mult_kernel_row_offset_
# s8_s16.c (same body, second row at an offset), arm_s8_to_s16_unordered_with_offset.c
# V.1.0.0 (23 Mar 2023), arm_q7_to_q15_with_offset.c V.2.1.0 (f690e57e73bf), arm_convolve_
# 1x1_s8_fast.c V.3.4.0 (d1c35d332c63), arm_nn_mat_mult_nt_t_s8.c V.3.0.0 (04 Jan 2024),
# arm_depthwise_conv_3x3_s8.c V.3.1.2 (512ffcbdc0ae) with the V.3.2.0 intrinsic names,
# arm_depthwise_conv_wrapper_s8.c V.2.2.0 (04 Nov 2024), arm_convolve_wrapper_s8.c V.2.3.0
# (6ebba504d7ad), arm_convolve_wrapper_s16.c V.3.0.0 and arm_convolve_s16.c V.4.0.0
# (Apr 2024), arm_nn_mat_mult_kernel_s16.c V.3.0.0 (12 Apr 2024), Internal/arm_nn_compiler.h
# V.1.2.2 (16 Jan 2024); for M55 also arm_nn_mat_mult_nt_t_s16.c V.1.0.0 (11 Apr 2024) and,
# from the copy tensorflow/tflite-micro vendors at c801050fdb7b, arm_depthwise_conv_s8_opt.c
# V.3.5.0 (22 Mar 2023) and arm_nn_depthwise_conv_nt_t_s8.c V.2.0.1 (26 Oct 2022).
ANCHOR_FLASH = {
    "L1": {"cortex-m4": 5130, "cortex-m0": 4080, "cortex-m55": 2708},
    "L2": {"cortex-m4": 14106, "cortex-m0": 13056, "cortex-m55": 11684},
    "L3": {"cortex-m4": 7980, "cortex-m0": 6570, "cortex-m55": 6056},
    "L4": {"cortex-m4": 3186, "cortex-m0": 3440, "cortex-m55": 3118},
    "L5": {"cortex-m4": 7834, "cortex-m0": 6784, "cortex-m55": 5412},
    "L6": {"cortex-m4": 13324, "cortex-m0": 13252, "cortex-m55": 12714},
    "L7": {"cortex-m4": 4584, "cortex-m0": 3534, "cortex-m55": 2162},
}


@dataclass(frozen=True)
class LayerResult:
    """One layer's measurements on one target and optimisation level."""

    name: str
    strategy: str
    macs: int
    instructions: int
    flash_bytes: int
    scratch_bytes: int
    stack_bytes: int
    mismatches: int
    cycles: int | None = None
    cycles_by_kind: dict[str, int] | None = None  # cycles split by instruction class

    @property
    def per_mac(self) -> float:
        """Instructions per multiply-accumulate."""
        return self.instructions / self.macs

    @property
    def cycles_per_mac(self) -> float | None:
        """Estimated cycles per multiply-accumulate (None when not estimated)."""
        return None if self.cycles is None else self.cycles / self.macs


def _board(target: str) -> tuple[Board, str]:
    """The board and CPU of ``qemu:<board>[:<cpu>]``, for boards with a counter of known
    rate under ``-icount`` (the benchmark counts instructions with it)."""
    from edgeconv.targets import parse_spec

    allowed = ", ".join(f"qemu:{b.name}[:<cpu>]" for b in BOARDS.values() if b.per_tick)
    try:
        spec = parse_spec(target)
    except ValueError as exc:
        raise ValueError(f"target={target!r}: {exc}; allowed are {allowed}") from None
    if spec.kind != "qemu" or spec.board.per_tick is None:
        raise ValueError(f"target={target!r}: allowed are {allowed}")
    return spec.board, spec.cpu


def _c_values(arr: np.ndarray) -> list[str]:
    return [str(int(v)) for v in arr.ravel()]


def _render_main(layers: list[Any], infos: list[Any], prefix: str, board: Board,
                 out: Path) -> None:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir() / "bench")),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    items = []
    for index, (layer, info) in enumerate(zip(layers, infos, strict=True)):
        x = benchmark_input(layer, seed=index)
        out_dtype = getattr(layer, "output_dtype", None) or layer.activation_dtype
        items.append({"name": info.name, "in_ctype": ctype_of(layer.activation_dtype),
                      "out_ctype": ctype_of(out_dtype),
                      "input": _c_values(x), "expect": _c_values(layer(x)),
                      "scratch": info.scratch_bytes > 0})
    # Words of the shared scratch and output buffers: the largest layer's bytes (outputs
    # of the layer's output type: int8, int16 or int32).
    need = [(i.scratch_bytes, i.output_count * np.dtype(
                getattr(layer, "output_dtype", None) or layer.activation_dtype).itemsize)
            for layer, i in zip(layers, infos, strict=True)]
    words = [max(1, -(-max(n[k] for n in need) // 4)) for k in (0, 1)]
    (out / "bench_main.c").write_text(env.get_template("bench_main.c.j2").render(
        prefix=prefix, layers=items, counter_addr=hex(board.counter_addr),
        scratch_words=words[0], output_words=words[1], calib_n=CALIB_N,
        paint_words=PAINT_WORDS))
    (out / "link.ld").write_text(link_script(board))


def link_script(board: Board) -> str:
    """The benchmark image's linker script for ``board``'s memory map."""
    link = (templates_dir() / "bench" / "link.ld.in").read_text()
    for key, (origin, length) in (("FLASH", board.flash), ("RAM", board.ram)):
        link = (link.replace(f"@{key}_ORIGIN@", hex(origin))
                .replace(f"@{key}_LENGTH@", hex(length)).replace(f"@{key}@", key))
    return link


def compile_flags(cpu: str, opt: str) -> list[str]:
    """arm-none-eabi-gcc flags for ``cpu`` at optimisation level ``opt``."""
    if opt not in OPTS:
        raise ValueError(f"opt={opt!r}: allowed are {', '.join(OPTS)}")
    return [*cpu_named(cpu).gcc_flags(), f"-{opt}", "-std=c99", "-ffreestanding",
            "-fno-common", "-Wall", "-Wextra"]


def build(layers: list[Any], target: str, opt: str, workdir: Path, *,
          fast: bool = True) -> tuple[Path, list[Any]]:
    """Generate the layers and the benchmark image; return the ELF and the layer infos."""
    from edgeconv import codegen

    board, cpu = _board(target)
    prefix = "bench_net"
    strategy = None if fast else "im2col"
    gen = codegen.generate(layers, workdir, prefix, cpu=cpu, strategy=strategy)
    infos = list(gen.layers)
    _render_main(layers, infos, prefix, board, workdir)
    elf = workdir / f"bench_{opt}.elf"
    sources = [workdir / f"{prefix}.c", workdir / "bench_main.c",
               templates_dir() / "bench" / "startup.c"]
    cmd = ["arm-none-eabi-gcc", *compile_flags(cpu, opt), "-nostartfiles",
           "-T", str(workdir / "link.ld"), "-I", str(workdir), *map(str, sources),
           "-o", str(elf), "-lc", "-lgcc"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark build failed ({' '.join(cmd)}):\n{proc.stderr}")
    return elf, infos


def flash_bytes(elf: Path, names: list[str], *, nm: str = "arm-none-eabi-nm") -> dict[str, int]:
    """.text + .rodata bytes per layer: symbols ``<name>`` or ``<name>_*`` from ``nm``
    (``"nm"`` for a host build; gcc's clones ``<symbol>.constprop.0`` too), each counted
    once, for the longest name it matches."""
    out = subprocess.run([nm, "--size-sort", "-S", str(elf)], check=True,
                         capture_output=True, text=True).stdout
    sizes = dict.fromkeys(names, 0)
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 4 or parts[2].lower() not in ("t", "r"):
            continue
        symbol = parts[3].split(".")[0]
        owners = [name for name in names if symbol == name or symbol.startswith(name + "_")]
        if owners:
            sizes[max(owners, key=len)] += int(parts[1], 16)
    return sizes


def run_image(elf: Path, machine: str, timeout: float = 120.0) -> str:
    """Run ``elf`` on QEMU ``machine``; return the semihosting console text."""
    cmd = ["qemu-system-arm", "-M", machine, "-icount", "shift=3", "-nographic",
           "-monitor", "none", "-serial", "none",
           "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"QEMU {machine} exited with {proc.returncode}: "
                           f"{proc.stderr.strip()[-500:]}")
    return proc.stderr + proc.stdout


def _fields(text: str, head: str) -> dict[str, int]:
    match = re.search(rf"^{re.escape(head)}((?: \w+=\d+)+)\s*$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"benchmark output lacks {head!r}: {text[-500:]!r}")
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def instructions_per_tick(text: str, board: Board) -> Fraction:
    """Instructions per counter tick, validated on the calibration loop."""
    calib = _fields(text, "calib")
    empty = _fields(text, "empty")["ticks"]
    expected = 2 * calib["n"] + 1
    per_tick = board.per_tick
    measured = round((calib["ticks"] - empty) * per_tick)
    if abs(measured - expected) > CALIB_TOLERANCE + per_tick:
        raise RuntimeError(f"timer calibration failed: loop of {expected} instructions "
                           f"measured as {measured}")
    return per_tick


def run(layers: list[Any], target: str = "qemu:mps2-an386", opt: str = "O3", *,
        fast: bool = True, timing: cycle_model.Timing | None = None,
        flash_data: bool = False) -> list[LayerResult]:
    """Build and run the benchmark; every output is checked against the reference.

    With a ``timing`` table (:func:`edgeconv.bench.cycles.timing`) the image runs a second
    time under an instruction trace and each layer gets its estimated ``cycles``; the
    trace's instruction count must agree with the counter's.  ``flash_data``: data reads
    from the board's flash (weights, tables) pay the wait states too (a slower trace)."""
    board, _ = _board(target)
    step = f"bench {target} -{opt}"
    with tempfile.TemporaryDirectory(prefix="edgeconv-bench-") as tmp:
        with progress.working(f"{step}: building {len(layers)} layers"):
            elf, infos = build(layers, target, opt, Path(tmp), fast=fast)
        sizes = flash_bytes(elf, [i.name for i in infos])
        with progress.working(f"{step}: counting instructions under QEMU"):
            text = run_image(elf, board.machine)
        calls = {}
        if timing is not None:
            with progress.working(f"{step}: instruction trace for the cycle estimate"):
                calls = cycle_model.call_cycles(elf, board.machine, [i.name for i in infos],
                                                timing, flash=board.flash if flash_data else None)
    per_tick = instructions_per_tick(text, board)
    empty = _fields(text, "empty")["ticks"]
    results = []
    for layer, info in zip(layers, infos, strict=True):
        f = _fields(text, f"layer {info.name}")
        if f["rc"] != 0:
            raise RuntimeError(f"layer {info.name} returned {f['rc']}")
        instructions = round((f["ticks"] - empty) * per_tick)
        call = calls.get(info.name)
        if call is not None and (call.calls != 1 or abs(call.instructions - instructions)
                                 > TRACE_TOLERANCE + per_tick):
            raise RuntimeError(f"layer {info.name}: the trace saw {call.calls} call(s) of "
                               f"{call.instructions} instructions, the counter "
                               f"{instructions} instructions")
        results.append(LayerResult(info.name, info.strategy, int(layer.macs()),
                                   instructions, sizes[info.name], info.scratch_bytes,
                                   f["stack"], f["mismatches"],
                                   None if call is None else call.cycles,
                                   None if call is None else call.by_kind))
    return results


def text_table(results: list[LayerResult]) -> str:
    """Plain-text table of the results."""
    head = (f"{'layer':<6} {'strategy':<14} {'MACs':>9} {'instr':>10} {'instr/MAC':>9} "
            f"{'cycles':>10} {'cyc/MAC':>8} {'flash B':>8} {'scratch B':>9} {'stack B':>7} "
            f"{'mismatch':>8}")
    rows = [head]
    for r in results:
        cyc = ("-", "-") if r.cycles is None else (str(r.cycles), f"{r.cycles_per_mac:.2f}")
        rows.append(f"{r.name:<6} {r.strategy:<14} {r.macs:>9} {r.instructions:>10} "
                    f"{r.per_mac:>9.2f} {cyc[0]:>10} {cyc[1]:>8} {r.flash_bytes:>8} "
                    f"{r.scratch_bytes:>9} {r.stack_bytes:>7} {r.mismatches:>8}")
    return "\n".join(rows)


def _anchor_cells(ours: float | None, anchor: float | None) -> list[str]:
    """The CMSIS-NN figure and our ratio to it ("n/a" where either is missing)."""
    if anchor is None:
        return ["n/a", "n/a"]
    return [f"{anchor:.2f}", "n/a" if ours is None else f"{ours / anchor:.2f}x"]


def markdown_table(runs: dict[str, list[LayerResult]], cpu: str,
                   timing: cycle_model.Timing | None = None, *, anchors: bool = True) -> str:
    """README table: ours (one column per optimisation level) next to CMSIS-NN.

    Estimated cycles (first optimisation level) appear when the runs have them; CMSIS-NN's
    cycle figures only under the timing they were estimated with (the defaults).
    ``anchors=False`` (layers other than the benchmark's, which may share a name such as
    ``L2``): every CMSIS-NN cell is n/a."""
    ipm, cpm, flash, scratch = ((ANCHOR_IPM, ANCHOR_CPM, ANCHOR_FLASH, ANCHOR_SCRATCH)
                                if anchors else ({}, {}, {}, {}))
    opts = list(runs)
    first = runs[opts[0]]
    with_cycles = all(r.cycles is not None for r in first)
    defaults = timing is not None and timing == cycle_model.TIMINGS.get(timing.cpu)
    head = ["layer (strategy)", "MACs", *[f"ours -{o} instr/MAC" for o in opts],
            "CMSIS-NN -O3", "ours/CMSIS-NN"]
    if with_cycles:
        head += [f"ours -{opts[0]} cycles/MAC", "CMSIS-NN cycles/MAC", "cycles ours/CMSIS-NN"]
    head += [f"flash B -{opts[0]} (CMSIS-NN)", "scratch B (CMSIS-NN)", f"stack B -{opts[0]}"]
    lines = ["| " + " | ".join(head) + " |",
             "|---|" + "---:|" * (len(head) - 1)]
    for i, r in enumerate(first):
        ours = [runs[o][i].per_mac for o in opts]
        cells = [f"{r.name} ({r.strategy})", f"{r.macs:,}", *[f"{v:.2f}" for v in ours],
                 *_anchor_cells(ours[0], ipm.get(r.name, {}).get(cpu))]
        if with_cycles:
            anchor = cpm.get(r.name, {}).get(cpu) if defaults else None
            cells += [f"{r.cycles_per_mac:.2f}", *_anchor_cells(r.cycles_per_mac, anchor)]
        flash_anchor = flash.get(r.name, {}).get(cpu)
        cells += [f"{r.flash_bytes:,} ({f'{flash_anchor:,}' if flash_anchor else 'n/a'})",
                  f"{r.scratch_bytes} ({scratch.get(r.name, 'n/a')})",
                  str(r.stack_bytes)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _select(layers: list[Any], names: str | None) -> list[Any]:
    if names is None:
        return layers
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = [layer.name for layer in layers]
    for n in wanted:
        if n not in known:
            raise ValueError(f"layers={names!r}: {n!r} unknown, allowed are {', '.join(known)}"
                             " (or bench, seed, or a .py file defining LAYERS)")
    return [layer for layer in layers if layer.name in wanted]


def layers_from(source: str | None) -> tuple[list[Any], bool]:
    """The layers ``--layers`` names, and whether they are benchmark layers (which have
    CMSIS-NN figures to compare with): ``bench`` (L1-L7, the default), names of some of
    them (``L2,L7``), ``seed``, or a Python file defining ``LAYERS`` or ``layers()`` (as
    ``edgeconv verify`` and ``generate`` take)."""
    bench = list(benchmark_layers().values())
    if source is None or source == "bench":
        return bench, True
    if source == "seed" or source.endswith(".py") or Path(source).is_file():
        from edgeconv.cli import load_layers

        return load_layers(source), False
    return _select(bench, source), True


def with_cpu(target: str, cpu: str | None) -> str:
    """``target`` with ``--cpu`` folded in (``qemu:mps2-an385`` + ``cortex-m0`` ->
    ``qemu:mps2-an385:cortex-m0``); ValueError when the target already names another CPU."""
    if cpu is None:
        return target
    head, sep, named = target.rpartition(":")
    if target.count(":") >= 2 and sep:
        if named != cpu:
            raise ValueError(f"--cpu {cpu!r}: the target {target!r} already names {named!r}")
        return target
    return f"{target}:{cpu}"


EPILOG = """examples:
  edgeconv bench --target qemu:mps2-an386 --layers L2,L7
  edgeconv bench --target qemu:mps2-an385 --cpu cortex-m0 --layers my_layers.py --opt O3
  edgeconv bench --target qemu:mps3-an547 --markdown
  edgeconv bench model.tflite --target qemu:mps2-an386   (a whole model: per node)
my_layers.py defines LAYERS = [...] (edgeconv layers) or layers(); every output is checked
against the reference model, instructions are counted under QEMU -icount."""


def main(argv: list[str] | None = None) -> int:
    """``edgeconv bench``: run the benchmark layers on a QEMU board and print the table."""
    from edgeconv.cli import HelpFormatter

    parser = argparse.ArgumentParser(prog="edgeconv bench", description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter, epilog=EPILOG)
    boards = ", ".join(f"qemu:{b.name} ({b.cpu})" for b in BOARDS.values() if b.per_tick)
    parser.add_argument("--target", default="qemu:mps2-an386",
                        help=f"qemu:<board>[:<cpu>], one of {boards}; "
                             "qemu:mps2-an385:cortex-m0 runs M0 code")
    parser.add_argument("--cpu", help="CPU override: qemu:mps2-an385 also runs cortex-m0 "
                                      "code (the same as --target qemu:mps2-an385:cortex-m0)")
    parser.add_argument("--layers", default="bench",
                        help="bench (L1-L7) | some of them, e.g. L2,L7 | seed | a .py file "
                             "defining LAYERS")
    parser.add_argument("--opt", default="O3,Os", help="optimisation levels, e.g. O3 or O3,Os")
    parser.add_argument("--generic", action="store_true",
                        help="benchmark the generic kernels instead of the fast paths")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON ('-' for "
                                                       "stdout; no progress bars)")
    parser.add_argument("--markdown", action="store_true",
                        help="print the README table (ours next to CMSIS-NN) instead")
    parser.add_argument("--no-cycles", action="store_true",
                        help="skip the instruction trace and the cycle estimate (faster)")
    parser.add_argument("--flash-wait", type=int, default=None, metavar="N",
                        help="flash wait states added per non-sequential fetch and literal "
                             "load (default 0; e.g. 5 for an STM32F4 at 168 MHz, ART off)")
    parser.add_argument("--flash-data", action="store_true",
                        help="with --flash-wait: data reads from flash (weights, tables) pay "
                             "the wait states too (reads registers from the trace: slower)")
    parser.add_argument("--branch-refill", type=int, default=None, metavar="P",
                        help="pipeline refill cycles after a taken branch, 1..3 (default: "
                             "the CPU's table, 1 on M3/M4/M7/M33/M55, 2 on M0)")
    parser.add_argument("--m0-mul", type=int, default=None, metavar="CYCLES",
                        help="Cortex-M0 multiplier: 1 (default) or 32 cycles")
    args = parser.parse_args(argv)
    with progress.quiet(bool(args.json)):
        return _bench(args)


def _bench(args: argparse.Namespace) -> int:
    """The benchmark ``main`` parsed: run, print, write the JSON; 1 on a mismatch."""
    from edgeconv.cli import write_json

    args.target = with_cpu(args.target, args.cpu)
    _, cpu = _board(args.target)
    opts = [o.strip() for o in args.opt.split(",") if o.strip()]
    for o in opts:
        if o not in OPTS:
            raise ValueError(f"opt={o!r}: allowed are {', '.join(OPTS)}")
    if args.no_cycles and ((args.flash_wait, args.branch_refill, args.m0_mul) != (None,) * 3
                           or args.flash_data):
        raise ValueError("--no-cycles: --flash-wait, --flash-data, --branch-refill and "
                         "--m0-mul apply only to the cycle estimate")
    if args.flash_data and not args.flash_wait:
        raise ValueError(f"--flash-data needs --flash-wait N with N > 0 (got "
                         f"{args.flash_wait!r})")
    timing = None if args.no_cycles else cycle_model.timing(
        cpu, flash_wait=args.flash_wait, branch_refill=args.branch_refill,
        mul_cycles=args.m0_mul)
    layers, anchored = layers_from(args.layers)
    runs = {o: run(layers, args.target, o, fast=not args.generic,
                   timing=timing if o == opts[0] or not args.markdown else None,
                   flash_data=args.flash_data)
            for o in opts}
    bad = [r.name for rs in runs.values() for r in rs if r.mismatches]
    out = sys.stderr if args.json == "-" else sys.stdout  # stdout holds the JSON only
    if args.markdown:
        print(markdown_table(runs, cpu, timing, anchors=anchored), file=out)
    else:
        for o, results in runs.items():
            print(f"{args.target} ({cpu}, -{o})", file=out)
            print(text_table(results), file=out)
    if args.json:
        doc: dict[str, Any] = {"target": args.target, "cpu": cpu, "runs": {
            o: [{**asdict(r), "instructions_per_mac": r.per_mac,
                 "cycles_per_mac": r.cycles_per_mac} for r in rs]
            for o, rs in runs.items()}}
        if timing is not None:
            doc["cycle_model"] = {"cpu": timing.cpu, "source": timing.source,
                                  "flash_wait": timing.flash_wait,
                                  "flash_data": args.flash_data,
                                  "branch_refill": timing.branch_refill}
        write_json(args.json, doc)
    if bad:
        print(f"output mismatches in: {', '.join(sorted(set(bad)))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
