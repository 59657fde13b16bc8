"""One table each for CPUs (edgeconv.codegen.cpus) and boards (edgeconv.targets.boards):
every CPU or board name used anywhere in the package, the firmware and the Makefiles is
one of theirs, and the firmware's make files agree with them."""

from __future__ import annotations

import re
from pathlib import Path

from edgeconv.bench.target import ANCHOR_IPM
from edgeconv.codegen.cpus import CPUS
from edgeconv.targets.boards import BOARDS

ROOT = Path(__file__).resolve().parent.parent
CPU_NAME = re.compile(r"\bcortex-m\d+\b")
BOARD_NAME = re.compile(r"\b(mps[23]-an\d+|netduino\w*|microbit)\b")
SOURCES = [*(ROOT / "edgeconv").rglob("*.py"), *(ROOT / "firmware").rglob("*.mk"),
           ROOT / "firmware" / "Makefile", ROOT / "Makefile", ROOT / "README.md",
           ROOT / "docs" / "architecture.md", ROOT / "firmware" / "README.md"]


def test_every_cpu_and_board_name_used_is_in_the_tables() -> None:
    for path in SOURCES:
        text = path.read_text()
        cpus = set(CPU_NAME.findall(text))
        boards = set(BOARD_NAME.findall(text))
        assert cpus <= set(CPUS), f"{path}: unknown CPU {sorted(cpus - set(CPUS))}"
        assert boards <= set(BOARDS), f"{path}: unknown board {sorted(boards - set(BOARDS))}"


def test_firmware_boards_are_the_table() -> None:
    folders = {p.name for p in (ROOT / "firmware" / "boards").iterdir() if p.is_dir()}
    assert folders == set(BOARDS)
    for name, board in BOARDS.items():
        mk = (ROOT / "firmware" / "boards" / name / "board.mk").read_text()
        default = re.search(r"^CPU_DEFAULT\s*:?=\s*(\S+)", mk, re.MULTILINE)
        assert default is not None and default.group(1) == board.cpu, name


def test_firmware_float_flags_are_the_tables() -> None:
    mk = (ROOT / "firmware" / "arch" / "cortex-m" / "cortexm.mk").read_text()
    flags = {m.group(1): tuple(m.group(2).split())
             for m in re.finditer(r"^FLOAT_(\S+)\s*:=\s*(.*)$", mk, re.MULTILINE)}
    assert flags == {name: c.float_flags for name, c in CPUS.items() if c.float_flags}


def test_board_cpus_and_benchmark_anchors_name_table_cpus() -> None:
    for board in BOARDS.values():
        assert {board.cpu, *board.cpus} <= set(CPUS)
    for per_cpu in ANCHOR_IPM.values():
        assert set(per_cpu) <= set(CPUS)
