"""``edgeconv demo image`` (issue 10, issue 14): edge detection, blur and template search
run as generated C on a target; the PNGs are written and their paths printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_demo_image import _check_pictures


def test_demo_image_command_writes_the_pictures_and_prints_their_paths(tmp_path: Path):
    out = tmp_path / "pictures"
    res = subprocess.run([sys.executable, "-m", "edgeconv.cli", "demo", "image", "--target",
                          "native", "-o", str(out), "--json", "-"], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)  # --json -: stdout holds the JSON only, the log is on stderr
    paths = [Path(p) for p in doc["images"].values()]
    assert all(p.parent == out for p in paths)
    _check_pictures(paths)
    for path in paths:
        assert f"wrote {path}" in res.stderr
    # Sobel x, Sobel y, the blur and the template search, each checked on the target
    assert res.stderr.count("bit-exact with the reference") == 4


@pytest.mark.parametrize("demo", ["image", "train"])
def test_a_demo_on_an_unknown_target_is_one_line(tmp_path: Path, demo: str):
    res = subprocess.run([sys.executable, "-m", "edgeconv.cli", "demo", demo, "--target",
                          "bogus"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.startswith(f"edgeconv demo {demo}: ") and "'bogus'" in res.stderr
    assert res.stderr.count("\n") == 1
