"""edgeconv.demo_image: the filters run as generated C on a target, every output checked
against the reference, PNGs written with the template's box at its true place."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgeconv import demo_image
from edgeconv.signal2d import BOX_COLOR


def _check_pictures(paths: list[Path]) -> None:
    assert [p.name for p in paths] == [f"{n}.png" for n in demo_image.FILES]
    for path in paths:
        # the score map has one score per position of the 8x8 template
        shape = [d - 7 if path.stem == "match_scores" else d for d in demo_image.SHAPE]
        with Image.open(path) as picture:
            pixels = np.asarray(picture.convert("L"))
        assert pixels.shape == tuple(demo_image.SCALE * d for d in shape), path.name
        # not blank: a spread of grey levels, neither all dark nor all bright
        assert len(np.unique(pixels)) > 20 and pixels.std() > 10, path.name
    # The red box drawn in the scene: its outline, in picture pixels, where the patch
    # was pasted (TEMPLATE_AT, 8x8), read back from the PNG itself.
    with Image.open(paths[demo_image.FILES.index("match_box")]) as picture:
        rgb = np.asarray(picture.convert("RGB"))
    red = np.all(rgb == BOX_COLOR, axis=-1)
    rows, cols = np.nonzero(red)
    s = demo_image.SCALE
    top, left = (s * v for v in demo_image.TEMPLATE_AT)
    assert (rows.min(), rows.max()) == (top, top + 8 * s - 1)
    assert (cols.min(), cols.max()) == (left, left + 8 * s - 1)


def test_demo_image_native(tmp_path: Path) -> None:
    lines: list[str] = []
    paths = demo_image.run(tmp_path, "native", log=lines.append)
    _check_pictures(paths)
    assert sum("bit-exact" in line for line in lines) == 4
    assert any(line.startswith("  find: 8x8 Q15 NCC template search on native, bit-exact")
               for line in lines)


def test_demo_image_sobel_edges_follow_the_disc(tmp_path: Path) -> None:
    """|gx| + |gy| is large on the disc's rim and small inside it (a check of the
    picture's content, independent of the code that drew it)."""
    paths = demo_image.run(tmp_path, "native", log=lambda line: None)
    with Image.open(paths[demo_image.FILES.index("sobel")]) as picture:
        edges = np.asarray(picture.convert("L")).astype(float)
    s = demo_image.SCALE
    # synthetic_image: disc centred at (0.3 H, 0.32 W), radius 0.17 W (128 px: 38, 41, 21.8)
    centre, rim = edges[s * 38, s * 41], edges[s * 38, s * (41 + 22)]
    assert rim > 100 and centre < 40


class _WrongSession:
    """A session whose blur output is off by one somewhere."""

    count_unit = None

    def __init__(self, layers: list) -> None:
        self.layers = {layer.name: layer for layer in layers}

    def __enter__(self) -> _WrongSession:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def run(self, name: str, x: np.ndarray) -> np.ndarray:
        y = self.layers[name](x)
        if name == "blur":
            y[5, 7] += 1
        return y


def test_demo_image_refuses_a_wrong_board_output(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(demo_image.targets, "open", lambda spec, layers: _WrongSession(layers))
    with pytest.raises(RuntimeError, match="blur on native: 1 of 16384 outputs differ"):
        demo_image.run(tmp_path, "native", log=lambda line: None)


def test_demo_image_on_the_emulated_m4(tmp_path: Path) -> None:
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc or qemu-system-arm not installed")
    lines: list[str] = []
    paths = demo_image.run(tmp_path, "qemu:mps2-an386", log=lines.append)
    _check_pictures(paths)
    assert sum("bit-exact" in line and "instructions" in line for line in lines) == 4
