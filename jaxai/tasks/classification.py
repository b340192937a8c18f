"""Image classification: softmax cross-entropy with label smoothing; eval adds per-class metrics."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxai import models, optim
from jaxai.tasks.base import Batch, Metrics, Task, TrainState, split_variables


def default_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.label_smoothing = 0.0  # Weight moved from the true class to a uniform distribution.
    config.augment_shift = 0  # Random translation by up to this many pixels (zero padded); 0 = off.
    return config


def build(config: ml_collections.ConfigDict, dataset_info: dict[str, Any], total_steps: int) -> Task:
    """The classification task for `config`; `dataset_info` supplies `num_classes`."""
    num_classes = int(dataset_info["num_classes"])
    model = models.build_model(config.model, num_classes=num_classes)
    tx = optim.make_optimizer(config.optimizer, total_steps)
    smoothing = float(config.task.label_smoothing)
    shift = int(config.task.augment_shift)

    def init(rng: jax.Array, batch: Batch) -> TrainState:
        params_rng, dropout_rng = jax.random.split(rng)
        images = preprocess(batch["image"])
        variables = model.init({"params": params_rng, "dropout": dropout_rng}, images, train=False)
        params, model_state = split_variables(variables)
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), model_state=model_state)

    def train_step(state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
        dropout_rng, augment_rng = jax.random.split(rng)
        images = preprocess(batch["image"])
        if shift:
            images = random_shift(augment_rng, images, shift)
        labels = batch["label"]
        mutable = list(state.model_state)

        def loss_fn(params):
            logits, new_model_state = model.apply(
                {"params": params, **state.model_state}, images, train=True,
                rngs={"dropout": dropout_rng}, mutable=mutable,
            )
            return cross_entropy(logits, labels, num_classes, smoothing).mean(), (logits, new_model_state)

        (loss, (logits, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        state = state.apply_gradients(grads, tx, model_state=new_model_state)
        accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
        return state, {"loss": loss, "accuracy": accuracy}

    def eval_step(state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
        logits = model.apply({"params": state.params, **state.model_state}, preprocess(batch["image"]), train=False)
        mask = batch["mask"].astype(jnp.float32)
        labels = batch["label"]
        predictions = jnp.argmax(logits, -1)
        confusion = jnp.zeros((num_classes, num_classes), jnp.float32).at[labels, predictions].add(mask)
        return {
            "loss_sum": jnp.sum(cross_entropy(logits, labels, num_classes, 0.0) * mask),
            "count": jnp.sum(mask),
            "confusion": confusion,  # [true class, predicted class]
        }

    return Task(init=init, train_step=train_step, eval_step=eval_step, summarize=summarize,
                units_per_step={"examples": config.data.batch_size})


def preprocess(images: jax.Array) -> jax.Array:
    """uint8 pixels -> float32 in [0, 1]."""
    return images.astype(jnp.float32) / 255.0


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
    return {
        "loss": float(sums["loss_sum"]) / count,
        "accuracy": float(true_positive.sum()) / count,
        "macro_f1": float(f1.mean()),
        "precision": precision.round(6).tolist(),
        "recall": recall.round(6).tolist(),
        "f1": f1.round(6).tolist(),
        "confusion_matrix": confusion.astype(np.int64).tolist(),
        "num_examples": int(count),
    }
