"""Bad input to the public API raises a ValueError naming the argument, the value and
what is allowed (never a silent result, never a numpy/jinja/KeyError/TypeError)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edgeconv.targets as targets
from edgeconv import codegen
from edgeconv import fixedpoint as fp
from edgeconv import signal as sig
from edgeconv.im2col import col2im, im2col
from edgeconv.layers import Conv2D, MaxPool2D

I16 = np.array([1, 2, 3], np.int16)
X8 = np.zeros((4, 4, 2), np.int8)


def _filter(**changes: Any) -> sig.SignalFilter:
    return sig.SignalFilter(**({"kernel": [1, 2], "input_length": 4, "name": "f"} | changes))


def _expect(call: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------------------ signal

@pytest.mark.parametrize("call, match", [
    (lambda: sig.convolve(I16, I16, fmt="q7"), r"fmt='q7'.*int8"),
    (lambda: sig.convolve(I16, I16, fmt="q99"), r"fmt='q99': allowed are 'q7', 'q15', 'q31'"),
    (lambda: sig.convolve(np.array([1], np.int64), np.array([1], np.int64)),
     r"dtype int64 is not a Q format: allowed int8, int16, int32"),
    (lambda: sig.convolve(np.array([1], np.int8), I16), r"input dtypes \['int8', 'int16'\]"),
    (lambda: sig.convolve(np.array([], np.int16), I16), r"x: shape \(0,\), must be a non-empty"),
    (lambda: sig.convolve(I16, np.ones((2, 2), np.int16)), r"h: shape \(2, 2\), must be"),
    (lambda: sig.correlate([[1], [1, 2]], I16), r"x: not convertible to a 1-D array"),
    (lambda: sig.convolve(np.array([1j]), I16), r"x: dtype complex128, allowed are"),
    (lambda: sig.convolve([1.0], [1.0], fmt="q15"), r"fmt='q15': only for integer"),
    (lambda: sig.convolve([1.0], [1.0], accumulator=32), r"accumulator=32: only for integer"),
    (lambda: sig.convolve(I16, I16, mode="middle"), r"mode='middle': allowed are 'full'"),
    (lambda: sig.correlate(I16, I16, mode=None), r"mode=None: allowed are"),
    (lambda: sig.convolve(I16, I16, rounding="up"), r"rounding='up': allowed are 'floor'"),
    (lambda: sig.convolve(I16, I16, accumulator=7), r"accumulator=7: allowed range is \[8, 128\]"),
    (lambda: sig.convolve(I16, I16, accumulator=32.0), r"accumulator=32.0: must be an integer"),
    (lambda: sig.convolve(I16, I16, accumulator=True), r"accumulator=True: must be an integer"),
    (lambda: sig.convolve(I16, I16, saturate=1), r"saturate=1: allowed are True, False"),
    (lambda: sig.convolve(I16, I16, stride=0), r"stride=0: allowed range is \[1, inf\)"),
    (lambda: sig.convolve(I16, I16, stride=1.5), r"stride=1.5: must be an integer >= 1"),
    (lambda: sig.output_length("convolve", "full", 3, 3, integer=True, stride=0),
     r"stride=0: allowed range is \[1, inf\)"),
    (lambda: sig.output_length("convolve", "full", 0, 3, integer=True),
     r"m=0: allowed range is \[1, inf\)"),
    (lambda: sig.resolve_options("q8", None, None, None), r"fmt='q8': allowed are 'q7'"),
])
def test_signal_functions(call: Callable[[], object], match: str) -> None:
    _expect(call, match)


@pytest.mark.parametrize("changes, match", [
    ({"kernel": [0.5]}, r"kernel: shape \(1,\) dtype float64, must be a non-empty 1-D integer"),
    ({"kernel": []}, r"kernel: shape \(0,\)"),
    ({"kernel": [40000]}, r"kernel: values \[40000, 40000\] outside the q15 range"),
    ({"input_length": 0}, r"input_length=0: allowed range is \[1, inf\)"),
    ({"fmt": "q8"}, r"fmt='q8': allowed are 'q7', 'q15', 'q31'"),
    ({"kind": "conv"}, r"kind='conv': allowed are 'convolve', 'correlate'"),
    ({"stride": -1}, r"stride=-1: allowed range is \[1, inf\)"),
    ({"rounding": "trunc"}, r"rounding='trunc': allowed are 'floor', 'nearest'"),
    ({"name": "é"}, r"name='é': must be an ASCII C identifier or None"),
    ({"name": 5}, r"name=5: must be an ASCII C identifier"),
])
def test_signal_filter_construction(changes: dict[str, Any], match: str) -> None:
    _expect(lambda: _filter(**changes), match)


@pytest.mark.parametrize("call, match", [
    (lambda f: f(np.zeros(4, np.int8)), r"x: dtype int8, must be int16 for q15"),
    (lambda f: f(np.zeros((0, 4), np.int16)), r"x: shape \(0, 4\), .*batch >= 1"),
    (lambda f: f(np.zeros((1, 1, 4), np.int16)), r"x: shape \(1, 1, 4\), must be \(4,\)"),
    (lambda f: f.output_shape_for(4), r"input_shape=4: must be \(N,\) with N an integer >= 1"),
    (lambda f: f.output_shape_for((4.5,)), r"input_shape=\(4.5,\): must be \(N,\)"),
    (lambda f: f.macs((0,)), r"input_shape=\(0,\): must be \(N,\)"),
])
def test_signal_filter_use(call: Callable[[sig.SignalFilter], object], match: str) -> None:
    layer = _filter()
    _expect(lambda: call(layer), match)


# -------------------------------------------------------------------------- fixedpoint

@pytest.mark.parametrize("call, match", [
    (lambda: fp.to_q(0.5, -1), r"frac_bits=-1: allowed range is \[0, 62\]"),
    (lambda: fp.to_q(0.5, 63), r"frac_bits=63: allowed range is \[0, 62\]"),
    (lambda: fp.to_q(0.5, True), r"frac_bits=True: allowed range is \[0, 62\]"),
    (lambda: fp.to_q(0.5, 2.0), r"frac_bits=2.0: allowed range"),
    (lambda: fp.from_q(1, True), r"frac_bits=True: allowed range is \[0, 62\]"),
    (lambda: fp.from_q(1, -3), r"frac_bits=-3: allowed range"),
    (lambda: fp.to_q(0.5, 3, np.int64), r"dtype=.*int64.*: allowed are int8, int16, int32"),
    (lambda: fp.to_q(0.5, 3, rounding=[]), r"rounding=\[\]: allowed are floor"),
    (lambda: fp.to_q(1j, 3), r"x: dtype complex128, allowed are real float or integer"),
    (lambda: fp.to_q("abc", 3), r"x: dtype <U3, allowed are"),
    (lambda: fp.to_q(None, 3), r"x: dtype object, allowed are"),
    (lambda: fp.from_q(1.5, 3), r"q: dtype float64 is not an integer type"),
    (lambda: fp.quantize_multiplier(float("nan")), r"real=nan: multipliers must be finite"),
    (lambda: fp.quantize_multiplier(-float("inf")), r"real=-inf: multipliers must be finite"),
    (lambda: fp.quantize_multiplier(1e300), r"real=1e\+300: gives shift 997, allowed shift"),
    (lambda: fp.quantize_multiplier(2.0 ** 30), r"real=1073741824.0: gives shift 31"),
    (lambda: fp.quantize_multiplier("1"), r"real='1': must be a real number"),
    (lambda: fp.quantize_multiplier(True), r"real=True: must be a real number"),
    (lambda: fp.quantize_multiplier([1, 2]), r"real=\[1, 2\]: must be a real number"),
    (lambda: fp.quantize_multiplier_array(["a"]), r"real: dtype <U1, allowed are"),
    (lambda: fp.quantize_multiplier_array([0.5, np.inf]), r"real=inf: multipliers"),
    (lambda: fp.saturate([1], np.float32), r"dtype=.*float32.*: allowed are int8, int16"),
    (lambda: fp.saturate([1.5], np.int8), r"x: dtype float64 is not an integer type"),
    (lambda: fp.saturate(np.array([1.5], object), np.int8), r"x: entry 1.5 .* not an integer"),
    (lambda: fp.wrap(np.array(["a"], object), np.int8), r"x: entry 'a' .* not an integer"),
    (lambda: fp.multiply_by_quantized_multiplier(None, 1 << 30, 0),
     r"acc: entry None of an object array is not an integer"),
    (lambda: fp.multiply_by_quantized_multiplier(np.array([1.5], object), 1 << 30, 0),
     r"acc: entry 1.5"),
    (lambda: fp.multiply_by_quantized_multiplier(1, 1 << 30, 0, rounding=[]),
     r"rounding=\[\]: allowed are 'double', 'single'"),
    (lambda: fp.Requantizer(1 << 30, 0, []), r"rounding=\[\]: allowed are 'double'"),
    (lambda: fp.saturating_rounding_doubling_high_mul(1 << 40, 1 << 40),
     r"a=1099511627776: allowed range is \[-2147483648, 2147483647\]"),
    (lambda: fp.rounding_divide_by_pot(1 << 40, 3), r"x=1099511627776: allowed range"),
])
def test_fixedpoint(call: Callable[[], object], match: str) -> None:
    _expect(call, match)


def test_fixedpoint_edge_values_that_are_valid() -> None:
    """The boundaries of the checks above stay accepted with their documented results."""
    assert fp.quantize_multiplier(0) == (0, 0)
    assert fp.quantize_multiplier(-0.5) == (-(1 << 30), 0)
    assert fp.quantize_multiplier(2.0 ** 30 - 2.0 ** 5) == ((1 << 31) - 64, 30)  # largest shift
    assert fp.quantize_multiplier(np.float32(0.5)) == (1 << 30, 0)
    assert fp.to_q(np.inf, 3).item() == 32767  # saturates like arm_float_to_q15
    assert fp.saturate(10 ** 30, np.int8).item() == 127
    assert fp.wrap(-(1 << 70) - 5, np.int32).item() == -5


# ------------------------------------------------------------------------------ im2col

@pytest.mark.parametrize("call, match", [
    (lambda: im2col([[[1]]], 1), r"x: list given, must be a numpy array"),
    (lambda: im2col(np.zeros((4, 4)), 1), r"x: shape \(4, 4\) must be \(H, W, C\)"),
    (lambda: im2col(X8, 0), r"kernel_size=0: out of range, must be an integer >= 1"),
    (lambda: im2col(X8, 5), r"x: spatial shape \(4, 4\) .* smaller than the dilated kernel"),
    (lambda: im2col(X8, 1, stride=(1, 0)), r"stride=0: out of range"),
    (lambda: im2col(X8, 1, pads=1), r"pads=1: must be \(\(top, bottom\), \(left, right\)\)"),
    (lambda: im2col(X8, 3, pads=((1, 1), (1, 1)), pad_value=300),
     r"pad_value=300: allowed range for int8 is the integers in \[-128, 127\]"),
    (lambda: im2col(X8, 3, pads=((1, 1), (1, 1)), pad_value=0.5), r"pad_value=0.5: allowed"),
    (lambda: im2col(X8, 3, pads=((1, 1), (1, 1)), pad_value=None), r"pad_value=None: must be"),
    (lambda: col2im([[1]], (1, 1, 1), 1), r"cols: list given, must be a numeric numpy array"),
    (lambda: col2im(np.zeros((4, 4, 2), "U1"), (4, 4, 2), 1), r"cols: <U1 given"),
    (lambda: col2im(np.zeros((4, 4, 2)), 4, 1), r"input_shape=4: must be \(H, W, C\)"),
    (lambda: col2im(np.zeros((4, 4, 2)), (4, -4, 2), 1), r"input_shape=\(4, -4, 2\): must be"),
    (lambda: col2im(np.zeros((4, 4, 2)), (4.0, 4, 2), 1), r"input_shape=\(4.0, 4, 2\)"),
    (lambda: col2im(np.zeros((4, 4, 3)), (4, 4, 2), 1), r"cols: shape \(4, 4, 3\) must be"),
])
def test_im2col(call: Callable[[], object], match: str) -> None:
    _expect(call, match)


def test_im2col_empty_batch_is_an_empty_result() -> None:
    """A batch of 0 images gives 0 column sets (it used to fail inside numpy's reshape),
    and col2im maps them back to 0 images."""
    cols = im2col(np.zeros((0, 4, 4, 2), np.int8), 3)
    assert cols.shape == (0, 2, 2, 18)
    assert col2im(cols, (0, 4, 4, 2), 3).shape == (0, 4, 4, 2)


# ----------------------------------------------------------------------------- codegen

def _pool(name: str = "p") -> MaxPool2D:
    return MaxPool2D(pool_size=2, input_shape=(4, 4, 1), name=name)


@pytest.mark.parametrize("layers, options, match", [
    ([object()], {}, r"layer=<object object .*>: not a supported layer type \(Conv2D"),
    ([None], {}, r"layer=None: not a supported layer type"),
    (["conv"], {}, r"layer='conv': not a supported layer type"),
    ("p", {}, r"layers='p': allowed is a non-empty sequence of layers"),
    ([], {}, r"layers=\[\]: allowed is a non-empty sequence"),
    ([_pool("a"), _pool("a")], {}, r"layer name='a': duplicate"),
    ([MaxPool2D(pool_size=2, input_shape=(4, 4, 1))], {}, r"layer name=None: must be a string"),
    ([MaxPool2D(pool_size=2, name="q")], {}, r"layer 'q': input_shape=None"),
    ([_pool()], {"prefix": "1net"}, r"prefix='1net': must match"),
    ([_pool()], {"prefix": None}, r"prefix=None: must be a string"),
    ([_pool()], {"prefix": "a/b"}, r"prefix='a/b': must match"),
    ([_pool()], {"strategy": "fast"}, r"strategy='fast': allowed are 'direct', 'im2col'"),
    ([_pool()], {"strategy": {"zz": "direct"}}, r"strategy: layer name 'zz' is not among"),
    ([_pool()], {"strategy": {"p": "im2col"}}, r"strategy\['p'\]='im2col': allowed for max_"),
    ([_pool()], {"cpu": "cortex-m85"}, r"cpu='cortex-m85': allowed are generic, cortex-m0"),
    ([_pool()], {"cpu": None}, r"cpu=None: allowed are generic"),
    ([_pool()], {"scratch_budget": -1}, r"scratch_budget=-1: allowed is an int >= 0"),
    ([_pool()], {"registry": "no"}, r"registry='no': allowed are True, False"),
])
def test_generate(tmp_path: Path, layers: Any, options: dict[str, Any], match: str) -> None:
    _expect(lambda: codegen.generate(layers, tmp_path, **options), match)


def test_generate_out_dir(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    _expect(lambda: codegen.generate([_pool()], afile), r"out_dir='.*afile': is or lies under")
    _expect(lambda: codegen.generate([_pool()], afile / "sub"), r"out_dir='.*afile/sub'")
    _expect(lambda: codegen.generate([_pool()], None), r"out_dir=None: must be a str or a path")
    assert afile.read_text() == "not a directory"


def test_layer_spot_checks() -> None:
    """Layers are validated in test_layers_validation.py; two entry points codegen leans on."""
    kw = dict(weights=np.ones((1, 1, 1, 1), np.int8), output_multiplier=np.full(1, 1 << 30,
              np.int32), output_shift=np.zeros(1, np.int32))
    _expect(lambda: Conv2D(**kw, name="é"), r"name='é': must be None or an ASCII C identifier")
    _expect(lambda: Conv2D(**kw).output_shape_for((8.5, 8, 1)), r"input_shape=\(8.5, 8, 1\)")


# ----------------------------------------------------------------------------- targets

@pytest.mark.parametrize("spec, match", [
    ("qemu:zzz", r"board='zzz' unknown; known: native, mps2-an385"),
    ("qemu:", r"board='' unknown"),
    ("serial:", r"spec='serial:' must be 'native'"),
    ("serial:@115200", r"spec='serial:@115200': empty port"),
    ("serial: ", r"spec='serial: ': empty port"),
    ("serial:/dev/ttyACM0@0", r"baud='0', allowed range is the integers \[50, 4000000\]"),
    ("serial:/dev/ttyACM0@fast", r"baud='fast', allowed range"),
    ("serial:/dev/ttyACM0@", r"baud='', allowed range"),
    ("serial:/dev/ttyACM0@99999999999", r"baud='99999999999', allowed range"),
    (None, r"spec=None: must be a string"),
])
def test_target_specs(spec: Any, match: str) -> None:
    _expect(lambda: targets.parse_spec(spec), match)
    _expect(lambda: targets.open(spec, [_pool()]), match)


def test_target_spec_port_may_hold_an_at_sign_before_the_baud() -> None:
    assert targets.parse_spec("serial:a@b@9600").port == "a@b"
    assert targets.parse_spec("serial:/dev/ttyUSB0").baud == 115200


def test_target_open_options() -> None:
    _expect(lambda: targets.open("native", None), r"layers=None: must be an iterable of layers")
    _expect(lambda: targets.open("native", [_pool()], cpu="cortex-m4"),
            r"cpu: the native target builds generic code only")
    _expect(lambda: targets.open("qemu:mps2-an386", [_pool()], cpu="cortex-m0"),
            r"cpu='cortex-m0' not supported on mps2-an386; allowed: cortex-m4")


@pytest.mark.parametrize("name, x, match", [
    ("nope", np.zeros(16, np.int8), r"name='nope' is not a layer of this session; known"),
    (["sum8"], np.zeros(16, np.int8), r"name=\['sum8'\] is not a layer"),
    ("sum8", np.zeros(16), r"x.dtype=float64 must be an integer type \(int8\)"),
    ("sum8", np.ones(16, bool), r"x.dtype=bool must be an integer type"),
    ("sum8", np.zeros((0, 16), np.int8), r"x.shape=\(0, 16\) must be \(16,\) .*batch >= 1"),
    ("sum8", np.zeros((1, 1, 16), np.int8), r"x.shape=\(1, 1, 16\) must be"),
    ("sum8", [[0] * 16, [0]], r"x: not convertible to an array"),
    ("sum8", np.full(16, 300), r"x values 300..300 outside int8 range -128..127"),
])
def test_session_run(native_session: Any, name: Any, x: Any, match: str) -> None:
    _expect(lambda: native_session.run(name, x), match)
