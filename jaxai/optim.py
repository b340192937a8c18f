"""Optimizers and learning-rate schedules built from the `optimizer` config section, composed from Optax."""

from __future__ import annotations

import functools
import re
from typing import Any, Callable

import jax
import ml_collections
import numpy as np
import optax

from jaxai.errors import ConfigError

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "exponential", "cosine", "one_cycle")
DECAY_MASKS = ("all", "no_bias_norm")


def default_config() -> ml_collections.ConfigDict:
    """The `optimizer` section: every key with its default; experiments override values."""
    config = ml_collections.ConfigDict()
    config.name = "adam"  # sgd | momentum | nesterov | adam | adamw | rmsprop.
    config.learning_rate = 1e-3  # Peak learning rate (the schedule scales it).
    config.momentum = 0.9  # momentum, nesterov and rmsprop; 0 disables it for rmsprop.
    config.b1 = 0.9  # adam / adamw: decay of the first-moment average.
    config.b2 = 0.999  # adam / adamw: decay of the second-moment average.
    config.eps = 1e-8  # adam / adamw / rmsprop: added to the denominator.
    config.rms_decay = 0.9  # rmsprop: decay of the squared-gradient average.
    config.weight_decay = 0.0  # Decoupled weight decay (AdamW style), scaled by the learning rate.
    config.l2 = 0.0  # Coupled L2: l2 * params is added to the gradient before the optimizer.
    config.decay_mask = "no_bias_norm"  # 'all', or 'no_bias_norm': leaves with ndim <= 1 are not decayed.
    config.grad_clip_norm = 0.0  # Clip gradients to this global norm; 0 disables.
    config.accumulate_steps = 1  # Average gradients over this many steps per update; 1 disables.
    # Keep the optimizer's moments as one flat vector: one fused update instead of one per parameter
    # array, ~10% faster steps for small models on CPU. Single-device runs: the flat moments cannot
    # follow the parameters' fsdp/tensor sharding.
    config.flatten = False
    # Regex over parameter paths ('Dense_0/kernel') that get no updates (jaxai.transfer); '' = train all.
    config.freeze = ""

    config.schedule = ml_collections.ConfigDict()
    config.schedule.name = "constant"  # constant | step | exponential | cosine | one_cycle.
    config.schedule.warmup_steps = 0  # Linear warm-up from 0 over this many updates (all schedules).
    config.schedule.decay_steps = 0  # Updates over which to decay after warm-up; 0 -> all the rest.
    config.schedule.end_value_fraction = 0.0  # cosine: final lr = learning_rate * this.
    config.schedule.step_every = 1000  # step: multiply the lr by decay_rate every this many updates.
    config.schedule.decay_rate = 0.1  # step: factor per step_every; exponential: factor over decay_steps.
    config.schedule.one_cycle_pct_start = 0.25  # one_cycle: fraction of decay_steps spent rising.
    config.schedule.one_cycle_div_factor = 25.0  # one_cycle: starting lr = learning_rate / this.
    config.schedule.one_cycle_final_div_factor = 1e4  # one_cycle: final lr = starting lr / this.
    return config


def make_schedule(opt_config: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
    """The learning rate as a function of the optimizer-update count.

    `total_steps` counts train steps; with gradient accumulation there are
    `total_steps // accumulate_steps` updates, and every schedule key counts updates.
    """
    lr = float(opt_config.learning_rate)
    s = opt_config.schedule
    _require(lr > 0, "learning_rate", f"must be > 0, got {lr}; set it to a positive value such as 1e-3")
    updates = _num_updates(opt_config, total_steps)
    _check_choice("schedule.name", s.name, SCHEDULES)
    warmup = int(s.warmup_steps)
    _require(
        0 <= warmup <= updates, "schedule.warmup_steps",
        f"is {warmup} but must be in [0, {updates}] (the number of optimizer updates); lower it",
    )
    _require(int(s.decay_steps) >= 0, "schedule.decay_steps", "must be >= 0; use 0 for 'all steps after warm-up'")
    decay_steps = max(1, int(s.decay_steps) or updates - warmup)

    if s.name == "constant":
        main = optax.constant_schedule(lr)
    elif s.name in ("step", "exponential"):
        _require(s.decay_rate > 0, "schedule.decay_rate", f"must be > 0, got {s.decay_rate}")
        if s.name == "step":
            _require(int(s.step_every) >= 1, "schedule.step_every", f"must be >= 1, got {s.step_every}")
            main = optax.exponential_decay(lr, int(s.step_every), float(s.decay_rate), staircase=True)
        else:
            main = optax.exponential_decay(lr, decay_steps, float(s.decay_rate), end_value=lr * s.decay_rate)
    elif s.name == "cosine":
        fraction = float(s.end_value_fraction)
        _require(0 <= fraction <= 1, "schedule.end_value_fraction", f"must be in [0, 1], got {fraction}")
        main = optax.cosine_decay_schedule(lr, decay_steps, alpha=fraction)
    else:
        _require(0 < s.one_cycle_pct_start < 1, "schedule.one_cycle_pct_start",
                 f"must be in (0, 1), got {s.one_cycle_pct_start}")
        _require(s.one_cycle_div_factor > 0 and s.one_cycle_final_div_factor > 0, "schedule.one_cycle_div_factor",
                 "and one_cycle_final_div_factor must both be > 0")
        main = optax.cosine_onecycle_schedule(
            decay_steps, lr, float(s.one_cycle_pct_start),
            float(s.one_cycle_div_factor), float(s.one_cycle_final_div_factor),
        )
    if warmup == 0:
        return main
    # Warm up to where the main schedule starts (lr / div_factor for one_cycle) so the lr never jumps.
    start = lr / float(s.one_cycle_div_factor) if s.name == "one_cycle" else lr
    return optax.join_schedules([optax.linear_schedule(0.0, start, warmup), main], [warmup])


def make_optimizer(opt_config: ml_collections.ConfigDict, total_steps: int, frozen: str = "") -> optax.GradientTransformation:
    """clip_by_global_norm -> coupled L2 -> optimizer(lr=schedule), in optax.MultiSteps when accumulating;
    parameters matching `optimizer.freeze` or `frozen` (regexes over paths) get no updates."""
    tx = _make_trained_optimizer(opt_config, total_steps)
    user_pattern = str(opt_config.get("freeze", ""))
    pattern = any_of(user_pattern, frozen)
    if not pattern:
        return tx
    return optax.multi_transform({"trained": tx, "frozen": optax.set_to_zero()},
                                 functools.partial(frozen_labels, pattern=pattern, setting=user_pattern or pattern))


def any_of(*patterns: str) -> str:
    """One regular expression matching where any of the non-empty `patterns` does ('' when none is given)."""
    return "|".join(f"(?:{pattern})" for pattern in patterns if pattern)


def path_string(path: tuple) -> str:
    """A key path ('BasicBlock_0', 'Conv_0', 'kernel') as 'BasicBlock_0/Conv_0/kernel' (boxes' '.value' left out)."""
    names = []
    for key in path:
        if isinstance(key, jax.tree_util.GetAttrKey):
            if key.name != "value":  # A logically-partitioned box around the array.
                names.append(key.name)
        else:
            names.append(str(getattr(key, "key", getattr(key, "idx", key))))
    return "/".join(names)


def frozen_labels(params: Any, pattern: str, setting: str = "") -> Any:
    """'frozen' / 'trained' per leaf by whether `pattern` matches its path; refuses a pattern matching none
    (naming `setting`, the user's optimizer.freeze)."""
    labels = jax.tree_util.tree_map_with_path(
        lambda path, _: "frozen" if re.search(pattern, path_string(path)) else "trained", params)
    if "frozen" not in jax.tree.leaves(labels):
        paths = [path_string(path) for path, _ in jax.tree_util.tree_leaves_with_path(params)]
        raise ConfigError(
            f"optimizer.freeze={setting or pattern!r} matches no parameter; parameter paths look like {paths[:4]} "
            f"({len(paths)} in all): fix the expression, or set it to '' to train everything."
        )
    return labels


def _make_trained_optimizer(opt_config: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
    c = opt_config
    _check_choice("name", c.name, OPTIMIZERS)
    _check_choice("decay_mask", c.decay_mask, DECAY_MASKS)
    for key in ("grad_clip_norm", "weight_decay", "l2"):
        _require(c[key] >= 0, key, f"must be >= 0, got {c[key]}; use 0 to disable")
    _require(0 <= c.momentum < 1, "momentum", f"must be in [0, 1), got {c.momentum}")
    schedule = make_schedule(c, total_steps)
    mask = _decay_mask if c.decay_mask == "no_bias_norm" else None

    parts = []
    if c.grad_clip_norm > 0:
        parts.append(optax.clip_by_global_norm(float(c.grad_clip_norm)))
    if c.l2 > 0:
        parts.append(optax.add_decayed_weights(float(c.l2), mask))
    parts.append(_base_optimizer(c, schedule, mask))
    tx = optax.chain(*parts) if len(parts) > 1 else parts[0]
    if c.accumulate_steps > 1:
        return optax.MultiSteps(tx, every_k_schedule=int(c.accumulate_steps)).gradient_transformation()
    return tx


def _base_optimizer(
    c: ml_collections.ConfigDict, schedule: optax.Schedule, mask: Callable[[Any], Any] | None
) -> optax.GradientTransformation:
    """The named optimizer: the transforms of its optax alias, in the same order.

    With `flatten`, the transforms that keep moments run on one flat vector of all parameters
    (`optax.flatten`); decay and learning rate stay per array so the decay mask still applies.
    """
    flat = optax.flatten if c.flatten else (lambda transform: transform)
    decay = optax.add_decayed_weights(float(c.weight_decay), mask) if c.weight_decay > 0 else optax.identity()
    lr = optax.scale_by_learning_rate(schedule)
    if c.name in ("sgd", "momentum", "nesterov"):
        trace = optax.identity() if c.name == "sgd" else flat(optax.trace(c.momentum, nesterov=c.name == "nesterov"))
        return optax.chain(trace, decay, lr)
    if c.name in ("adam", "adamw"):
        return optax.chain(flat(optax.scale_by_adam(c.b1, c.b2, c.eps)), decay, lr)
    trace = flat(optax.trace(c.momentum)) if c.momentum > 0 else optax.identity()
    return optax.chain(flat(optax.scale_by_rms(c.rms_decay, c.eps)), decay, lr, trace)


def _decay_mask(params: Any) -> Any:
    """True for leaves that are decayed: kernels and embeddings, not biases or norm scales."""
    return jax.tree.map(lambda p: np.ndim(p) > 1, params)


def _num_updates(opt_config: ml_collections.ConfigDict, total_steps: int) -> int:
    if total_steps < 1:
        raise ConfigError(f"The optimizer needs total_steps >= 1, got {total_steps}; give the run at least one step.")
    k = int(opt_config.accumulate_steps)
    _require(k >= 1, "accumulate_steps", f"must be >= 1, got {k}; use 1 to disable gradient accumulation")
    _require(
        total_steps >= k, "accumulate_steps",
        f"is {k} but the run has only {total_steps} steps, so the optimizer would never update; lower it",
    )
    return total_steps // k


def _check_choice(key: str, value: Any, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigError(f"Unknown optimizer.{key} {value!r}; valid values: {', '.join(valid)}.")


def _require(condition: Any, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"optimizer.{key} {message}.")
