"""WGAN-GP on MNIST (Gulrajani et al. 2017): the DCGAN networks with a layer-normed critic.

    jaxai train --config experiments/mnist_wgan_gp.py --workdir runs/mnist_wgan_gp

Critic loss D(G(z)) - D(x) + 10 (||grad D(x_hat)|| - 1)^2, 5 critic updates per generator update,
Adam 1e-4 with betas (0.5, 0.9) for both networks (the paper's MNIST settings, beta1 0.5). The critic
is models.gan.DCGAN's discriminator with layer norm (the penalty is per example: no batch norm).
Each train step takes data.batch_size = 5 x 64 images, split into the 5 critic updates' batches of 64
(the reference code draws a new batch per critic update); the generator update draws 64 latents.
The critic loss (d_loss) and its Wasserstein estimate (`wasserstein`) are logged at every log step:
the curve that tracks sample quality. EPOCHS epochs = 935 generator (4,675 critic) updates; measured
on the shared 2-core CPU (synthetic data): 1.5-1.7 s per train step, so ~5 min an epoch. Most of it
is the penalty's second-order gradient through the critic's stride-2 convolutions (a dilated
convolution XLA:CPU runs slowly). The paper trained 200k generator updates: this is a short run.
Variants: `:smoke` is a seconds-long run on synthetic data, for tests.
"""

import ml_collections

from jaxai.config import base_config

CRITIC_STEPS = 5
EPOCHS = 5


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config(task="gan", model="dcgan")
    config.model.discriminator_norm = "layer"
    config.data.name = "mnist"
    config.data.batch_size = CRITIC_STEPS * 64
    config.task.loss = "wgan_gp"
    config.task.gp_weight = 10.0
    config.task.critic_steps = CRITIC_STEPS
    for optimizer in (config.optimizer, config.task.discriminator_optimizer):  # Generator's, discriminator's.
        optimizer.name = "adam"
        optimizer.learning_rate = 1e-4
        optimizer.b1 = 0.5
        optimizer.b2 = 0.9
    config.train.num_epochs = EPOCHS
    config.train.log_every = 50
    config.train.eval_every = 0  # Once per epoch (187 generator updates).
    if variant == "smoke":
        config.data.name = "synthetic_mnist"
        config.data.batch_size = CRITIC_STEPS * 8
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
