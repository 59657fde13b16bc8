"""Build the whole-model fixtures: small Keras models converted to fully quantized .tflite.

Run from the repository root with a Python that has TensorFlow (CPU build is enough):

    /work/venvs/tf/bin/python tests/models/generate_models.py

(any venv with ``tensorflow-cpu`` works; ``pip install tensorflow-cpu``).  The script
writes the ``*.tflite`` files next to itself; they are committed, so the tests need only
the LiteRT interpreter (``ai-edge-litert``), never TensorFlow.

Everything is deterministic: Keras weights come from seeded initializers (random init,
biases drawn small and non-zero so the bias path is exercised), the representative
dataset from a seeded numpy generator.  The architectures follow MLPerf Tiny's reference
models (DS-CNN, ResNet-8, MobileNetV1 0.25, FC autoencoder) so that instruction and arena
figures compare with TFLite Micro's; the other fixtures cover the remaining ops.
"""

from __future__ import annotations

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

keras = tf.keras
layers = keras.layers

HERE = pathlib.Path(__file__).resolve().parent
SEED = 1234
CALIBRATION_SAMPLES = 32


def _init(seed: int) -> dict:
    """Seeded initializers: He-normal kernels, small normal biases."""
    return {
        "kernel_initializer": keras.initializers.HeNormal(seed=seed),
        "bias_initializer": keras.initializers.RandomNormal(stddev=0.05, seed=seed + 1),
    }


def _dw_init(seed: int) -> dict:
    return {
        "depthwise_initializer": keras.initializers.HeNormal(seed=seed),
        "bias_initializer": keras.initializers.RandomNormal(stddev=0.05, seed=seed + 1),
    }


# ----------------------------------------------------------------------------- models

def ds_cnn() -> keras.Model:
    """DS-CNN keyword spotter (MLPerf Tiny KWS): 49x10x1 MFCC input, conv 10x4 stride 2 ->
    64, four depthwise 3x3 + pointwise 64 blocks, average pool, FC 12, softmax."""
    x_in = keras.Input((49, 10, 1), batch_size=1, name="mfcc")
    x = layers.Conv2D(64, (10, 4), strides=2, padding="same", activation="relu",
                      **_init(10))(x_in)
    for i in range(4):
        x = layers.DepthwiseConv2D(3, padding="same", activation="relu",
                                   **_dw_init(20 + 2 * i))(x)
        x = layers.Conv2D(64, 1, activation="relu", **_init(40 + 2 * i))(x)
    x = layers.AveragePooling2D(pool_size=x.shape[1:3])(x)
    x = layers.Flatten()(x)
    x = layers.Dense(12, **_init(60))(x)
    return keras.Model(x_in, layers.Softmax()(x), name="ds_cnn")


def resnet8() -> keras.Model:
    """ResNet-8 (MLPerf Tiny image classification): 32x32x3, three stages 16/32/64 with
    residual ADDs (1x1 stride-2 projection on the downsampling stages), avg pool, FC 10,
    softmax."""
    seeds = iter(range(100, 200, 2))
    x_in = keras.Input((32, 32, 3), batch_size=1, name="image")
    x = layers.Conv2D(16, 3, padding="same", activation="relu", **_init(next(seeds)))(x_in)
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = layers.Conv2D(filters, 3, strides=stride, padding="same", activation="relu",
                          **_init(next(seeds)))(x)
        y = layers.Conv2D(filters, 3, padding="same", **_init(next(seeds)))(y)
        if stride != 1:
            x = layers.Conv2D(filters, 1, strides=stride, **_init(next(seeds)))(x)
        x = layers.Activation("relu")(layers.Add()([x, y]))
    x = layers.AveragePooling2D(pool_size=8)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(10, **_init(next(seeds)))(x)
    return keras.Model(x_in, layers.Softmax()(x), name="resnet8")


def mobilenet_v1_025() -> keras.Model:
    """MobileNetV1 width 0.25 (MLPerf Tiny visual wake words): 96x96x3, conv 3x3 s2 -> 8,
    thirteen depthwise + pointwise blocks, ReLU6, 3x3 average pool, FC 2, softmax."""
    seeds = iter(range(200, 300, 2))
    x_in = keras.Input((96, 96, 3), batch_size=1, name="image")
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6",
                      **_init(next(seeds)))(x_in)
    blocks = ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1),
              (128, 1), (128, 1), (128, 1), (256, 2), (256, 1))
    for filters, stride in blocks:
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", activation="relu6",
                                   **_dw_init(next(seeds)))(x)
        x = layers.Conv2D(filters, 1, activation="relu6", **_init(next(seeds)))(x)
    x = layers.AveragePooling2D(pool_size=x.shape[1:3])(x)
    x = layers.Flatten()(x)
    x = layers.Dense(2, **_init(next(seeds)))(x)
    return keras.Model(x_in, layers.Softmax()(x), name="mobilenet_v1_025")


def fc_autoencoder() -> keras.Model:
    """FC autoencoder (MLPerf Tiny anomaly detection): 640-128-128-128-128-8-128-128-128-
    128-640, ReLU between the layers."""
    x_in = keras.Input((640,), batch_size=1, name="spectrogram")
    x = x_in
    for i, units in enumerate((128, 128, 128, 128, 8, 128, 128, 128, 128)):
        x = layers.Dense(units, activation="relu", **_init(300 + 2 * i))(x)
    x = layers.Dense(640, **_init(340))(x)
    return keras.Model(x_in, x, name="fc_autoencoder")


def misc_ops() -> keras.Model:
    """MEAN, MUL (with a tensor and with a constant), PAD, CONCATENATION (inputs of
    different scales), LOGISTIC, MAX_POOL_2D, RESHAPE, SQUEEZE and fused RELUs on a small
    16x16x3 input."""
    x_in = keras.Input((16, 16, 3), batch_size=1, name="image")
    x = layers.Conv2D(8, 3, activation="relu", **_init(400))(x_in)            # 14x14x8
    x = layers.ZeroPadding2D(((1, 2), (2, 1)))(x)                              # PAD 17x17x8
    x = layers.MaxPooling2D(2)(x)                                             # 8x8x8
    a = layers.Conv2D(6, 1, **_init(402))(x)                                   # wide range
    b = layers.Conv2D(4, 3, padding="same", activation="relu", **_init(404))(x)
    b = layers.Lambda(lambda t: t * 0.25)(b)                                   # small range
    x = layers.Concatenate()([a, b])                                           # 8x8x10
    gate = layers.Activation("sigmoid")(layers.Conv2D(10, 1, **_init(406))(x))  # LOGISTIC
    x = layers.Multiply()([x, gate])                                           # MUL
    x = layers.Reshape((4, 16, 10))(x)                                         # RESHAPE
    x = layers.GlobalAveragePooling2D(keepdims=True)(x)                        # MEAN
    x = layers.Conv2D(6, 1, activation="relu", **_init(408))(x)                # 1x1x6
    x = layers.Lambda(lambda t: tf.squeeze(t, axis=(1, 2)))(x)                 # SQUEEZE
    x = layers.Softmax()(x)
    return keras.Model(x_in, x, name="misc_ops")


def concat_requantize() -> keras.Model:
    """CONCATENATION of the model input, a conv output and a LOGISTIC output: the sigmoid's
    fixed output scale (1/256) differs from the others, so the converter inserts an
    int8 -> int8 QUANTIZE (requantization) in front of the concatenation."""
    x_in = keras.Input((8, 8, 2), batch_size=1, name="input")
    a = layers.Conv2D(4, 3, padding="same", **_init(700))(x_in)
    s = layers.Activation("sigmoid")(layers.Conv2D(3, 1, **_init(702))(x_in))
    x = layers.Concatenate()([x_in, a, s])
    return keras.Model(x_in, layers.Conv2D(4, 1, **_init(704))(x), name="concat_requantize")


def small_cnn(name: str) -> keras.Model:
    """Conv, depthwise, max pool, average pool, residual ADD, two FCs, softmax on 12x12x2;
    used for the 16x8 and the float-I/O (per-channel FC) fixtures."""
    x_in = keras.Input((12, 12, 2), batch_size=1, name="input")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", **_init(500))(x_in)
    y = layers.DepthwiseConv2D(3, padding="same", **_dw_init(502))(x)
    x = layers.Add()([x, y])
    x = layers.MaxPooling2D(2)(x)                                              # 6x6x8
    x = layers.Conv2D(32, 3, strides=2, padding="valid", activation="relu6",
                      **_init(504))(x)                                         # 2x2x32
    x = layers.AveragePooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(48, activation="relu", **_init(506))(x)
    x = layers.Dense(5, **_init(508))(x)
    return keras.Model(x_in, layers.Softmax()(x), name=name)


def unsupported_tanh() -> keras.Model:
    """A conv followed by TANH, an op outside the supported set (error tests)."""
    x_in = keras.Input((6, 6, 1), batch_size=1, name="input")
    x = layers.Conv2D(2, 3, **_init(600))(x_in)
    return keras.Model(x_in, layers.Activation("tanh")(x), name="unsupported_tanh")


# -------------------------------------------------------------------------- convert

def conv_chain() -> keras.Model:
    """Only ops with Cortex-M kernels and a RESHAPE: conv 3x3 -> 8 (relu), depthwise 3x3
    stride 2, conv 1x1 -> 16 (relu6), max pool 2, average pool 2, flatten; 16x16x3. The
    smallest network for the generated-C tests on every board."""
    x = inputs = keras.Input((16, 16, 3), batch_size=1)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", **_init(1))(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", **_dw_init(2))(x)
    x = layers.Conv2D(16, 1, activation="relu6", **_init(3))(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, x, name="conv_chain")


def representative(model: keras.Model, seed: int):
    """Seeded calibration inputs: standard normal, plus a few uniform in [-3, 3]."""
    shape = tuple(model.input_shape[1:])

    def gen():
        rng = np.random.default_rng(seed)
        for i in range(CALIBRATION_SAMPLES):
            if i % 4 == 3:
                data = rng.uniform(-3.0, 3.0, size=(1, *shape))
            else:
                data = rng.normal(size=(1, *shape))
            yield [data.astype(np.float32)]
    return gen


def convert(model: keras.Model, *, seed: int, mode: str = "int8",
            per_channel_dense: bool = False) -> bytes:
    """Full integer quantization.  ``mode``: 'int8' (int8 I/O), '16x8' (int16 activations,
    int8 weights, int16 I/O) or 'float_io' (int8 inside, float32 I/O through QUANTIZE /
    DEQUANTIZE at the edges)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(model, seed)
    if mode == "16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        converter.inference_input_type = tf.int16
        converter.inference_output_type = tf.int16
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if mode == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    if per_channel_dense:
        converter._experimental_disable_per_channel_quantization_for_dense_layers = False
    return converter.convert()


FIXTURES = {
    # file stem: (builder, conversion options)
    "ds_cnn": (ds_cnn, {}),
    "resnet8": (resnet8, {}),
    "mobilenet_v1_025": (mobilenet_v1_025, {}),
    "fc_autoencoder": (fc_autoencoder, {}),
    "misc_ops": (misc_ops, {}),
    "small_cnn_16x8": (lambda: small_cnn("small_cnn_16x8"), {"mode": "16x8"}),
    "small_cnn_float_io": (lambda: small_cnn("small_cnn_float_io"),
                           {"mode": "float_io", "per_channel_dense": True}),
    "unsupported_tanh": (unsupported_tanh, {}),
    "concat_requantize": (concat_requantize, {}),
    "conv_chain": (conv_chain, {}),
}


def main() -> None:
    for i, (stem, (build, options)) in enumerate(FIXTURES.items()):
        keras.utils.set_random_seed(SEED + i)
        model = build()
        blob = convert(model, seed=SEED + 100 + i, **options)
        path = HERE / f"{stem}.tflite"
        path.write_bytes(blob)
        print(f"{path.name}: {len(blob):,} bytes")


if __name__ == "__main__":
    main()
