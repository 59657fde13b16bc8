"""Generated C compiles without a single warning under gcc, clang and arm-none-eabi-gcc
(five Cortex-M CPUs) with the strict flag set (-c only)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from golden_configs import representative_layers

from edgeconv import codegen
from edgeconv.codegen.cpus import CPUS
from edgeconv.resources import firmware_dir

STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion",
          "-Wsign-conversion", "-Wshadow", "-Wcast-align", "-Werror"]
TOOLCHAINS = [("gcc", "generic", []), ("clang", "generic", [])] + [
    ("arm-none-eabi-gcc", cpu, CPUS[cpu].gcc_flags())
    for cpu in ("cortex-m0", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")]


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
