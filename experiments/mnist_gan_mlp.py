"""The classic fully connected GAN on MNIST (Goodfellow et al. 2014, as commonly reimplemented).

    jaxai train --config experiments/mnist_gan_mlp.py --workdir runs/mnist_gan_mlp

Generator 100-256-512-1024-784 (LeakyReLU 0.2, tanh), discriminator 784-1024-512-256-1 (LeakyReLU
0.2, dropout 0.3); non-saturating loss, Adam 1e-4 for both networks, batch 64, EPOCHS epochs
(28,110 steps; the step measured ~35 ms on the shared 2-core CPU: ~15 minutes).
Each evaluation logs a grid of samples of the same fixed noise and, with the MNIST sample-quality
classifier (jaxai.tasks.sample_quality, trained once into its cache dir), `fid` (Frechet distance
of its features) and `confident_fraction` (samples it classifies with probability > 0.9).
Variants: `:minimax` trains with the paper's original minimax generator loss (log(1 - D(G(z))),
which saturates early on); `:smoke` is a seconds-long run on synthetic data, for tests.
"""

import ml_collections

from jaxai.config import base_config

EPOCHS = 30


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config(task="gan", model="gan_mlp")
    config.data.name = "mnist"
    config.data.batch_size = 64
    config.task.loss = "non_saturating"
    for optimizer in (config.optimizer, config.task.discriminator_optimizer):  # Generator's, discriminator's.
        optimizer.name = "adam"
        optimizer.learning_rate = 1e-4
    config.train.num_epochs = EPOCHS
    config.train.log_every = 200
    config.train.eval_every = 0  # Once per epoch.
    if variant == "minimax":
        config.task.loss = "minimax"
    elif variant == "smoke":
        config.data.name = "synthetic_mnist"
        config.data.eval_batch_size = 256
        config.task.quality_classifier = "none"
        config.model.latent_dim = 16
        config.model.generator_features = (32,)
        config.model.discriminator_features = (32,)
        config.train.num_steps = 20
        config.train.log_every = 5
        config.train.eval_every = 10
        config.train.checkpoint_every = 10
    elif variant:
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '', 'minimax' and 'smoke'.")
    return config
