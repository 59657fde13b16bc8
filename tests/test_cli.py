"""The command line as a user meets it: --version, help with examples and defaults,
generate / verify / check on a .tflite model, the seed layer set, JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import edgeconv
from edgeconv.cli import build_parser, load_layers

MODELS = Path(__file__).parent / "models"


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeconv.cli", *argv], capture_output=True,
                          text=True, timeout=300)


def test_version() -> None:
    res = _cli("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"edgeconv {edgeconv.__version__}"


@pytest.mark.parametrize("command", ["generate", "verify", "check", "demo"])
def test_every_subcommand_help_lists_examples_and_defaults(command: str) -> None:
    res = _cli(command, "--help")
    assert res.returncode == 0 and "example" in res.stdout, res.stdout
    if command == "verify":
        assert "(default: O3)" in res.stdout and "qemu:mps2-an386 (cortex-m4)" in res.stdout


def test_top_level_help_lists_examples() -> None:
    res = _cli("--help")
    assert res.returncode == 0
    for command in ("generate", "verify", "bench", "check", "demo"):
        assert command in res.stdout
    assert "edgeconv verify model.tflite --target qemu:mps2-an386" in res.stdout


def test_seed_is_not_the_benchmark_set() -> None:
    seed = [layer.name for layer in load_layers("seed")]
    assert seed == ["seed_conv1d_full", "seed_conv1d_same", "seed_conv1d_valid", "L7"]
    assert [layer.name for layer in load_layers("bench")] == [f"L{i}" for i in range(1, 8)]


def test_generate_a_model(tmp_path: Path) -> None:
    out = tmp_path / "json"
    res = _cli("generate", str(MODELS / "conv_chain.tflite"), "-o", str(tmp_path / "gen"),
               "--cpu", "cortex-m4", "--json", str(out))
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    assert [x["strategy"] for x in doc["layers"]] == ["dsp_conv", "dsp_dw", "dsp_conv",
                                                      "direct", "direct", "network"]
    assert "net_run(" in (tmp_path / "gen" / "net.c").read_text()


def test_verify_a_model_natively_with_json(tmp_path: Path) -> None:
    out = tmp_path / "v.json"
    res = _cli("verify", str(MODELS / "conv_chain.tflite"), "--target", "native",
               "--json", str(out))
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    assert doc["mismatches"] == 0 and doc["macs"] == 69376 and doc["arena_bytes"] > 0
    assert [n["op"] for n in doc["nodes"]] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D",
                                              "MAX_POOL_2D", "AVERAGE_POOL_2D"]
    assert all(n["mismatches"] == 0 for n in doc["nodes"])
    assert "whole network: bit-exact" in res.stderr  # the table goes to stderr with --json


def test_verify_a_model_on_the_m4_board() -> None:
    res = _cli("verify", str(MODELS / "conv_chain.tflite"), "--target", "qemu:mps2-an386")
    assert res.returncode == 0, res.stderr
    assert "whole network: bit-exact" in res.stdout and "instructions per inference" in res.stdout
    assert res.stdout.count(" yes") == 5


def test_check_a_model() -> None:
    res = _cli("check", str(MODELS / "conv_chain.tflite"))
    assert res.returncode == 0, res.stderr
    assert "every element equal to the LiteRT interpreter" in res.stdout


@pytest.mark.parametrize("argv, words", [
    (["verify", "missing.tflite"], ["no such file"]),
    (["generate", str(MODELS / "unsupported_tanh.tflite"), "-o", "/tmp/x"], ["TANH",
                                                                            "operator 1"]),
    (["check", str(Path(__file__))], ["no such file"]),
])
def test_model_user_errors_are_one_line(argv: list[str], words: list[str]) -> None:
    if argv[0] == "check":
        argv = ["check", str(Path(__file__).with_suffix(".tflite"))]
    res = _cli(*argv)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    for word in words:
        assert word in res.stderr


def test_parser_builds() -> None:
    assert build_parser().prog == "edgeconv"
