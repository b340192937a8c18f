"""DCGAN on MNIST 28x28 (Radford et al. 2015; PyTorch's DCGAN example's recipe).

    jaxai train --config experiments/mnist_dcgan.py --workdir runs/mnist_dcgan

Generator Dense(7*7*128)-BN-ReLU, ConvT 64/2-BN-ReLU, ConvT 1/2-tanh; discriminator Conv 64/2-LReLU,
Conv 128/2-BN-LReLU, Dense 1 (models.gan.DCGAN, features 64, latent 100). Non-saturating loss,
Adam 2e-4 with beta1 0.5 for both networks, batch 64, EPOCHS epochs, evaluated every half epoch
with the sample-quality classifier (jaxai.tasks.sample_quality: confident_fraction, fid).
Measured (2026-12-01, 2-core CPU, bench/RESULTS.md): 94 ms per step on a quiet machine (PyTorch
eager, same model: ~96-100 ms); over 8 epochs (15.6 minutes) 63.6% of samples classified with
confidence > 0.9 and FID 38.8 (real-data floor 0.41): short of the >= 97% this experiment aims at.
Variants: `:smoke` is a seconds-long run on synthetic data, for tests.
"""

import ml_collections

from jaxai.config import base_config

EPOCHS = 3


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config(task="gan", model="dcgan")
    config.data.name = "mnist"
    config.data.batch_size = 64
    config.task.loss = "non_saturating"
    for optimizer in (config.optimizer, config.task.discriminator_optimizer):  # Generator's, discriminator's.
        optimizer.name = "adam"
        optimizer.learning_rate = 2e-4
        optimizer.b1 = 0.5
    config.train.num_epochs = EPOCHS
    config.train.log_every = 100
    config.train.eval_every = 469  # Half an epoch.
    if variant == "smoke":
        config.data.name = "synthetic_mnist"
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
