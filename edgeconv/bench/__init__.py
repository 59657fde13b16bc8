"""Benchmarks: the layers L1-L7 (:mod:`edgeconv.bench.layers`), the reference model's
speed next to TFLite's reference kernels (:mod:`edgeconv.bench.reference`, ``python -m
edgeconv.bench reference``) and generated kernels on emulated Cortex-M boards
(:mod:`edgeconv.bench.target`, ``edgeconv bench``)."""

from edgeconv.bench.layers import SPECS, BenchSpec, benchmark_input, benchmark_layers

__all__ = ["SPECS", "BenchSpec", "benchmark_input", "benchmark_layers"]
