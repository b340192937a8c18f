"""The MLP VAE of PyTorch's examples (vae/main.py): 784-400-20 (ReLU), Adam 1e-3, batch 128, 10 epochs.

    jaxai train --config experiments/mnist_vae_mlp_torch.py --workdir runs/mnist_vae_mlp_torch
    python bench/peers/torch_vae.py --epochs 10          # the same recipe in PyTorch eager, side by side

Model: encoder 784->400 ReLU -> 20 means and 20 log-variances, decoder 20->400 ReLU->784 Bernoulli
logits (652,824 parameters, as the example). Loss: the negative ELBO, binary cross-entropy summed over
the pixels plus the closed-form KL, per image (the example sums over the batch: Adam is all but
invariant to that scale). Constant Adam 1e-3, batch 128, 10 epochs, as the example. Data: dynamically
binarized MNIST (a fresh Bernoulli draw of every batch), which bench/peers/torch_vae.py mirrors by
default; `:grey` trains on the [0, 1] grey levels as Bernoulli targets, as the example itself does
(its figures are then not log-likelihoods). Evaluates the test split's negative ELBO every epoch.
Measured: — (not yet run).
Variants: `:grey` (above); `:smoke` is a seconds-long run on synthetic data, for tests.
"""

import ml_collections

from jaxai.config import base_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config(task="vae", model="vae")
    config.data.name = "mnist"
    config.data.batch_size = 128
    config.model.architecture = "mlp"
    config.model.mlp_features = (400,)
    config.model.latent_dim = 20
    config.model.likelihood = "bernoulli"
    config.task.binarize = "dynamic"
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 1e-3
    config.optimizer.schedule.name = "constant"
    config.train.num_epochs = 10
    if variant == "grey":
        config.task.binarize = "none"
    elif variant == "smoke":
        config.data.name = "synthetic_mnist"
        config.data.eval_batch_size = 256
        config.model.mlp_features = (32,)
        config.model.latent_dim = 4
        config.task.iw_samples = 8
        config.task.iw_chunk = 4
        config.train.num_steps = 20
        config.train.log_every = 5
        config.train.eval_every = 10
    elif variant:
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '', 'grey' and 'smoke'.")
    return config
