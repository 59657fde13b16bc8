"""Learning on the board (issue 9, item 4b): fine-tuning the last layer of a small
keyword-spotting-style CNN on the target, next to the same fine-tuning in float on the host.

The data are synthetic "spectrograms" (12 time frames x 12 frequency bins, values in
[-1, 1)) of four keywords: a rising and a falling frequency sweep, a steady high and a
steady low tone, each at a random time, frequency offset and loudness, plus white noise.
The CNN: a frozen feature extractor (Conv2D 3x3 'same', 8 fixed random filters, ReLU;
MaxPool2D 4x4: 72 int8 features; a stand-in for layers trained earlier) and a fully
connected head of 4 classes.

1. *Pretraining* (host, float64): the head is fitted to 400 samples of the source domain
   by ridge regression on one-hot targets; then quantized (int16 weights, int32 bias).
2. *Domain shift*: the target domain (another microphone, say) moves every keyword two
   frequency bins up and adds a spectral tilt, so the pretrained head loses accuracy.
3. *Fine-tuning on the board*: 192 labelled target-domain samples; the board runs the
   frozen layers on each (their int8 features checked bit-exact against the reference on
   the host), then :class:`edgeconv.backprop.DenseTrainStep` per batch of 16 (forward,
   error, :func:`edgeconv.grad.dense_backward` in fixed point, SGD with momentum 0.9),
   5 epochs, learning rate 0.03 halved in each of the last two epochs.  Every step's reply
   is checked bit-exact against the reference model.
4. *The same fine-tuning in float* on the host: float64 head from the unquantized
   pretrained weights, the same (dequantized) features, batches, order, loss and
   schedule.

Accuracy is measured on 400 held-out target-domain samples (the frozen layers by the
reference model, bit-exact with the board) before and after, for both.  ``edgeconv demo
train`` runs this after the 1-D filter (``--only cnn`` alone); exit status 0 when the
board's accuracy rose and ended within 2 points of the float fine-tuning.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgeconv.backprop import DenseTrainStep
from edgeconv.layers import Conv2D, MaxPool2D

FRAMES = BINS = 12
CLASSES = 4
KEYWORDS = ("rising", "falling", "high", "low")
FILTERS = 8
POOL = 4
INPUT_SCALE = 1 / 128        # spectrogram int8: value / 128
FEATURE_SCALE = 1 / 32       # the features' scale; zero point -128 (ReLU output >= 0)
FEATURE_ZERO_POINT = -128
SOURCE = {"shift": 0, "tilt": 0.0}
TARGET = {"shift": 2, "tilt": 0.2}


def spectrograms(count: int, *, seed: int, shift: int = 0, tilt: float = 0.0,
                 noise: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """``count`` synthetic keyword spectrograms ``(count, FRAMES, BINS)`` (float64, in
    [-1, 127/128]) and their labels: a Gaussian ridge (width 0.8 bins) along the
    keyword's frequency track for 8 frames from a random start frame (0..3), the track
    moved by ``shift`` + a random -1..1 bins, loudness uniform in [0.5, 1], plus a tilt
    ``tilt * bin / BINS`` and white noise of standard deviation ``noise``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, count)
    t = np.arange(FRAMES)[:, None]
    f = np.arange(BINS)[None, :]
    out = np.empty((count, FRAMES, BINS))
    for i, label in enumerate(labels):
        t0, f0, loud = rng.integers(0, 4), rng.integers(-1, 2) + shift, rng.uniform(0.5, 1.0)
        tt = t - t0
        track = {0: 2 + tt, 1: 9 - tt, 2: 7 + 0 * tt, 3: 3 + 0 * tt}[int(label)] + f0
        ridge = loud * np.exp(-0.5 * ((f - track) / 0.8) ** 2) * ((tt >= 0) & (tt < 8))
        out[i] = ridge + tilt * f / BINS + noise * rng.standard_normal((FRAMES, BINS))
    return np.clip(out, -1.0, 127 / 128), labels


def quantize_input(images: np.ndarray) -> np.ndarray:
    """Spectrograms to the CNN's int8 input ``(N, FRAMES, BINS, 1)``."""
    return np.clip(np.round(images / INPUT_SCALE), -128, 127).astype(np.int8)[..., None]


def frozen_layers() -> tuple[Conv2D, MaxPool2D]:
    """The frozen feature extractor: Conv2D of 8 random 3x3 filters (seed 1), stride 2,
    'same', ReLU (6 x 6 x 8), then MaxPool2D 2x2: 3 x 3 x 8 = 72 int8 features."""
    w = np.random.default_rng(1).standard_normal((FILTERS, 3, 3, 1)) * 0.5
    conv = Conv2D.from_float(w, np.zeros(FILTERS), input_scale=INPUT_SCALE,
                             output_scale=FEATURE_SCALE, output_zero_point=FEATURE_ZERO_POINT,
                             activation="relu", stride=2, padding="same",
                             input_shape=(FRAMES, BINS, 1), name="cnn_conv")
    pool = MaxPool2D.from_float(pool_size=2, scale=FEATURE_SCALE,
                                zero_point=FEATURE_ZERO_POINT,
                                input_shape=conv.output_shape, name="cnn_pool")
    return conv, pool


def features(images_q: np.ndarray) -> np.ndarray:
    """The frozen layers' int8 features ``(N, 72)`` (reference model)."""
    conv, pool = frozen_layers()
    return pool(conv(images_q)).reshape(len(images_q), -1)


def dequantize(feats: np.ndarray) -> np.ndarray:
    return (feats.astype(np.float64) - FEATURE_ZERO_POINT) * FEATURE_SCALE


def pretrain(feats: np.ndarray, labels: np.ndarray, *, ridge: float = 1.0
             ) -> tuple[np.ndarray, np.ndarray]:
    """The float head ``(w (O, K), b (O,))``: ridge regression on one-hot targets."""
    a = np.c_[dequantize(feats), np.ones(len(feats))]
    wb = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ np.eye(CLASSES)[labels])
    return wb[:-1].T.copy(), wb[-1].copy()


@dataclass(frozen=True)
class QuantizedHead:
    """The head in the board's integers: ``w * weight_scale``, ``b * weight_scale *
    FEATURE_SCALE``; ``target`` is 1.0 in the logits' units."""

    w: np.ndarray
    b: np.ndarray
    weight_scale: float

    @classmethod
    def from_float(cls, w: np.ndarray, b: np.ndarray, *, headroom: float = 4.0
                   ) -> QuantizedHead:
        """int16 weights with room for ``headroom`` times the largest weight."""
        scale = headroom * float(np.abs(w).max()) / 32767
        logit = scale * FEATURE_SCALE
        return cls(np.round(w / scale).astype(np.int16),
                   np.round(b / logit).astype(np.int32), scale)

    @property
    def target(self) -> int:
        return round(1.0 / (self.weight_scale * FEATURE_SCALE))


def accuracy_int(w: np.ndarray, b: np.ndarray, feats: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the integer head (first maximal logit, as the board)."""
    z = (feats.astype(np.int64) - FEATURE_ZERO_POINT) @ w.astype(np.int64).T + b
    return float((np.argmax(z, axis=1) == labels).mean())


def accuracy_float(w: np.ndarray, b: np.ndarray, feats: np.ndarray,
                   labels: np.ndarray) -> float:
    return float((np.argmax(dequantize(feats) @ w.T + b, axis=1) == labels).mean())


def schedule(epoch: int, epochs: int, lr: float) -> float:
    """The learning rate of ``epoch`` (0-based): ``lr``, halved in each of the last two
    epochs (0.5, 0.25)."""
    return lr * 0.5 ** max(0, epoch - (epochs - 3))


def batches(count: int, batch: int, epoch: int, seed: int) -> list[np.ndarray]:
    """The sample indices of each batch of ``epoch`` (a fresh shuffle, whole batches)."""
    order = np.random.default_rng(seed + epoch).permutation(count)
    return [order[i:i + batch] for i in range(0, count - batch + 1, batch)]


def finetune_float(w: np.ndarray, b: np.ndarray, feats: np.ndarray, labels: np.ndarray, *,
                   epochs: int, batch: int, lr: float, momentum: float, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The float64 fine-tuning (host): SGD with momentum on the loss of
    :class:`edgeconv.backprop.DenseTrainStep` (half the squared error against one-hot
    targets, averaged over the batch)."""
    w, b = w.copy(), b.copy()
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    x = dequantize(feats)
    for epoch in range(epochs):
        rate = schedule(epoch, epochs, lr)
        for idx in batches(len(x), batch, epoch, seed):
            e = x[idx] @ w.T + b - np.eye(CLASSES)[labels[idx]]
            vw = momentum * vw + e.T @ x[idx] / batch
            vb = momentum * vb + e.sum(axis=0) / batch
            w -= rate * vw
            b -= rate * vb
    return w, b


@dataclass(frozen=True)
class CnnResult:
    """Accuracies on the held-out target-domain samples (fractions), the mean loss per
    epoch on the board, the RAM of a training step by role (bytes)."""

    target: str
    before: float
    after: float
    float_before: float
    float_after: float
    losses: tuple[float, ...]
    ram: dict[str, int]
    steps: int

    @property
    def gap_points(self) -> float:
        """|board - float| final accuracy in percentage points."""
        return 100 * abs(self.after - self.float_after)


def run_cnn(target: str = "native", *, epochs: int = 5, batch: int = 16, lr: float = 0.03,
            momentum: float = 0.9, train: int = 192, held_out: int = 400, seed: int = 0,
            echo: Callable[[str], None] | None = print) -> CnnResult:
    """Fine-tune the head on ``target`` and in float on the host; ``echo`` prints the
    progress (None: silent)."""
    import edgeconv.targets
    from edgeconv import codegen

    say = echo or (lambda _text: None)
    src_x, src_y = spectrograms(400, seed=seed + 10, **SOURCE)
    tr_x, tr_y = spectrograms(train, seed=seed + 11, **TARGET)
    ho_x, ho_y = spectrograms(held_out, seed=seed + 12, **TARGET)
    ho_f = features(quantize_input(ho_x))
    src_f = features(quantize_input(src_x))
    w0, b0 = pretrain(src_f, src_y)
    head = QuantizedHead.from_float(w0, b0)
    conv, pool = frozen_layers()
    k = math.prod(pool.output_shape)
    mu = round(momentum * 32768)
    # velocities in units of 2**-vfb of the gradient sums sum_n e * (x - zero point):
    # batch * target * 255 (errors of about the target's size) fits in 2**28
    vfb = 28 - math.ceil(math.log2(batch * head.target * 255))
    step = DenseTrainStep(k, CLASSES, batch, input_zero_point=FEATURE_ZERO_POINT,
                          target=head.target, momentum=mu, velocity_frac_bits=vfb,
                          name="cnn_head_train")
    scratch = codegen.plan_layers([step])[0].plan.scratch_bytes
    ram = step.ram_bytes(scratch)
    say(f"fine-tuning the {CLASSES}-class head ({k} features) of a keyword CNN on {target}: "
        f"{train} target-domain samples, batch {batch}, {epochs} epochs, lr {lr}, "
        f"momentum {mu}/32768")
    say(f"pretrained head (host, ridge regression, then int16): source-domain accuracy "
        f"{100 * accuracy_int(head.w, head.b, src_f, src_y):.1f}%")
    state = np.concatenate([head.w.ravel(), head.b, np.zeros(k * CLASSES + CLASSES)]
                           ).astype(np.int32)
    before = accuracy_int(head.w, head.b, ho_f, ho_y)
    losses: list[float] = []
    with edgeconv.targets.open(target, [conv, pool, step]) as session:
        images = quantize_input(tr_x)
        # the frozen layers on the board (batched runs), checked on the host
        tr_f = session.run(pool.name, session.run(conv.name, images)).reshape(train, k)
        if not np.array_equal(tr_f, features(images)):
            raise RuntimeError("the board's features differ from the reference model's")
        for epoch in range(epochs):
            lr_w, lr_b = step.learning_rates(schedule(epoch, epochs, lr),
                                             feature_scale=FEATURE_SCALE, batch=batch)
            total, correct, groups = 0.0, 0, batches(train, batch, epoch, seed)
            for idx in groups:
                vector = step.pack(state, lr_w, lr_b, tr_f[idx], tr_y[idx])
                got = session.run(step.name, vector)
                if not np.array_equal(got, step(vector)):
                    raise RuntimeError(f"epoch {epoch + 1}: the board's step differs from "
                                       "the reference")
                state, right, loss = step.results(got)
                total += loss * (head.weight_scale * FEATURE_SCALE) ** 2
                correct += right
            losses.append(total / len(groups))
            say(f"epoch {epoch + 1}: loss {losses[-1]:.4f}, training accuracy "
                f"{100 * correct / (len(groups) * batch):.1f}%")
    parts = step.split_state(state)
    after = accuracy_int(parts["w"], parts["b"], ho_f, ho_y)
    wf, bf = finetune_float(w0, b0, tr_f, tr_y, epochs=epochs, batch=batch, lr=lr,
                            momentum=momentum, seed=seed)
    result = CnnResult(target, before, after, accuracy_float(w0, b0, ho_f, ho_y),
                       accuracy_float(wf, bf, ho_f, ho_y), tuple(losses), ram,
                       epochs * len(batches(train, batch, 0, seed)))
    say(f"held-out accuracy ({held_out} target-domain samples):")
    say(f"  board, fixed point (int16 head): {100 * before:5.1f}% -> {100 * after:5.1f}%")
    say(f"  host, float64:                   {100 * result.float_before:5.1f}% -> "
        f"{100 * result.float_after:5.1f}%")
    say(f"RAM of a training step on the board: {sum(ram.values())} bytes")
    for what, size in ram.items():
        say(f"  {what}: {size} B")
    say(f"  (over serial as int32 words: {4 * step.input_shape[0]} B in, "
        f"{4 * step.output_shape[0]} B out per step)")
    return result
