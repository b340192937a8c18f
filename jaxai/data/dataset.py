"""What a run needs from its data, and the two generic ways to make it: arrays in memory, or none."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator

import grain
import ml_collections

from jaxai.data.pipeline import Arrays, generated_batches, padded_batches, shuffled_batches

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

    def split_arrays(split: str) -> Arrays:
        if split not in cache:
            cache[split] = load(split)
        return cache[split]

    train_arrays = split_arrays(config.train_split)
    num_examples = len(next(iter(train_arrays.values())))
    return Dataset(
        info=dict(info, num_train_examples=num_examples),
        train=shuffled_batches(train_arrays, seed=seed, batch_size=config.batch_size, shuffle=config.shuffle),
        steps_per_epoch=max(1, num_examples // config.batch_size),
        eval_batches=lambda split, max_batches=0: padded_batches(split_arrays(split), config.eval_batch_size, max_batches),
    )


def stateful_dataset() -> Dataset:
    """No data: every training batch is empty and eval is one empty batch (the task's state makes data)."""
    return Dataset(
        info={"stateful": True},
        train=generated_batches(lambda step: {}),
        steps_per_epoch=STATEFUL_STEPS_PER_EPOCH,
        eval_batches=lambda split, max_batches=0: iter([{}]),
    )
