"""The README's walk-throughs run as written, and print what the README says they print."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def _blocks(section: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", section, re.S)


@pytest.mark.parametrize("title", ["Walk-through 2", "Walk-through 3"])
def test_python_walk_throughs_print_what_the_readme_shows(title: str, tmp_path: Path,
                                                          monkeypatch) -> None:
    (code,) = _blocks(_section(title), "python")
    monkeypatch.chdir(tmp_path)  # the walk-through writes under out/
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, title, "exec"), {})
    shown = [line.split("#", 1)[1].strip() for line in code.splitlines()
             if line.startswith("print(") and "#" in line]
    assert out.getvalue().splitlines() == shown


def test_signal_examples_give_the_values_in_their_comments() -> None:
    (code,) = _blocks(_section("Signal processing in Q formats"), "python")
    namespace: dict = {}
    for line in code.splitlines():
        expr, _, comment = line.partition("#")
        if comment and "[" in comment:
            value = eval(expr, namespace)
            printed = re.sub(r"\s+", " ", str(value)).replace("[ ", "[")
            assert printed == re.search(r"\[.*?\]", comment).group(0), line
        else:
            exec(line, namespace)


def test_model_walk_through_commands_run() -> None:
    (commands, output, _) = _blocks(_section("Walk-through 1"), "(?:sh|c)?")[:3]
    lines = [c for c in commands.splitlines() if c.startswith("edgeconv ")]
    assert [c.split()[1] for c in lines] == ["check", "generate", "verify"]
    for command in lines:
        res = subprocess.run([sys.executable, "-m", "edgeconv.cli", *command.split()[1:]],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, (command, res.stderr)
        if command.split()[1] in ("check", "verify"):
            # the README shows the last line of each; instruction counts may differ by
            # one tick of the counter (5 instructions) from run to run
            got = res.stdout.strip().splitlines()[-1]
            tick = re.compile(r"[\d,]+ instructions per inference, [\d.]+ instructions/MAC")
            assert tick.sub("N", got) in tick.sub("N", output), (command, got)
