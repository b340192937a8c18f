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

import os

import ml_collections

from jaxai.config import load_experiment

STEPS_PER_EPOCH = 468  # 60,000 // 128


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    if variant not in ("", "mask", "smoke"):
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '', 'mask' and 'smoke'.")
    base_variant = "smoke" if variant == "smoke" else ""
    config = load_experiment(os.path.join(os.path.dirname(__file__), "mnist_vae.py"), base_variant)
    config.task.denoise = "gaussian"
    config.task.noise_std = 0.5
    config.train.num_epochs = 20
    if variant == "smoke":
        config.model.mlp_features = (32,)
        config.train.checkpoint_every = 0
        return config
    config.task.kl_warmup_steps = 2 * STEPS_PER_EPOCH
    config.optimizer.schedule.warmup_steps = 200
    config.train.eval_every = 0
    config.train.checkpoint_every = 0
    if variant == "mask":
        config.task.denoise = "mask"
        config.task.mask_fraction = 0.5
    return config
