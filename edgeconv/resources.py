"""Locate the C templates and firmware sources, in a source tree or an installed wheel."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def _locate(source_dir: str, package: str) -> Path:
    candidate = _SOURCE_ROOT / source_dir
    if candidate.is_dir() and (_SOURCE_ROOT / "pyproject.toml").is_file():
        return candidate
    return Path(str(resources.files(package)))


def templates_dir() -> Path:
    """Directory holding the jinja2 templates (``codegen/`` in the source tree)."""
    return _locate("codegen", "edgeconv._templates")


def firmware_dir() -> Path:
    """Directory holding the firmware sources (``firmware/`` in the source tree)."""
    return _locate("firmware", "edgeconv._firmware")
