"""Deep Q-learning (Mnih et al. 2013, 2015): acting, replay and learning in one compiled program.

One training step of the loop runs `task.steps_per_call` iterations, each stepping every
environment once; acting, the replay buffer and the updates are all inside it (a `lax.scan`). The
state holds `task.num_seeds` independent runs along a leading axis, each with its own online and
target parameters, optimizer, replay buffer, environments and PRNG seed (config.seed + i), and
every iteration is vmapped over them: ten CartPole runs train as one program. A seed's keys come
from its own seed alone, and the Q-networks' bias gradients are matmuls (a reduction would be
rounded differently for 10 seeds than for 1), so seed 3 of ten is, bit for bit, seed 3 trained by
itself.

Per iteration and seed: epsilon-greedy actions (epsilon linear from `epsilon_start` to
`epsilon_end` over `exploration_fraction` of the run's environment steps), one environment step,
the transition into the circular buffer, then, once `learning_starts` environment steps are
buffered, one gradient update per `train_frequency` environment steps on `batch_size` sampled
n-step transitions: Huber (or squared) TD error against `reward + discount * max_a Q_target(s', a)`,
or with `double_dqn` `Q_target(s', argmax_a Q_online(s', a))` (van Hasselt et al. 2016). Every
`target_update_every` updates the target moves to `tau * online + (1 - tau) * target` (tau=1: a
copy). Environments run in JAX (gymnax) or on the host (Atari, through callbacks): the same code.

Metrics: train episode_return (mean over seeds of each seed's last 20 whole episodes),
episode_return_std (across seeds), loss, q_value, epsilon. Eval: `eval_episodes` episodes per seed
with `eval_epsilon`, on keys of their own: return (mean over seeds), return_std (across seeds),
returns_by_seed, and seeds_at_target (seeds whose mean reaches task.target_return). Pictures: the
learning curve, every seed and the mean with a band of one standard deviation.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxai import models, optim
from jaxai.data import replay
from jaxai.data.environments import ATARI_PREFIX, default_atari_config, make_environment
from jaxai.errors import ConfigError
from jaxai.tasks.base import Batch, Metrics, PyTree, Task

RECENT_EPISODES = 20  # Episodes averaged into each seed's train episode_return.
INIT_STREAM, ACT_STREAM, EVAL_STREAM = 0, 1, 2  # Per-seed key streams.


def default_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.environment = "gymnax:CartPole-v1"  # gymnax:<name> (JAX, in the program) or atari:<Game> (host).
    config.num_seeds = 1  # Independent runs trained together; run i uses seed config.seed + i.
    config.num_envs = 1  # Environments per run, stepped together.
    config.steps_per_call = 100  # Iterations (one step of every environment) per training step of the loop.
    config.buffer_size = 10_000  # Transitions kept per run.
    config.batch_size = 128  # Transitions per gradient update.
    config.learning_starts = 10_000  # Environment steps per run before the first update.
    config.train_frequency = 10  # Environment steps per gradient update (per run).
    config.target_update_every = 50  # Gradient updates between target-network updates.
    config.tau = 1.0  # Target update: tau * online + (1 - tau) * target; 1 copies.
    config.gamma = 0.99
    config.n_step = 1  # Steps summed before bootstrapping.
    # Prioritised replay (Schaul et al. 2016, proportional): transitions drawn in proportion to
    # (|TD error| + priority_epsilon)**priority_exponent, weighted by importance sampling whose exponent
    # rises linearly from importance_exponent to 1 over the run's updates.
    config.prioritized_replay = False
    config.priority_exponent = 0.6
    config.importance_exponent = 0.4
    config.priority_epsilon = 1e-6
    config.double_dqn = False
    config.loss = "huber"  # huber | mse
    config.epsilon_start = 1.0
    config.epsilon_end = 0.05
    config.exploration_fraction = 0.5  # Fraction of the run's environment steps epsilon takes to decay.
    config.eval_episodes = 10  # Per seed, run side by side.
    config.eval_epsilon = 0.0  # Exploration while evaluating (0: greedy).
    config.target_return = 0.0  # eval counts the seeds whose mean return reaches it (0: not counted).
    config.atari = default_atari_config()
    config.record_gif = False  # Atari: play one greedy episode at the end into WORKDIR/episode.gif.
    return config


@flax.struct.dataclass
class Learner:
    params: PyTree
    target_params: PyTree
    opt_state: optax.OptState
    updates: jax.Array


@flax.struct.dataclass
class Agent:
    """One run: its seed, learner, replay buffer, environments and record of episodes."""

    seed: jax.Array
    learner: Learner
    buffer: replay.ReplayBuffer
    env_state: Any
    observation: jax.Array
    recent_returns: jax.Array  # [RECENT] ring of whole-episode returns.
    episodes: jax.Array  # Whole episodes finished.
    curve: jax.Array  # [loop steps] episode_return after each training step (the learning curve).


@flax.struct.dataclass
class DQNState:
    step: jax.Array  # Training steps of the loop taken.
    agents: Agent  # Every leaf has a leading [num_seeds] axis.


def td_target(reward: jax.Array, discount: jax.Array, next_q_target: jax.Array) -> jax.Array:
    """reward + discount * max_a Q_target(s', a)."""
    return reward + discount * jnp.max(next_q_target, -1)


def double_dqn_target(reward: jax.Array, discount: jax.Array, next_q_online: jax.Array,
                      next_q_target: jax.Array) -> jax.Array:
    """reward + discount * Q_target(s', argmax_a Q_online(s', a))."""
    best = jnp.argmax(next_q_online, -1)
    return reward + discount * jnp.take_along_axis(next_q_target, best[..., None], -1)[..., 0]


def linear_epsilon(env_steps: jax.Array, start: float, end: float, decay_steps: float) -> jax.Array:
    fraction = jnp.clip(env_steps / max(decay_steps, 1.0), 0.0, 1.0)
    return start + fraction * (end - start)


def epsilon_greedy(key: jax.Array, q_values: jax.Array, epsilon: jax.Array) -> jax.Array:
    explore_key, action_key = jax.random.split(key)
    random_actions = jax.random.randint(action_key, q_values.shape[:-1], 0, q_values.shape[-1])
    explore = jax.random.uniform(explore_key, q_values.shape[:-1]) < epsilon
    return jnp.where(explore, random_actions, jnp.argmax(q_values, -1)).astype(jnp.int32)


def make_update(apply: Callable, tx: optax.GradientTransformation, config: ml_collections.ConfigDict) -> Callable:
    """(learner, transitions) -> (learner, metrics, TD errors [B]): one gradient step, then the target's update."""
    double, huber = bool(config.double_dqn), config.loss == "huber"
    period, tau = int(config.target_update_every), float(config.tau)

    def update(learner: Learner, batch: replay.Transitions) -> tuple[Learner, Metrics, jax.Array]:
        next_q_target = apply(learner.target_params, batch.next_observation)
        if double:
            target = double_dqn_target(batch.reward, batch.discount, apply(learner.params, batch.next_observation), next_q_target)
        else:
            target = td_target(batch.reward, batch.discount, next_q_target)
        target = jax.lax.stop_gradient(target)

        def loss_fn(params):
            q = jnp.take_along_axis(apply(params, batch.observation), batch.action[:, None], -1)[:, 0]
            errors = optax.huber_loss(q, target) if huber else 0.5 * jnp.square(q - target)
            # Over the whole batch, as without cuts: a per-batch divisor would round differently for
            # seeds trained together than alone.
            return jnp.mean(errors * batch.weight), q

        (loss, q), grads = jax.value_and_grad(loss_fn, has_aux=True)(learner.params)
        td_errors = target - q
        changes, opt_state = tx.update(grads, learner.opt_state, learner.params)
        params = optax.apply_updates(learner.params, changes)
        updates = learner.updates + 1
        moved = optax.incremental_update(params, learner.target_params, tau)
        target_params = optax.periodic_update(moved, learner.target_params, updates, period)
        return Learner(params, target_params, opt_state, updates), {"loss": loss, "q_value": jnp.mean(q)}, td_errors

    return update


class Schedule:
    """How iterations, environment steps and updates relate for one run."""

    def __init__(self, config: ml_collections.ConfigDict, total_steps: int):
        task = config.task
        self.num_envs, self.steps_per_call = int(task.num_envs), int(task.steps_per_call)
        self.total_env_steps = total_steps * self.steps_per_call * self.num_envs
        frequency = int(task.train_frequency)
        if frequency >= self.num_envs:
            _require(frequency % self.num_envs == 0, f"task.train_frequency={frequency} must be a multiple of "
                     f"task.num_envs={self.num_envs} (or divide it)")
            self.iterations_per_update, self.updates_per_iteration = frequency // self.num_envs, 1
        else:
            _require(self.num_envs % frequency == 0, f"task.train_frequency={frequency} must divide "
                     f"task.num_envs={self.num_envs} (or be a multiple of it)")
            self.iterations_per_update, self.updates_per_iteration = 1, self.num_envs // frequency
        self.learning_starts = int(task.learning_starts)
        self.total_updates = max(1, (self.total_env_steps - self.learning_starts) // frequency)
        self.exploration_steps = float(task.exploration_fraction) * self.total_env_steps

    def learns_after(self, iteration: jax.Array) -> jax.Array:
        """Whether the updates after `iteration` (0-based) are due."""
        done = iteration + 1
        return (done * self.num_envs >= self.learning_starts) & (done % self.iterations_per_update == 0)


def seeds_divide_data_axes(num_seeds: int) -> bool:
    """Whether the seeds split evenly over the data-parallel axes of the mesh the state is traced under."""
    mesh = jax.sharding.get_abstract_mesh()  # The run's: the loop traces init under its mesh (train.build.mesh_context).
    return not mesh.empty and num_seeds % (mesh.shape.get("data", 1) * mesh.shape.get("fsdp", 1)) == 0


def build(config: ml_collections.ConfigDict, dataset_info: dict[str, Any], total_steps: int) -> Task:
    """The DQN task; its data comes from its environments (data.name='none')."""
    task = config.task
    _check_config(config, dataset_info)
    num_seeds, num_envs = int(task.num_seeds), int(task.num_envs)
    env = make_environment(str(task.environment), num_envs, task.atari)
    eval_env = make_environment(str(task.environment), int(task.eval_episodes), task.atari) if env.on_host else env
    if env.on_host and num_seeds != 1:
        raise ConfigError(f"task.num_seeds={num_seeds}: host environments ({env.name}) train one seed per run; "
                          "set task.num_seeds=1 and launch one run per seed.")
    if task.record_gif:
        game_name(str(task.environment))  # Refused now, not after training.
    schedule = Schedule(config, total_steps)
    _require(schedule.learning_starts >= (int(task.n_step) + 1) * num_envs,
             f"task.learning_starts={schedule.learning_starts} must cover n_step + 1 steps of every environment")
    model = models.build_model(config.model, num_actions=env.num_actions)
    apply = lambda params, observations: model.apply({"params": params}, observations)  # noqa: E731
    tx = optim.make_optimizer(config.optimizer, schedule.total_updates)
    update = make_update(apply, tx, task)
    rows = max(int(task.buffer_size) // num_envs, int(task.n_step) + 2)
    gamma, n_step, batch_size = float(task.gamma), int(task.n_step), int(task.batch_size)
    prioritized, priority_exponent = bool(task.prioritized_replay), float(task.priority_exponent)
    importance_start, priority_epsilon = float(task.importance_exponent), float(task.priority_epsilon)

    def seed_key(seed: jax.Array, stream: int) -> jax.Array:
        return jax.random.fold_in(jax.random.key(seed), stream)

    def init_agent(seed: jax.Array) -> Agent:
        params_key, env_key = jax.random.split(seed_key(seed, INIT_STREAM))
        example = jnp.zeros((1, *env.observation_shape), env.observation_dtype)
        params = model.init(params_key, example)["params"]
        env_state, observation = env.reset(env_key, num_envs)
        return Agent(
            seed=seed,
            learner=Learner(params, params, tx.init(params), jnp.zeros((), jnp.int32)),
            buffer=replay.create(rows, num_envs, env.observation_shape, env.observation_dtype, prioritized),
            env_state=env_state,
            observation=observation,
            recent_returns=jnp.zeros(RECENT_EPISODES, jnp.float32),
            episodes=jnp.zeros((), jnp.int32),
            curve=jnp.zeros(total_steps, jnp.float32),
        )

    def init(rng: jax.Array, batch: Batch) -> DQNState:
        del rng, batch  # Each run's keys come from its own seed, so a run alone equals it among others.
        seeds = int(config.seed) + jnp.arange(num_seeds, dtype=jnp.int32)
        agents = jax.vmap(init_agent)(seeds)
        if not env.on_host and seeds_divide_data_axes(num_seeds):  # Independent runs: each device takes its share.
            agents = jax.tree.map(lambda leaf: nn.LogicallyPartitioned(leaf, ("batch",) + (None,) * (leaf.ndim - 1)), agents)
        return DQNState(step=jnp.zeros((), jnp.int32), agents=agents)

    def learn(learner: Learner, buffer: replay.ReplayBuffer, key: jax.Array) -> tuple[Learner, jax.Array | None, Metrics]:
        """The due updates; returns the learner, the buffer's new priorities (None without them) and summed metrics."""
        metrics = []
        for update_key in jax.random.split(key, schedule.updates_per_iteration):
            progress = jnp.minimum(learner.updates / schedule.total_updates, 1.0)
            importance_exponent = importance_start + (1.0 - importance_start) * progress
            batch = replay.sample(buffer, update_key, batch_size, n_step, gamma, priority_exponent, importance_exponent)
            learner, step_metrics, td_errors = update(learner, batch)
            if buffer.priorities is not None:
                buffer = replay.set_priorities(buffer, batch.row, batch.env, td_errors, priority_epsilon)
            metrics.append(step_metrics)
        return learner, buffer.priorities, {name: sum(m[name] for m in metrics) for name in metrics[0]}

    def skip(learner: Learner, buffer: replay.ReplayBuffer, key: jax.Array) -> tuple[Learner, jax.Array | None, Metrics]:
        return learner, buffer.priorities, {"loss": jnp.zeros(()), "q_value": jnp.zeros(())}

    def iterate(agent: Agent, iteration: jax.Array) -> tuple[Agent, Metrics]:
        """One step of every environment of one run, then its due updates."""
        act_key, env_key, learn_key = jax.random.split(jax.random.fold_in(seed_key(agent.seed, ACT_STREAM), iteration), 3)
        epsilon = linear_epsilon(iteration * num_envs, float(task.epsilon_start), float(task.epsilon_end),
                                 schedule.exploration_steps)
        actions = epsilon_greedy(act_key, apply(agent.learner.params, agent.observation), epsilon)
        result = env.step(env_key, agent.env_state, actions)
        buffer = replay.add(agent.buffer, agent.observation, actions, result.reward, result.done, result.truncated)
        learns = schedule.learns_after(iteration)
        # Only the priorities come out of the branch: the buffer itself (2.8 GB for Atari) is only read there.
        learner, priorities, sums = jax.lax.cond(learns, learn, skip, agent.learner, buffer, learn_key)
        buffer = buffer.replace(priorities=priorities)
        recent, episodes = record_episodes(agent.recent_returns, agent.episodes, result.finished, result.returns)
        agent = agent.replace(learner=learner, buffer=buffer, env_state=result.env_state, observation=result.observation,
                              recent_returns=recent, episodes=episodes)
        updates = jnp.where(learns, schedule.updates_per_iteration, 0)
        return agent, {**sums, "updates": updates, "epsilon": epsilon}

    def train_step(state: DQNState, batch: Batch, rng: jax.Array) -> tuple[DQNState, Metrics]:
        del batch, rng  # Data comes from the environments; keys from each run's seed and the iteration.
        first = state.step * schedule.steps_per_call

        def body(agents: Agent, offset: jax.Array) -> tuple[Agent, Metrics]:
            return jax.vmap(iterate, in_axes=(0, None))(agents, first + offset)

        agents, history = jax.lax.scan(body, state.agents, jnp.arange(schedule.steps_per_call))
        returns = recent_mean(agents.recent_returns, agents.episodes)  # [seeds]
        agents = agents.replace(curve=agents.curve.at[:, state.step].set(returns))
        updates = jnp.maximum(jnp.sum(history["updates"]), 1)
        metrics = {
            "episode_return": jnp.mean(returns),
            "episode_return_std": jnp.std(returns),
            "loss": jnp.sum(history["loss"]) / updates,
            "q_value": jnp.sum(history["q_value"]) / updates,
            "epsilon": history["epsilon"][-1, 0],
        }
        return DQNState(step=state.step + 1, agents=agents), metrics

    def evaluate_agent(agent: Agent, step: jax.Array) -> jax.Array:
        """Returns of `eval_episodes` episodes side by side (the first each environment finishes)."""
        episodes = int(task.eval_episodes)
        key = jax.random.fold_in(seed_key(agent.seed, EVAL_STREAM), step)
        reset_key, key = jax.random.split(key)
        env_state, observation = eval_env.reset(reset_key, episodes)

        def running(carry):
            return (carry[5] < eval_env.max_episode_steps) & ~jnp.all(carry[3])

        def play(carry):
            env_state, observation, returns, finished, key, t = carry
            key, act_key, env_key = jax.random.split(key, 3)
            actions = epsilon_greedy(act_key, apply(agent.learner.params, observation), float(task.eval_epsilon))
            result = eval_env.step(env_key, env_state, actions)
            returns = jnp.where(finished, returns, jnp.where(result.finished, result.returns, returns))
            return result.env_state, result.observation, returns, finished | result.finished, key, t + 1

        start = (env_state, observation, jnp.zeros(episodes), jnp.zeros(episodes, bool), key, jnp.zeros((), jnp.int32))
        return jax.lax.while_loop(running, play, start)[2]

    def eval_step(state: DQNState, batch: Batch, rng: jax.Array) -> Metrics:
        del batch, rng  # Evaluation keys come from each run's seed and the step.
        if env.on_host:  # JAX cannot vmap a loop that calls the host while it runs; host runs have one seed.
            return {"returns": evaluate_agent(jax.tree.map(lambda leaf: leaf[0], state.agents), state.step)[None]}
        return {"returns": jax.vmap(evaluate_agent, in_axes=(0, None))(state.agents, state.step)}

    def summarize(outputs: dict[str, np.ndarray]) -> dict[str, Any]:
        per_seed = np.asarray(outputs["returns"], np.float64).mean(-1)
        metrics = {"return": float(per_seed.mean()), "return_std": float(per_seed.std()),
                   "return_min": float(per_seed.min()), "returns_by_seed": per_seed.round(2).tolist()}
        if task.target_return:
            metrics["seeds_at_target"] = int(np.sum(per_seed >= float(task.target_return)))
        return metrics

    def visualize(state: DQNState, outputs: dict[str, np.ndarray], rng: jax.Array) -> dict[str, np.ndarray]:
        curves = np.asarray(jax.device_get(state.agents.curve))[:, : int(state.step)]
        return {"learning_curve": learning_curve_figure(curves, schedule.steps_per_call * num_envs, env.name)}

    def export(state: DQNState, workdir: str) -> dict[str, str]:
        if not task.record_gif:
            return {}
        from jaxai.data.atari import record_episode_gif

        params = jax.tree.map(lambda leaf: leaf[0], state.agents.learner.params)
        greedy = jax.jit(lambda observations: jnp.argmax(apply(params, observations), -1))
        settings = {key: task.atari[key] for key in ("noop_max", "sticky_action_prob", "episodic_life", "clip_rewards")}
        path = record_episode_gif(game_name(task.environment), lambda observations: np.asarray(greedy(observations)),
                                  os.path.join(workdir, "episode.gif"), seed=int(config.seed), settings=settings)
        return {"episode_gif": path}  # One game of the final policy (the first seed's).

    return Task(
        init=init,
        train_step=train_step,
        eval_step=eval_step,
        summarize=summarize,
        reductions={"returns": "first"},
        headline="episode_return",
        units_per_step={"env_steps": num_seeds * num_envs * schedule.steps_per_call},
        networks=lambda state: {"q_network": state.agents.learner.params},
        visualize=visualize,
        export=export,
    )


def game_name(environment: str) -> str:
    """'atari:Breakout' -> 'Breakout'; record_gif needs an Atari environment."""
    if not environment.startswith(ATARI_PREFIX):
        raise ConfigError(f"task.record_gif=True records Atari games; {environment!r} is not one (set record_gif=False).")
    return environment[len(ATARI_PREFIX):]


def record_episodes(recent: jax.Array, episodes: jax.Array, finished: jax.Array, returns: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The ring of recent whole-episode returns with this step's finished episodes written in."""
    order = episodes + jnp.cumsum(finished) - 1
    slots = jnp.where(finished, order % recent.shape[0], recent.shape[0])  # Unfinished: out of range, dropped.
    return recent.at[slots].set(returns, mode="drop"), episodes + jnp.sum(finished)


def recent_mean(recent: jax.Array, episodes: jax.Array) -> jax.Array:
    """Mean of the recorded returns (of every seed, along the last axis); 0 before any episode ends."""
    count = jnp.minimum(episodes, recent.shape[-1])
    filled = jnp.arange(recent.shape[-1]) < count[..., None]
    return jnp.sum(jnp.where(filled, recent, 0.0), -1) / jnp.maximum(count, 1)


def learning_curve_figure(curves: np.ndarray, env_steps_per_point: int, title: str) -> np.ndarray:
    """Each seed's curve (thin), their mean and one standard deviation around it -> uint8 [H, W, 3]."""
    from matplotlib.figure import Figure

    from jaxai.images import figure_to_array

    figure = Figure(figsize=(6, 4), dpi=80)
    axes = figure.add_subplot(1, 1, 1)
    steps = (np.arange(curves.shape[1]) + 1) * env_steps_per_point
    for curve in curves:
        axes.plot(steps, curve, linewidth=0.6, alpha=0.5)
    mean, std = curves.mean(0), curves.std(0)
    axes.plot(steps, mean, color="black", linewidth=1.8, label=f"mean of {len(curves)} seeds")
    axes.fill_between(steps, mean - std, mean + std, color="grey", alpha=0.3, label="± 1 std")
    axes.set_xlabel("environment steps per seed")
    axes.set_ylabel(f"return (last {RECENT_EPISODES} episodes)")
    axes.set_title(title)
    axes.legend(loc="upper left")
    figure.tight_layout()
    return figure_to_array(figure)


def _check_config(config: ml_collections.ConfigDict, dataset_info: dict[str, Any]) -> None:
    task = config.task
    if not dataset_info.get("stateful"):
        raise ConfigError(f"task 'dqn' makes its own data from environments; set data.name='none' (got {config.data.name!r}).")
    _require(task.loss in ("huber", "mse"), f"task.loss={task.loss!r} must be 'huber' or 'mse'")
    for key in ("num_seeds", "num_envs", "steps_per_call", "batch_size", "n_step", "target_update_every",
                "train_frequency", "eval_episodes"):
        _require(int(task[key]) >= 1, f"task.{key}={task[key]} must be >= 1")
    _require(0.0 < task.tau <= 1.0, f"task.tau={task.tau} must be in (0, 1]")
    _require(int(task.buffer_size) >= int(task.batch_size), f"task.buffer_size={task.buffer_size} must hold a batch "
             f"(task.batch_size={task.batch_size})")
    if task.prioritized_replay:
        _require(task.priority_exponent >= 0.0, f"task.priority_exponent={task.priority_exponent} must be >= 0 (0: uniform)")
        _require(0.0 <= task.importance_exponent <= 1.0,
                 f"task.importance_exponent={task.importance_exponent} must be in [0, 1] (it rises to 1 over the run)")
        _require(task.priority_epsilon > 0.0, f"task.priority_epsilon={task.priority_epsilon} must be > 0 "
                 "(a transition with zero error would never be drawn again)")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message + ".")
