"""DCGAN on MNIST 28x28 (Radford et al. 2015; PyTorch's DCGAN example's recipe).

    jaxai train --config experiments/mnist_dcgan.py --workdir runs/mnist_dcgan

Generator Dense(7*7*128)-BN-ReLU, ConvT 64/2-BN-ReLU, ConvT 1/2-tanh; discriminator Conv 64/2-LReLU,
Conv 128/2-BN-LReLU, Dense 1 (models.gan.DCGAN, features 64, latent 100). Non-saturating loss,
Adam 2e-4 with beta1 0.5 for both networks, batch 64, EPOCHS epochs (2,811 steps), evaluated every
half epoch. Sized to fit ~15 minutes on 2 CPU cores: the train step measured 420-550 ms on the
shared 2-core CPU under other load (synthetic data, `jaxai train`; 490 ms of CPU time a step, so
~250-300 ms with both cores free), and to reach >= 97% of samples classified confidently by the
sample-quality classifier (logged at each evaluation as confident_fraction; not yet measured).
Most of the step is the kernel gradient of the first transposed convolution (XLA:CPU runs that
dilated convolution slowly).
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
