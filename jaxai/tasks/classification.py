"""Image classification: softmax cross-entropy with label smoothing; eval adds per-class metrics.

Augmentation runs on the device inside the jitted step, drawn from the step's key (same seed and
step, same images): random crop with zero padding (`augment_shift` pixels each way), horizontal flip
(`augment_flip`; off for digits), cutout (`cutout`: a zeroed square of that side at a random centre,
DeVries & Taylor 2017). Measured on the 2-core CPU (bench/RESULTS.md): crops, flips and cutout
inside the Fashion-MNIST ResNet's step cost less than the step's noise (best 65-79 ms without, 66-71
ms with), and the same crops and flips in NumPy on the host take 0.33 ms a batch; on the device they
need no host work, follow the step's key, and run unchanged on accelerators, so they live there.
Eval: loss, accuracy (averaging the logits of each image and its mirror image with `eval_flip`),
top-5 accuracy where there are more than 5 classes, per-class accuracy, precision, F1 and the
confusion matrix, also drawn as a PNG at every evaluation.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxai import models, transfer
from jaxai.images import figure_to_array
from jaxai.tasks.base import Batch, Metrics, Task, TrainState, split_variables


def default_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.label_smoothing = 0.0  # Weight moved from the true class to a uniform distribution.
    config.augment_shift = 0  # Random crop of the image padded by this many zero pixels a side; 0 = off.
    config.augment_flip = False  # Random horizontal flip (not for digits or text).
    config.cutout = 0  # Side of a random zeroed square per training image; 0 = off.
    config.eval_flip = False  # Test-time augmentation: average the logits of each image and its mirror.
    return config


def build(config: ml_collections.ConfigDict, dataset_info: dict[str, Any], total_steps: int) -> Task:
    """The classification task for `config`; `dataset_info` supplies `num_classes`."""
    num_classes = int(dataset_info["num_classes"])
    model = transfer.wrap_model(config, models.build_model(config.model, num_classes=num_classes))
    tx = transfer.make_optimizer(config, total_steps)
    smoothing = float(config.task.label_smoothing)
    augment = functools.partial(
        augment_images, shift=int(config.task.augment_shift), flip=bool(config.task.augment_flip),
        cutout=int(config.task.cutout))
    eval_flip = bool(config.task.eval_flip)
    top_k = 5 if num_classes > 5 else 0

    def init(rng: jax.Array, batch: Batch) -> TrainState:
        params_rng, dropout_rng = jax.random.split(rng)
        images = preprocess(batch["image"])
        variables = model.init({"params": params_rng, "dropout": dropout_rng}, images, train=False)
        params, model_state = split_variables(variables)
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), model_state=model_state)

    def train_step(state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
        dropout_rng, augment_rng = jax.random.split(rng)
        images = augment(augment_rng, preprocess(batch["image"]))
        labels = batch["label"]
        mutable = list(state.model_state)

        def loss_fn(params):
            logits, new_model_state = model.apply(
                {"params": params, **state.model_state}, images, train=True,
                rngs={"dropout": dropout_rng}, mutable=mutable,
            )
            return cross_entropy(logits, labels, num_classes, smoothing).mean(), (logits, new_model_state)

        (loss, (logits, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        new_model_state = transfer.keep_frozen_statistics(config, state.model_state, new_model_state)
        state = state.apply_gradients(grads, tx, model_state=new_model_state)
        accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
        return state, {"loss": loss, "accuracy": accuracy}

    def eval_step(state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
        images = preprocess(batch["image"])
        variables = {"params": state.params, **state.model_state}
        logits = model.apply(variables, images, train=False)
        if eval_flip:
            logits = (logits + model.apply(variables, images[:, :, ::-1], train=False)) / 2
        mask = batch["mask"].astype(jnp.float32)
        labels = batch["label"]
        predictions = jnp.argmax(logits, -1)
        confusion = jnp.zeros((num_classes, num_classes), jnp.float32).at[labels, predictions].add(mask)
        outputs = {
            "loss_sum": jnp.sum(cross_entropy(logits, labels, num_classes, 0.0) * mask),
            "count": jnp.sum(mask),
            "confusion": confusion,  # [true class, predicted class]
        }
        if top_k:
            in_top_k = jnp.any(jax.lax.top_k(logits, top_k)[1] == labels[:, None], axis=-1)
            outputs["top5_correct"] = jnp.sum(in_top_k * mask)
        return outputs

    return Task(init=init, train_step=train_step, eval_step=eval_step, summarize=summarize,
                units_per_step={"examples": config.data.batch_size}, visualize=visualize,
                export=transfer.export_merged(config))


def preprocess(images: jax.Array) -> jax.Array:
    """uint8 pixels -> float32 in [0, 1]."""
    return images.astype(jnp.float32) / 255.0


def augment_images(rng: jax.Array, images: jax.Array, *, shift: int, flip: bool, cutout: int) -> jax.Array:
    """Random crop with padding, horizontal flip and cutout of images [B, H, W, C], as configured."""
    # The crop uses `rng` itself, so runs from before flip and cutout existed draw the same crops.
    flip_rng, cutout_rng = jax.random.fold_in(rng, 1), jax.random.fold_in(rng, 2)
    if shift:
        images = random_shift(rng, images, shift)
    if flip:
        flipped = jax.random.bernoulli(flip_rng, 0.5, (images.shape[0], 1, 1, 1))
        images = jnp.where(flipped, images[:, :, ::-1], images)
    if cutout:
        images = random_cutout(cutout_rng, images, cutout)
    return images


def random_cutout(rng: jax.Array, images: jax.Array, size: int) -> jax.Array:
    """Zeroes a size x size square (clipped at the border) centred on a random pixel of each image."""
    batch, height, width, _ = images.shape
    centres = jax.random.randint(rng, (batch, 2), 0, jnp.array([height, width]))
    rows, columns = jnp.arange(height), jnp.arange(width)
    low = centres - size // 2  # [B, 2]
    inside_rows = (rows[None] >= low[:, :1]) & (rows[None] < low[:, :1] + size)  # [B, H]
    inside_columns = (columns[None] >= low[:, 1:]) & (columns[None] < low[:, 1:] + size)  # [B, W]
    hole = inside_rows[:, :, None] & inside_columns[:, None, :]  # [B, H, W]
    return jnp.where(hole[..., None], jnp.zeros((), images.dtype), images)


def random_shift(rng: jax.Array, images: jax.Array, max_shift: int) -> jax.Array:
    """Translates each image by a random offset in [-max_shift, max_shift]^2, zero padded."""
    batch, height, width, _ = images.shape
    padded = jnp.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)))
    offsets = jax.random.randint(rng, (batch, 2), 0, 2 * max_shift + 1)
    crop = functools.partial(jax.lax.dynamic_slice, slice_sizes=(height, width, images.shape[-1]))
    return jax.vmap(lambda image, offset: crop(image, (offset[0], offset[1], 0)))(padded, offsets)


def cross_entropy(logits: jax.Array, labels: jax.Array, num_classes: int, smoothing: float) -> jax.Array:
    """Per-example softmax cross-entropy against (optionally smoothed) one-hot labels."""
    targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), smoothing) if smoothing else jax.nn.one_hot(labels, num_classes)
    return optax.softmax_cross_entropy(logits, targets)


def summarize(sums: dict[str, Any]) -> dict[str, Any]:
    """Summed eval outputs -> loss, accuracy, per-class precision/recall/F1, confusion matrix."""
    confusion = np.asarray(sums["confusion"], dtype=np.float64)
    count = float(sums["count"])
    true_positive = np.diag(confusion)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
    recall = np.divide(true_positive, actual, out=np.zeros_like(true_positive), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(true_positive), where=denominator > 0)
    metrics = {
        "loss": float(sums["loss_sum"]) / count,
        "accuracy": float(true_positive.sum()) / count,
        "macro_f1": float(f1.mean()),
        "per_class_accuracy": recall.round(6).tolist(),  # Of each true class, the fraction predicted right.
        "precision": precision.round(6).tolist(),
        "recall": recall.round(6).tolist(),
        "f1": f1.round(6).tolist(),
        "confusion_matrix": confusion.astype(np.int64).tolist(),
        "num_examples": int(count),
    }
    if "top5_correct" in sums:
        metrics["top5_accuracy"] = float(sums["top5_correct"]) / count
    return metrics


def visualize(state: Any, outputs: dict[str, np.ndarray], rng: jax.Array) -> dict[str, np.ndarray]:
    """The eval confusion matrix as a picture."""
    return {"confusion_matrix": confusion_figure(np.asarray(outputs["confusion"]))}


def confusion_figure(confusion: np.ndarray) -> np.ndarray:
    """A [true, predicted] count matrix drawn with row-normalised colours and the counts -> uint8 [H, W, 3]."""
    from matplotlib.figure import Figure

    num_classes = confusion.shape[0]
    rows = np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    side = min(max(4.0, 0.45 * num_classes + 1.5), 16.0)
    figure = Figure(figsize=(side, side * 0.85), dpi=100)
    axes = figure.add_subplot()
    shown = axes.imshow(confusion / rows, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(shown, ax=axes, label="fraction of the true class")
    if num_classes <= 20:  # Counts stay legible up to here.
        for true in range(num_classes):
            for predicted in range(num_classes):
                share = confusion[true, predicted] / rows[true, 0]
                axes.text(predicted, true, f"{int(confusion[true, predicted])}", ha="center", va="center",
                          fontsize=7, color="white" if share > 0.5 else "black")
        axes.set_xticks(range(num_classes))
        axes.set_yticks(range(num_classes))
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(f"confusion matrix, accuracy {np.trace(confusion) / max(confusion.sum(), 1):.4f}")
    figure.tight_layout()
    return figure_to_array(figure)
