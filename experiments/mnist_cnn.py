"""The classic Keras MNIST CNN (Conv32-pool-Conv64-pool-Conv64-Dense64-Dense10), batch 64, 2 epochs.

    jaxai train --config experiments/mnist_cnn.py --workdir runs/mnist_cnn

Same network as the Keras example; a recipe that needs fewer epochs: adam at 4e-3 with 100 warm-up steps
and cosine decay to zero over 2 epochs, random shifts of up to 2 pixels, label smoothing 0.1.
Measured (seeds 0 / 1 / 2): 99.0% test accuracy passed after 0.75 / 1.0 / 1.0 epochs, 99.42 / 99.31
/ 99.41% after 2 (the Keras recipe's constant adam 1e-3: 98.9% after 3). A cosine over 3 epochs at 3e-3
ends higher (99.47%) but passes 99.0% only after 1.25 epochs. Evaluates every quarter epoch.
bench/RESULTS.md has the figures.
Variants: `:keras` is the classic Keras example's recipe (constant adam 1e-3, no augmentation, no smoothing),
for side-by-side comparisons; `:smoke` is a seconds-long run on synthetic data, for tests.
"""

import ml_collections

from jaxai.config import base_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config(task="classification", model="cnn")
    config.data.name = "mnist"
    config.data.batch_size = 64
    config.optimizer.name = "adam"
    config.task.augment_shift = 2
    config.task.label_smoothing = 0.1
    config.optimizer.learning_rate = 4e-3
    config.optimizer.schedule.name = "cosine"
    config.optimizer.schedule.warmup_steps = 100
    config.train.num_epochs = 2
    config.train.log_every = 100
    config.train.eval_every = 235  # A quarter epoch: shows when the test accuracy passes 99%.
    if variant == "keras":
        config.task.augment_shift = 0
        config.task.label_smoothing = 0.0
        config.train.eval_every = 0
        config.optimizer.learning_rate = 1e-3
        config.optimizer.schedule.name = "constant"
        config.optimizer.schedule.warmup_steps = 0
        config.train.num_epochs = 3
    elif variant == "smoke":
        config.task.augment_shift = 0
        config.task.label_smoothing = 0.0
        config.data.name = "synthetic_mnist"
        config.data.eval_batch_size = 256
        config.optimizer.schedule.warmup_steps = 2
        config.model.features = (8, 16)
        config.model.pool_after = (True, True)
        config.model.dense_features = (32,)
        config.train.num_steps = 20
        config.train.log_every = 5
        config.train.eval_every = 10
        config.train.checkpoint_every = 10
    elif variant:
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '', 'keras' and 'smoke'.")
    return config
