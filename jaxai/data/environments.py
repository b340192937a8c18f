"""Batches of environments behind one jittable interface, whether they run in JAX or on the host.

`gymnax:<name>` environments (CartPole-v1, the MinAtar games) are pure JAX: acting and learning
compile into one program, vmapped over environments and seeds. `atari:<Game>` environments
(Gymnasium + ale-py) run on the host; the compiled program steps them through `io_callback`, so
both kinds train through the same driver and the same update.

Every batch auto-resets: the observation after a step that ends an episode is the first of the
next one. `done` marks the end of an episode for the learner (termination or time limit; with
Atari's episodic life, a lost life), and `truncated` those the time limit cut, whose last state
still has a value (Pardo et al. 2018); `finished` and `returns` report whole episodes (whole games,
unclipped rewards) for the learning curve.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import io_callback

from jaxai.errors import ConfigError
from jaxai.lazy_imports import deferred

GYMNAX_PREFIX, ATARI_PREFIX = "gymnax:", "atari:"


class StepResult(NamedTuple):
    env_state: Any
    observation: jax.Array  # [envs, *observation_shape]
    reward: jax.Array  # [envs] float32, as the learner sees it (clipped for Atari).
    done: jax.Array  # [envs] bool: the learner's episode ended at this step.
    truncated: jax.Array  # [envs] bool: ended by the time limit alone, so its value is not 0 (no bootstrap target).
    finished: jax.Array  # [envs] bool: a whole episode (game) ended at this step.
    returns: jax.Array  # [envs] float32: its undiscounted, unclipped return where finished.


class Environment(NamedTuple):
    """`reset(key, num_envs) -> (env_state, observations)`; `step(key, env_state, actions) -> StepResult`."""

    name: str
    num_actions: int
    observation_shape: tuple[int, ...]
    observation_dtype: Any
    max_episode_steps: int
    reset: Callable[[jax.Array, int], tuple[Any, jax.Array]]
    step: Callable[[jax.Array, Any, jax.Array], StepResult]
    on_host: bool  # True: stepped through host callbacks (one seed per program, one device).


def default_atari_config() -> ml_collections.ConfigDict:
    """Atari wrapper settings (Machado et al. 2018 call sticky actions 0.25; the Nature paper used none)."""
    return ml_collections.ConfigDict({
        "noop_max": 30,  # Up to this many no-op actions at reset.
        "sticky_action_prob": 0.0,  # Probability that ALE repeats the previous action.
        "episodic_life": True,  # A lost life ends the learner's episode (not the game).
        "clip_rewards": True,  # The learner sees sign(reward); returns stay unclipped.
        "max_episode_steps": 27_000,  # Evaluation cap in agent steps (108,000 frames: 30 minutes of play).
    })


def make_environment(name: str, num_envs: int, atari: ml_collections.ConfigDict | None = None) -> Environment:
    """The batched environment `name` (`gymnax:CartPole-v1`, `atari:Breakout`); host ones hold `num_envs`."""
    if name.startswith(GYMNAX_PREFIX):
        return gymnax_environment(name[len(GYMNAX_PREFIX):])
    if name.startswith(ATARI_PREFIX):
        return atari_environment(name[len(ATARI_PREFIX):], num_envs, atari or default_atari_config())
    raise ConfigError(f"task.environment={name!r}: write gymnax:<name> (e.g. gymnax:CartPole-v1, "
                      "gymnax:Breakout-MinAtar) or atari:<Game> (e.g. atari:Breakout).")


@flax.struct.dataclass
class EpisodeTracker:
    env_state: Any
    returns: jax.Array  # [envs] reward so far in each running episode.


def gymnax_environment(name: str) -> Environment:
    """A gymnax environment, vmapped over a batch, tracking episode returns."""
    try:
        with deferred("seaborn"):  # gymnax imports it for Pong's renderer only
            import gymnax
    except ImportError:
        raise ConfigError("gymnax environments need gymnax: pip install 'jaxai[rl]'.") from None
    if name not in gymnax.registered_envs:
        close = difflib.get_close_matches(name, gymnax.registered_envs, n=3)
        raise ConfigError(f"Unknown gymnax environment {name!r}; close names: {close or gymnax.registered_envs[:8]}.")
    env, params = gymnax.make(name)
    example, _ = env.reset(jax.random.key(0), params)

    def reset(key: jax.Array, num_envs: int) -> tuple[EpisodeTracker, jax.Array]:
        observations, env_states = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), params)
        return EpisodeTracker(env_states, jnp.zeros(num_envs, jnp.float32)), observations

    def step(key: jax.Array, tracker: EpisodeTracker, actions: jax.Array) -> StepResult:
        keys = jax.random.split(key, actions.shape[0])
        observations, env_states, rewards, terminated, truncated, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            keys, tracker.env_state, actions, params)
        done = terminated | truncated
        returns = tracker.returns + rewards
        tracker = EpisodeTracker(env_states, jnp.where(done, 0.0, returns))
        return StepResult(tracker, observations, rewards.astype(jnp.float32), done, truncated & ~terminated, done, returns)

    return Environment(
        name=GYMNAX_PREFIX + name,
        num_actions=int(env.num_actions),
        observation_shape=tuple(example.shape),
        observation_dtype=example.dtype,
        max_episode_steps=int(params.max_steps_in_episode),
        reset=reset,
        step=step,
        on_host=False,
    )


class HostEnvironments:
    """A Gymnasium vector environment the compiled program steps through callbacks.

    After a restart (a resumed run), the first step resets the batch and reports `done` and
    `truncated` (the episode was cut, not ended), so no transition joins an observation from before
    the restart to one after it, and none learns that the cut state is worth nothing.
    """

    def __init__(self, vector_env: Any, episode_returns: Callable[[dict, int], tuple[np.ndarray, np.ndarray]]):
        self.vector_env = vector_env
        self.num_envs = vector_env.num_envs
        self._episode_returns = episode_returns
        self._started = False

    def reset(self, seed: np.ndarray) -> np.ndarray:
        observations, _ = self.vector_env.reset(seed=int(seed))
        self._started = True
        return np.asarray(observations)

    def step(self, actions: np.ndarray, seed: np.ndarray) -> tuple[np.ndarray, ...]:
        if not self._started:
            observations = self.reset(seed)
            nothing, cut = np.zeros(self.num_envs, np.float32), np.ones(self.num_envs, bool)
            return observations, nothing, cut, cut, ~cut, nothing
        observations, rewards, terminated, truncated, infos = self.vector_env.step(np.asarray(actions))
        finished, returns = self._episode_returns(infos, self.num_envs)
        terminated, truncated = np.asarray(terminated), np.asarray(truncated)
        return (np.asarray(observations), np.asarray(rewards, np.float32), terminated | truncated,
                truncated & ~terminated, finished, returns)


def host_environment(name: str, host: HostEnvironments, num_actions: int, max_episode_steps: int) -> Environment:
    """An `Environment` whose reset and step call `host` from inside the compiled program."""
    observation = jax.ShapeDtypeStruct(host.vector_env.single_observation_space.shape, host.vector_env.single_observation_space.dtype)
    batch = host.num_envs
    observations = jax.ShapeDtypeStruct((batch, *observation.shape), observation.dtype)
    per_env = lambda dtype: jax.ShapeDtypeStruct((batch,), dtype)  # noqa: E731

    def seed_from(key: jax.Array) -> jax.Array:
        return jax.random.randint(key, (), 0, 2**31 - 1)

    def reset(key: jax.Array, num_envs: int) -> tuple[jax.Array, jax.Array]:
        if num_envs != batch:
            raise ValueError(f"{name} holds {batch} environments, asked for {num_envs}.")
        return jnp.zeros((), jnp.int32), io_callback(host.reset, observations, seed_from(key))

    def step(key: jax.Array, counter: jax.Array, actions: jax.Array) -> StepResult:
        # The counter threads one step into the next, so the callbacks run in order.
        shapes = (observations, per_env(np.float32), per_env(np.bool_), per_env(np.bool_), per_env(np.bool_),
                  per_env(np.float32))
        result = io_callback(host.step, shapes, actions.astype(jnp.int32), seed_from(key) + 0 * counter)
        return StepResult(counter + 1, *result)

    return Environment(
        name=name,
        num_actions=num_actions,
        observation_shape=tuple(observation.shape),
        observation_dtype=observation.dtype,
        max_episode_steps=max_episode_steps,
        reset=reset,
        step=step,
        on_host=True,
    )


def atari_environment(game: str, num_envs: int, atari: ml_collections.ConfigDict, seed: int = 0) -> Environment:
    """`num_envs` Atari games with the DQN wrappers, on the host."""
    from jaxai.data.atari import episode_returns, make_atari_envs

    vector_env = make_atari_envs(
        game, num_envs, seed, noop_max=atari.noop_max, episodic_life=atari.episodic_life,
        clip_rewards=atari.clip_rewards, sticky_action_prob=atari.sticky_action_prob,
    )
    host = HostEnvironments(vector_env, episode_returns)
    return host_environment(ATARI_PREFIX + game, host, int(vector_env.single_action_space.n), atari.max_episode_steps)
