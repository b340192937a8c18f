"""Generative adversarial networks: a fully connected GAN and a DCGAN, one Module each.

Each model holds a `generator` and a `discriminator` submodule (params {'generator': ...,
'discriminator': ...}); `generate(z)` gives images in [-1, 1], `discriminate(x)` float32 logits [B].

Defaults on 28x28x1, latent 100:
- MLPGAN (Goodfellow et al. 2014, as commonly reimplemented): generator 100-256-512-1024-784,
  LeakyReLU(0.2), tanh: 1,486,352 parameters; discriminator 784-1024-512-256-1, LeakyReLU(0.2),
  Dropout(0.3): 1,460,225 parameters.
- DCGAN (Radford et al. 2015), features 64: generator Dense(7*7*128, no bias)-Reshape-BN-ReLU-
  ConvT64/2(no bias)-BN-ReLU-ConvT1/2-tanh: 759,681 parameters (+384 batch statistics);
  discriminator Conv64/2-LReLU-Conv128/2(no bias)-BN-LReLU-Flatten-Dense1: 138,689 parameters.
  4x4 'SAME' (transposed) convolutions, N(0, 0.02) kernels.

`spectral_norm=True` wraps the discriminator's Dense/Conv layers in `nn.SpectralNorm`; its power
iteration state lives in 'batch_stats' and advances only when `train=True`. Those layers' params
then carry no logical axis names (replicated): SpectralNorm cannot read boxed parameters.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxai.errors import ConfigError
from jaxai.models.convolution import conv
from jaxai.models.mlp import dense, logits_dtype

DISCRIMINATOR_NORMS = ("batch", "layer", "none")
# DCGAN image size -> (base map size, number of stride-2 upsamplings).
DCGAN_SIZES = {28: (7, 2), 32: (4, 3)}
_DCGAN_INIT = nn.initializers.normal(0.02)
_LECUN_INIT = nn.initializers.lecun_normal()  # linen's Dense default, as `mlp.dense`.


class _GAN(nn.Module):
    """Fields and methods shared by the GANs; subclasses set up `generator` and `discriminator`."""

    image_shape: tuple = (28, 28, 1)
    latent_dim: int = 100
    spectral_norm: bool = False
    dtype: str = "float32"

    def _check_latent_dim(self):
        if self.latent_dim < 1:
            raise ConfigError(f"model.latent_dim must be at least 1, got {self.latent_dim}.")

    def generate(self, z: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        """Images [B, *image_shape] in [-1, 1] from latents z [B, latent_dim]."""
        return self.generator(z, train=train)

    def discriminate(self, images: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        """Real-vs-fake logits [B] (float32) for images [B, *image_shape] in [-1, 1]."""
        return self.discriminator(images, train=train)

    def __call__(self, z: jnp.ndarray, images: jnp.ndarray, *, train: bool = False):
        """(generate(z), discriminate(images)): touches every layer, for init."""
        return self.generate(z, train=train), self.discriminate(images, train=train)


class MLPGAN(_GAN):
    """Fully connected GAN: Dense-LeakyReLU(0.2) generator with tanh output; Dense-LeakyReLU-Dropout
    discriminator with one logit."""

    generator_features: Sequence[int] = (256, 512, 1024)
    discriminator_features: Sequence[int] = (1024, 512, 256)
    dropout_rate: float = 0.3  # After each hidden discriminator layer, when training.

    def setup(self):
        self._check_latent_dim()
        self.generator = MLPGenerator(self.image_shape, self.generator_features, self.dtype)
        self.discriminator = MLPDiscriminator(
            self.discriminator_features, self.dropout_rate, self.spectral_norm, self.dtype
        )


class DCGAN(_GAN):
    """DCGAN for 28x28 (base map 7x7) or 32x32 (base map 4x4) images with any channel count.

    Generator: Dense(base*base*F*2^(L-1), no bias), reshape, BN-ReLU, then L ConvT 4x4/2 layers
    halving the features (BN-ReLU after each but the last, which gives C channels, bias, tanh).
    Discriminator: L Conv 4x4/2 layers of F*2^i features with LeakyReLU(0.2), a norm after every
    conv but the first, then Dense(1). L = 2 for 28x28, 3 for 32x32; F = `features`.
    WGAN-GP's gradient penalty is per example: use discriminator_norm='layer' or 'none' there, as
    batch norm mixes the examples of a batch.
    """

    features: int = 64
    discriminator_norm: str = "batch"  # 'batch' | 'layer' (over H, W, C per example) | 'none'.

    def setup(self):
        self._check_latent_dim()
        if self.discriminator_norm not in DISCRIMINATOR_NORMS:
            raise ConfigError(
                f"model.discriminator_norm={self.discriminator_norm!r}; choose one of {DISCRIMINATOR_NORMS}."
            )
        height, width, _ = self.image_shape
        if height != width or height not in DCGAN_SIZES:
            supported = ", ".join(f"{size}x{size}" for size in DCGAN_SIZES)
            raise ConfigError(
                f"model image_shape={tuple(self.image_shape)} is not supported by DCGAN; "
                f"supported sizes: {supported} (any channel count)."
            )
        base, levels = DCGAN_SIZES[height]
        self.generator = DCGANGenerator(self.image_shape, self.features, base, levels, self.dtype)
        self.discriminator = DCGANDiscriminator(
            self.features, levels, self.discriminator_norm, self.spectral_norm, self.dtype
        )


class MLPGenerator(nn.Module):
    """Dense-LeakyReLU(0.2) layers, then Dense(H*W*C) and tanh."""

    image_shape: tuple
    features: Sequence[int]
    dtype: str

    @nn.compact
    def __call__(self, z: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        x = z.astype(self.dtype)  # [B, latent_dim]
        for width in self.features:
            x = nn.leaky_relu(dense(width, self.dtype)(x), 0.2)
        x = dense(math.prod(self.image_shape), self.dtype)(x)
        x = x.reshape((x.shape[0], *self.image_shape))  # [B, H, W, C]
        return jnp.tanh(x.astype(logits_dtype(self.dtype)))


class MLPDiscriminator(nn.Module):
    """Flatten, Dense-LeakyReLU(0.2)-Dropout layers, then one logit."""

    features: Sequence[int]
    dropout_rate: float
    spectral_norm: bool
    dtype: str

    @nn.compact
    def __call__(self, images: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        x = images.reshape((images.shape[0], -1)).astype(self.dtype)  # [B, H*W*C]
        for width in self.features:
            layer = _dense(width, self.dtype, kernel_init=_LECUN_INIT, logical_axes=not self.spectral_norm)
            x = nn.leaky_relu(_maybe_spectral(layer, self.spectral_norm, x, train), 0.2)
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        layer = _dense(1, self.dtype, kernel_init=_LECUN_INIT, logical_axes=not self.spectral_norm)
        x = _maybe_spectral(layer, self.spectral_norm, x, train)  # [B, 1]
        return x[:, 0].astype(logits_dtype(self.dtype))  # [B]


class DCGANGenerator(nn.Module):
    """Dense to a base x base map, BN-ReLU, then stride-2 transposed convolutions up to the image."""

    image_shape: tuple
    features: int
    base: int
    levels: int
    dtype: str

    @nn.compact
    def __call__(self, z: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        width = self.features * 2 ** (self.levels - 1)
        x = _dense(self.base * self.base * width, self.dtype, use_bias=False)(z.astype(self.dtype))
        x = x.reshape((x.shape[0], self.base, self.base, width))  # [B, base, base, F*2^(L-1)]
        x = nn.relu(_batch_norm(train, self.dtype)(x))  # Per channel, as the DCGAN paper and PyTorch's example.
        for level in range(self.levels):
            last = level == self.levels - 1
            width = self.image_shape[-1] if last else self.features * 2 ** (self.levels - 2 - level)
            x = conv(width, 2, self.dtype, kernel_size=4, transpose=True, use_bias=last, kernel_init=_DCGAN_INIT)(x)
            if not last:
                x = nn.relu(_batch_norm(train, self.dtype)(x))
        return jnp.tanh(x.astype(logits_dtype(self.dtype)))  # [B, H, W, C]


class DCGANDiscriminator(nn.Module):
    """Stride-2 convolutions with LeakyReLU(0.2) (a norm after all but the first), then one logit."""

    features: int
    levels: int
    norm: str
    spectral_norm: bool
    dtype: str

    @nn.compact
    def __call__(self, images: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        x = images.astype(self.dtype)  # [B, H, W, C]
        for level in range(self.levels):
            normed = level > 0 and self.norm != "none"
            layer = conv(
                self.features * 2**level,
                2,
                self.dtype,
                kernel_size=4,
                use_bias=not normed,
                kernel_init=_DCGAN_INIT,
                logical_axes=not self.spectral_norm,
            )
            x = _maybe_spectral(layer, self.spectral_norm, x, train)
            if normed and self.norm == "batch":
                x = _batch_norm(train, self.dtype)(x)
            elif normed:  # Per example over H, W, C, a scale and bias per channel (PyTorch GroupNorm(1, C)).
                x = nn.LayerNorm(epsilon=1e-5, reduction_axes=(1, 2, 3), feature_axes=-1, dtype=self.dtype)(x)
            x = nn.leaky_relu(x, 0.2)
        x = x.reshape((x.shape[0], -1))  # [B, h*w*F*2^(L-1)]
        layer = _dense(1, self.dtype, logical_axes=not self.spectral_norm)
        x = _maybe_spectral(layer, self.spectral_norm, x, train)  # [B, 1]
        return x[:, 0].astype(logits_dtype(self.dtype))  # [B]


def _maybe_spectral(layer: nn.Module, spectral_norm: bool, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    """`layer(x)`, or with its kernel divided by its largest singular value (power iteration)."""
    if spectral_norm:
        return nn.SpectralNorm(layer)(x, update_stats=train)
    return layer(x)


def _batch_norm(train: bool, dtype: str) -> nn.BatchNorm:
    """BatchNorm over the batch (and spatial) axes; running statistics in 'batch_stats'."""
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype)


def _dense(
    features: int, dtype: str, *, use_bias: bool = True, kernel_init=_DCGAN_INIT, logical_axes: bool = True
) -> nn.Dense:
    """A Dense layer, by default with the DCGAN paper's N(0, 0.02) kernel, and logical axis names.

    `logical_axes=False` leaves kernel and bias unnamed (replicated), for `nn.SpectralNorm`, which
    cannot read boxed parameters.
    """
    bias_init = nn.initializers.zeros_init()
    if logical_axes:
        kernel_init = nn.with_logical_partitioning(kernel_init, ("embed", "mlp"))
        bias_init = nn.with_logical_partitioning(bias_init, ("mlp",))
    return nn.Dense(features, use_bias=use_bias, dtype=dtype, kernel_init=kernel_init, bias_init=bias_init)
