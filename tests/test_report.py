"""``edgeconv report``: the float side of the fixed-point comparison against torch and
against the integer layers' own rounding bound, and the page rendered in headless
Chromium (not blank, every plot decoded, every section there)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import edgeconv
from edgeconv import cli, report
from edgeconv.codegen import Network
from edgeconv.layers import Conv1D, Conv2D, DepthwiseConv2D
from edgeconv.layers.dense import FullyConnected

MODELS = Path(__file__).parent / "models"
SECTIONS = ("summary", "counts", "flash", "memory", "float-error", "notes")


def _layers() -> list:
    rng = np.random.default_rng(5)
    return [
        Conv2D.from_float(rng.normal(size=(6, 3, 2, 2)) / 3, rng.normal(size=6) / 10,
                          input_scale=1 / 64, output_scale=1 / 16, activation="relu",
                          stride=(2, 1), dilation=(1, 2), padding="same", groups=2,
                          name="grouped", input_shape=(9, 8, 4)),
        DepthwiseConv2D.from_float(rng.normal(size=(1, 3, 3, 6)) / 3, None, input_scale=1 / 64,
                                   output_scale=1 / 32, depth_multiplier=2, padding="valid",
                                   activation="relu6", name="dw", input_shape=(7, 6, 3)),
        Conv1D.from_float(rng.normal(size=(5, 4, 3)) / 3, rng.normal(size=5) / 10,
                          input_scale=1 / 64, output_scale=1 / 16, stride=2, padding="same",
                          name="c1d", input_shape=(21, 3)),
        FullyConnected.from_float(rng.normal(size=(7, 24)) / 5, rng.normal(size=7) / 10,
                                  input_scale=1 / 64, output_scale=1 / 32, name="fc",
                                  input_shape=(24,)),
    ]


def _torch_float(layer, x: np.ndarray) -> np.ndarray:
    """The float layer through torch (NCHW), an oracle independent of the report's im2col."""
    o = layer.float_origin
    w = torch.from_numpy(np.array(o.weights))
    b = None if o.bias is None else torch.from_numpy(np.array(o.bias))
    t = torch.from_numpy(x)
    if isinstance(layer, FullyConnected):
        return F.linear(t, w, b).numpy()
    if isinstance(layer, Conv1D):
        (left, right), = layer.pads_for()
        y = F.conv1d(F.pad(t.permute(0, 2, 1), (left, right)), w.permute(0, 2, 1), b,
                     stride=layer.stride, dilation=layer.dilation, groups=layer.groups)
        return y.permute(0, 2, 1).numpy()
    (top, bottom), (left, right) = layer.pads_for()
    xt = F.pad(t.permute(0, 3, 1, 2), (left, right, top, bottom))
    if isinstance(layer, DepthwiseConv2D):  # (1, KH, KW, C*m) -> (C*m, 1, KH, KW)
        wt, groups = w.permute(3, 0, 1, 2), x.shape[-1]
    else:  # OHWI -> OIHW
        wt, groups = w.permute(0, 3, 1, 2), layer.groups
    y = F.conv2d(xt, wt, b, stride=layer.stride, dilation=layer.dilation, groups=groups)
    return y.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("index", range(4), ids=["conv2d", "depthwise", "conv1d", "fc"])
def test_float_sum_matches_torch(index: int) -> None:
    layer = _layers()[index]
    x = np.random.default_rng(index).normal(size=(3, *layer.input_shape))
    ref = report.float_reference(layer)
    np.testing.assert_allclose(report.float_sum(layer, ref, x), _torch_float(layer, x),
                               rtol=1e-12, atol=1e-12)


def _rounding_bound(layer) -> float:
    """Requantization rounds to the output grid: within 0.5 LSB, plus half a step of the
    first rounding ('double': the high multiply, before a right shift of r bits; the
    channel with the smallest right shift has the largest such step)."""
    right = max(0, -int(np.max(layer.output_shift)))
    return 0.5 + (0.5 * 2.0 ** -right if right and layer.rounding == "double" else 0.0)


def test_model_nodes_differ_from_float_by_the_output_rounding_only() -> None:
    """With the model's own (dequantized) weights the float node and the integer node
    (bit-exact with LiteRT) differ by the requantization only, wherever not clamped."""
    net = Network(edgeconv.load(MODELS / "ds_cnn.tflite"))
    errors = report._model_errors(net, 0, report._Steps(1, quiet=True))
    layers = {s.layer.name: s.layer for s in net.steps if s.kind == "kernel"}
    assert [e.layer for e in errors] == [n for n in layers if "conv" in n or "dw" in n
                                         or "fc" in n]
    for e in errors:
        assert e.in_range.size > 0.3 * e.samples, e.layer
        assert e.max_abs_lsb <= _rounding_bound(layers[e.layer]) + 1e-6, e.layer
        assert e.max_abs_lsb > 0.4, e.layer  # a rounding error shows up at all


def test_from_float_exact_weights_leave_only_the_rounding() -> None:
    """Float weights and bias that quantize exactly (q * scale, max |q| = 127): the
    from_float layer's error against its float origin is the output rounding alone;
    clamped outputs are recognised as such."""
    rng = np.random.default_rng(1)
    q = rng.integers(-127, 128, (4, 3, 3, 2))
    q[:, 0, 0, 0] = 127
    # power-of-two scales and integer bias steps: float32 holds them exactly
    scales = np.array([1 / 128, 1 / 64, 1 / 256, 1 / 32])
    w = q * scales[:, None, None, None]
    bias = rng.integers(-500, 500, 4) * scales / 64
    layer = Conv2D.from_float(w, bias, input_scale=1 / 64,
                              output_scale=1 / 8, activation="relu", padding="same",
                              name="exact", input_shape=(6, 6, 2))
    assert np.array_equal(layer.weights, q)
    x = rng.integers(-128, 128, (8, 6, 6, 2)).astype(np.int8)
    e = report.layer_error(layer, report.float_reference(layer), x, layer(x))
    assert 0.4 < e.max_abs_lsb <= _rounding_bound(layer) + 1e-9
    # clamped: ReLU's zeros agree exactly, outputs saturated at the top fall short
    clamped = e.error_lsb[e.clamped]
    assert (clamped == 0).any() and (clamped <= 0).all()
    # SQNR per channel over every output, recomputed from torch's float layer
    want = np.maximum(_torch_float(layer, (x.astype(np.float64) - layer.input_zero_point)
                                   / 64), 0).reshape(-1, 4)
    got = (layer(x).astype(np.float64) - layer.output_zero_point).reshape(-1, 4) / 8
    sqnr = 10 * np.log10((want ** 2).sum(axis=0) / ((got - want) ** 2).sum(axis=0))
    np.testing.assert_allclose(e.sqnr_db, sqnr, rtol=1e-9)


def _chromium(args: list[str], page: Path, tmp: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("chromium not installed (scripts/sysdeps.sh installs it)")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--hide-scrollbars", f"--user-data-dir={tmp / 'profile'}", *args,
           page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


def _check_page(html: Path, plots: int, tmp: Path) -> None:
    """Render ``html`` headless: a screenshot that is not blank, every plot decoded."""
    text = html.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in text, section
    sources = re.findall(r'<img class="plot[^"]*" id="[^"]+" alt="[^"]*" '
                         r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(sources) == plots and all(len(s) > 1000 for s in sources)
    assert "http://" not in text and "https://" not in text  # self-contained
    # a copy that writes how many images the browser decoded into the title
    probe = tmp / f"probe-{html.name}"
    probe.write_text(text.replace("</body>", "<script>addEventListener('load', () => "
                                  "{document.title = 'decoded ' + [...document.images]"
                                  ".filter(i => i.complete && i.naturalWidth > 100)"
                                  ".length;});</script></body>"))
    dom = _chromium(["--dump-dom", "--virtual-time-budget=5000"], probe, tmp).stdout
    assert f"<title>decoded {plots}</title>" in dom
    shot = tmp / f"{html.stem}.png"
    _chromium([f"--screenshot={shot}", "--window-size=1200,3000"], html, tmp)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (3000, 1200)
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.01  # plots and text, not blank


def test_model_report_renders_in_chromium(tmp_path: Path, capsys) -> None:
    """A float-I/O model (QUANTIZE ... DEQUANTIZE) on the native target."""
    html, doc = tmp_path / "model.html", tmp_path / "model.json"
    assert cli.main(["report", str(MODELS / "small_cnn_float_io.tflite"), "--target", "native",
                     "-o", str(html), "--json", str(doc)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1  # --json: the summary line on stderr, no bar
    figures = json.loads(doc.read_text())
    ops = [r["op"] for r in figures["layers"]]
    assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE"
    assert all(r["count"] and r["flash_bytes"] and r["mismatches"] == 0
               for r in figures["layers"])
    arena = figures["arena"]
    assert arena["bytes"] >= arena["peak_live_bytes"] > 0
    assert len(arena["buffers"]) >= len(ops) - 2  # every tensor but the input and output
    compared = [e["layer"] for e in figures["float_errors"]]
    assert len(compared) == sum(op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
                                for op in ops) >= 3
    _check_page(html, 3 + len(compared), tmp_path)


LAYERS_FILE = '''
import numpy as np
from edgeconv.bench.layers import benchmark_layers
from edgeconv.layers import Conv1D

rng = np.random.default_rng(2)
LAYERS = [benchmark_layers()["L7"],
          Conv1D.from_float(rng.normal(size=(6, 5, 2)) / 3, rng.normal(size=6) / 10,
                            input_scale=1 / 64, output_scale=1 / 32, activation="relu",
                            padding="same", name="head", input_shape=(40, 2))]
'''


def test_layer_list_report_on_qemu_renders_in_chromium(tmp_path: Path) -> None:
    if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("qemu-system-arm or arm-none-eabi-gcc not installed")
    layers = tmp_path / "my_layers.py"
    layers.write_text(LAYERS_FILE)
    html, doc = tmp_path / "layers.html", tmp_path / "layers.json"
    assert cli.main(["report", "--layers", str(layers), "--target", "qemu:mps2-an386",
                     "-o", str(html), "--json", str(doc)]) == 0
    figures = json.loads(doc.read_text())
    rows = {r["name"]: r for r in figures["layers"]}
    assert list(rows) == ["L7", "head"]
    # the benchmark's figures: instructions under -icount and estimated cycles
    assert all(r["count"] > 0 and r["cycles"] >= r["count"] and r["flash_bytes"] > 0
               for r in rows.values())
    assert figures["count_unit"] == "instructions" and figures["arena"] is None
    assert [e["layer"] for e in figures["float_errors"]] == ["L7", "head"]
    _check_page(html, 3 + 2, tmp_path)


def test_report_user_errors_are_one_line(tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "r.html")
    for argv, words in ((["report", str(tmp_path / "none.tflite"), "-o", out], "no such file"),
                        (["report", "--layers", "bench", "--target", "serial:/dev/null",
                          "-o", out], "native or qemu"),
                        (["report", "--layers", "nothing", "-o", out], "neither")):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err and "Traceback" not in err
    assert not os.path.exists(out)


@pytest.mark.parametrize("argv", [["report", "--help"], ["--help"]])
def test_report_help_lists_examples(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "edgeconv report model.tflite --target qemu:mps2-an386 -o report.html" in text
    if argv[0] == "report":
        assert "(default: qemu:mps2-an386)" in text and "(default: O3)" in text


def test_readme_report_command_parses() -> None:
    """The README's report command names options the command has (running it takes a
    QEMU build of DS-CNN: the native runs above stand for it)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Reports"):]
    command = re.search(r"```sh\n(edgeconv report [^\n]+)\n```", section).group(1)
    args = cli.build_parser().parse_args(command.split()[1:])
    assert args.run is cli.cmd_report and args.target == "qemu:mps2-an386"
    assert (Path(__file__).resolve().parent.parent / args.source).is_file()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_bar_only_on_a_terminal_and_not_quiet(quiet: bool, monkeypatch) -> None:
    for stream, shown in ((_Terminal(), not quiet), (io.StringIO(), False)):
        monkeypatch.setattr("sys.stderr", stream)
        steps = report._Steps(2, quiet)
        steps.step("build and run on native")
        steps.done()
        steps.close()
        assert ("edgeconv report" in stream.getvalue()) == shown
