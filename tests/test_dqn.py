"""DQN: TD / Double-DQN / n-step targets by hand, the circular replay buffer, the target network's
schedule, the jitted and host drivers agreeing, seeds vmapped equal to seeds alone, exact resume,
one-line config errors, and a smoke run's eval metrics and learning curve."""

import os
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

from jaxai import sharding
from jaxai.config import base_config, load_config
from jaxai.data import replay
from jaxai.data.environments import Environment, HostEnvironments, StepResult, host_environment, make_environment
from jaxai.errors import ConfigError
from jaxai.models import q_networks
from jaxai.models.q_networks import QMLP
from jaxai.tasks import dqn
from jaxai.train.build import build_run, mesh_context, restore_latest
from jaxai.train.loop import train
from run_helpers import interrupted_copy, read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(ROOT, "experiments", "cartpole_dqn.py:smoke")
STRIP = ("_s", "_ms", "time")  # Timing keys of metrics records: the only ones allowed to differ between runs.


def smoke_config(*overrides: str):
    """CartPole smoke (2 seeds x 2 environments, 4 loop steps of 20 iterations) on one device."""
    return load_config(SMOKE, ["train.progress_bar=False", "mesh.num_devices=1", *overrides])


def assert_trees_equal(a, b):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b) > 0
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def strip(records):
    return [{k: v for k, v in r.items() if not k.endswith(STRIP)} for r in records]


def run_steps(config, steps: int):
    """The task's initial state and `steps` jitted train steps, as the loop runs them (no workdir)."""
    run = build_run(config)
    with mesh_context(run.mesh):
        state = run.init(jax.random.key(0), run.example_batch)
        for _ in range(steps):
            state, _ = run.train_step(state, run.example_batch)
    return jax.device_get(state)


# The smoke run shared by the checkpoint, resume and end-to-end tests: 4 steps, checkpoints at 2 and 4.
WHOLE_OVERRIDES = ("train.log_every=1", "train.checkpoint_every=2", "train.max_to_keep=5")


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory):
    config = smoke_config(*WHOLE_OVERRIDES)
    workdir = str(tmp_path_factory.mktemp("dqn") / "whole")
    metrics = train(config, workdir)
    return SimpleNamespace(config=config, workdir=workdir, metrics=metrics)


# ---------------------------------------------------------------- 1. Targets by hand.

def test_td_double_dqn_and_n_step_targets_equal_hand_computed_values():
    assert float(dqn.td_target(jnp.float32(1.0), jnp.float32(0.9), jnp.array([[2.0, 5.0]]))[0]) == pytest.approx(1 + 0.9 * 5)
    # Double DQN: the online network picks the action, the target network values it.
    online = jnp.array([[1.0, 3.0, 2.0], [7.0, 0.0, 1.0]])  # argmax 1, 0
    target = jnp.array([[10.0, 4.0, 20.0], [-1.0, 8.0, 2.0]])  # argmax 2, 1: different
    reward, discount = jnp.array([1.0, 0.5]), jnp.array([0.9, 0.5])
    np.testing.assert_allclose(dqn.double_dqn_target(reward, discount, online, target), [1 + 0.9 * 4, 0.5 + 0.5 * -1.0])
    np.testing.assert_allclose(dqn.td_target(reward, discount, target), [1 + 0.9 * 20, 0.5 + 0.5 * 8])  # Max of the target.

    rewards = jnp.array([1.0, 2.0, 3.0])
    cases = {  # dones -> (discounted sum, bootstrap discount)
        (0, 0, 0): (1 + 0.5 * 2 + 0.25 * 3, 0.125),
        (0, 0, 1): (1 + 0.5 * 2 + 0.25 * 3, 0.0),  # The last step ends the episode: its reward counts, no bootstrap.
        (0, 1, 0): (1 + 0.5 * 2, 0.0),
        (1, 0, 0): (1.0, 0.0),
        (1, 1, 0): (1.0, 0.0),
    }
    for dones, (total, discount) in cases.items():
        got_total, got_discount = replay.n_step_return(rewards, jnp.array(dones, bool), 0.5)
        assert (float(got_total), float(got_discount)) == pytest.approx((total, discount)), dones
    # Batched along leading axes, one row per case.
    totals, discounts = replay.n_step_return(jnp.tile(rewards, (len(cases), 1)), jnp.array(list(cases), bool), 0.5)
    np.testing.assert_allclose(totals, [v[0] for v in cases.values()])
    np.testing.assert_allclose(discounts, [v[1] for v in cases.values()])


def test_a_window_whose_episode_the_time_limit_cut_is_not_learned():
    cases = {  # (dones, truncations) -> cut
        ((0, 0, 0), (0, 0, 0)): False,
        ((0, 0, 1), (0, 0, 0)): False,  # Terminated: a target of 0 beyond it is right.
        ((0, 1, 0), (0, 1, 0)): True,  # Cut by the time limit: the state after it still had a value.
        ((0, 0, 1), (0, 0, 1)): True,
        ((1, 0, 1), (0, 0, 1)): False,  # The first episode terminated; the cut belongs to the next one.
    }
    dones, truncations = (jnp.array([case[i] for case in cases], bool) for i in (0, 1))
    np.testing.assert_array_equal(replay.cut_by_time_limit(dones, truncations), list(cases.values()))
    # Sampled windows carry it as a weight: steps 2..5, 3 cut at step 3 by the time limit.
    buffer = replay.create(8, 1, (1,), jnp.float32)
    for step in range(6):
        buffer = ADD(buffer, jnp.full((1, 1), 10.0 * step), jnp.zeros(1, jnp.int32), jnp.ones(1), jnp.array([step == 3]),
                     jnp.array([step == 3]))
    batch = SAMPLE(buffer, jax.random.key(0), 256, 2, 0.9)
    start = np.asarray(batch.observation[:, 0]) // 10
    np.testing.assert_array_equal(batch.weight, np.where((start == 2) | (start == 3), 0.0, 1.0))


def test_cartpole_reports_its_time_limit_as_a_cut_and_a_fall_as_an_end(monkeypatch):
    import gymnax

    make = gymnax.make
    monkeypatch.setattr(gymnax, "make", lambda name: (make(name)[0], make(name)[1].replace(max_steps_in_episode=5)))
    short = make_environment("gymnax:CartPole-v1", 4)
    state, _ = short.reset(jax.random.key(0), 4)
    for t in range(1, 6):  # Pushing left and right in turn keeps the pole up for 5 steps.
        result = short.step(jax.random.key(t), state, jnp.full(4, t % 2))
        state = result.env_state
        assert result.done.tolist() == result.truncated.tolist() == [t == 5] * 4, t
    monkeypatch.setattr(gymnax, "make", make)
    full = make_environment("gymnax:CartPole-v1", 4)
    state, _ = full.reset(jax.random.key(0), 4)
    ended = np.zeros(4, bool)
    for t in range(60):  # Always pushing left drops the pole within a few dozen steps.
        result = full.step(jax.random.key(t), state, jnp.zeros(4, jnp.int32))
        state, ended = result.env_state, ended | np.asarray(result.done)
        assert not result.truncated.any()
    assert ended.all()


def test_layer_norm_makes_the_q_network_blind_to_the_scale_of_its_layers():
    observations = jax.random.normal(jax.random.key(0), (5, 4))
    for layer_norm, blind in (("all", True), ("none", False)):
        model = QMLP(num_actions=2, features=(16, 8), layer_norm=layer_norm)
        params = model.init(jax.random.key(1), observations)["params"]
        scaled = {**params, "Dense_0": jax.tree.map(lambda p: 3.0 * p, params["Dense_0"])}
        same = np.allclose(model.apply({"params": params}, observations), model.apply({"params": scaled}, observations),
                           rtol=1e-4, atol=1e-5)
        assert same == blind, layer_norm
    # Its hand-written gradient is layer norm's.
    x, weights = jax.random.normal(jax.random.key(2), (6, 12)), jax.random.normal(jax.random.key(3), (6, 12))

    def reference(x):
        centred = x - x.mean(-1, keepdims=True)
        return centred / jnp.sqrt(jnp.mean(centred**2, -1, keepdims=True) + 1e-6)

    np.testing.assert_allclose(q_networks.normalize(x), reference(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.grad(lambda x: jnp.sum(weights * jnp.tanh(q_networks.normalize(x))))(x),
                               jax.grad(lambda x: jnp.sum(weights * jnp.tanh(reference(x))))(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(ConfigError, match=r"model.layer_norm='batch'; choose one of \('none', 'last', 'all'\)"):
        QMLP(layer_norm="batch").init(jax.random.key(1), observations)


@pytest.mark.parametrize("size, stride, image", [(8, 4, 84), (4, 2, 20), (3, 1, 9)])  # The Nature network's three.
def test_window_dense_is_a_valid_strided_convolution(size, stride, image):
    images = jax.random.uniform(jax.random.key(0), (2, image, image, 3))
    layer = q_networks.WindowDense(5, size, stride)
    params = layer.init(jax.random.key(1), images)["params"]
    kernel = params["Dense_0"]["kernel"]  # [(block row, block column, row in tile, column in tile, channel), 5]
    blocks = size // stride
    conv_kernel = kernel.reshape(blocks, blocks, stride, stride, 3, 5).transpose(0, 2, 1, 3, 4, 5).reshape(size, size, 3, 5)
    expected = jax.lax.conv_general_dilated(images, conv_kernel, (stride, stride), "VALID",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC")) + params["Dense_0"]["bias"]
    np.testing.assert_allclose(layer.apply({"params": params}, images), expected, rtol=1e-5, atol=1e-5)


def test_the_nature_network_cuts_its_windows_from_the_bytes_and_gets_the_same_numbers():
    frames = jax.random.randint(jax.random.key(0), (2, 84, 84, 4), 0, 256).astype(jnp.uint8)
    from_bytes = q_networks.WindowDense(32, 8, 4, divide_inputs_by=255.0)
    params = from_bytes.init(jax.random.key(1), frames)
    from_floats = q_networks.WindowDense(32, 8, 4).apply(params, frames.astype(jnp.float32) / 255.0)
    np.testing.assert_array_equal(from_bytes.apply(params, frames), from_floats)


# ---------------------------------------------------------------- 2. The replay buffer.

ADD = jax.jit(replay.add)
SAMPLE = jax.jit(replay.sample, static_argnums=(2, 3, 4))


def filled_buffer(rows: int, steps: int, num_envs: int = 1, dones: tuple[int, ...] = (),
                  prioritized: bool = False) -> replay.ReplayBuffer:
    """Step s writes observation 10*s + env, action s % 3, reward s (+ 0.1 env), done where s in `dones`."""
    buffer = replay.create(rows, num_envs, (1,), jnp.float32, prioritized)
    envs = jnp.arange(num_envs)
    for s in range(steps):
        buffer = ADD(buffer, (10.0 * s + envs)[:, None], jnp.full(num_envs, s % 3), s + 0.1 * envs,
                            jnp.full(num_envs, s in dones), jnp.zeros(num_envs, bool))
    return buffer


def test_buffer_wraps_around_its_oldest_rows():
    buffer = filled_buffer(rows=4, steps=6)
    np.testing.assert_array_equal(buffer.observations[:, 0, 0], [40.0, 50.0, 20.0, 30.0])  # Steps 4, 5, 2, 3.
    np.testing.assert_array_equal(buffer.rewards[:, 0], [4.0, 5.0, 2.0, 3.0])
    np.testing.assert_array_equal(buffer.actions[:, 0], [1, 2, 2, 0])
    assert int(buffer.position) == 2 and int(buffer.size) == 4 and buffer.rows == 4
    partly = filled_buffer(rows=4, steps=3)
    assert int(partly.position) == 3 and int(partly.size) == 3


def test_sampling_draws_only_filled_rows_whose_successor_exists():
    buffer = filled_buffer(rows=10, steps=3, num_envs=2)
    batch = SAMPLE(buffer, jax.random.key(0), 512, 1, 0.9)
    observation, next_observation = np.asarray(batch.observation[:, 0]), np.asarray(batch.next_observation[:, 0])
    # Rows 0 and 1 only (row 2 has no next row yet), both environments, each drawn.
    assert set(observation.tolist()) == {0.0, 1.0, 10.0, 11.0}
    np.testing.assert_array_equal(next_observation, observation + 10)  # The following row, same environment.
    step, env = observation // 10, observation % 10
    np.testing.assert_allclose(batch.reward, step + 0.1 * env, rtol=1e-6)
    np.testing.assert_array_equal(batch.action, step % 3)
    np.testing.assert_allclose(batch.discount, 0.9)


def test_n_step_sampling_across_the_wrap_point_uses_the_right_successors():
    # 5 rows, 7 steps: rows hold steps 5, 6, 2, 3, 4 (position 2). Step 5 ends an episode.
    buffer = filled_buffer(rows=5, steps=7, dones=(5,))
    np.testing.assert_array_equal(buffer.observations[:, 0, 0], [50.0, 60.0, 20.0, 30.0, 40.0])
    batch = SAMPLE(buffer, jax.random.key(1), 256, 2, 0.5)
    start = np.asarray(batch.observation[:, 0]) // 10
    assert set(start.tolist()) == {2.0, 3.0, 4.0}  # Steps 5 and 6 lack two successors.
    np.testing.assert_array_equal(batch.next_observation[:, 0], 10 * (start + 2))  # Across the wrap for 3 and 4.
    np.testing.assert_allclose(batch.reward, start + 0.5 * (start + 1))
    np.testing.assert_allclose(batch.discount, np.where(start == 4, 0.0, 0.25))  # Window 4, 5 holds the done.


def test_sampling_is_a_function_of_the_key():
    buffer = filled_buffer(rows=16, steps=20, num_envs=3)
    first = SAMPLE(buffer, jax.random.key(7), 32, 3, 0.9)
    again = SAMPLE(buffer, jax.random.key(7), 32, 3, 0.9)
    other = SAMPLE(buffer, jax.random.key(8), 32, 3, 0.9)
    assert_trees_equal(first, again)
    assert not np.array_equal(first.observation, other.observation)


def test_prioritised_replay_gives_new_rows_the_largest_priority_and_learns_errors_back():
    buffer = filled_buffer(rows=6, steps=3, num_envs=2, prioritized=True)
    np.testing.assert_array_equal(buffer.priorities, [[1, 1], [1, 1], [1, 1], [0, 0], [0, 0], [0, 0]])
    assert filled_buffer(rows=6, steps=3).priorities is None  # Uniform replay keeps none.
    buffer = replay.set_priorities(buffer, jnp.array([0, 1]), jnp.array([1, 0]), jnp.array([-3.0, 0.5]), 0.01)
    np.testing.assert_allclose(buffer.priorities[:2], [[1.0, 3.01], [0.51, 1.0]])
    buffer = ADD(buffer, jnp.zeros((2, 1)), jnp.zeros(2, jnp.int32), jnp.zeros(2), jnp.zeros(2, bool), jnp.zeros(2, bool))
    np.testing.assert_allclose(buffer.priorities[3], [3.01, 3.01])  # The largest so far.


PRIORITISED_SAMPLE = jax.jit(replay.sample, static_argnums=(2, 3, 4, 5))


def test_prioritised_sampling_follows_the_priorities_and_weights_by_importance():
    # Rows 0-3 may be drawn (row 4 has no successor yet, whatever its priority).
    buffer = filled_buffer(rows=8, steps=5, prioritized=True)
    buffer = buffer.replace(priorities=jnp.array([1.0, 2.0, 3.0, 4.0, 100.0, 0, 0, 0])[:, None])
    for alpha, expected in ((1.0, [0.1, 0.2, 0.3, 0.4]), (0.5, np.sqrt([1, 2, 3, 4]) / np.sqrt([1, 2, 3, 4]).sum())):
        batch = PRIORITISED_SAMPLE(buffer, jax.random.key(3), 20_000, 1, 0.9, alpha, 1.0)
        rows = np.asarray(batch.row)
        assert set(rows.tolist()) == {0, 1, 2, 3}
        np.testing.assert_array_equal(batch.observation[:, 0], 10.0 * rows)  # The drawn rows' own transitions.
        np.testing.assert_allclose(np.bincount(rows, minlength=4) / rows.size, expected, atol=0.01)
        # beta = 1: weight (4 * P)**-1 over the largest, the least likely row's.
        np.testing.assert_allclose(batch.weight, np.asarray(expected)[0] / np.asarray(expected)[rows], rtol=1e-5)
    half = PRIORITISED_SAMPLE(buffer, jax.random.key(3), 2_000, 1, 0.9, 1.0, 0.5)
    np.testing.assert_allclose(half.weight, np.sqrt(0.1 / np.array([0.1, 0.2, 0.3, 0.4])[np.asarray(half.row)]), rtol=1e-5)
    same = buffer.replace(priorities=jnp.where(jnp.arange(8) < 5, 2.0, 0.0)[:, None])
    np.testing.assert_array_equal(PRIORITISED_SAMPLE(same, jax.random.key(4), 64, 1, 0.9, 0.6, 0.4).weight, 1.0)


def test_a_prioritised_run_learns_its_priorities_and_each_seed_matches_it_alone():
    together = run_steps(smoke_config("task.num_seeds=3", "seed=0", "task.prioritized_replay=True"), 2).agents
    alone = run_steps(smoke_config("task.num_seeds=1", "seed=2", "task.prioritized_replay=True"), 2).agents
    priorities = np.asarray(together.buffer.priorities)
    assert priorities.shape == (3, 100, 2) and np.all(priorities[:, :40] > 0) and np.all(priorities[:, 40:] == 0)
    assert len(np.unique(priorities[:, :40])) > 10  # TD errors written back, not the new rows' shared maximum.
    third = jax.tree.map(lambda leaf: leaf[2:3], together)
    assert_trees_equal((third.learner, third.buffer), (alone.learner, alone.buffer))
    uniform = run_steps(smoke_config("task.num_seeds=1", "seed=2"), 2).agents
    assert not np.array_equal(uniform.learner.params["Dense_0"]["kernel"], alone.learner.params["Dense_0"]["kernel"])


def test_the_buffer_is_checkpointed_and_restored_with_the_state(whole_run):
    run = build_run(whole_run.config)
    restored, step = restore_latest(run, whole_run.workdir)
    restored = jax.device_get(restored)
    assert step == 4 and int(restored.step) == 4
    buffer = restored.agents.buffer
    # 2 seeds x (4 loop steps x 20 iterations) of 2 environments, in 200 // 2 = 100 rows.
    assert buffer.observations.shape == (2, 100, 2, 4)
    np.testing.assert_array_equal(buffer.size, [80, 80])
    np.testing.assert_array_equal(buffer.position, [80, 80])
    assert np.all(np.any(buffer.observations[:, :80] != 0, axis=(2, 3))) and np.all(buffer.observations[:, 80:] == 0)
    assert buffer.dones.any() and buffer.rewards[:, :80].all()  # CartPole: reward 1 every step; episodes ended.
    in_memory = run_steps(whole_run.config, 4)  # The same run, never written to disk.
    assert_trees_equal(buffer, in_memory.agents.buffer)
    assert_trees_equal(restored, in_memory)


# ---------------------------------------------------------------- 3. The target network's schedule.

def test_target_parameters_move_only_at_the_configured_interval():
    model = QMLP(num_actions=2, features=(8,))
    apply = lambda params, observations: model.apply({"params": params}, observations)  # noqa: E731
    params = model.init(jax.random.key(0), jnp.zeros((1, 3)))["params"]
    tx = optax.sgd(0.1)
    keys = jax.random.split(jax.random.key(1), 4)
    batch = replay.Transitions(
        observation=jax.random.normal(keys[0], (16, 3)), action=jax.random.randint(keys[1], (16,), 0, 2),
        reward=jax.random.normal(keys[2], (16,)), discount=jnp.full((16,), 0.9),
        next_observation=jax.random.normal(keys[3], (16, 3)), weight=jnp.ones(16),
    )

    def config(every, tau):
        task = dqn.default_config()
        task.update(target_update_every=every, tau=tau, loss="mse", double_dqn=False)
        return task

    update = jax.jit(dqn.make_update(apply, tx, config(3, 1.0)))
    learner = dqn.Learner(params, params, tx.init(params), jnp.zeros((), jnp.int32))
    # The loss of the first update, by hand: 0.5 * mean (Q(s, a) - r - d * max_a Q_target(s', a))^2.
    q = jnp.take_along_axis(apply(params, batch.observation), batch.action[:, None], -1)[:, 0]
    expected_loss = 0.5 * jnp.mean(jnp.square(q - (batch.reward + 0.9 * jnp.max(apply(params, batch.next_observation), -1))))
    history = []
    for _ in range(5):
        previous = learner.params
        learner, metrics, _ = update(learner, batch)
        assert not np.array_equal(learner.params["Dense_0"]["kernel"], previous["Dense_0"]["kernel"])  # It learns.
        history.append((learner, metrics))
    assert float(history[0][1]["loss"]) == pytest.approx(float(expected_loss), rel=1e-5)
    assert [int(state.updates) for state, _ in history] == [1, 2, 3, 4, 5]
    assert_trees_equal(history[0][0].target_params, params)
    assert_trees_equal(history[1][0].target_params, params)
    assert_trees_equal(history[2][0].target_params, history[2][0].params)  # Copied at update 3 ...
    assert_trees_equal(history[4][0].target_params, history[2][0].params)  # ... and held through 4 and 5.
    assert not np.array_equal(history[4][0].params["Dense_0"]["kernel"], history[2][0].params["Dense_0"]["kernel"])

    # Transitions of weight 0 (cut by a time limit) move nothing, whatever their targets.
    fresh = dqn.Learner(params, params, tx.init(params), jnp.zeros((), jnp.int32))
    half = batch._replace(weight=(jnp.arange(16) < 8).astype(jnp.float32))
    garbled = half._replace(reward=jnp.where(half.weight > 0, half.reward, 1e6))
    kept = batch._replace(**{name: value[:8] for name, value in batch._asdict().items() if value is not None})
    (from_half, half_metrics, _), (from_garbled, garbled_metrics, _) = update(fresh, half), update(fresh, garbled)
    assert_trees_equal(from_half.params, from_garbled.params)
    assert float(half_metrics["loss"]) == float(garbled_metrics["loss"]) == pytest.approx(
        float(update(fresh, kept)[1]["loss"]) / 2, rel=1e-5)  # Summed over the kept 8, divided by the batch's 16.

    soft = jax.jit(dqn.make_update(apply, tx, config(1, 0.5)))
    learner = dqn.Learner(params, params, tx.init(params), jnp.zeros((), jnp.int32))
    for _ in range(2):
        old_target = learner.target_params
        learner, _, _ = soft(learner, batch)
        expected = jax.tree.map(lambda online, old: 0.5 * online + 0.5 * old, learner.params, old_target)
        for got, want in zip(jax.tree.leaves(learner.target_params), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
        assert not np.allclose(learner.target_params["Dense_0"]["kernel"], learner.params["Dense_0"]["kernel"])


# ---------------------------------------------------------------- 4. Jitted and host drivers.

GOAL, MAX_STEPS = 3, 8
CHAIN_OBSERVATIONS = np.stack([np.arange(GOAL + 1) / 10.0, np.ones(GOAL + 1)], -1).astype(np.float32)  # [position/10, 1]


def chain_step(xp, table, position, t, running, actions):
    """A 1-D chain: action 1 moves right, 0 left (floor 0); reward 1 on reaching GOAL; an episode ends
    there (terminated) or after MAX_STEPS steps (truncated) and the environment resets to 0 on the same step."""
    moved = xp.where(actions == 1, position + 1, xp.maximum(position - 1, 0))
    t = t + 1
    reward = (moved == GOAL).astype(np.float32)
    terminated = moved == GOAL
    truncated = (t >= MAX_STEPS) & ~terminated
    done = terminated | truncated
    running = running + reward
    returns = xp.where(done, running, xp.zeros_like(running))
    position = xp.where(done, xp.zeros_like(moved), moved)
    t, running = xp.where(done, xp.zeros_like(t), t), xp.where(done, xp.zeros_like(running), running)
    return position, t, running, table[position], reward, terminated, truncated, returns


def chain_jax_environment() -> Environment:
    table = jnp.asarray(CHAIN_OBSERVATIONS)

    def reset(key, num_envs):
        zeros = jnp.zeros(num_envs, jnp.int32)
        return (zeros, zeros, jnp.zeros(num_envs, jnp.float32)), table[zeros]

    def step(key, state, actions):
        position, t, running, observation, reward, terminated, truncated, returns = chain_step(jnp, table, *state, actions)
        done = terminated | truncated
        return StepResult((position, t, running), observation, reward, done, truncated, done, returns)

    return Environment(name="chain", num_actions=2, observation_shape=(2,), observation_dtype=np.dtype(np.float32),
                       max_episode_steps=MAX_STEPS, reset=reset, step=step, on_host=False)


class ChainVectorEnv:
    """The same chain in numpy, as a Gymnasium-style vector environment (same-step autoreset)."""

    def __init__(self, num_envs: int):
        self.num_envs = num_envs
        self.single_observation_space = SimpleNamespace(shape=(2,), dtype=np.dtype(np.float32))
        self.reset()

    def reset(self, seed=None):
        self.position, self.t = np.zeros(self.num_envs, np.int32), np.zeros(self.num_envs, np.int32)
        self.running = np.zeros(self.num_envs, np.float32)
        return CHAIN_OBSERVATIONS[self.position], {}

    def step(self, actions):
        self.position, self.t, self.running, observation, reward, terminated, truncated, returns = chain_step(
            np, CHAIN_OBSERVATIONS, self.position, self.t, self.running, np.asarray(actions))
        return observation, reward, terminated, truncated, {"finished": terminated | truncated, "returns": returns}


def chain_host_environment(num_envs: int) -> Environment:
    host = HostEnvironments(ChainVectorEnv(num_envs), lambda infos, n: (infos["finished"], infos["returns"].astype(np.float32)))
    return host_environment("chain-host", host, num_actions=2, max_episode_steps=MAX_STEPS)


def chain_config(*overrides: str):
    config = base_config(task="dqn", model="q_mlp")
    config.data.name = "none"
    config.mesh.num_devices = 1
    config.model.features = (16,)
    config.task.update(environment="chain", num_seeds=1, num_envs=2, steps_per_call=10, buffer_size=40, batch_size=8,
                       learning_starts=8, train_frequency=2, target_update_every=2, n_step=2, double_dqn=True,
                       epsilon_start=1.0, epsilon_end=0.1, exploration_fraction=0.5, eval_episodes=2)
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 1e-2
    for override in overrides:
        key, value = override.split("=")
        section, name = key.split(".")
        config[section][name] = type(config[section][name])(value)
    return config


@pytest.fixture(scope="module")
def drivers():
    """The chain trained 3 loop steps (30 iterations) by the jitted driver and by the host driver, and the initial state."""
    config, steps = chain_config(), 3
    config.seed = 2  # A seed whose 30 iterations end episodes both ways: at the goal and by the time limit.
    finals = {}
    for kind, make in (("jax", lambda num_envs: chain_jax_environment()), ("host", chain_host_environment)):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(dqn, "make_environment", lambda name, num_envs, atari=None, make=make: make(num_envs))
            task = dqn.build(config, {"stateful": True}, steps)
            state = sharding.strip_axis_names(jax.jit(task.init)(jax.random.key(0), {}))
            finals["initial"] = jax.device_get(state)
            train_step = jax.jit(task.train_step)
            for _ in range(steps):
                state, _ = train_step(state, {}, jax.random.key(0))
            finals[kind] = jax.device_get(state).agents
    return SimpleNamespace(**finals)


def test_jitted_and_host_drivers_see_the_same_transitions_and_make_the_same_updates(drivers):
    jitted, host = drivers.jax, drivers.host
    # Iterations 4..30 of 30 learn (learning_starts=8 over 2 environments), one update each.
    assert int(jitted.learner.updates[0]) == 27 == int(host.learner.updates[0])
    assert int(jitted.episodes[0]) > 0 and np.any(jitted.recent_returns > 0)  # Episodes ended, some at the goal.
    assert_trees_equal(host.buffer, jitted.buffer)  # The same actions, rewards, dones and observations throughout.
    assert jitted.buffer.truncations.any() and (jitted.buffer.dones & ~jitted.buffer.truncations).any()  # Both ends.
    assert_trees_equal((host.observation, host.recent_returns, host.episodes, host.curve),
                       (jitted.observation, jitted.recent_returns, jitted.episodes, jitted.curve))
    assert_trees_equal(host.learner.opt_state[0].count, jitted.learner.opt_state[0].count)
    for got, want in zip(jax.tree.leaves((host.learner.params, host.learner.target_params)),
                         jax.tree.leaves((jitted.learner.params, jitted.learner.target_params)), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # The learner moved away from its initial parameters, and the target followed.
    initial = drivers.initial.agents.learner.params["Dense_0"]["kernel"]
    assert not np.array_equal(initial, host.learner.params["Dense_0"]["kernel"])
    assert not np.array_equal(initial, host.learner.target_params["Dense_0"]["kernel"])


# ---------------------------------------------------------------- 5. Seeds together equal seeds alone.

@pytest.fixture(scope="module")
def seed_runs():
    """Seeds 0, 1, 2 trained together and seed 2 trained alone, 2 loop steps each (40 iterations, 21 updates)."""
    together = run_steps(smoke_config("task.num_seeds=3", "seed=0"), 2)
    alone = run_steps(smoke_config("task.num_seeds=1", "seed=2"), 2)
    return SimpleNamespace(third=jax.tree.map(lambda leaf: leaf[2:3], together.agents), alone=alone.agents,
                           together=together.agents)


def test_a_seed_among_vmapped_seeds_sees_what_it_sees_alone(seed_runs):
    third, alone = seed_runs.third, seed_runs.alone
    assert np.asarray(seed_runs.together.seed).tolist() == [0, 1, 2] and alone.seed.tolist() == [2]
    assert alone.learner.updates.tolist() == [21] == third.learner.updates.tolist()
    # Its own environments, actions, buffer and learning curve, bit for bit.
    assert_trees_equal((third.buffer, third.env_state, third.observation), (alone.buffer, alone.env_state, alone.observation))
    assert_trees_equal((third.curve, third.recent_returns, third.episodes), (alone.curve, alone.recent_returns, alone.episodes))
    assert_trees_equal(third.learner, alone.learner)  # Parameters, target and optimizer state, bit for bit.
    # The other seeds are other runs.
    assert not np.array_equal(seed_runs.together.buffer.observations[0], seed_runs.together.buffer.observations[2])


# ---------------------------------------------------------------- 6. Exact resume.

def test_resume_is_exact(whole_run, tmp_path):
    """4 steps uninterrupted == 2 steps, stop, resume to 4: parameters, buffer, environments, curve, metrics."""
    resumed = str(tmp_path / "resumed")
    interrupted_copy(whole_run.workdir, resumed, checkpoint_step=2)
    metrics = train(whole_run.config, resumed)
    events = [record for record in read_metrics(resumed, "run") if record.get("event") == "resume"]
    assert events and events[0]["step"] == 2
    whole_train, resumed_train = strip(read_metrics(whole_run.workdir, "train")), strip(read_metrics(resumed, "train"))
    assert [r["step"] for r in whole_train] == [1, 2, 3, 4]
    assert resumed_train == whole_train
    assert strip(read_metrics(resumed, "eval")) == strip(read_metrics(whole_run.workdir, "eval"))
    assert metrics == whole_run.metrics
    run = build_run(whole_run.config)
    assert_trees_equal(jax.device_get(restore_latest(run, resumed)[0]), jax.device_get(restore_latest(run, whole_run.workdir)[0]))


# ---------------------------------------------------------------- 7. Config errors.

def assert_one_line_config_error(config, match, dataset_info=None, total_steps=4):
    with pytest.raises(ConfigError, match=match) as error:
        dqn.build(config, {"stateful": True} if dataset_info is None else dataset_info, total_steps)
    assert "\n" not in str(error.value), str(error.value)


def test_config_errors_are_one_clear_line(monkeypatch):
    config = smoke_config("data.name=mnist")
    assert_one_line_config_error(config, r"data.name='none' \(got 'mnist'\)", dataset_info={"stateful": False})
    assert_one_line_config_error(smoke_config("task.environment=gymnax:CartPol-v1"), r"'CartPol-v1'.*'CartPole-v1'")
    assert_one_line_config_error(smoke_config("task.environment=cartpole"), "gymnax:<name>")
    assert_one_line_config_error(smoke_config("task.num_envs=4", "task.train_frequency=6"),
                                 r"task.train_frequency=6 must be a multiple of task.num_envs=4")
    assert_one_line_config_error(smoke_config("task.num_envs=4", "task.train_frequency=3"),
                                 r"task.train_frequency=3 must divide task.num_envs=4")
    assert_one_line_config_error(smoke_config("task.loss=l1"), r"task.loss='l1' must be 'huber' or 'mse'")
    assert_one_line_config_error(smoke_config("task.prioritized_replay=True", "task.importance_exponent=1.5"),
                                 r"task.importance_exponent=1.5 must be in \[0, 1\]")
    assert_one_line_config_error(smoke_config("task.prioritized_replay=True", "task.priority_epsilon=0.0"),
                                 r"task.priority_epsilon=0.0 must be > 0")
    monkeypatch.setattr(dqn, "make_environment", lambda name, num_envs, atari=None: chain_host_environment(num_envs))
    assert_one_line_config_error(chain_config("task.num_seeds=2"), r"task.num_seeds=2: host environments .*num_seeds=1")
    dqn.build(chain_config(), {"stateful": True}, 4)  # One seed on the host is fine.


# ---------------------------------------------------------------- 8. End to end.

def test_a_smoke_run_reports_returns_by_seed_and_draws_the_learning_curve(whole_run):
    metrics = whole_run.metrics
    assert len(metrics["returns_by_seed"]) == 2 and metrics["return"] > 0
    assert metrics["return"] == pytest.approx(np.mean(metrics["returns_by_seed"]), abs=0.01)
    assert metrics["seeds_at_target"] == sum(r >= 475 for r in metrics["returns_by_seed"])
    (evaluation,) = read_metrics(whole_run.workdir, "eval")
    assert evaluation["step"] == 4 and evaluation["returns_by_seed"] == metrics["returns_by_seed"]
    train_records = read_metrics(whole_run.workdir, "train")
    assert all(record["env_steps_per_s"] > 0 and 0.05 <= record["epsilon"] <= 1 for record in train_records)
    assert train_records[-1]["epsilon"] == pytest.approx(0.05)  # Decayed over half the run.
    # The learning curve in the state is what the train records report, step by step.
    state = jax.device_get(restore_latest(build_run(whole_run.config), whole_run.workdir)[0])
    assert state.agents.curve.shape == (2, 4) and np.all(state.agents.curve > 0)
    np.testing.assert_allclose([r["episode_return"] for r in train_records], state.agents.curve.mean(0), rtol=1e-4)
    picture = os.path.join(whole_run.workdir, "images", "eval_learning_curve_00000004.png")
    assert os.path.exists(picture)
    image = np.asarray(Image.open(picture))
    assert image.shape[:2] == (320, 480) and image.std() > 0  # A 6x4-inch figure at 80 dpi, not blank.


# ---------------------------------------------------------------- 4b. Bitwise across drivers.

def test_jitted_and_host_drivers_make_bitwise_identical_updates(drivers):
    """Both drivers run the same vmapped program; only the environment step differs (JAX or a host callback)."""
    assert_trees_equal(drivers.host.learner, drivers.jax.learner)


def test_seeds_are_spread_over_the_runs_data_axis_only_when_they_divide_it():
    def seed_axis_spec(num_seeds: int, num_devices: int):
        run = build_run(load_config(SMOKE, ["train.progress_bar=False", f"mesh.num_devices={num_devices}",
                                            f"task.num_seeds={num_seeds}"]))
        leaf = jax.tree.leaves(run.abstract_state.agents)[0]
        return leaf.shape[0], leaf.sharding.spec

    assert seed_axis_spec(4, 2) == (4, jax.sharding.PartitionSpec(("data", "fsdp")))
    assert seed_axis_spec(3, 2)[1] == jax.sharding.PartitionSpec()
