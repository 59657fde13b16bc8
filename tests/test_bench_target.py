"""The on-target benchmark command on a tiny subset (L7 on the emulated Cortex-M4)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeconv import Conv2D
from edgeconv.bench import benchmark_layers
from edgeconv.bench import target as bench_target

needs_tools = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="arm-none-eabi-gcc or qemu-system-arm not installed")


@needs_tools
def test_main_l7_json_and_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert bench_target.main(["--target", "qemu:mps2-an386", "--layers", "L7", "--opt", "O3",
                              "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["target"] == "qemu:mps2-an386" and doc["cpu"] == "cortex-m4"
    (row,) = doc["runs"]["O3"]
    assert row["name"] == "L7" and row["macs"] == 486 and row["mismatches"] == 0
    # three int16 columns of 28 taps (int8 weights in flash, issue 13: was two, 112 B)
    assert row["strategy"] == "dsp_conv" and row["scratch_bytes"] == 168
    # a 486-MAC layer cannot take fewer than one instruction per MAC, and must beat the
    # CMSIS-NN anchor (15.05 instructions/MAC)
    assert 486 < row["instructions"] < 15.05 * 486
    assert row["instructions_per_mac"] == pytest.approx(row["instructions"] / 486)
    assert 0 < row["flash_bytes"] < 16384 and 0 < row["stack_bytes"] < 4096
    assert "L7" in capsys.readouterr().out
    assert bench_target.main(["--layers", "L7", "--opt", "O3", "--markdown"]) == 0
    table = capsys.readouterr().out
    assert "| L7 (dsp_conv) | 486 |" in table and "| 15.05 |" in table


@needs_tools
def test_run_reports_wrong_outputs() -> None:
    """The image compares every element with the reference: a reference that disagrees
    with the kernel shows up as mismatches."""

    class OffByOne(Conv2D):
        def __call__(self, x: np.ndarray) -> np.ndarray:
            return super().__call__(x) ^ np.int8(1)

    layer = benchmark_layers()["L7"]
    layer.__class__ = OffByOne
    (result,) = bench_target.run([layer], "qemu:mps2-an386", "O3")
    assert result.mismatches == int(np.prod(layer.output_shape))


def test_calibration_check() -> None:
    board = bench_target.BOARDS["mps2-an386"]
    n = bench_target.CALIB_N
    good = f"empty ticks=1\ncalib n={n} ticks={(2 * n + 1) // 5 + 1}\n"
    assert bench_target.instructions_per_tick(good, board) == 5
    bad = f"empty ticks=1\ncalib n={n} ticks={n // 5}\n"
    with pytest.raises(RuntimeError, match="calibration failed"):
        bench_target.instructions_per_tick(bad, board)
    with pytest.raises(RuntimeError, match="lacks 'calib'"):
        bench_target.instructions_per_tick("empty ticks=1\n", board)


def test_flash_bytes_by_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    nm = ("00000010 00000040 T L7\n00000050 00000100 t L7_weights\n"
          "00000150 00000008 r L7_mult\n00000158 00000020 T L70\n"
          "00000178 00000004 b L7_state\n00000180 00000010 T main\n")

    def fake_run(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        assert cmd[:3] == ["arm-none-eabi-nm", "--size-sort", "-S"]
        return subprocess.CompletedProcess(cmd, 0, nm, "")

    monkeypatch.setattr(bench_target.subprocess, "run", fake_run)
    assert bench_target.flash_bytes(tmp_path / "x.elf", ["L7", "L70"]) == {
        "L7": 0x40 + 0x100 + 0x08, "L70": 0x20}


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="target='qemu:lm3s6965evb'"):
        bench_target.main(["--target", "qemu:lm3s6965evb"])
    with pytest.raises(ValueError, match="opt='O2'"):
        bench_target.main(["--opt", "O2", "--layers", "L7"])
    with pytest.raises(ValueError, match="'L9' unknown"):
        bench_target.main(["--layers", "L9"])


@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m0", "cortex-m55"])
def test_markdown_flash_column_has_cmsis_nn_figure_for_every_layer(cpu: str) -> None:
    # issue 13: CMSIS-NN's flash measured per layer on M4, M0 and M55 (target.py says how);
    # the README table shows it next to ours for L1-L7, never "n/a"
    names = list(benchmark_layers())
    rows = [bench_target.LayerResult(n, "dsp_conv", 100, 200, 1000 + i, 0, 64, 0)
            for i, n in enumerate(names)]
    table = bench_target.markdown_table({"O3": rows}, cpu).splitlines()[2:]
    assert len(table) == len(names)
    for line, name in zip(table, names, strict=True):
        flash_cell = line.split(" | ")[-3]
        anchor = bench_target.ANCHOR_FLASH[name][cpu]
        assert anchor > 1000
        assert flash_cell == f"{1000 + names.index(name):,} ({anchor:,})"
