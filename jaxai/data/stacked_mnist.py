"""Stacked MNIST: three MNIST digits as the channels of one 28x28x3 image, 1000 modes (digit triples).

The benchmark of mode coverage for GANs (Metz et al. 2017, "Unrolled GANs"; Srivastava et al. 2017,
"VEEGAN"): a generator that covers the data makes all 1000 triples about equally often. Each example's
three digits are drawn at random, with replacement, from the MNIST split of the same name, seeded by
the dataset seed (and the split); its label is the mode id 100*d0 + 10*d1 + d2 of the channels' digits.
"""

from __future__ import annotations

import zlib
import ml_collections
import numpy as np

from jaxai.data.dataset import Dataset, array_dataset
from jaxai.data.pipeline import Arrays
from jaxai.errors import DatasetError

SPLIT_SIZES = {"train": 60_000, "test": 10_000}  # Stacked examples per split, whatever the source slice's size.
NUM_MODES = 1000
INFO = {"num_classes": NUM_MODES, "image_shape": (28, 28, 3)}


def stack_digits(digits: Arrays, size: int, seed: int, split: str) -> Arrays:
    """`size` examples, each three of `digits`' images (drawn with replacement) stacked as channels.

    digits: {'image': uint8 [N, 28, 28, 1], 'label': int [N]}. Returns {'image': uint8 [size, 28, 28, 3],
    'label': int32 [size] (the mode id), 'digits': int32 [size, 3]} (the channels' digits, for checks).
    The draw depends only on (seed, split), not on the process or the Python hash seed.
    """
    num_digits = len(digits["label"])
    if num_digits == 0:
        raise DatasetError(f"Stacked MNIST split {split!r}: its MNIST source split has no examples.")
    rng = np.random.default_rng([int(seed), zlib.crc32(split.encode())])
    index = rng.integers(0, num_digits, (size, 3))  # [size, 3]
    image = np.moveaxis(digits["image"][index, :, :, 0], 1, -1)  # [size, 3, 28, 28] -> [size, 28, 28, 3]
    channel_digits = np.asarray(digits["label"], np.int32)[index]  # [size, 3]
    label = channel_digits @ np.array([100, 10, 1], np.int32)
    return {"image": np.ascontiguousarray(image, dtype=np.uint8), "label": label.astype(np.int32),
            "digits": channel_digits}


def mode_digits(mode: np.ndarray) -> np.ndarray:
    """Mode ids [...] -> the three channels' digits [..., 3] (inverse of 100*d0 + 10*d1 + d2)."""
    mode = np.asarray(mode)
    return np.stack([mode // 100, mode // 10 % 10, mode % 10], axis=-1)


def stacked_mnist_dataset(config: ml_collections.ConfigDict, seed: int, synthetic: bool = False) -> Dataset:
    """The 'stacked_mnist' dataset (real MNIST; 60,000 train / 10,000 test examples), or with `synthetic`
    the 'synthetic_stacked_mnist' one (jaxai.data.synthetic's digits, as many examples as that split has).

    Splits are TFDS split strings; a slice ('train[:55000]') limits the source digits, not the size.
    """
    if synthetic:
        from jaxai.data.synthetic import synthetic_images

        def load_digits(split: str) -> Arrays:
            return synthetic_images(split)

        def size_of(split: str, digits: Arrays) -> int:
            return len(digits["label"])
    else:
        from jaxai.data.mnist import load_mnist

        def load_digits(split: str) -> Arrays:
            return load_mnist(split, data_dir=config.data_dir or None, tfds_dir=config.tfds_dir or None)

        def size_of(split: str, digits: Arrays) -> int:
            base = split.split("[", 1)[0]
            if base not in SPLIT_SIZES:
                raise DatasetError(f"Stacked MNIST has splits {sorted(SPLIT_SIZES)} (slices allowed), not {split!r}.")
            return SPLIT_SIZES[base]

    def load(split: str) -> Arrays:
        digits = load_digits(split)
        stacked = stack_digits(digits, size_of(split, digits), seed, split)
        return {"image": stacked["image"], "label": stacked["label"]}

    return array_dataset(load, config, seed, info=dict(INFO))


__all__: list[str] = ["stack_digits", "mode_digits", "stacked_mnist_dataset", "SPLIT_SIZES", "NUM_MODES"]
