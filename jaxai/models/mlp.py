"""Multi-layer perceptron: flatten, Dense-ReLU stack, linear head."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


class MLP(nn.Module):
    """Dense-ReLU layers of widths `features`, then `num_classes` logits."""

    num_classes: int = 10
    features: Sequence[int] = (512, 512)
    dropout_rate: float = 0.0
    dtype: str = "float32"

    @nn.compact
    def __call__(self, inputs: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        x = inputs.reshape((inputs.shape[0], -1)).astype(self.dtype)  # [B, H*W*C]
        for width in self.features:
            x = dense(width, self.dtype)(x)
            x = nn.relu(x)
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return dense(self.num_classes, self.dtype)(x).astype(logits_dtype(self.dtype))


def logits_dtype(compute_dtype: str) -> jnp.dtype:
    """Logits leave the model in at least float32, whatever the compute dtype."""
    return jnp.promote_types(compute_dtype, jnp.float32)


def dense(features: int, dtype: str) -> nn.Dense:
    """A Dense layer whose kernel and bias carry logical axis names."""
    return nn.Dense(
        features,
        dtype=dtype,
        kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), ("embed", "mlp")),
        bias_init=nn.with_logical_partitioning(nn.initializers.zeros_init(), ("mlp",)),
    )
