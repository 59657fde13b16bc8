"""Every kernel emits exactly the file-scope symbols it declares (found by compiling the
generated C and reading ``nm``), and codegen reserves them, so two layers' symbols cannot
collide whatever kernels they get."""

from __future__ import annotations

import contextlib
import itertools
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from golden_configs import golden_cases
from test_fastpaths import cases as fast_cases

from edgeconv import codegen
from edgeconv.codegen.cpus import CPUS
from edgeconv.codegen.kernels import ALL_KERNELS, m0
from edgeconv.codegen.plan import Kernel
from edgeconv.layers import MaxPool2D

# One CPU per kernel family: the kernels codegen picks for it, then the generic ones.
FAMILY_CPUS = ("generic", "cortex-m0", "cortex-m4", "cortex-m55")
MAX_LAYERS = 40  # golden cases compiled per kernel and CPU, spread over all that get it
# Kernels that a module option selects instead of the default one: (module, name, value).
OPTION_KERNELS = {"m0_dw32": (m0, "DW_WEIGHTS", "int32")}


def _cases_by_kernel() -> dict[Kernel, dict[str, list[tuple[Any, str | None]]]]:
    """Per kernel and CPU, the layers and forced strategies of the golden cases and the
    fast-kernel cases that codegen gives that kernel; only layers with a bias (one without
    emits no ``<name>_bias``)."""
    found: dict[Kernel, dict[str, list[tuple[Any, str | None]]]] = {k: {} for k in ALL_KERNELS}
    candidates = [(c.layer, c.strategy) for c in golden_cases()] + \
        [(layer, None) for layer in fast_cases()]
    options = [None, *OPTION_KERNELS.values()]
    for (layer, strategy), option in itertools.product(candidates, options):
        if getattr(layer, "bias", 0) is None:
            continue
        with _option(option):
            for cpu in FAMILY_CPUS:
                plan = codegen.plan_layers([layer], strategy=strategy, cpu=cpu)[0].plan
                if option is None or plan.kernel.strategy in OPTION_KERNELS:
                    found[plan.kernel].setdefault(cpu, []).append((layer, strategy))
    return {k: {cpu: cases[::max(1, len(cases) // MAX_LAYERS)][:MAX_LAYERS]
                for cpu, cases in by_cpu.items()} for k, by_cpu in found.items()}


@contextlib.contextmanager
def _option(option: tuple[Any, str, str] | None) -> Iterator[None]:
    """``module.name = value`` while the block runs (nothing for None)."""
    if option is None:
        yield
        return
    module, name, value = option
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


CASES = _cases_by_kernel()


def _defined_symbols(obj: Path, nm: str) -> set[str]:
    out = subprocess.run([nm, "--defined-only", str(obj)], check=True, capture_output=True,
                         text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def _compilers(cpu: str) -> list[tuple[str, str, list[str]]]:
    """The host compiler (portable bodies) and, for a Cortex-M CPU, arm-none-eabi-gcc
    (the CPU's own code paths): (compiler, nm, flags)."""
    compilers = [("gcc", "nm", [])]
    if CPUS[cpu].is_arm:
        compilers.append(("arm-none-eabi-gcc", "arm-none-eabi-nm", CPUS[cpu].gcc_flags()))
    return compilers


@pytest.mark.parametrize("kernel", ALL_KERNELS,
                         ids=[f"{k.strategy}-{Path(k.template).stem}" for k in ALL_KERNELS])
def test_kernel_emits_exactly_its_declared_symbols(tmp_path: Path, kernel: Kernel) -> None:
    assert CASES[kernel], f"no golden case is given {kernel.strategy} ({kernel.template})"
    emitted: set[str] = set()
    for cpu, cases in CASES[kernel].items():
        strategy = {layer.name: s for layer, s in cases if s is not None}
        with _option(OPTION_KERNELS.get(kernel.strategy)):
            gen = codegen.generate([layer for layer, _ in cases], tmp_path / cpu, "symnet",
                                   cpu=cpu, strategy=strategy or None)
        assert {info.strategy for info in gen.layers} == {kernel.strategy}
        names = [info.name for info in gen.layers]
        for cc, nm, flags in _compilers(cpu):
            assert shutil.which(cc) and shutil.which(nm), f"{cc} / {nm} not installed"
            obj = tmp_path / f"{cpu}-{cc}.o"
            subprocess.run([cc, "-std=c99", "-O0", *flags, "-c", str(gen.source), "-o",
                            str(obj)], check=True, capture_output=True, text=True)
            symbols = {s for s in _defined_symbols(obj, nm) if not s.startswith("edgeconv")}
            assert set(names) <= symbols
            for symbol in symbols - set(names):
                owners = [n for n in names if symbol.startswith(n + "_")]
                assert owners, f"{kernel.strategy} on {cpu} ({cc}) emits {symbol!r}"
                suffix = symbol[len(max(owners, key=len)) + 1:]
                assert suffix in kernel.symbols, \
                    f"{kernel.strategy} on {cpu} ({cc}) emits undeclared {symbol!r}"
                emitted.add(suffix)
    assert emitted == set(kernel.symbols), \
        f"{kernel.strategy} declares {sorted(kernel.symbols)}, emits {sorted(emitted)}"


@pytest.mark.parametrize("suffix", sorted({s for k in ALL_KERNELS for s in k.symbols}))
def test_a_layer_named_like_another_layers_symbol_is_refused(tmp_path: Path,
                                                             suffix: str) -> None:
    """A layer ``a`` and a layer ``a_<suffix>`` for every suffix any kernel declares
    (``a_fill`` next to ``a`` on the Cortex-M55 gave C that did not compile)."""
    layers = [MaxPool2D(pool_size=2, name="a", input_shape=(4, 4, 16)),
              MaxPool2D(pool_size=2, name=f"a_{suffix}", input_shape=(4, 4, 16))]
    for cpu in CPUS:
        with pytest.raises(ValueError, match="collides"):
            codegen.generate(layers, tmp_path, cpu=cpu)


def test_declared_symbols_are_identifier_suffixes() -> None:
    for kernel in ALL_KERNELS:
        for suffix in kernel.symbols:
            assert re.fullmatch(r"[a-z][a-z0-9_]*", suffix), (kernel.strategy, suffix)
