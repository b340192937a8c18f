"""A small learnable stand-in for MNIST, made from a seed: for tests and smoke runs, no files needed."""

from __future__ import annotations

import numpy as np

SPLIT_SIZES = {"train": 2048, "test": 512}


def synthetic_images(split: str, num_classes: int = 10, image_shape: tuple[int, ...] = (28, 28, 1)) -> dict[str, np.ndarray]:
    """uint8 images, each its class's fixed random pattern plus noise; labels int32."""
    if split not in SPLIT_SIZES:
        raise ValueError(f"The synthetic dataset has splits {sorted(SPLIT_SIZES)}, not {split!r}.")
    patterns = np.random.default_rng(1234).uniform(0, 255, (num_classes, *image_shape))
    rng = np.random.default_rng(list(SPLIT_SIZES).index(split))
    labels = rng.integers(0, num_classes, SPLIT_SIZES[split]).astype(np.int32)
    noise = rng.normal(0, 60, (len(labels), *image_shape))
    images = np.clip(patterns[labels] * 0.5 + noise + 64, 0, 255).astype(np.uint8)
    return {"image": images, "label": labels}
