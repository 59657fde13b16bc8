"""CLI user errors (issue 11, item 3): one line on stderr naming what was wrong, exit code
2, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

LAYER_FILES = {
    "an int": "LAYERS = 5\n",
    "ints": "LAYERS = [1, 2]\n",
    "a dict": "LAYERS = {'a': 1}\n",
    "empty": "LAYERS = []\n",
}


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeconv.cli", *argv], capture_output=True,
                          text=True, timeout=120)


def _assert_user_error(res: subprocess.CompletedProcess, *words: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_verify_on_a_missing_serial_port():
    res = _cli("verify", "--target", "serial:/dev/nonexistent", "--layers", "bench")
    _assert_user_error(res, "edgeconv verify:", "/dev/nonexistent", "cannot open port")


@pytest.mark.parametrize("kind", LAYER_FILES)
def test_verify_with_a_layers_file_that_is_not_a_list_of_layers(tmp_path, kind):
    path = tmp_path / "layers.py"
    path.write_text(LAYER_FILES[kind])
    res = _cli("verify", "--target", "native", "--layers", str(path))
    _assert_user_error(res, "edgeconv verify:", str(path))
    assert "must be" in res.stderr or "empty" in res.stderr


def test_bench_with_an_unknown_target():
    _assert_user_error(_cli("bench", "--target", "bogus"), "edgeconv bench:", "'bogus'")


def test_bench_with_an_unknown_opt_level():
    _assert_user_error(_cli("bench", "--opt", "O2"), "edgeconv bench:", "opt='O2'", "O3")


@pytest.mark.parametrize("command", ["verify", "bench"])
@pytest.mark.parametrize("text, where", [
    ("import numpy as np\n\nLAYERS = [undefined_name]\n", "at line 3: NameError"),
    ("LAYERS = [\n", "at line 1: SyntaxError"),
])
def test_a_layers_file_that_fails_to_run_is_one_line(tmp_path, command, text, where):
    path = tmp_path / "my_layers.py"
    path.write_text(text)
    res = _cli(command, "--layers", str(path))
    _assert_user_error(res, f"edgeconv {command}:", str(path), "failed to run", where)
