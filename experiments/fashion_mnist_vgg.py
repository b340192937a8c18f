"""VGG-11 with BN on Fashion-MNIST, its widths scaled down to fit a CPU budget.

    jaxai train --config experiments/fashion_mnist_vgg.py --workdir runs/fashion_mnist_vgg

VGG-11 (models.vgg, configuration A) at WIDTH_MULTIPLIER of its published widths (64 -> 16, ...,
512 -> 128), BN after every convolution, global average pooling and one Dense layer (the 'small'
head; pools stop at 1 pixel: 28 -> 14 -> 7 -> 3 -> 1). Trained with experiments/fashion_mnist_resnet.py's
recipe (SGD-Nesterov one-cycle, label smoothing, crops, flips, flip TTA), 15 epochs. Measured
(2026-12-01, bench/RESULTS.md): 93.28% test accuracy in 496 s of wall time, 2,260 images/s.
Variants: `:smoke` is a seconds-long run on synthetic data, for tests.
"""

import os

import ml_collections

from jaxai.config import load_experiment
from jaxai.models import model_config

WIDTH_MULTIPLIER = 0.25


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    if variant not in ("", "smoke"):
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '' and 'smoke'.")
    config = load_experiment(os.path.join(os.path.dirname(__file__), "fashion_mnist_resnet.py"), variant)
    config.model = model_config("vgg")
    config.model.depth = 11
    config.model.head = "small"
    config.model.width_multiplier = 0.0625 if variant == "smoke" else WIDTH_MULTIPLIER
    return config
