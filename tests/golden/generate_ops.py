"""Build the single-op .tflite fixtures of the non-convolution ops (tests/golden/ops/).

Run by hand with a TensorFlow venv (TensorFlow is not a test dependency):

    python tests/golden/generate_ops.py [--out tests/golden/ops]   # with pip install '.[bench]'

Each configuration is a one-operator Keras model (ADD, MUL, MEAN, SOFTMAX or LOGISTIC)
converted with full-integer quantization: int8, or 16x8 (int16 activations, int16 I/O).
The calibration ranges of the inputs set the tensor scales, so the configurations cover
unequal input scales, saturating outputs and several softmax input scales.  SOFTMAX's
``beta`` cannot be set from Keras, so the script rewrites it in the converted flatbuffer.

For every model, ``<id>.json`` records what the tests cannot read from the interpreter's
tensor details: the operator's builtin options (fused activation, beta, keep_dims,
pot_scale_int16) and the reduction axes, read back from the converted flatbuffer.  The
tests run the .tflite files themselves in the LiteRT interpreter (BUILTIN_REF).
"""

from __future__ import annotations

import argparse
import json
import os
import zlib
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import flatbuffers  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.lite.python import schema_py_generated as schema  # noqa: E402

N_CALIBRATION = 32
_ACTIVATION = {v: k for k, v in vars(schema.ActivationFunctionType).items()
               if not k.startswith("_")}
_OPS = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def _cfg(cid: str, op: str, dtype: str, shapes: list[tuple[int, ...]],
         ranges: list[tuple[float, float]], **kw: Any) -> dict[str, Any]:
    cfg = {"id": cid, "op": op, "dtype": dtype, "shapes": [list(s) for s in shapes],
           "ranges": [list(r) for r in ranges], "activation": None, "beta": None,
           "keep_dims": None, "int16_output": False, "input_scale": None}
    unknown = set(kw) - set(cfg)
    if unknown:
        raise ValueError(f"{cid}: unknown keys {unknown}")
    return cfg | kw


CONFIGS = [
    # ADD: equal shapes, unequal scales; broadcasting; every fused activation.
    _cfg("add_i8", "ADD", "int8", [(1, 4, 5, 8), (1, 4, 5, 8)], [(-1, 1), (-3, 2)]),
    _cfg("add_i8_bcast_relu", "ADD", "int8", [(1, 4, 5, 8), (1, 1, 1, 8)],
         [(-2, 6), (-1, 1)], activation="relu"),
    _cfg("add_i8_bcast2_relu6", "ADD", "int8", [(1, 4, 1, 8), (1, 1, 5, 1)],
         [(-8, 8), (-0.5, 0.5)], activation="relu6"),
    _cfg("add_i8_relu_n1", "ADD", "int8", [(1, 3, 3, 4), (1, 3, 3, 4)],
         [(-2, 2), (-2, 2)], activation="relu_n1_to_1"),
    _cfg("add_i16", "ADD", "int16", [(1, 4, 5, 8), (1, 4, 5, 8)], [(-1, 1), (-5, 5)]),
    _cfg("add_i16_bcast_relu6", "ADD", "int16", [(1, 4, 5, 8), (1, 1, 5, 8)],
         [(-10, 10), (-1, 1)], activation="relu6"),
    # MUL: equal shapes, broadcasting, activations.
    _cfg("mul_i8", "MUL", "int8", [(1, 4, 5, 8), (1, 4, 5, 8)], [(-1, 1), (-3, 2)]),
    _cfg("mul_i8_bcast_relu", "MUL", "int8", [(1, 4, 5, 8), (1, 1, 1, 8)],
         [(-2, 6), (-1, 3)], activation="relu"),
    _cfg("mul_i8_bcast2_relu6", "MUL", "int8", [(1, 4, 1, 8), (1, 1, 5, 1)],
         [(-4, 4), (-4, 4)], activation="relu6"),
    _cfg("mul_i8_relu_n1", "MUL", "int8", [(1, 3, 3, 4), (1, 3, 3, 4)],
         [(-2, 2), (-2, 2)], activation="relu_n1_to_1"),
    _cfg("mul_i16", "MUL", "int16", [(1, 4, 5, 8), (1, 4, 5, 8)], [(-1, 1), (-5, 5)]),
    _cfg("mul_i16_bcast_relu", "MUL", "int16", [(1, 4, 5, 8), (1, 4, 1, 1)],
         [(-3, 3), (-2, 2)], activation="relu"),
    # MEAN over H and W (global average pooling).
    _cfg("mean_i8_keep", "MEAN", "int8", [(1, 5, 7, 8)], [(-1, 3)], keep_dims=True),
    _cfg("mean_i8", "MEAN", "int8", [(1, 6, 6, 16)], [(-4, 4)], keep_dims=False),
    _cfg("mean_i8_wide", "MEAN", "int8", [(1, 12, 10, 4)], [(0, 6)], keep_dims=False),
    _cfg("mean_i16_keep", "MEAN", "int16", [(1, 5, 7, 8)], [(-1, 3)], keep_dims=True),
    _cfg("mean_i16", "MEAN", "int16", [(1, 6, 6, 16)], [(-4, 4)], keep_dims=False),
    # SOFTMAX over the last axis; beta rewritten in the flatbuffer.
    _cfg("softmax_i8", "SOFTMAX", "int8", [(1, 10)], [(-4, 4)], beta=1.0),
    _cfg("softmax_i8_b05", "SOFTMAX", "int8", [(1, 3, 12)], [(-10, 10)], beta=0.5),
    _cfg("softmax_i8_b2", "SOFTMAX", "int8", [(1, 16)], [(-1, 1)], beta=2.0),
    _cfg("softmax_i8_wide", "SOFTMAX", "int8", [(1, 2, 7)], [(-40, 40)], beta=1.0),
    # int8 in, int16 out (scale 1/65536, zero point -32768): the output tensor is
    # rewritten in the flatbuffer (the converter keeps softmax int8 -> int8).
    _cfg("softmax_i8_i16out", "SOFTMAX", "int8", [(1, 4, 10)], [(-6, 6)], beta=1.0,
         int16_output=True),
    _cfg("softmax_i8_long", "SOFTMAX", "int8", [(1, 100)], [(-20, 20)], beta=0.25),
    _cfg("softmax_i16", "SOFTMAX", "int16", [(1, 10)], [(-4, 4)], beta=1.0),
    _cfg("softmax_i16_long", "SOFTMAX", "int16", [(1, 100)], [(-8, 8)], beta=1.5),
    _cfg("softmax_i16_b05", "SOFTMAX", "int16", [(1, 3, 12)], [(-10, 10)], beta=0.5),
    _cfg("softmax_i16_b2", "SOFTMAX", "int16", [(1, 16)], [(-1, 1)], beta=2.0),
    # LOGISTIC at several input scales.
    _cfg("logistic_i8", "LOGISTIC", "int8", [(1, 64)], [(-8, 8)]),
    _cfg("logistic_i8_narrow", "LOGISTIC", "int8", [(1, 4, 16)], [(-1, 1)]),
    _cfg("logistic_i8_wide", "LOGISTIC", "int8", [(1, 64)], [(-40, 30)]),
    _cfg("logistic_i16", "LOGISTIC", "int16", [(1, 64)], [(-8, 8)]),
    _cfg("logistic_i16_narrow", "LOGISTIC", "int16", [(1, 4, 16)], [(-1, 1)]),
    _cfg("logistic_i16_wide", "LOGISTIC", "int16", [(1, 64)], [(-40, 30)]),
    # input scale rewritten to 2**-12: TFLite's power-of-two int16 path
    _cfg("logistic_i16_pot", "LOGISTIC", "int16", [(1, 64)], [(-8, 8)], input_scale=2.0**-12),
]


def _activation(y: keras.KerasTensor, name: str | None) -> keras.KerasTensor:
    if name == "relu":
        return keras.layers.ReLU()(y)
    if name == "relu6":
        return keras.layers.ReLU(max_value=6.0)(y)
    if name == "relu_n1_to_1":
        return keras.ops.clip(y, -1.0, 1.0)
    return y


def _build(cfg: dict[str, Any]) -> keras.Model:
    inputs = [keras.Input(shape=tuple(s[1:]), batch_size=1, name=f"x{i + 1}")
              for i, s in enumerate(cfg["shapes"])]
    op = cfg["op"]
    if op == "ADD":
        y = _activation(keras.ops.add(inputs[0], inputs[1]), cfg["activation"])
    elif op == "MUL":
        y = _activation(keras.ops.multiply(inputs[0], inputs[1]), cfg["activation"])
    elif op == "MEAN":
        y = keras.layers.GlobalAveragePooling2D(keepdims=cfg["keep_dims"])(inputs[0])
    elif op == "SOFTMAX":
        y = keras.layers.Softmax()(inputs[0])
    else:
        y = keras.layers.Activation("sigmoid")(inputs[0])
    return keras.Model(inputs, y)


def _seed(cfg: dict[str, Any]) -> int:
    return zlib.crc32(cfg["id"].encode())


def _convert(model: keras.Model, cfg: dict[str, Any]) -> bytes:
    rng = np.random.default_rng(_seed(cfg))

    def calibration():
        for i in range(N_CALIBRATION):
            sample = {}
            for k, (shape, (lo, hi)) in enumerate(zip(cfg["shapes"], cfg["ranges"],
                                                      strict=True)):
                x = rng.uniform(lo, hi, size=shape).astype(np.float32)
                if i == 0:  # pin the calibrated range to the configured ends
                    x.flat[0], x.flat[-1] = lo, hi
                sample[f"x{k + 1}"] = x
            yield sample

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = calibration
    if cfg["dtype"] == "int8":
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = tf.int8
    else:
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        io_type = tf.int16
    conv.inference_input_type = io_type
    conv.inference_output_type = io_type
    return conv.convert()


def _op_name(model: Any, op: Any) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    return _OPS[max(code.builtinCode, code.deprecatedBuiltinCode)]


def _rewrite(model_bytes: bytes, cfg: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """Check the model holds exactly the one expected operator, apply the rewrites the
    configuration asks for (SOFTMAX's beta and int16 output, an input scale) and return
    the (re-serialized) model with the options the tests need."""
    model = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    graph = model.subgraphs[0]
    names = [_op_name(model, o) for o in graph.operators]
    # The converter may reshape a broadcast operand first (e.g. [1, 1, 1, 8] -> [8]); the
    # tests read the operator's own input tensors, so only the one target op matters.
    if (len(model.subgraphs) != 1 or names.count(cfg["op"]) != 1
            or set(names) - {cfg["op"], "RESHAPE"}):
        raise RuntimeError(f"{cfg['id']}: expected one {cfg['op']} operator, got {names}")
    op = graph.operators[names.index(cfg["op"])]
    name = cfg["op"]
    opts = op.builtinOptions
    info: dict[str, Any] = {"op": name, "dtype": cfg["dtype"], "graph_ops": names}
    if name in ("ADD", "MUL"):
        info["fused_activation"] = _ACTIVATION[opts.fusedActivationFunction]
        want = (cfg["activation"] or "none").upper()
        if info["fused_activation"] != want:
            raise RuntimeError(f"{cfg['id']}: activation {info['fused_activation']} was not "
                               f"fused as {want}")
        if name == "ADD":
            info["pot_scale_int16"] = bool(opts.potScaleInt16)
    elif name == "MEAN":
        info["keep_dims"] = bool(opts.keepDims)
        axis_buf = model.buffers[graph.tensors[op.inputs[1]].buffer].data
        info["axis"] = [int(a) for a in np.frombuffer(bytes(axis_buf), dtype=np.int32)]
    if cfg["input_scale"] is not None:  # the operator's input is a model input
        graph.tensors[op.inputs[0]].quantization.scale = [float(cfg["input_scale"])]
    if name == "SOFTMAX":
        opts.beta = float(cfg["beta"])
        info["beta"] = float(np.float32(cfg["beta"]))
        if cfg["int16_output"]:
            out = graph.tensors[op.outputs[0]]
            out.type = schema.TensorType.INT16
            out.quantization.scale = [1.0 / 65536]
            out.quantization.zeroPoint = [-32768]
    if name == "SOFTMAX" or cfg["input_scale"] is not None:
        builder = flatbuffers.Builder(len(model_bytes) + 1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        model_bytes = bytes(builder.Output())
    return model_bytes, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "ops")
    parser.add_argument("--only", nargs="*", help="config ids to regenerate")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for cfg in CONFIGS:
        if args.only and cfg["id"] not in args.only:
            continue
        keras.utils.set_random_seed(_seed(cfg))
        model_bytes, info = _rewrite(_convert(_build(cfg), cfg), cfg)
        info |= {"config": cfg, "tensorflow": tf.__version__}
        (args.out / f"{cfg['id']}.tflite").write_bytes(model_bytes)
        (args.out / f"{cfg['id']}.json").write_text(json.dumps(info, indent=1, sort_keys=True)
                                                   + "\n")
        print(f"{cfg['id']:24s} {len(model_bytes):6d} B {info}", flush=True)


if __name__ == "__main__":
    main()
