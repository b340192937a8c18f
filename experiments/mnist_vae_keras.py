"""The classic Keras MNIST VAE: conv encoder/decoder, 2-D latent, RMSprop, batch 16, BCE + KL, 5 epochs.

    jaxai train --config experiments/mnist_vae_keras.py --workdir runs/mnist_vae_keras

What it reproduces: the Keras VAE family's recipe as the classic examples train it. Model: this
repository's VAE defaults (encoder Conv32/2-Conv64/2-Conv64-Dense16, a 2-D latent; decoder
Dense(7*7*64) and the mirrored transposed convolutions; 208,021 parameters). Optimizer and batch as
Deep Learning with Python (1st ed., section 8.4): `compile(optimizer='rmsprop')` at Keras' defaults
(lr 1e-3, rho 0.9, no momentum, eps 1e-7; optax puts eps inside the square root), batch 16 (3,750
steps an epoch). Loss as keras.io's VAE example: the binary cross-entropy summed over the pixels
plus the closed-form KL (beta 1; the book weights its per-pixel mean BCE against 5e-4 x the KL), on
the [0, 1] grey levels as Bernoulli targets (`task.binarize='none'`, as both do), so neg_elbo is not
a log-likelihood of binary images. 5 epochs where the book trains 10 (`--config.train.num_epochs=10`):
the transposed-convolution decoder took ~120 ms a step of 16 on the shared 2-core CPU (~7.5 minutes
an epoch), and a 2-D latent is expected to gain little after the first epochs (not yet measured).
Every epoch's eval draws reconstructions, prior samples, the 20x20 manifold of the 2-D latent space
over the normal's quantiles, and the test set's posterior means coloured by digit.
Measured: — (not yet run).
`:smoke` is a seconds-long variant on synthetic data, for tests.
"""

import ml_collections

from jaxai.config import base_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config(task="vae", model="vae")
    config.data.name = "mnist"
    config.data.batch_size = 16
    config.model.architecture = "conv"
    config.model.latent_dim = 2
    config.model.likelihood = "bernoulli"
    config.task.binarize = "none"
    config.optimizer.name = "rmsprop"
    config.optimizer.learning_rate = 1e-3
    config.optimizer.rms_decay = 0.9
    config.optimizer.momentum = 0.0
    config.optimizer.eps = 1e-7
    config.optimizer.schedule.name = "constant"
    config.train.num_epochs = 5
    config.train.log_every = 500
    if variant == "smoke":
        config.data.name = "synthetic_mnist"
        config.data.eval_batch_size = 256
        config.model.conv_features = (8, 16, 16)
        config.model.dense_features = 8
        config.task.iw_samples = 8
        config.task.iw_chunk = 4
        config.train.num_steps = 20
        config.train.log_every = 5
        config.train.eval_every = 10
    elif variant:
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '' and 'smoke'.")
    return config
