"""The wheel ships every template and firmware source, so a ``pip install`` user can
generate, build and benchmark without the repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = {"codegen": "edgeconv/_templates", "firmware": "edgeconv/_firmware"}


def _tracked(folder: str) -> set[str]:
    out = subprocess.run(["git", "ls-files", folder], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return {SHIPPED[folder] + line[len(folder):] for line in out.split()}


def _tracked_tree(dest: Path) -> Path:
    """A copy of the tracked files as they are in the work tree (no stale build/)."""
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    for name in out.split():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return dest


def test_wheel_ships_templates_and_firmware(tmp_path: Path) -> None:
    source = _tracked_tree(tmp_path / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("edgeconv-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in SHIPPED:
        tracked = _tracked(folder)
        assert tracked, f"git lists no files under {folder}/"
        missing = tracked - names
        assert not missing, f"not in the wheel: {sorted(missing)}"
