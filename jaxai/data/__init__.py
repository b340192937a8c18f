"""Dataset registry: a dataset name -> its training batches, eval batches and facts the task needs."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Callable, Iterator

import grain
import ml_collections

from jaxai.data.errors import DatasetError
from jaxai.data.pipeline import Arrays, padded_batches, shuffled_batches


@dataclasses.dataclass
class Dataset:
    """What a run needs from its data."""

    info: dict[str, Any]  # e.g. num_classes, vocab_size: sizes the model takes from the data.
    train: grain.IterDataset  # Endless host-local training batches; iterator state is checkpointable.
    steps_per_epoch: int
    eval_batches: Callable[[str, int], Iterator[Arrays]]  # (split, max_batches) -> padded batches.
    artifacts: dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. a tokenizer to save.


def _mnist(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    from jaxai.data.mnist import load_mnist

    def load(split: str) -> Arrays:
        return load_mnist(split, data_dir=config.data_dir or None, tfds_dir=config.tfds_dir or None)

    return array_dataset(load, config, seed, info={"num_classes": 10, "image_shape": (28, 28, 1)})


def _synthetic_mnist(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    from jaxai.data.synthetic import synthetic_images

    return array_dataset(synthetic_images, config, seed, info={"num_classes": 10, "image_shape": (28, 28, 1)})


def _text(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    from jaxai.data.text import text_dataset

    return text_dataset(config, seed)


def _words(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    from jaxai.data.words import skipgram_dataset

    return skipgram_dataset(config, seed)


_REGISTRY: dict[str, Callable[[ml_collections.ConfigDict, int], Dataset]] = {
    "mnist": _mnist,
    "synthetic_mnist": _synthetic_mnist,
    "tiny_shakespeare": _text,
    "text": _text,
    "tiny_shakespeare_words": _words,
    "text_words": _words,
}


def build_dataset(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    """The dataset `config.data.name` names, batched as `config.data` says."""
    name = config.name
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise DatasetError(f"Unknown dataset {name!r}.{hint} Known datasets: {sorted(_REGISTRY)}.")
    return _REGISTRY[name](config, seed)


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


__all__ = ["Dataset", "DatasetError", "build_dataset", "array_dataset"]
