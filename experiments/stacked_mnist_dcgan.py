"""DCGAN on Stacked MNIST (28x28x3, a digit per channel: 1000 modes), the mode-coverage benchmark.

    jaxai train --config experiments/stacked_mnist_dcgan.py --workdir runs/stacked_mnist_dcgan

experiments/mnist_dcgan.py's network and recipe (non-saturating loss, Adam 2e-4 beta1 0.5, batch 64)
with 3 output channels (the model's image shape comes from the data). Each evaluation classifies
every channel of every sample with the MNIST sample-quality classifier and logs the modes covered
(of 1000) and the KL divergence of the mode distribution to the uniform one.
Variants: `:smoke` is a seconds-long run on synthetic stacked digits, for tests.
"""

import ml_collections

from jaxai.config import base_config

EPOCHS = 3


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config(task="gan", model="dcgan")
    config.data.name = "stacked_mnist"
    config.data.batch_size = 64
    config.task.loss = "non_saturating"
    for optimizer in (config.optimizer, config.task.discriminator_optimizer):  # Generator's, discriminator's.
        optimizer.name = "adam"
        optimizer.learning_rate = 2e-4
        optimizer.b1 = 0.5
    config.train.num_epochs = EPOCHS
    config.train.log_every = 100
    config.train.eval_every = 0  # Once per epoch.
    if variant == "smoke":
        config.data.name = "synthetic_stacked_mnist"
        config.data.eval_batch_size = 256
        config.task.quality_classifier = "none"
        config.model.features = 8
        config.model.latent_dim = 16
        config.train.num_steps = 20
        config.train.log_every = 5
        config.train.eval_every = 10
        config.train.checkpoint_every = 10
    elif variant:
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '' and 'smoke'.")
    return config
