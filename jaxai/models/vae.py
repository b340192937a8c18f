"""Variational autoencoder; the default is the classic Keras MNIST VAE.

Default layout (208,021 parameters on 28x28x1, latent 2, Bernoulli likelihood):
encoder Conv32/2-Conv64/2-Conv64/1-Flatten-Dense16, then Dense2 mean and Dense2 log-variance heads;
decoder Dense(7*7*64)-Reshape-ConvT64/1-ConvT64/2-ConvT32/2-ConvT1/1 (logits).
3x3 'SAME' convolutions, ReLU. `architecture='mlp', mlp_features=(400,), latent_dim=20` is the
PyTorch examples' VAE (784-400-20, 652,824 parameters).
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxai.errors import ConfigError
from jaxai.models.convolution import conv
from jaxai.models.mlp import dense, logits_dtype

ARCHITECTURES = ("conv", "mlp")
LIKELIHOODS = ("bernoulli", "gaussian")


class VAE(nn.Module):
    """q(z|x) = N(mean, exp(logvar)) from an encoder, p(x|z) from a decoder that mirrors it.

    The decoder gives Bernoulli logits ([B, H, W, C]) or a Gaussian's per-pixel (mean, log_std).
    The task draws the standard-normal noise, so the module needs no rng.
    """

    image_shape: tuple = (28, 28, 1)
    architecture: str = "conv"  # 'conv' or 'mlp'.
    latent_dim: int = 2
    conv_features: Sequence[int] = (32, 64, 64)  # 'conv': 3x3 'SAME' convolutions.
    conv_strides: Sequence[int] = (2, 2, 1)
    dense_features: int = 16  # 'conv': one Dense-ReLU between the conv stack and the heads.
    mlp_features: Sequence[int] = (512,)  # 'mlp': Dense-ReLU widths of the encoder.
    likelihood: str = "bernoulli"  # 'bernoulli' (logits) or 'gaussian' (mean, log_std).
    dtype: str = "float32"

    def setup(self):
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(f"model.architecture={self.architecture!r}; choose one of {ARCHITECTURES}.")
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(f"model.likelihood={self.likelihood!r}; choose one of {LIKELIHOODS}.")
        if self.latent_dim < 1:
            raise ConfigError(f"model.latent_dim must be at least 1, got {self.latent_dim}.")
        height, width, channels = self.image_shape
        out_channels = channels * (2 if self.likelihood == "gaussian" else 1)
        if self.architecture == "conv":
            if len(self.conv_strides) != len(self.conv_features):
                raise ConfigError(
                    f"model.conv_strides has {len(self.conv_strides)} entries but model.conv_features has "
                    f"{len(self.conv_features)}; give one stride per conv layer."
                )
            self.encoder_convs = [
                conv(width_, stride, self.dtype) for width_, stride in zip(self.conv_features, self.conv_strides)
            ]
            self.encoder_dense = dense(self.dense_features, self.dtype)
            map_height, map_width = height, width  # 'SAME' stride s: ceil(size / s).
            for stride in self.conv_strides:
                map_height, map_width = -(-map_height // stride), -(-map_width // stride)
            self._map_shape = (map_height, map_width, self.conv_features[-1])
            self.decoder_dense = dense(math.prod(self._map_shape), self.dtype)
            self.decoder_convs = [
                conv(width_, stride, self.dtype, transpose=True)
                for width_, stride in zip(reversed(self.conv_features), reversed(self.conv_strides))
            ]
            self.decoder_output = conv(out_channels, 1, self.dtype, transpose=True)
        else:
            self.encoder_layers = [dense(width_, self.dtype) for width_ in self.mlp_features]
            self.decoder_layers = [dense(width_, self.dtype) for width_ in reversed(self.mlp_features)]
            self.decoder_output = dense(height * width * out_channels, self.dtype)
        self.mean_head = dense(self.latent_dim, self.dtype)
        self.logvar_head = dense(self.latent_dim, self.dtype)

    def encode(self, images: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        """Mean and log-variance of q(z|x), each [B, latent_dim], for images [B, H, W, C] in [0, 1]."""
        x = images.astype(self.dtype)  # [B, H, W, C]
        if self.architecture == "conv":
            for layer in self.encoder_convs:
                x = nn.relu(layer(x))
            x = x.reshape((x.shape[0], -1))  # [B, h*w*c]
            x = nn.relu(self.encoder_dense(x))
        else:
            x = x.reshape((x.shape[0], -1))  # [B, H*W*C]
            for layer in self.encoder_layers:
                x = nn.relu(layer(x))
        out_dtype = logits_dtype(self.dtype)
        return self.mean_head(x).astype(out_dtype), self.logvar_head(x).astype(out_dtype)

    def decode(self, z: jnp.ndarray) -> jnp.ndarray | tuple[jnp.ndarray, jnp.ndarray]:
        """Logits [B, H, W, C] ('bernoulli') or (mean, log_std), each [B, H, W, C] ('gaussian')."""
        height, width, _ = self.image_shape
        x = z.astype(self.dtype)  # [B, latent_dim]
        if self.architecture == "conv":
            x = nn.relu(self.decoder_dense(x))
            x = x.reshape((x.shape[0], *self._map_shape))  # [B, h, w, c]
            for layer in self.decoder_convs:
                x = nn.relu(layer(x))
            x = x[:, :height, :width]  # [B, H, W, c]: crops where H or W is not a multiple of the strides.
            x = self.decoder_output(x)  # [B, H, W, C'], C' = C or 2C
        else:
            for layer in self.decoder_layers:
                x = nn.relu(layer(x))
            x = self.decoder_output(x)
            x = x.reshape((x.shape[0], height, width, -1))  # [B, H, W, C'], C' = C or 2C
        x = x.astype(logits_dtype(self.dtype))
        if self.likelihood == "gaussian":
            mean, log_std = jnp.split(x, 2, axis=-1)  # Each [B, H, W, C].
            return mean, log_std
        return x

    def __call__(self, images: jnp.ndarray, z_noise: jnp.ndarray):
        """(decode(z), mean, logvar) with z = mean + exp(logvar / 2) * z_noise, z_noise ~ N(0, I)."""
        mean, logvar = self.encode(images)
        z = mean + jnp.exp(0.5 * logvar) * z_noise.astype(mean.dtype)  # [B, latent_dim]
        return self.decode(z), mean, logvar
