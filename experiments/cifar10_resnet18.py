"""ResNet-18 on CIFAR-10: the standard short recipe (published runs of it reach about 95% test accuracy).

    jaxai train --config experiments/cifar10_resnet18.py --workdir runs/cifar10_resnet18 \
        --config.data.data_dir DIR_WITH_cifar-10-binary.tar.gz

Not measured here: no CIFAR-10 on these machines, so its accuracy and time are not in bench/RESULTS.md.
The data is the original `cifar-10-binary.tar.gz` in the data dir (or downloaded by TFDS when online),
prepared once into the TFDS dir (jaxai.data.tfds_images).
ResNet-18 (models.resnet: basic blocks, 2-2-2-2, widths 64-512) with the CIFAR stem (3x3 conv, no
pool: 32 -> 32 -> 16 -> 8 -> 4 pixels), zero-initialised last BN scale per block. SGD with Nesterov
momentum 0.9, batch 128, learning rate 0.1 warmed up over WARMUP_EPOCHS then cosine-decayed to 0, L2 5e-4
on kernels, label smoothing 0.1, EPOCHS epochs; random 4-pixel crops and horizontal flips, and at eval
the logits of each image averaged with its mirror's.
Variants: `:smoke` is a seconds-long run of a narrow two-stage version on synthetic data, for tests.
"""

import os
import runpy

import ml_collections

from jaxai.config import base_config

EPOCHS, WARMUP_EPOCHS, BATCH_SIZE = 30, 2, 128
STEPS_PER_EPOCH = 50_000 // BATCH_SIZE  # The data pipeline drops the last partial batch.


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    if variant not in ("", "smoke"):
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '' and 'smoke'.")
    config = base_config(task="classification", model="resnet")
    config.data.name = "cifar10"
    config.data.batch_size = BATCH_SIZE
    config.model.depth = 18
    config.model.stem = "cifar"
    config.task.label_smoothing = 0.1
    config.task.augment_shift = 4
    config.task.augment_flip = True
    config.task.eval_flip = True
    config.optimizer.name = "nesterov"
    config.optimizer.momentum = 0.9
    config.optimizer.learning_rate = 0.1
    config.optimizer.l2 = 5e-4
    config.optimizer.schedule.name = "cosine"
    config.optimizer.schedule.warmup_steps = WARMUP_EPOCHS * STEPS_PER_EPOCH
    config.train.num_epochs = EPOCHS
    config.train.log_every = 100
    config.train.eval_every = 0  # Once per epoch.
    if variant == "smoke":
        runpy.run_path(os.path.join(os.path.dirname(__file__), "fashion_mnist_resnet.py"))["smoke"](config)
        config.optimizer.schedule.warmup_steps = 5
    return config
