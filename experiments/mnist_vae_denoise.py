"""A denoising VAE: the encoder sees noisy MNIST, the decoder is scored on the clean digit; 20 epochs.

    jaxai train --config experiments/mnist_vae_denoise.py --workdir runs/mnist_vae_denoise

The VAE of experiments/mnist_vae.py (MLP 784-512-512-32, Bernoulli, dynamically binarized MNIST,
Adam 1e-3 + cosine, batch 128, KL warm-up over 2 epochs) with `task.denoise='gaussian'`: each
binarized image plus N(0, 0.5^2) noise per pixel, clipped to [0, 1], is the encoder's input, and the
ELBO scores the clean image (Im et al. 2017's denoising criterion with a fixed corruption). The eval
split is corrupted once per example, like its binarization (the same noisy images at every eval);
the eval writes noisy | output | clean triplets (images/eval_denoising_*.png) next to the usual
pictures. neg_elbo and iw_nll bound the clean images' log-likelihood with the noisy-input encoder
as the proposal. Measured: — (not yet run).
Variants: `:mask` zeroes half the pixels instead (masking noise); `:smoke` is a seconds-long run on
synthetic data, for tests.
"""

import ml_collections

from jaxai.config import base_config

STEPS_PER_EPOCH = 468  # 60,000 // 128


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config(task="vae", model="vae")
    config.data.name = "mnist"
    config.data.batch_size = 128
    config.model.architecture = "mlp"
    config.model.mlp_features = (512, 512)
    config.model.latent_dim = 32
    config.model.likelihood = "bernoulli"
    config.task.binarize = "dynamic"
    config.task.denoise = "gaussian"
    config.task.noise_std = 0.5
    config.task.kl_warmup_steps = 2 * STEPS_PER_EPOCH
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 1e-3
    config.optimizer.schedule.name = "cosine"
    config.optimizer.schedule.warmup_steps = 200
    config.train.num_epochs = 20
    config.train.log_every = STEPS_PER_EPOCH
    if variant == "mask":
        config.task.denoise = "mask"
        config.task.mask_fraction = 0.5
    elif variant == "smoke":
        config.data.name = "synthetic_mnist"
        config.data.eval_batch_size = 256
        config.model.mlp_features = (32,)
        config.model.latent_dim = 4
        config.task.kl_warmup_steps = 10
        config.task.iw_samples = 8
        config.task.iw_chunk = 4
        config.optimizer.schedule.warmup_steps = 2
        config.train.num_steps = 20
        config.train.log_every = 5
        config.train.eval_every = 10
    elif variant:
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '', 'mask' and 'smoke'.")
    return config
