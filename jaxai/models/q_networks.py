"""Q-networks for DQN: an observation in, one value per action out.

`QMLP` for vector observations (CartPole), `MinAtarQNetwork` (Young & Tian 2019: one 3x3 conv of
16 channels, 128 hidden units) and `NatureQNetwork` (Mnih et al. 2015: three convolutions over four
84x84 grey frames, 512 hidden units). Each takes `dueling=True` for Wang et al. (2016)'s head:
a state value plus advantages centred on their mean.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


class QHead(nn.Module):
    """Features -> Q-values: a linear layer, or linear value and advantage streams (dueling)."""

    num_actions: int
    dueling: bool = False

    @nn.compact
    def __call__(self, features: jnp.ndarray) -> jnp.ndarray:
        if not self.dueling:
            return nn.Dense(self.num_actions)(features)
        advantages = nn.Dense(self.num_actions, name="advantage")(features)
        return nn.Dense(1, name="value")(features) + advantages - advantages.mean(-1, keepdims=True)


class QMLP(nn.Module):
    """Dense-ReLU layers of widths `features` over a flat observation."""

    num_actions: int = 2
    features: Sequence[int] = (120, 84)
    dueling: bool = False

    @nn.compact
    def __call__(self, observations: jnp.ndarray) -> jnp.ndarray:
        x = observations.reshape(observations.shape[0], -1).astype(jnp.float32)
        for width in self.features:
            x = nn.relu(nn.Dense(width)(x))
        return QHead(self.num_actions, self.dueling)(x)


class MinAtarQNetwork(nn.Module):
    """MinAtar's network: Conv(16, 3x3, stride 1) over the [10, 10, channels] grid, Dense(128)."""

    num_actions: int = 3
    channels: int = 16
    hidden: int = 128
    dueling: bool = False

    @nn.compact
    def __call__(self, observations: jnp.ndarray) -> jnp.ndarray:
        x = nn.relu(nn.Conv(self.channels, (3, 3), padding="VALID")(observations.astype(jnp.float32)))
        x = nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
        return QHead(self.num_actions, self.dueling)(x)


class NatureQNetwork(nn.Module):
    """Nature DQN over uint8 frames [B, 84, 84, 4]: 32 8x8/4, 64 4x4/2, 64 3x3/1 convolutions, Dense(512)."""

    num_actions: int = 4
    hidden: int = 512
    dueling: bool = False

    @nn.compact
    def __call__(self, observations: jnp.ndarray) -> jnp.ndarray:
        x = observations.astype(jnp.float32) / 255.0
        x = nn.relu(nn.Conv(32, (8, 8), (4, 4), padding="VALID")(x))
        x = nn.relu(nn.Conv(64, (4, 4), (2, 2), padding="VALID")(x))
        x = nn.relu(nn.Conv(64, (3, 3), (1, 1), padding="VALID")(x))
        x = nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
        return QHead(self.num_actions, self.dueling)(x)
