"""jaxai.optim: every optimizer and schedule, clipping, accumulation, decay masks and config errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxai import optim

LR = 0.1


def config(**overrides):
    c = optim.default_config()
    for key, value in overrides.items():
        section = c
        *path, last = key.split(".")
        for part in path:
            section = section[part]
        section[last] = value
    return c


def params_tree():
    return {"dense": {"kernel": jnp.ones((3, 2)), "bias": jnp.ones((2,))}, "norm": {"scale": jnp.ones((2,))}}


def run(tx, params, grads_list):
    state = tx.init(params)
    update = jax.jit(tx.update)
    for grads in grads_list:
        updates, state = update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params


def test_default_config_keys():
    c = optim.default_config()
    assert set(c.keys()) == {
        "name", "learning_rate", "momentum", "b1", "b2", "eps", "rms_decay", "weight_decay", "l2",
        "decay_mask", "grad_clip_norm", "accumulate_steps", "flatten", "freeze", "schedule",
    }
    assert set(c.schedule.keys()) == {
        "name", "warmup_steps", "decay_steps", "end_value_fraction", "step_every", "decay_rate",
        "one_cycle_pct_start", "one_cycle_div_factor", "one_cycle_final_div_factor",
    }
    assert c.name == "adam" and c.schedule.name == "constant" and c.accumulate_steps == 1


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_each_optimizer_reduces_quadratic(name):
    target = jax.tree.map(lambda p: jnp.full_like(p, -1.0), params_tree())

    def loss(params):
        return sum(jnp.sum((p - t) ** 2) for p, t in zip(jax.tree.leaves(params), jax.tree.leaves(target)))

    tx = optim.make_optimizer(config(name=name, learning_rate=0.05), total_steps=50)
    params = params_tree()
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return optax.apply_updates(params, updates), state

    start = loss(params)
    for _ in range(50):
        params, state = step(params, state)
    assert loss(params) < 0.1 * start


@pytest.mark.parametrize("name, reference", [
    ("sgd", optax.sgd(LR)),
    ("momentum", optax.sgd(LR, momentum=0.9)),
    ("nesterov", optax.sgd(LR, momentum=0.9, nesterov=True)),
    ("adam", optax.adam(LR)),
    ("adamw", optax.adamw(LR, weight_decay=0.0)),
    ("rmsprop", optax.rmsprop(LR, decay=0.9, momentum=0.9)),
])
def test_without_decay_matches_optax_alias(name, reference):
    grads = [jax.tree.map(lambda p, i=i: (i + 1.0) * jnp.cos(p + i), params_tree()) for i in range(3)]
    ours = run(optim.make_optimizer(config(name=name, learning_rate=LR), 100), params_tree(), grads)
    theirs = run(reference, params_tree(), grads)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), ours, theirs)


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_flat_moments_give_the_same_updates(name):
    grads = [jax.tree.map(lambda p, i=i: (i + 1.0) * jnp.cos(p + i), params_tree()) for i in range(3)]
    settings = {"name": name, "learning_rate": LR, "weight_decay": 0.1, "grad_clip_norm": 1.0}
    flat_tx = optim.make_optimizer(config(flatten=True, **settings), 100)
    flat = run(flat_tx, params_tree(), grads)
    per_array = run(optim.make_optimizer(config(**settings), 100), params_tree(), grads)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), flat, per_array)
    if name != "sgd":  # The moments really are one vector (sgd keeps none).
        shapes = {leaf.shape for leaf in jax.tree.leaves(flat_tx.init(params_tree())) if leaf.ndim}
        assert shapes == {(10,)}, shapes


def test_adam_weight_decay_is_decoupled_like_adamw():
    grads = [jax.tree.map(lambda p, i=i: jnp.sin(p * (i + 1)), params_tree()) for i in range(3)]
    ours = run(optim.make_optimizer(config(name="adam", learning_rate=LR, weight_decay=0.1), 100), params_tree(), grads)
    mask = lambda tree: jax.tree.map(lambda p: p.ndim > 1, tree)
    theirs = run(optax.adamw(LR, weight_decay=0.1, mask=mask), params_tree(), grads)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), ours, theirs)


@pytest.mark.parametrize("name", optim.SCHEDULES)
def test_warmup_rises_linearly_from_zero(name):
    s = optim.make_schedule(config(**{"learning_rate": LR, "schedule.name": name, "schedule.warmup_steps": 10}), 100)
    peak = LR / 25.0 if name == "one_cycle" else LR  # one_cycle's own schedule starts at lr / div_factor.
    np.testing.assert_allclose([s(0), s(5), s(10)], [0.0, peak / 2, peak], rtol=1e-5)


def test_constant_schedule():
    s = optim.make_schedule(config(learning_rate=LR), 100)
    np.testing.assert_allclose([s(0), s(50), s(100)], [LR] * 3, rtol=1e-6)


def test_cosine_ends_at_end_fraction():
    c = config(**{"learning_rate": LR, "schedule.name": "cosine", "schedule.warmup_steps": 10,
                  "schedule.end_value_fraction": 0.1})
    s = optim.make_schedule(c, 110)
    np.testing.assert_allclose([s(10), s(60), s(110), s(200)], [LR, LR * 0.55, LR * 0.1, LR * 0.1], rtol=1e-5)


def test_cosine_explicit_decay_steps():
    c = config(**{"learning_rate": LR, "schedule.name": "cosine", "schedule.decay_steps": 40})
    s = optim.make_schedule(c, 100)
    np.testing.assert_allclose([s(20), s(40), s(90)], [LR / 2, 0.0, 0.0], atol=1e-7)


def test_step_decays_every_step_every():
    c = config(**{"learning_rate": LR, "schedule.name": "step", "schedule.step_every": 10, "schedule.decay_rate": 0.1})
    s = optim.make_schedule(c, 100)
    np.testing.assert_allclose([s(0), s(9), s(10), s(19), s(20)], [LR, LR, LR * 0.1, LR * 0.1, LR * 0.01], rtol=1e-5)


def test_exponential_reaches_decay_rate_over_decay_steps():
    c = config(**{"learning_rate": LR, "schedule.name": "exponential", "schedule.decay_rate": 0.1})
    s = optim.make_schedule(c, 100)
    np.testing.assert_allclose([s(0), s(50), s(100), s(150)], [LR, LR * 0.1**0.5, LR * 0.1, LR * 0.1], rtol=1e-5)


def test_one_cycle_peaks_near_pct_start():
    c = config(**{"learning_rate": LR, "schedule.name": "one_cycle", "schedule.one_cycle_pct_start": 0.25})
    s = optim.make_schedule(c, 200)
    values = np.array([s(i) for i in range(201)])
    assert abs(int(values.argmax()) - 50) <= 1
    np.testing.assert_allclose(values.max(), LR, rtol=1e-5)
    np.testing.assert_allclose(values[0], LR / 25, rtol=1e-5)
    np.testing.assert_allclose(values[-1], LR / 25 / 1e4, rtol=1e-4)


def test_schedule_counts_optimizer_updates_when_accumulating():
    c = config(**{"learning_rate": LR, "schedule.name": "cosine", "accumulate_steps": 4})
    s = optim.make_schedule(c, 400)  # 100 updates
    np.testing.assert_allclose([s(50), s(100)], [LR / 2, 0.0], atol=1e-7)


def test_clipping_bounds_update_norm():
    tx = optim.make_optimizer(config(name="sgd", learning_rate=1.0, grad_clip_norm=0.5), 10)
    params = params_tree()
    big = jax.tree.map(lambda p: 100.0 * jnp.ones_like(p), params)
    updates, _ = tx.update(big, tx.init(params), params)
    np.testing.assert_allclose(optax.tree.norm(updates), 0.5, rtol=1e-5)
    small = jax.tree.map(lambda p: 0.01 * jnp.ones_like(p), params)
    updates, _ = tx.update(small, tx.init(params), params)
    jax.tree.map(lambda u, g: np.testing.assert_allclose(u, -g, rtol=1e-6), updates, small)


def test_accumulation_equals_one_step_on_mean_gradient():
    c = config(**{"name": "adam", "learning_rate": LR, "schedule.name": "cosine", "accumulate_steps": 4})
    tx = optim.make_optimizer(c, total_steps=40)
    micro = [[jax.tree.map(lambda p, i=i, j=j: jnp.sin(p * (i + 1) + j), params_tree()) for i in range(4)]
             for j in range(2)]
    params, state = params_tree(), tx.init(params_tree())
    update = jax.jit(tx.update)
    for j in range(2):
        before = params
        for i, grads in enumerate(micro[j]):
            updates, state = update(grads, state, params)
            params = optax.apply_updates(params, updates)
            if i < 3:
                jax.tree.map(np.testing.assert_array_equal, params, before)

    reference = optim.make_optimizer(config(**{"name": "adam", "learning_rate": LR, "schedule.name": "cosine"}), 10)
    means = [jax.tree.map(lambda *g: sum(g) / 4, *micro[j]) for j in range(2)]
    expected = run(reference, params_tree(), means)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), params, expected)


@pytest.mark.parametrize("key", ["weight_decay", "l2"])
def test_decay_mask_leaves_vectors_untouched(key):
    zeros = jax.tree.map(jnp.zeros_like, params_tree())
    tx = optim.make_optimizer(config(name="sgd", learning_rate=1.0, **{key: 0.1}), 10)
    params = run(tx, params_tree(), [zeros])
    np.testing.assert_allclose(params["dense"]["kernel"], 0.9, rtol=1e-6)
    np.testing.assert_array_equal(params["dense"]["bias"], 1.0)
    np.testing.assert_array_equal(params["norm"]["scale"], 1.0)

    tx = optim.make_optimizer(config(name="sgd", learning_rate=1.0, decay_mask="all", **{key: 0.1}), 10)
    params = run(tx, params_tree(), [zeros])
    jax.tree.map(lambda p: np.testing.assert_allclose(p, 0.9, rtol=1e-6), params)


def test_adamw_uses_decay_mask():
    zeros = jax.tree.map(jnp.zeros_like, params_tree())
    tx = optim.make_optimizer(config(name="adamw", learning_rate=1.0, weight_decay=0.1), 10)
    params = run(tx, params_tree(), [zeros])
    np.testing.assert_allclose(params["dense"]["kernel"], 0.9, rtol=1e-6)
    np.testing.assert_array_equal(params["dense"]["bias"], 1.0)


@pytest.mark.parametrize("overrides, total_steps, expected", [
    ({"name": "adamx"}, 100, ["optimizer.name", "'adamx'", "sgd, momentum, nesterov, adam, adamw, rmsprop"]),
    ({"schedule.name": "linear"}, 100, ["optimizer.schedule.name", "'linear'", "constant, step, exponential"]),
    ({"decay_mask": "bias"}, 100, ["optimizer.decay_mask", "'bias'", "all, no_bias_norm"]),
    ({"learning_rate": 0.0}, 100, ["optimizer.learning_rate", "must be > 0"]),
    ({"learning_rate": -1e-3}, 100, ["optimizer.learning_rate", "must be > 0"]),
    ({"accumulate_steps": 0}, 100, ["optimizer.accumulate_steps", "must be >= 1"]),
    ({"accumulate_steps": 8}, 4, ["optimizer.accumulate_steps", "lower it"]),
    ({"schedule.warmup_steps": 101}, 100, ["optimizer.schedule.warmup_steps", "lower it"]),
    ({"schedule.warmup_steps": 30, "accumulate_steps": 4}, 100, ["optimizer.schedule.warmup_steps", "[0, 25]"]),
    ({"grad_clip_norm": -1.0}, 100, ["optimizer.grad_clip_norm", "use 0 to disable"]),
    ({"weight_decay": -0.1}, 100, ["optimizer.weight_decay", ">= 0"]),
    ({"momentum": 1.0}, 100, ["optimizer.momentum", "[0, 1)"]),
    ({"schedule.name": "step", "schedule.step_every": 0}, 100, ["optimizer.schedule.step_every", ">= 1"]),
])
def test_bad_config_raises_value_error_naming_the_key(overrides, total_steps, expected):
    with pytest.raises(ValueError) as error:
        optim.make_optimizer(config(**overrides), total_steps)
    for text in expected:
        assert text in str(error.value)
