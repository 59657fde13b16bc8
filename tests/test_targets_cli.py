"""`edgeconv verify`: table, exit codes, and a wrong output never passing."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import pytest

from edgeconv import cli
from edgeconv.bench import benchmark_layers

LAYER_FILE = textwrap.dedent("""
    import numpy as np
    from edgeconv.bench import benchmark_layers

    L7 = benchmark_layers()["L7"]

    class OffByOne(type(L7)):
        '''A layer whose reference answer is deliberately wrong in one element.'''

        def __call__(self, x):
            y = super().__call__(x).copy()
            y.flat[3] = np.int8(y.flat[3] ^ 1)
            return y

    if {wrong}:
        L7.__class__ = OffByOne
    LAYERS = [L7]
""")


def _run_cli(tmp_path, wrong: bool) -> subprocess.CompletedProcess:
    path = tmp_path / "layers.py"
    path.write_text(LAYER_FILE.format(wrong=wrong))
    return subprocess.run([sys.executable, "-m", "edgeconv.cli", "verify", "--target",
                           "native", "--layers", str(path)], capture_output=True, text=True)


def test_verify_passes_and_prints_the_table(tmp_path):
    res = _run_cli(tmp_path, wrong=False)
    assert res.returncode == 0, res.stderr
    row = next(line for line in res.stdout.splitlines() if line.startswith("L7"))
    assert row.split()[:4] == ["L7", "18", "0", "0"] and row.endswith(" ns")
    assert "1/1 layers bit-exact" in res.stdout


def test_a_mismatch_fails_the_command(tmp_path):
    res = _run_cli(tmp_path, wrong=True)
    assert res.returncode == 1
    row = next(line for line in res.stdout.splitlines() if line.startswith("L7"))
    assert row.split()[:4] == ["L7", "18", "1", "1"]
    assert "0/1 layers bit-exact" in res.stdout


def test_verify_on_a_small_board_says_what_it_skips():
    out = io.StringIO()
    layers = [benchmark_layers()[name] for name in ("L1", "L7")]
    assert cli.verify("qemu:microbit", layers, out=out) == 0
    text = out.getvalue()
    assert "skipping L1 (buffers exceed the board's RAM)" in text
    assert "microbit cortex-m0" in text and "1/1 layers bit-exact" in text
    assert any(line.startswith("L7 ") and " 0 " in line for line in text.splitlines())


def test_bad_layers_argument_is_reported(capsys):
    assert cli.main(["verify", "--layers", "no-such-file.py"]) == 2
    assert "neither seed, bench nor a file" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["verify", "--target", "qemu:pdp11"]])
def test_bad_target_is_reported(argv, capsys):
    assert cli.main(argv) == 2
    assert "board='pdp11' unknown" in capsys.readouterr().err
