"""The scratch size in the header is enough for the kernel that was emitted: every layer
runs natively with input, output and scratch allocated to exactly the sizes the registry
states, under AddressSanitizer, and its output equals the reference.

This also runs the plain-C build of the Cortex-M fast kernels (they compile on any C99
compiler), since code generated for ``cpu='cortex-m0'/'cortex-m4'/'cortex-m55'`` picks
them: on the host the Helium kernels take their path without ``__ARM_FEATURE_MVE``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from golden_configs import GoldenCase, golden_cases, representative_layers

from edgeconv import codegen
from edgeconv.backprop import DenseTrainStep
from edgeconv.resources import firmware_dir

RUNS = 2  # GoldenCase.inputs() gives a batch of two
FAST_FAMILY = {"cortex-m0": {"m0_conv", "m0_dw"}, "cortex-m4": {"dsp_conv", "dsp_dw"},
               "cortex-m55": {"mve_conv", "mve_dw", "mve_dw16", "fc_mve_conv"}}
MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "edgeconv_registry.h"

int main(void)
{
    uint32_t i;
    int b;
    for (i = 0; i < edgeconv_registry_count; ++i) {
        const edgeconv_layer_t *l = &edgeconv_registry[i];
        size_t nin = (size_t)l->input_count * l->input_elem_bytes;
        size_t nout = (size_t)l->output_count * l->output_elem_bytes;
        for (b = 0; b < RUNS; ++b) {
            void *in = malloc(nin), *out = malloc(nout);
            void *scratch = l->scratch_bytes ? malloc(l->scratch_bytes) : NULL;
            if (!in || !out || fread(in, 1, nin, stdin) != nin) return 2;
            if (l->run(in, out, scratch) != 0) return 3;
            fwrite(out, 1, nout, stdout);
            free(in);
            free(out);
            free(scratch);
        }
    }
    return 0;
}
"""


def _cases() -> list[GoldenCase]:
    auto = [c for c in golden_cases() if c.strategy is None and c.family != "signal"]
    # DenseTrainStep needs labels in range (its golden cases, in `auto`, give them)
    return [GoldenCase(layer, None, "representative") for layer in representative_layers()
            if not isinstance(layer, DenseTrainStep)] + auto


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
@pytest.mark.parametrize("cpu, strategy", [("generic", None), ("generic", "im2col"),
                                           ("cortex-m0", None), ("cortex-m4", None),
                                           ("cortex-m55", None)])
def test_exact_buffers_under_asan(tmp_path: Path, cpu: str, strategy: str | None) -> None:
    cases = _cases()
    gen = codegen.generate([c.layer for c in cases], tmp_path, cpu=cpu, strategy=strategy,
                           registry=True)
    assert any(i.scratch_bytes for i in gen.layers)
    if cpu in FAST_FAMILY:  # the portable C of that CPU's fast kernels is under test
        assert {i.strategy for i in gen.layers} >= FAST_FAMILY[cpu]
    main = tmp_path / "main.c"
    main.write_text(MAIN)
    exe = tmp_path / "exact"
    subprocess.run(["gcc", "-std=c99", "-O0", f"-DRUNS={RUNS}",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    "-I", str(tmp_path), "-I", str(firmware_dir() / "common"),
                    *map(str, gen.sources), str(main), "-o", str(exe)], check=True)
    inputs = [c.inputs() for c in cases]
    result = subprocess.run([str(exe)], input=b"".join(x.tobytes() for x in inputs),
                            capture_output=True)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    offset, bad = 0, []
    for case, info, x in zip(cases, gen.layers, inputs, strict=True):
        want = case.layer(x)
        got = np.frombuffer(result.stdout, want.dtype, want.size, offset).reshape(want.shape)
        offset += want.nbytes
        if not np.array_equal(got, want):
            bad.append(f"{info.name} ({info.strategy})")
    assert offset == len(result.stdout)
    assert not bad, f"outputs differ from the reference: {', '.join(bad)}"
