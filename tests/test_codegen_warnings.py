"""Generated C compiles without a single warning under gcc, clang and arm-none-eabi-gcc
(five Cortex-M CPUs) with the strict flag set (-c only)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from golden_configs import representative_layers

from edgeconv import codegen
from edgeconv.resources import firmware_dir

STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion",
          "-Wsign-conversion", "-Wshadow", "-Wcast-align", "-Werror"]
ARM_FPU = ["-mfloat-abi=hard", "-mfpu=auto"]
TOOLCHAINS = [
    ("gcc", "generic", []),
    ("clang", "generic", []),
    ("arm-none-eabi-gcc", "cortex-m0", ["-mthumb", "-mcpu=cortex-m0"]),
    ("arm-none-eabi-gcc", "cortex-m4", ["-mthumb", "-mcpu=cortex-m4", *ARM_FPU]),
    ("arm-none-eabi-gcc", "cortex-m7", ["-mthumb", "-mcpu=cortex-m7", *ARM_FPU]),
    ("arm-none-eabi-gcc", "cortex-m33", ["-mthumb", "-mcpu=cortex-m33", *ARM_FPU]),
    ("arm-none-eabi-gcc", "cortex-m55", ["-mthumb", "-mcpu=cortex-m55", *ARM_FPU]),
]


@pytest.mark.parametrize("strategy", [None, "im2col"])
@pytest.mark.parametrize("compiler, cpu, flags", TOOLCHAINS,
                         ids=[f"{cc}-{cpu}" for cc, cpu, _ in TOOLCHAINS])
def test_no_warnings(tmp_path: Path, compiler: str, cpu: str, flags: list[str],
                     strategy: str | None) -> None:
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} not installed (scripts/sysdeps.sh installs it)")
    gen = codegen.generate(representative_layers(), tmp_path, cpu=cpu, strategy=strategy,
                           registry=True)
    for source in gen.sources:
        cmd = [compiler, *STRICT, *flags, "-I", str(tmp_path),
               "-I", str(firmware_dir() / "common"), "-c", str(source),
               "-o", str(tmp_path / (source.stem + ".o"))]
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 0 and not result.stderr, \
            f"{' '.join(cmd)}\n{result.stderr}"
