"""A circular replay buffer on device: pure functions over a pytree, so it lives in the train state.

Rows are time steps and columns environments: row t holds, for every environment, the observation
seen at t, the action taken, the reward received and whether the episode ended. The next
observation is the following row's, so an observation is stored once, and an n-step transition is
rows t..t+n. A small module of our own rather than flashbax: n-step sampling over this layout is a
few lines, and it adds no version coupling with jax.
"""

from __future__ import annotations

from typing import NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np


@flax.struct.dataclass
class ReplayBuffer:
    observations: jax.Array  # [rows, envs, *observation_shape]
    actions: jax.Array  # [rows, envs] int32
    rewards: jax.Array  # [rows, envs] float32
    dones: jax.Array  # [rows, envs] bool: the episode ended after this step (next row starts a new one).
    truncations: jax.Array  # [rows, envs] bool: ...by the time limit alone (the state after it still had a value).
    position: jax.Array  # int32: the row written next.
    size: jax.Array  # int32: rows written so far, at most `rows`.

    @property
    def rows(self) -> int:
        return self.actions.shape[0]


class Transitions(NamedTuple):
    """n-step transitions: the target is `reward + discount * V(next_observation)`."""

    observation: jax.Array
    action: jax.Array
    reward: jax.Array  # Discounted sum of the n rewards (fewer where the episode ended).
    discount: jax.Array  # gamma**n, or 0 where the episode ended within the n steps.
    next_observation: jax.Array
    weight: jax.Array  # 0 where the time limit cut the episode within the n steps (no target to learn), else 1.


def create(rows: int, num_envs: int, observation_shape: tuple[int, ...], observation_dtype) -> ReplayBuffer:
    """An empty buffer of `rows` time steps for `num_envs` environments."""
    return ReplayBuffer(
        observations=jnp.zeros((rows, num_envs, *observation_shape), observation_dtype),
        actions=jnp.zeros((rows, num_envs), jnp.int32),
        rewards=jnp.zeros((rows, num_envs), jnp.float32),
        dones=jnp.zeros((rows, num_envs), bool),
        truncations=jnp.zeros((rows, num_envs), bool),
        position=jnp.zeros((), jnp.int32),
        size=jnp.zeros((), jnp.int32),
    )


def add(buffer: ReplayBuffer, observation: jax.Array, action: jax.Array, reward: jax.Array,
        done: jax.Array, truncated: jax.Array) -> ReplayBuffer:
    """The buffer with one time step (all environments) written over its oldest row once full."""
    row = buffer.position

    def write(array: jax.Array, value: jax.Array) -> jax.Array:
        return jax.lax.dynamic_update_index_in_dim(array, value.astype(array.dtype), row, 0)

    return buffer.replace(
        observations=write(buffer.observations, observation),
        actions=write(buffer.actions, action),
        rewards=write(buffer.rewards, reward),
        dones=write(buffer.dones, done),
        truncations=write(buffer.truncations, truncated),
        position=(row + 1) % buffer.rows,
        size=jnp.minimum(buffer.size + 1, buffer.rows),
    )


def before_first_end(dones: jax.Array) -> jax.Array:
    """Whether no earlier step along the last axis ended an episode (true up to and including the first end)."""
    ends = dones.astype(jnp.int32)
    return jnp.cumsum(ends, -1) - ends == 0


def n_step_return(rewards: jax.Array, dones: jax.Array, gamma: float) -> tuple[jax.Array, jax.Array]:
    """(discounted reward sum, bootstrap discount) of n consecutive steps, along the last axis.

    Rewards after the step that ends an episode are not counted, and the discount is then 0.
    """
    n = rewards.shape[-1]
    powers = gamma ** np.arange(n, dtype=np.float32)
    total = jnp.sum(rewards * before_first_end(dones).astype(jnp.float32) * powers, -1)
    discount = jnp.where(jnp.any(dones, -1), 0.0, gamma**n)
    return total, discount


def cut_by_time_limit(dones: jax.Array, truncations: jax.Array) -> jax.Array:
    """Whether the first episode end among n consecutive steps (last axis) was a time limit's cut.

    Its n-step target would treat a state that still had a value as worth nothing, so it is not learned.
    """
    return jnp.any(truncations & before_first_end(dones), -1)


def sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int, n_step: int, gamma: float) -> Transitions:
    """`batch_size` n-step transitions drawn uniformly from the rows whose n successors are written.

    Needs `buffer.size > n_step`; a row is never sampled before its next observation exists.
    """
    time_key, env_key = jax.random.split(key)
    valid = buffer.size - n_step
    oldest = (buffer.position - buffer.size) % buffer.rows
    start = (oldest + jax.random.randint(time_key, (batch_size,), 0, valid)) % buffer.rows
    env = jax.random.randint(env_key, (batch_size,), 0, buffer.actions.shape[1])
    window = (start[:, None] + jnp.arange(n_step)) % buffer.rows
    dones = buffer.dones[window, env[:, None]]
    total, discount = n_step_return(buffer.rewards[window, env[:, None]], dones, gamma)
    cut = cut_by_time_limit(dones, buffer.truncations[window, env[:, None]])
    return Transitions(
        observation=buffer.observations[start, env],
        action=buffer.actions[start, env],
        reward=total,
        discount=discount,
        next_observation=buffer.observations[(start + n_step) % buffer.rows, env],
        weight=jnp.where(cut, 0.0, 1.0),
    )
