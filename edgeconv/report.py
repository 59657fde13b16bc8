"""``edgeconv report``: one self-contained HTML page about a model or a layer list on a
target, its plots drawn by matplotlib and embedded as PNG (no file or network beside it).

What the page shows, and where each figure comes from:

- **Count per layer** (bars): on a QEMU board, instructions counted under ``-icount``
  (:mod:`edgeconv.bench.model` for a model, node by node; :mod:`edgeconv.bench.target`
  for a layer list, which also estimates cycles from an instruction trace and the CPU's
  timing table, :mod:`edgeconv.bench.cycles`); on ``native``, host nanoseconds of the same
  generated C (noisy, not a microcontroller figure). Every output is compared bit for bit
  with the reference model while measuring.
- **Flash per layer** (bars): ``.text`` + ``.rodata`` of each layer's symbols in the built
  image (``nm``); on ``native`` that is host code, not Cortex-M code.
- **Memory**: a model's arena plan (:func:`edgeconv.codegen.arena.plan_arena`, as the
  generated ``net_run`` uses it): every activation tensor and scratch buffer as a box of
  its offset (bytes) by its lifetime (steps). A layer list has no arena: its input, output
  and scratch bytes per layer instead.
- **Fixed point against float**, for layers that come from float: layers built with
  ``from_float`` (their ``float_origin``: the float weights and bias before quantization)
  and the CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED nodes of a .tflite model (whose
  float weights are not in the file: the reference is the node computed in float64 with
  its dequantized weights and bias, so there it shows the requantization of the output,
  not the weight quantization). Both sides see the same input: the integer input the
  layer gets, dequantized (``scale * (q - zero_point)``); the float side applies the
  layer's activation as a real clamp (ReLU, ReLU6, ...). The error is the dequantized
  fixed-point output minus the float output, in units of the output scale (LSB): a
  histogram, and the SQNR per output channel, ``10 log10(sum y_float**2 / sum err**2)``.
  The inputs are random (the benchmark's full-range integers; a float-input model gets
  standard normal floats), so these figures describe the arithmetic, not a data set.

``build(source, target=...)`` collects the figures (:class:`ReportData`), ``render(data)``
returns the HTML, ``to_json(data)`` the figures as a JSON-able dict.
"""

from __future__ import annotations

import base64
import io
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgeconv.layers import _quant

OPTS = ("O3", "Os")
ERROR_SAMPLES = 4096  # at least this many outputs per layer for the float comparison
MODEL_INPUTS = 4  # random inputs run through a model for the float comparison


@dataclass(frozen=True)
class LayerRow:
    """One layer (or model node) as measured on the target."""

    name: str
    op: str
    kernel: str
    macs: int
    count: int | None
    cycles: int | None
    flash_bytes: int | None
    input_bytes: int
    output_bytes: int
    scratch_bytes: int
    mismatches: int | None


@dataclass(frozen=True)
class FloatError:
    """A float-origin layer's fixed-point output against its float computation."""

    layer: str
    op: str
    reference: str
    output_scale: float
    error_lsb: np.ndarray  # (samples, channels): (fixed - float) / output_scale
    clamped: np.ndarray  # (samples, channels) bool: the float sum lies outside the clamp
    sqnr_db: np.ndarray  # per output channel over every output (inf: no error, nan: no
    #                      signal either)

    @property
    def samples(self) -> int:
        return int(self.error_lsb.size)

    @property
    def in_range(self) -> np.ndarray:
        """The errors of the outputs whose float sum lies within the layer's clamp."""
        return self.error_lsb[~self.clamped]

    @property
    def max_abs_lsb(self) -> float:
        """Largest |error| over the outputs in range (0 when none is)."""
        inside = self.in_range
        return float(np.abs(inside).max()) if inside.size else 0.0

    @property
    def max_abs_all_lsb(self) -> float:
        """Largest |error| over every output, clamped ones included."""
        return float(np.abs(self.error_lsb).max())

    @property
    def rms_lsb(self) -> float:
        """RMS error over the outputs in range."""
        inside = self.in_range
        return float(np.sqrt(np.mean(inside ** 2))) if inside.size else 0.0


@dataclass(frozen=True)
class ArenaBox:
    """One buffer of the arena plan: ``size`` bytes at ``offset``, live ``first..last``."""

    label: str
    kind: str  # "tensor" or "scratch"
    offset: int
    size: int
    first: int
    last: int


@dataclass
class ReportData:
    """Everything the page shows (see the module docstring)."""

    title: str
    source: str
    target: str
    cpu: str
    opt: str
    count_unit: str | None
    rows: list[LayerRow]
    total_count: int | None = None  # a model's whole net_run, measured as one call
    arena_bytes: int | None = None
    arena_steps: int = 0
    arena_peak_live: int | None = None
    arena: list[ArenaBox] = field(default_factory=list)
    float_errors: list[FloatError] = field(default_factory=list)
    mismatches: int = 0
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- progress

class _Steps:
    """A tqdm bar over the report's steps on stderr; silent when ``quiet`` or where
    :mod:`edgeconv.progress` draws none (stderr not a terminal, ``EDGECONV_PROGRESS=0``)."""

    def __init__(self, total: int, quiet: bool) -> None:
        from tqdm import tqdm

        from edgeconv import progress

        self._bar = tqdm(total=total, desc="edgeconv report", unit="step", leave=False,
                         file=sys.stderr, disable=quiet or not progress.enabled())

    def step(self, what: str, extra_total: int = 0) -> None:
        """Announce the step that starts now (and ``extra_total`` more steps to come)."""
        if extra_total:
            self._bar.total += extra_total
            self._bar.refresh()
        self._bar.set_postfix_str(what, refresh=True)

    def done(self) -> None:
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


# ----------------------------------------------------------------------------- float

@dataclass(frozen=True)
class FloatReference:
    """The float layer a fixed-point layer stands for: weights in the layer's integer
    layout, bias, input and output quantization and the activation's real clamp."""

    weights: np.ndarray
    bias: np.ndarray | None
    input_scale: float
    output_scale: float
    bounds: tuple[float | None, float | None]
    source: str


def float_reference(layer: Any) -> FloatReference | None:
    """The reference of a layer built with ``from_float`` (None for any other layer)."""
    origin = getattr(layer, "float_origin", None)
    if not isinstance(origin, _quant.FloatOrigin):
        return None
    return FloatReference(origin.weights, origin.bias, origin.input_scale,
                          origin.output_scale, _quant.activation_bounds(origin.activation),
                          "float weights and bias before quantization (from_float)")


def _node_reference(model: Any, node: Any) -> FloatReference | None:
    """A CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED node with dequantized weights."""
    op = node.operator
    if op.opcode not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        return None
    x, w = model.tensors[op.inputs[0]], model.tensors[op.inputs[1]]
    y = model.tensors[op.outputs[0]]
    if x.quantization is None or y.quantization is None or w.quantization is None:
        return None
    axis = 3 if op.opcode == "DEPTHWISE_CONV_2D" else 0
    w_scale = w.quantization.scale.astype(np.float64)
    shape = [1] * w.data.ndim
    shape[axis] = -1
    weights = w.data.astype(np.float64) * (w_scale.reshape(shape) if w_scale.size > 1
                                           else w_scale[0])
    s_in = float(x.quantization.scale[0])
    bias = None
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        # in accumulator units, s_in * s_w per channel, as the integer kernel adds it (the
        # bias tensor's own float32 scale is that product rounded)
        bias = model.tensors[op.inputs[2]].data.astype(np.float64) * s_in * w_scale
    return FloatReference(weights, bias, s_in,
                          float(y.quantization.scale[0]),
                          _quant.activation_bounds(op.options.get("fused_activation_function",
                                                                  "NONE")),
                          "the node in float64 with its dequantized weights and bias")


def float_forward(layer: Any, ref: FloatReference, x: np.ndarray) -> np.ndarray:
    """The float layer on real input ``x`` (batched: ``(N, *layer.input_shape)``), in
    float64: :func:`float_sum`, then the activation's clamp."""
    low, high = ref.bounds
    return np.clip(float_sum(layer, ref, x), -np.inf if low is None else low,
                   np.inf if high is None else high)


def float_sum(layer: Any, ref: FloatReference, x: np.ndarray) -> np.ndarray:
    """The float layer before its activation: the layer's geometry (stride, pads,
    dilation, groups) with ``ref``'s weights on real input ``x`` (batched), plus the bias."""
    from edgeconv.im2col import im2col
    from edgeconv.layers import Conv1D, DepthwiseConv2D
    from edgeconv.layers.dense import FullyConnected

    w = ref.weights
    if isinstance(layer, FullyConnected):
        acc = x @ w.T
    else:
        one_d = isinstance(layer, Conv1D)
        x4 = x[:, None] if one_d else x
        if one_d:  # the 2-D case with height 1: weights (O, KW, I/g) -> (O, 1, KW, I/g)
            w = w[:, None]
            pads = ((0, 0), layer.pads_for()[0])
            stride, dilation = (1, layer.stride[0]), (1, layer.dilation[0])
        else:
            pads, stride, dilation = layer.pads_for(), layer.stride, layer.dilation
        kh, kw = w.shape[1], w.shape[2]
        cols = im2col(x4, (kh, kw), stride, pads, dilation, pad_value=0.0)
        n, oh, ow = cols.shape[:3]
        c = x4.shape[-1]
        if isinstance(layer, DepthwiseConv2D):
            # output channel c * depth_multiplier + m reads input channel c
            taps = cols.reshape(n, oh, ow, kh, kw, c)
            acc = np.einsum("nhwabc,abcm->nhwcm", taps,
                            w.reshape(kh, kw, c, layer.depth_multiplier))
        else:
            g = layer.groups
            taps = cols.reshape(n, oh, ow, kh, kw, g, c // g)
            acc = np.einsum("nhwabgc,goabc->nhwgo", taps,
                            w.reshape(g, w.shape[0] // g, kh, kw, c // g))
        acc = acc.reshape(n, oh, ow, -1)
        if one_d:
            acc = acc[:, 0]
    return acc if ref.bias is None else acc + ref.bias


def layer_error(layer: Any, ref: FloatReference, x: np.ndarray, y: np.ndarray,
                name: str | None = None) -> FloatError:
    """The error of ``y = layer(x)`` (integer, batched) against the float layer on the
    same input dequantized (see the module docstring)."""
    x_real = ref.input_scale * (x.astype(np.float64) - layer.input_zero_point)
    pre = float_sum(layer, ref, x_real)
    low, high = ref.bounds
    want = np.clip(pre, -np.inf if low is None else low, np.inf if high is None else high)
    s_out, zp_out = ref.output_scale, layer.output_zero_point
    got = s_out * (y.astype(np.float64) - zp_out)
    channels = want.shape[-1]
    err = (got - want).reshape(-1, channels)
    # outside the integer clamp [activation_min, activation_max] (by more than half a step)
    # the output is clamped: by the activation (ReLU's zeros) or by the output range
    clamped = ((pre < s_out * (layer.activation_min - zp_out - 0.5))
               | (pre > s_out * (layer.activation_max - zp_out + 0.5))).reshape(-1, channels)
    signal = np.sum(want.reshape(-1, channels) ** 2, axis=0)
    noise = np.sum(err ** 2, axis=0)
    # a channel without error is exact (inf); one without signal either (every output
    # clamped to zero, e.g. a ReLU channel the random input never opens) has no SQNR (nan)
    with np.errstate(divide="ignore"):
        sqnr = np.where(noise > 0, 10 * np.log10(np.maximum(signal, 1e-300) / np.where(
            noise > 0, noise, 1.0)), np.where(signal > 0, np.inf, np.nan))
    return FloatError(name or layer.name, type(layer).__name__, ref.source, s_out,
                      err / s_out, clamped, sqnr)


def _layer_list_errors(layers: list[Any], seed: int, steps: _Steps) -> list[FloatError]:
    from edgeconv.bench.layers import benchmark_input

    out = []
    for layer in layers:
        ref = float_reference(layer)
        if ref is None:
            continue
        steps.step(f"float reference {layer.name}")
        per_call = int(np.prod(layer.output_shape))
        batch = int(min(64, max(1, -(-ERROR_SAMPLES // per_call))))
        x = benchmark_input(layer, seed=seed, batch=batch)
        out.append(layer_error(layer, ref, x, layer(x)))
        steps.done()
    return out


def _model_errors(net: Any, seed: int, steps: _Steps) -> list[FloatError]:
    model = net.model
    refs = {s.index: _node_reference(model, model.nodes[s.index]) for s in net.steps
            if s.kind == "kernel"}
    refs = {i: r for i, r in refs.items() if r is not None}
    if not refs:
        return []
    steps.step("the model on random inputs, float references", extra_total=1)
    rng = np.random.default_rng(seed)
    shape = model.inputs[0].shape
    traces = []
    for _ in range(MODEL_INPUTS):
        if net.activation_dtype == np.float32:
            x = rng.normal(size=shape).astype(np.float32)
        else:
            info = np.iinfo(net.activation_dtype)
            x = rng.integers(info.min, int(info.max) + 1, shape).astype(net.activation_dtype)
        traces.append(model.trace(x))
    out = []
    for step in net.steps:
        ref = refs.get(step.index)
        if ref is None:
            continue
        layer = step.layer
        xs = np.stack([t[model.key(step.inputs[0])].reshape(layer.input_shape) for t in traces])
        ys = np.stack([t[model.key(step.output)].reshape(layer.output_shape) for t in traces])
        out.append(layer_error(layer, ref, xs, ys, name=layer.name))
    steps.done()
    return out


# ----------------------------------------------------------------------------- measuring

def _bytes(shape: Any, dtype: Any) -> int:
    return int(np.prod(shape)) * np.dtype(dtype).itemsize


def _model_data(path: str, target: str, opt: str, seed: int, steps: _Steps) -> ReportData:
    import edgeconv
    from edgeconv.bench import model as bench_model
    from edgeconv.codegen import Network, plan_layers
    from edgeconv.targets import parse_spec

    spec = parse_spec(target)
    net = Network(edgeconv.load(path))
    planned = {p.ctx.name: p for p in plan_layers([net], cpu=spec.cpu)}
    steps.step(f"build and run on {target}")
    fig = bench_model.run(path, target, opt=opt, seed=seed)
    steps.done()
    step_of = {s.layer.name: s for s in net.steps if s.kind == "kernel"}
    tensors = net.model.tensors
    rows = []
    for r in fig.layers:
        s = step_of[r.name]
        rows.append(LayerRow(r.name, r.op, r.kernel, r.macs, r.instructions, None,
                             r.flash_bytes, sum(_bytes(tensors[t].shape, tensors[t].dtype)
                                                for t in s.inputs),
                             _bytes(tensors[s.output].shape, tensors[s.output].dtype),
                             planned[r.name].plan.scratch_bytes, r.mismatches))
    scratch = {name: p.plan.scratch_bytes for name, p in planned.items()}
    plan = net.plan(scratch)
    producer = {f"t{s.output}": s for s in net.steps}
    boxes = []
    for b in plan.buffers:
        if b.name.startswith("scratch"):
            step = net.steps[int(b.name[len("scratch"):])]
            label, kind = f"scratch of {_short(step)}", "scratch"
        else:
            label, kind = f"output of {_short(producer[b.name])}", "tensor"
        boxes.append(ArenaBox(label, kind, plan.offsets[b.name], b.size, b.first, b.last))
    data = ReportData(f"{Path(path).name} on {target}", path, target, fig.cpu, opt,
                      fig.count_unit, rows, total_count=fig.instructions,
                      arena_bytes=plan.size, arena_steps=plan.steps,
                      arena_peak_live=plan.peak_live_bytes(), arena=boxes,
                      mismatches=fig.mismatches)
    data.notes.append(f"net_run on one random input: {_count(fig.instructions, fig.count_unit)}"
                      f" for {fig.macs:,} MACs; arena {plan.size:,} B, plus "
                      f"{fig.io_bytes:,} B of input and output buffers owned by the caller")
    if any(r.count is None for r in rows):
        data.notes.append("the nodes' own buffers did not fit the board next to the arena: "
                          "per-node counts are missing, the whole network was measured")
    data.float_errors = _model_errors(net, seed, steps)
    return data


def _short(step: Any) -> str:
    return step.layer.name if step.layer is not None else f"{step.index:02d} {step.opcode}"


def _count(value: int | None, unit: str | None) -> str:
    return "-" if value is None else f"{value:,} {unit or ''}".strip()


def _layers_data(source: str, layers: list[Any], target: str, opt: str, seed: int,
                 steps: _Steps) -> ReportData:
    from edgeconv import targets
    from edgeconv.codegen import plan_layers

    spec = targets.parse_spec(target)
    io_bytes = {layer.name: (_bytes(layer.input_shape, layer.activation_dtype),
                             _bytes(layer.output_shape, getattr(layer, "output_dtype",
                                                                layer.activation_dtype)))
                for layer in layers}
    steps.step(f"build and run on {target}")
    notes = []
    if spec.kind == "qemu" and spec.board.per_tick:  # a counter of known rate: the benchmark
        from edgeconv.bench import cycles as cycle_model
        from edgeconv.bench import target as bench_target

        results = bench_target.run(layers, target, opt, timing=cycle_model.timing(spec.cpu))
        rows = [LayerRow(r.name, type(layer).__name__, r.strategy, r.macs, r.instructions,
                         r.cycles, r.flash_bytes, *io_bytes[r.name], r.scratch_bytes,
                         r.mismatches) for r, layer in zip(results, layers, strict=True)]
        unit = "instructions"
        notes.append("instructions counted under QEMU -icount; cycles estimated from an "
                     "instruction trace with the CPU's timing table (edgeconv.bench.cycles: "
                     "0 flash wait states, what the model leaves out is written there)")
    else:
        from edgeconv.bench.layers import benchmark_input
        from edgeconv.bench.target import flash_bytes

        layers, skipped = targets.fitting_layers(target, layers)
        if not layers:
            raise ValueError(f"no layer fits {target}")
        if skipped:
            notes.append(f"left out, their buffers exceed {target}'s RAM: "
                         f"{', '.join(layer.name for layer in skipped)}")
        planned = {p.ctx.name: p for p in plan_layers(layers, cpu=spec.cpu)}
        rows = []
        with targets.open(target, layers, opt=opt) as session:
            unit = session.count_unit
            for layer in layers:
                x = benchmark_input(layer, seed=seed)
                got = session.run(layer.name, x)
                bad = int(np.count_nonzero(got != np.asarray(layer(x)).reshape(got.shape)))
                macs = int(layer.macs()) if hasattr(layer, "macs") else 0
                rows.append(LayerRow(layer.name, type(layer).__name__,
                                     planned[layer.name].plan.strategy, macs,
                                     session.last_count, None, None, *io_bytes[layer.name],
                                     planned[layer.name].plan.scratch_bytes, bad))
            image = session.image
        if image is not None:
            flash = flash_bytes(image, [r.name for r in rows],
                                nm="nm" if spec.kind == "native" else "arm-none-eabi-nm")
            rows = [replace(r, flash_bytes=flash[r.name]) for r in rows]
    steps.done()
    data = ReportData(f"{Path(source).name} on {target}", source, target, spec.cpu, opt, unit,
                      rows, mismatches=sum(r.mismatches or 0 for r in rows), notes=notes)
    data.float_errors = _layer_list_errors(layers, seed, steps)
    return data


def build(source: str | list[Any], *, target: str = "qemu:mps2-an386", opt: str = "O3",
          seed: int = 0, quiet: bool = False, label: str = "layers") -> ReportData:
    """Measure ``source`` (a .tflite path, or a list of layers named ``label`` in the
    title) on ``target`` and compute the float comparison; a progress bar on stderr unless
    ``quiet`` (or not a terminal)."""
    if opt not in OPTS:
        raise ValueError(f"opt={opt!r}: allowed are {', '.join(OPTS)}")
    if target.startswith("serial:"):
        raise ValueError(f"target={target!r}: the report runs on native or qemu:<board>")
    steps = _Steps(1, quiet)
    try:
        if isinstance(source, str | Path):
            data = _model_data(str(source), target, opt, seed, steps)
        else:
            layers = list(source)
            n_float = sum(float_reference(layer) is not None for layer in layers)
            steps.step("layers", extra_total=n_float)
            data = _layers_data(label, layers, target, opt, seed, steps)
        if data.count_unit == "ticks":
            data.notes.append(f"{target}: counts are ticks of the board's timer under QEMU, "
                              "which has no counter of known rate there: they do not track "
                              "the work done")
        if target == "native":
            data.notes.append("native: counts are host nanoseconds and flash is host code "
                              "bytes of the same generated C: not microcontroller figures")
        return data
    finally:
        steps.close()


# ----------------------------------------------------------------------------- plots

def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _legend_below(ax: Any, ncol: int) -> None:
    """The legend under the axes and their x label, where it hides no bar."""
    height = ax.get_position().height * ax.figure.get_figheight()  # inches
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.62 / height),
              ncol=ncol, frameon=False)


def _hbars(names: list[str], series: list[tuple[str, list[float | None]]], xlabel: str,
           title: str) -> str:
    import matplotlib.pyplot as plt

    n = len(names)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.34 * n * max(1, len(series) * 0.7)))
    height = 0.8 / len(series)
    y = np.arange(n)
    peak = max((v for _, vals in series for v in vals if v), default=1)
    for i, (label, values) in enumerate(series):
        vals = [0 if v is None else v for v in values]
        pos = y - 0.4 + height * (i + 0.5)
        ax.barh(pos, vals, height=height * 0.92, label=label, color=f"C{i}")
        for p, v, raw in zip(pos, vals, values, strict=True):
            text = "n/a" if raw is None else f"{v:,.0f}"
            ax.text(v + peak * 0.01, p, text, va="center", fontsize=7)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, peak * 1.15)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    if len(series) > 1:
        _legend_below(ax, len(series))
    return _png(fig)


def _count_plot(data: ReportData) -> str:
    names = [r.name for r in data.rows]
    series = [(data.count_unit or "count", [r.count for r in data.rows])]
    if any(r.cycles is not None for r in data.rows):
        series.append(("estimated cycles", [r.cycles for r in data.rows]))
    what = " and estimated cycles" if len(series) > 1 else ""
    return _hbars(names, series, " / ".join(label for label, _ in series),
                  f"{data.count_unit or 'count'}{what} per layer, {data.target} -{data.opt}")


def _flash_plot(data: ReportData) -> str:
    where = "host code + constants" if data.target == "native" else ".text + .rodata"
    return _hbars([r.name for r in data.rows], [("flash B", [r.flash_bytes for r in data.rows])],
                  "bytes", f"flash per layer ({where})")


def _arena_plot(data: ReportData) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(10, 5.5))
    colors = {"tensor": "C0", "scratch": "C1"}
    for b in data.arena:
        ax.add_patch(Rectangle((b.first - 0.45, b.offset), b.last - b.first + 0.9, b.size,
                               facecolor=colors[b.kind], edgecolor="black", linewidth=0.6,
                               alpha=0.75))
        if b.size >= 0.06 * (data.arena_bytes or 1):
            ax.text((b.first + b.last) / 2, b.offset + b.size / 2,
                    b.label.replace(" of ", "\n"), ha="center", va="center", fontsize=6.5)
    live = [sum(b.size for b in data.arena if b.first <= s <= b.last)
            for s in range(data.arena_steps)]
    ax.step(range(data.arena_steps), live, where="mid", color="C3", linewidth=1.2,
            label="bytes live (sum of live buffers)")
    ax.axhline(data.arena_bytes or 0, color="black", linestyle="--", linewidth=1,
               label=f"arena {data.arena_bytes:,} B")
    ax.set_xlim(-0.7, max(data.arena_steps, 1) - 0.3)
    ax.set_ylim(0, (data.arena_bytes or 1) * 1.08)
    ax.set_xlabel("step of net_run (node index)")
    ax.set_ylabel("offset in the arena (bytes)")
    ax.set_xticks(range(data.arena_steps))
    ax.set_title("arena plan: each buffer a box of offset x lifetime "
                 "(blue: tensors, orange: scratch)", fontsize=10)
    _legend_below(ax, 2)
    return _png(fig)


def _io_plot(data: ReportData) -> str:
    import matplotlib.pyplot as plt

    names = [r.name for r in data.rows]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.34 * len(names)))
    left = np.zeros(len(names))
    for i, (label, vals) in enumerate((("input", [r.input_bytes for r in data.rows]),
                                        ("output", [r.output_bytes for r in data.rows]),
                                        ("scratch", [r.scratch_bytes for r in data.rows]))):
        ax.barh(names, vals, left=left, label=label, color=f"C{i}")
        left += np.asarray(vals, dtype=float)
    ax.invert_yaxis()
    ax.set_xlabel("bytes")
    ax.set_title("RAM per layer call: input, output and scratch buffers", fontsize=10)
    _legend_below(ax, 3)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _error_plot(e: FloatError) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.1))
    inside = e.in_range
    span = max(1.0, float(np.abs(inside).max()) if inside.size else 1.0)
    left.hist(inside, bins=np.linspace(-span, span, 61), color="C0")
    left.set_xlabel("fixed point - float (output LSB)")
    left.set_ylabel("outputs")
    clamped = int(e.clamped.sum())
    left.set_title(f"{e.layer}: error of {inside.size:,} outputs in range"
                   + (f" ({clamped:,} clamped not shown)" if clamped else ""), fontsize=9)
    ch = np.arange(len(e.sqnr_db))
    finite = np.isfinite(e.sqnr_db)
    right.bar(ch[finite], e.sqnr_db[finite], color="C2", width=0.85)
    med = _median(e.sqnr_db)
    if med is not None:
        right.axhline(med, color="black", linestyle="--", linewidth=1,
                      label=f"median {med:.1f} dB")
    top = max(10.0, float(e.sqnr_db[finite].max()) if finite.any() else 10.0)
    for mask, marker, label in ((np.isposinf(e.sqnr_db), "^", "exact (no error)"),
                                (np.isnan(e.sqnr_db), "x", "no signal: all outputs 0")):
        if mask.any():
            right.plot(ch[mask], np.full(mask.sum(), top * 0.03), marker, color="C7",
                       linestyle="none", markersize=5, label=f"{label}: {mask.sum()}")
    right.set_ylim(0, top * 1.1)
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    if right.get_legend_handles_labels()[0]:
        right.legend(fontsize=7, loc="lower right", framealpha=0.9)
    right.set_xlabel("output channel")
    right.set_ylabel("SQNR (dB)")
    right.set_title(f"{e.layer}: SQNR per channel", fontsize=9)
    fig.subplots_adjust(wspace=0.25)
    return _png(fig)


# ----------------------------------------------------------------------------- page

def render(data: ReportData, *, quiet: bool = True) -> str:
    """The self-contained HTML page of ``data``."""
    import jinja2
    import matplotlib

    from edgeconv.resources import templates_dir

    matplotlib.use("Agg")
    steps = _Steps(3 + len(data.float_errors), quiet)
    plots: dict[str, str] = {}
    try:
        for key, fn in (("counts", _count_plot), ("flash", _flash_plot),
                        ("memory", _arena_plot if data.arena else _io_plot)):
            steps.step(f"plot {key}")
            plots[key] = fn(data)
            steps.done()
        errors = []
        for e in data.float_errors:
            steps.step(f"plot {e.layer}")
            errors.append({"e": e, "png": _error_plot(e), "median_sqnr": _median(e.sqnr_db)})
            steps.done()
    finally:
        steps.close()
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir() / "report")),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    from edgeconv import __version__

    return env.get_template("report.html.j2").render(
        d=data, plots=plots, errors=errors, version=__version__,
        total_macs=sum(r.macs for r in data.rows),
        total_flash=sum(r.flash_bytes or 0 for r in data.rows),
        has_cycles=any(r.cycles is not None for r in data.rows),
        fmt=lambda v: "-" if v is None else f"{v:,}")


def _median(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return None if finite.size == 0 else float(np.median(finite))


def to_json(data: ReportData) -> dict[str, Any]:
    """The figures of ``data`` as a JSON-able dict (errors summarised per layer)."""
    return {
        "title": data.title, "source": data.source, "target": data.target, "cpu": data.cpu,
        "opt": data.opt, "count_unit": data.count_unit, "total_count": data.total_count,
        "mismatches": data.mismatches,
        "layers": [r.__dict__ for r in data.rows],
        "arena": None if data.arena_bytes is None else {
            "bytes": data.arena_bytes, "peak_live_bytes": data.arena_peak_live,
            "buffers": [b.__dict__ for b in data.arena]},
        "float_errors": [{"layer": e.layer, "op": e.op, "reference": e.reference,
                          "samples": e.samples, "clamped": int(e.clamped.sum()),
                          "max_abs_lsb": e.max_abs_lsb, "max_abs_all_lsb": e.max_abs_all_lsb,
                          "rms_lsb": e.rms_lsb, "median_sqnr_db": _median(e.sqnr_db),
                          "exact_channels": int(np.isposinf(e.sqnr_db).sum()),
                          "sqnr_db": [float(v) if np.isfinite(v) else None
                                      for v in e.sqnr_db]}
                         for e in data.float_errors],
        "notes": data.notes,
    }


def write(data: ReportData, path: str | Path, *, quiet: bool = True) -> Path:
    """Render ``data`` to ``path`` (an .html file); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data, quiet=quiet), encoding="utf-8")
    return path
