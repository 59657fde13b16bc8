"""``edgeconv bench`` on one's own layers and on a model (issue 14): the same figures as
for L1-L7, every output checked on the device against the reference model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgeconv.bench.target import LayerResult, markdown_table, with_cpu

MODEL = Path(__file__).parent / "models" / "conv_chain.tflite"

# A q31 filter (int32 outputs: the image's output buffer must hold 4-byte elements) and a
# q15 one, neither of them a benchmark layer.
LAYERS_PY = """
import numpy as np
from edgeconv.signal import SignalFilter

w = np.array([1, -1, 2, 3, -2, 1, 1, 2], dtype=np.int16)
LAYERS = [SignalFilter(w, mode="valid", fmt="q31", input_length=64, name="fir_q31"),
          SignalFilter(w, mode="same", fmt="q15", input_length=40, name="fir_q15")]
"""


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeconv.cli", *argv], capture_output=True,
                          text=True, timeout=300)


def test_bench_a_layers_file(tmp_path):
    layers = tmp_path / "my_layers.py"
    layers.write_text(LAYERS_PY)
    out = tmp_path / "bench.json"
    res = _cli("bench", "--target", "qemu:mps2-an386", "--layers", str(layers), "--opt", "O3",
               "--no-cycles", "--json", str(out))
    assert res.returncode == 0, res.stderr
    rows = json.loads(out.read_text())["runs"]["O3"]
    assert [r["name"] for r in rows] == ["fir_q31", "fir_q15"]
    # valid: 57 outputs x 8 taps; same (numpy's centring): the full 47 outputs' 40 x 8
    # products less the 3 dropped at the start (1+2+3 taps) and the 4 at the end (1+..+4)
    assert [r["macs"] for r in rows] == [57 * 8, 40 * 8 - (1 + 2 + 3) - (1 + 2 + 3 + 4)]
    for r in rows:
        assert r["mismatches"] == 0 and r["instructions"] > r["macs"] > 0, r
        assert r["flash_bytes"] > 0 and r["stack_bytes"] > 0, r
    assert "fir_q31" in res.stdout and "instr/MAC" in res.stdout


def test_bench_a_model_with_options_before_it():
    res = _cli("bench", "--target", "qemu:mps2-an386", str(MODEL), "--json", "-")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)  # the table goes to stderr
    assert "per inference" in res.stderr
    assert doc["macs"] == 69376 and doc["mismatches"] == 0 and doc["instructions"] > 69376
    assert [n["op"] for n in doc["layers"]] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D",
                                               "MAX_POOL_2D", "AVERAGE_POOL_2D"]


def test_bench_a_missing_layers_file_is_one_line(tmp_path):
    missing = tmp_path / "nope.py"
    res = _cli("bench", "--layers", str(missing))
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1 and str(missing) in res.stderr


def test_own_layers_get_no_cmsis_nn_figures_even_when_named_like_a_benchmark_layer():
    r = LayerResult("L2", "dsp_conv", 1000, 1500, 900, 1152, 64, 0)
    ours = markdown_table({"O3": [r]}, "cortex-m4", anchors=False)
    bench = markdown_table({"O3": [r]}, "cortex-m4")
    assert "1.93" in bench and "1.93" not in ours  # CMSIS-NN's L2 instructions/MAC on M4
    assert ours.splitlines()[-1].count("n/a") == 4


def test_cpu_option_folds_into_the_target():
    assert with_cpu("qemu:mps2-an385", "cortex-m0") == "qemu:mps2-an385:cortex-m0"
    assert with_cpu("qemu:mps2-an385:cortex-m0", "cortex-m0") == "qemu:mps2-an385:cortex-m0"
    assert with_cpu("qemu:mps2-an386", None) == "qemu:mps2-an386"
    with pytest.raises(ValueError, match="--cpu 'cortex-m0': the target "
                                         "'qemu:mps2-an385:cortex-m3' already names"):
        with_cpu("qemu:mps2-an385:cortex-m3", "cortex-m0")
