"""A two-layer MLP (512-512, ReLU, dropout 0.2) on MNIST, adam with cosine decay, 5 epochs.

    jaxai train --config experiments/mnist_mlp.py --workdir runs/mnist_mlp

Reaches >= 97.5% test accuracy (bench/RESULTS.md has the measured figure).
`experiments/mnist_mlp.py:smoke` is a seconds-long variant on synthetic data, for tests.
"""

import ml_collections

from jaxai.config import base_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config(task="classification", model="mlp")
    config.data.name = "mnist"
    config.data.batch_size = 128
    config.model.features = (512, 512)
    config.model.dropout_rate = 0.2
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 1e-3
    config.optimizer.schedule.name = "cosine"
    config.train.num_epochs = 5
    if variant == "smoke":
        config.data.name = "synthetic_mnist"
        config.data.eval_batch_size = 256
        config.model.features = (32,)
        config.train.num_steps = 20
        config.train.log_every = 5
        config.train.eval_every = 10
    elif variant:
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '' and 'smoke'.")
    return config
