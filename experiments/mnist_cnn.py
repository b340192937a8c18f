"""The classic Keras MNIST CNN (Conv32-pool-Conv64-pool-Conv64-Dense64-Dense10), adam 1e-3, batch 64.

    jaxai train --config experiments/mnist_cnn.py --workdir runs/mnist_cnn

Reaches ~99.0% test accuracy in 3 epochs (bench/RESULTS.md has the measured figure).
`experiments/mnist_cnn.py:smoke` is a seconds-long variant on synthetic data, for tests.
"""

import ml_collections

from jaxai.config import base_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config(task="classification", model="cnn")
    config.data.name = "mnist"
    config.data.batch_size = 64
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 1e-3
    config.train.num_epochs = 3
    config.train.log_every = 100
    if variant == "smoke":
        config.data.name = "synthetic_mnist"
        config.data.eval_batch_size = 256
        config.model.features = (8, 16)
        config.model.pool_after = (True, True)
        config.model.dense_features = (32,)
        config.train.num_steps = 20
        config.train.log_every = 5
        config.train.eval_every = 10
        config.train.checkpoint_every = 10
    elif variant:
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '' and 'smoke'.")
    return config
