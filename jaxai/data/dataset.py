"""What a run needs from its data, and the two generic ways to make it: arrays in memory, or none."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator

import grain
import ml_collections
import numpy as np

from jaxai.data.pipeline import Arrays, generated_batches, padded_batches, shuffled_batches
from jaxai.errors import DatasetError

# Steps counted as one epoch where a task makes its own data: the default eval/checkpoint cadence.
STATEFUL_STEPS_PER_EPOCH = 1000


@dataclasses.dataclass
class Dataset:
    """What a run needs from its data."""

    info: dict[str, Any]  # e.g. num_classes, vocab_size: sizes the model takes from the data.
    train: grain.IterDataset  # Endless host-local training batches; iterator state is checkpointable.
    steps_per_epoch: int
    eval_batches: Callable[[str, int], Iterator[Arrays]]  # (split, max_batches) -> padded batches.
    artifacts: dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. a tokenizer to save.


def array_dataset(
    load: Callable[[str], Arrays], config: ml_collections.ConfigDict, seed: int, info: dict[str, Any]
) -> Dataset:
    """A Dataset over splits that fit in memory as arrays (loaded lazily, each split once)."""
    cache: dict[str, Arrays] = {}
    classes = tuple(int(c) for c in config.get("classes", ()))
    per_class = int(config.get("examples_per_class", 0))
    if classes:
        if len(set(classes)) != len(classes) or not all(0 <= c < info["num_classes"] for c in classes):
            raise DatasetError(f"data.classes={classes} must be distinct class ids in 0..{info['num_classes'] - 1}.")
        info = dict(info, num_classes=len(classes), source_classes=classes)

    def split_arrays(split: str) -> Arrays:
        if split not in cache:
            arrays = load(split)
            if classes:
                arrays = select_classes(arrays, classes)
            if per_class and split == config.train_split:
                arrays = take_per_class(arrays, per_class, seed)
            cache[split] = arrays
        return cache[split]

    train_arrays = split_arrays(config.train_split)
    num_examples = len(next(iter(train_arrays.values())))
    if num_examples < config.batch_size:
        raise DatasetError(f"The training split has {num_examples} examples, fewer than data.batch_size="
                           f"{config.batch_size}: lower the batch size.")
    return Dataset(
        info=dict(info, num_train_examples=num_examples),
        train=shuffled_batches(train_arrays, seed=seed, batch_size=config.batch_size, shuffle=config.shuffle),
        steps_per_epoch=max(1, num_examples // config.batch_size),
        eval_batches=lambda split, max_batches=0: padded_batches(split_arrays(split), config.eval_batch_size, max_batches),
    )


def select_classes(arrays: Arrays, classes: tuple[int, ...]) -> Arrays:
    """The examples of `classes`, relabelled 0..len(classes)-1 in that order (a transfer task's label space)."""
    labels = np.asarray(arrays["label"])
    keep = np.isin(labels, classes)
    relabel = np.full(max(int(labels.max(initial=0)), max(classes)) + 1, -1, np.int32)
    relabel[list(classes)] = np.arange(len(classes), dtype=np.int32)
    selected = {name: np.asarray(values)[keep] for name, values in arrays.items()}
    selected["label"] = relabel[labels[keep]]
    return selected


def take_per_class(arrays: Arrays, per_class: int, seed: int) -> Arrays:
    """`per_class` examples of each label, drawn by `seed` (a small labelled set: few-shot fine-tuning)."""
    labels = np.asarray(arrays["label"])
    rng = np.random.default_rng([int(seed), 0x5E1EC7])
    chosen = []
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        if len(where) < per_class:
            raise DatasetError(f"data.examples_per_class={per_class}, but class {label} has only {len(where)} examples.")
        chosen.append(rng.choice(where, per_class, replace=False))
    index = np.sort(np.concatenate(chosen))
    return {name: np.asarray(values)[index] for name, values in arrays.items()}


def stateful_dataset() -> Dataset:
    """No data: every training batch is empty and eval is one empty batch (the task's state makes data)."""
    return Dataset(
        info={"stateful": True},
        train=generated_batches(lambda step: {}),
        steps_per_epoch=STATEFUL_STEPS_PER_EPOCH,
        eval_batches=lambda split, max_batches=0: iter([{}]),
    )
