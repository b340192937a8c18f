"""A circular replay buffer on device: pure functions over a pytree, so it lives in the train state.

Rows are time steps and columns environments: row t holds, for every environment, the observation
seen at t, the action taken, the reward received and whether the episode ended. The next
observation is the following row's, so an observation is stored once, and an n-step transition is
rows t..t+n. A small module of our own rather than flashbax: n-step sampling over this layout is a
few lines, and it adds no version coupling with jax.

Prioritised replay (Schaul et al. 2016, proportional): a buffer created with `prioritized=True` keeps
a priority per (row, environment), |TD error| + epsilon once learned from and the largest so far when
written. `sample` then draws rows with probability priority**alpha (over the rows it may draw) and
weights each transition by (N * P)**-beta, divided by the batch's largest weight; `set_priorities`
writes the errors of the update back. Sampling is an inverse CDF over the buffer (a cumulative sum and
a binary search): O(rows) per draw of a batch, which at these buffer sizes is cheaper on a device
than a sum tree's scattered reads.
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
    priorities: jax.Array | None = None  # [rows, envs] float32 with prioritised replay, else None.

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
    # 0 where the time limit cut the episode within the n steps (no target to learn), else 1; with
    # prioritised replay, times the importance-sampling weight.
    weight: jax.Array
    row: jax.Array | None = None  # [B] int32: the buffer row (start of the window) each transition came from ...
    env: jax.Array | None = None  # [B] int32: ... and its environment, where its new priority goes.


def create(rows: int, num_envs: int, observation_shape: tuple[int, ...], observation_dtype,
           prioritized: bool = False) -> ReplayBuffer:
    """An empty buffer of `rows` time steps for `num_envs` environments (with priorities if `prioritized`)."""
    return ReplayBuffer(
        observations=jnp.zeros((rows, num_envs, *observation_shape), observation_dtype),
        actions=jnp.zeros((rows, num_envs), jnp.int32),
        rewards=jnp.zeros((rows, num_envs), jnp.float32),
        dones=jnp.zeros((rows, num_envs), bool),
        truncations=jnp.zeros((rows, num_envs), bool),
        position=jnp.zeros((), jnp.int32),
        size=jnp.zeros((), jnp.int32),
        priorities=jnp.zeros((rows, num_envs), jnp.float32) if prioritized else None,
    )


def add(buffer: ReplayBuffer, observation: jax.Array, action: jax.Array, reward: jax.Array,
        done: jax.Array, truncated: jax.Array) -> ReplayBuffer:
    """The buffer with one time step (all environments) written over its oldest row once full."""
    row = buffer.position

    def write(array: jax.Array, value: jax.Array) -> jax.Array:
        return jax.lax.dynamic_update_index_in_dim(array, value.astype(array.dtype), row, 0)

    priorities = buffer.priorities
    if priorities is not None:  # New transitions get the largest priority so far: each is likely drawn soon.
        highest = jnp.where(buffer.size > 0, jnp.max(priorities), 1.0)
        priorities = write(priorities, jnp.full(priorities.shape[1:], highest))
    return buffer.replace(
        priorities=priorities,
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


def sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int, n_step: int, gamma: float,
           priority_exponent: float = 1.0, importance_exponent: jax.Array | float = 1.0) -> Transitions:
    """`batch_size` n-step transitions drawn from the rows whose n successors are written.

    Uniformly, or with prioritised replay in proportion to priority**`priority_exponent` and weighted
    by (N * P)**-`importance_exponent` over the batch's largest such weight.
    Needs `buffer.size > n_step`; a row is never sampled before its next observation exists.
    """
    time_key, env_key = jax.random.split(key)
    valid = buffer.size - n_step
    oldest = (buffer.position - buffer.size) % buffer.rows
    num_envs = buffer.actions.shape[1]
    if buffer.priorities is None:
        start = (oldest + jax.random.randint(time_key, (batch_size,), 0, valid)) % buffer.rows
        env = jax.random.randint(env_key, (batch_size,), 0, num_envs)
        importance = jnp.ones(batch_size, jnp.float32)
    else:
        # Oldest row first, so the rows that may be drawn are the first `valid` and the search can be
        # clamped to them: a float cumulative sum need not be monotone to the last bit.
        mass = jnp.roll(buffer.priorities, -oldest, axis=0) ** priority_exponent
        mass = jnp.where((jnp.arange(mass.shape[0]) < valid)[:, None], mass, 0.0).reshape(-1)
        cumulative = jnp.cumsum(mass)
        total = cumulative[-1]
        flat = jnp.searchsorted(cumulative, jax.random.uniform(time_key, (batch_size,)) * total, side="right")
        flat = jnp.minimum(flat, valid * num_envs - 1)
        start, env = (oldest + flat // num_envs) % buffer.rows, flat % num_envs
        probability = mass[flat] / total
        importance = (valid * num_envs * probability) ** -importance_exponent
        importance = importance / jnp.max(importance)
    window = (start[:, None] + jnp.arange(n_step)) % buffer.rows
    dones = buffer.dones[window, env[:, None]]
    total_reward, discount = n_step_return(buffer.rewards[window, env[:, None]], dones, gamma)
    cut = cut_by_time_limit(dones, buffer.truncations[window, env[:, None]])
    return Transitions(
        observation=buffer.observations[start, env],
        action=buffer.actions[start, env],
        reward=total_reward,
        discount=discount,
        next_observation=buffer.observations[(start + n_step) % buffer.rows, env],
        weight=jnp.where(cut, 0.0, importance),
        row=start.astype(jnp.int32),
        env=env.astype(jnp.int32),
    )


def set_priorities(buffer: ReplayBuffer, row: jax.Array, env: jax.Array, td_errors: jax.Array,
                   epsilon: float = 1e-6) -> ReplayBuffer:
    """Prioritised replay: the sampled transitions' priorities become |TD error| + `epsilon`."""
    return buffer.replace(priorities=buffer.priorities.at[row, env].set(jnp.abs(td_errors) + epsilon))
