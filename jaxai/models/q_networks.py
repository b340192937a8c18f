"""Q-networks for DQN: an observation in, one value per action out.

`QMLP` for vector observations (CartPole), `MinAtarQNetwork` (Young & Tian 2019: one 3x3 conv of
16 channels, 128 hidden units) and `NatureQNetwork` (Mnih et al. 2015: three convolutions over four
84x84 grey frames, 512 hidden units). Each takes `dueling=True` for Wang et al. (2016)'s head:
a state value plus advantages centred on their mean.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxai.errors import ConfigError
from jaxai.models.precision import mixed_precision_matmul

LAYER_NORMS = ("none", "last", "all")


@jax.custom_vjp
def add_bias(x: jax.Array, bias: jax.Array) -> jax.Array:
    return x + bias


def _add_bias_forward(x: jax.Array, bias: jax.Array) -> tuple[jax.Array, None]:
    return x + bias, None


def _add_bias_backward(_: None, grad: jax.Array) -> tuple[jax.Array, jax.Array]:
    # The bias gradient as a matmul rather than a reduction: XLA:CPU rounds a batch sum differently
    # when the update is vmapped over 10 seeds than over 1, a matmul per seed identically. With it a
    # seed trained among others learns bit for bit what it learns alone.
    rows = grad.reshape(-1, grad.shape[-1])
    return grad, jnp.ones((rows.shape[0],), grad.dtype) @ rows


add_bias.defvjp(_add_bias_forward, _add_bias_backward)


class Dense(nn.Module):
    """nn.Dense (LeCun-normal kernel, zero bias) whose bias gradient is a matmul; dtype 'bfloat16' takes
    bf16 matmul operands accumulating in float32."""

    features: int
    dtype: str = "float32"

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (x.shape[-1], self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
        if self.dtype == "float32":
            y = x @ kernel
        else:
            y = mixed_precision_matmul(x.astype(self.dtype), kernel)
        return add_bias(y, bias.astype(y.dtype))


def patches(images: jnp.ndarray, size: int) -> jnp.ndarray:
    """Every size x size window of [B, H, W, C] (VALID, stride 1) -> [B, H-size+1, W-size+1, size*size*C]."""
    height, width = images.shape[1] - size + 1, images.shape[2] - size + 1
    return jnp.concatenate([images[:, i:i + height, j:j + width] for i in range(size) for j in range(size)], -1)


def space_to_depth(images: jnp.ndarray, block: int) -> jnp.ndarray:
    """[B, H, W, C] -> [B, H/block, W/block, block*block*C]: each block x block tile becomes one pixel."""
    batch, height, width, channels = images.shape
    tiles = images.reshape(batch, height // block, block, width // block, block, channels)
    return tiles.transpose(0, 1, 3, 2, 4, 5).reshape(batch, height // block, width // block, block * block * channels)


class WindowDense(nn.Module):
    """A VALID convolution (kernel `size`, `stride` dividing it and the image) computed as one matmul.

    Strided windows become stride-1 windows of a space-to-depth image, and all windows one Dense
    layer: the same function as nn.Conv (its kernel permuted) with the same fan-in. XLA:CPU runs a
    convolution inside a loop or a conditional (the training scan, the update's cond) 7-50x slower
    than at top level, a matmul at full speed.
    """

    features: int
    size: int
    stride: int = 1
    dtype: str = "float32"
    divide_inputs_by: float = 1.0  # Applied after the windows are cut, so uint8 frames are rearranged as bytes.

    @nn.compact
    def __call__(self, images: jnp.ndarray) -> jnp.ndarray:
        if self.size % self.stride or images.shape[1] % self.stride or images.shape[2] % self.stride:
            raise ValueError(f"stride {self.stride} must divide the kernel ({self.size}) and the image {images.shape[1:3]}.")
        tiles = space_to_depth(images, self.stride) if self.stride > 1 else images
        windows = patches(tiles, self.size // self.stride)
        if self.divide_inputs_by != 1.0 or windows.dtype != jnp.dtype(self.dtype):
            windows = (windows.astype(jnp.float32) / self.divide_inputs_by).astype(self.dtype)
        return Dense(self.features, self.dtype)(windows)


class QHead(nn.Module):
    """Features -> Q-values: a linear layer, or linear value and advantage streams (dueling)."""

    num_actions: int
    dueling: bool = False

    @nn.compact
    def __call__(self, features: jnp.ndarray) -> jnp.ndarray:
        if not self.dueling:
            return Dense(self.num_actions)(features)
        advantages = Dense(self.num_actions, name="advantage")(features)
        return Dense(1, name="value")(features) + advantages - advantages.mean(-1, keepdims=True)


def feature_mean(x: jax.Array) -> jax.Array:
    """Mean over the last axis, as a matmul (keeps its dimension)."""
    return x @ jnp.full((x.shape[-1], 1), 1.0 / x.shape[-1], x.dtype)


@jax.custom_vjp
def normalize(x: jax.Array) -> jax.Array:
    """Layer norm over the last axis without scale or shift.

    Its statistics are matmuls and its gradient is written out in them: a reduction, or the
    gradient autodiff derives, rounds differently for seeds trained together than alone.
    """
    return _normalize_forward(x)[0]


def _normalize_forward(x: jax.Array, epsilon: float = 1e-6) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    centred = x - feature_mean(x)
    inverse_std = jax.lax.rsqrt(feature_mean(centred * centred) + epsilon)
    normalized = centred * inverse_std
    return normalized, (normalized, inverse_std)


def _normalize_backward(residuals: tuple[jax.Array, jax.Array], grad: jax.Array) -> tuple[jax.Array]:
    normalized, inverse_std = residuals
    return (inverse_std * (grad - feature_mean(grad) - normalized * feature_mean(grad * normalized)),)


normalize.defvjp(_normalize_forward, _normalize_backward)


class QMLP(nn.Module):
    """Dense-ReLU layers of widths `features` over a flat observation.

    `layer_norm` normalises the hidden layers (`last` or `all`) before their ReLU, as in Ball et al.
    (2023) and Gallici et al. (2024), where it steadies the TD fit. It has no learned scale or
    shift, whose gradients would be reductions over the batch (see `normalize`).
    """

    num_actions: int = 2
    features: Sequence[int] = (120, 84)
    dueling: bool = False
    layer_norm: str = "none"  # none | last | all: normalise those hidden layers before their ReLU (no learned scale or shift).

    @nn.compact
    def __call__(self, observations: jnp.ndarray) -> jnp.ndarray:
        if self.layer_norm not in LAYER_NORMS:
            raise ConfigError(f"model.layer_norm={self.layer_norm!r}; choose one of {LAYER_NORMS}.")
        x = observations.reshape(observations.shape[0], -1).astype(jnp.float32)
        for depth, width in enumerate(self.features, 1):
            x = Dense(width)(x)
            if self.layer_norm == "all" or (self.layer_norm == "last" and depth == len(self.features)):
                x = normalize(x)
            x = nn.relu(x)
        return QHead(self.num_actions, self.dueling)(x)


class MinAtarQNetwork(nn.Module):
    """MinAtar's network: Conv(16, 3x3, stride 1) over the [10, 10, channels] grid, Dense(128)."""

    num_actions: int = 3
    channels: int = 16
    hidden: int = 128
    dueling: bool = False
    dtype: str = "float32"  # 'bfloat16': bf16 matmul operands, float32 accumulation and Q-values.

    @nn.compact
    def __call__(self, observations: jnp.ndarray) -> jnp.ndarray:
        x = nn.relu(WindowDense(self.channels, 3, dtype=self.dtype)(observations.astype(self.dtype)))
        x = nn.relu(Dense(self.hidden, self.dtype)(x.reshape(x.shape[0], -1)))
        return QHead(self.num_actions, self.dueling)(x.astype(jnp.float32))


class NatureQNetwork(nn.Module):
    """Nature DQN over uint8 frames [B, 84, 84, 4]: 32 8x8/4, 64 4x4/2, 64 3x3/1 convolutions, Dense(512)."""

    num_actions: int = 4
    hidden: int = 512
    dueling: bool = False
    dtype: str = "float32"  # 'bfloat16': bf16 matmul operands, float32 accumulation and Q-values.

    @nn.compact
    def __call__(self, observations: jnp.ndarray) -> jnp.ndarray:
        # The frames' 4x less memory traffic: the first layer's windows are cut from the uint8 frames.
        x = nn.relu(WindowDense(32, 8, 4, dtype=self.dtype, divide_inputs_by=255.0)(observations))  # [B, 20, 20, 32]
        x = nn.relu(WindowDense(64, 4, 2, dtype=self.dtype)(x))  # [B, 9, 9, 64]
        x = nn.relu(WindowDense(64, 3, dtype=self.dtype)(x))  # [B, 7, 7, 64]
        x = nn.relu(Dense(self.hidden, self.dtype)(x.reshape(x.shape[0], -1)))
        return QHead(self.num_actions, self.dueling)(x.astype(jnp.float32))
