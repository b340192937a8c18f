"""Everything a run builds from its config before the first step, and restoring its state."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from jaxai import data as data_lib
from jaxai import sharding, tasks, transfer
from jaxai.checkpoint import Checkpointer, abstract_with_shardings
from jaxai.errors import ConfigError

# Streams of randomness under config.seed: fold_in(key(seed), STREAM), then the step.
INIT_STREAM, TRAIN_STREAM, EVAL_STREAM, VISUALIZE_STREAM = 0, 1, 2, 3


@dataclasses.dataclass
class Run:
    """Mesh, data, task and its jitted steps: what the loop, `jaxai eval` and `jaxai sample` share."""

    config: ml_collections.ConfigDict
    mesh: jax.sharding.Mesh
    dataset: data_lib.Dataset
    task: tasks.Task
    total_steps: int
    abstract_state: Any  # ShapeDtypeStructs with shardings: the init output and the restore target.
    example_batch: dict[str, jax.Array]  # The first training batch, for shapes and init.
    init: Any  # (rng, batch) -> state
    train_step: Any  # (state, batch) -> (state, metrics); its rng comes from the state's step.
    eval_step: Any  # (state, batch, rng) -> outputs

    def put_batch(self, local_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        return sharding.to_global_batch(local_batch, self.mesh)

    def stream_key(self, stream: int, step: int) -> jax.Array:
        """The key of one randomness stream at one step (eval, pictures): same seed, same numbers."""
        return jax.random.fold_in(jax.random.fold_in(jax.random.key(self.config.seed), stream), step)


def total_train_steps(config: ml_collections.ConfigDict, steps_per_epoch: int) -> int:
    """train.num_steps when set, else train.num_epochs epochs."""
    if config.train.num_steps > 0:
        return int(config.train.num_steps)
    if config.train.num_epochs <= 0:
        raise ValueError("Set --config.train.num_epochs or --config.train.num_steps to a positive number.")
    return int(config.train.num_epochs * steps_per_epoch)


def mesh_context(mesh: jax.sharding.Mesh) -> contextlib.ExitStack:
    """Mesh and logical-axis rules active while steps trace (for activation sharding constraints)."""
    stack = contextlib.ExitStack()
    stack.enter_context(jax.set_mesh(mesh))
    stack.enter_context(nn.logical_axis_rules(sharding.LOGICAL_AXIS_RULES))
    return stack


def build_run(config: ml_collections.ConfigDict) -> Run:
    """Mesh, dataset, task and the jitted init/train/eval functions with explicit shardings."""
    mesh = sharding.make_mesh(config.mesh)
    dataset = data_lib.build_dataset(config.data, seed=config.seed)
    if not dataset.info.get("stateful"):
        sharding.check_batch_fits(config.data.batch_size, mesh)
        sharding.check_batch_fits(config.data.eval_batch_size, mesh, "data.eval_batch_size")
    total_steps = total_train_steps(config, dataset.steps_per_epoch)
    task = tasks.task_module(config.task.name).build(config, dataset.info, total_steps)

    example = sharding.to_global_batch(next(iter(dataset.train)), mesh)
    batch_sharding = sharding.batch_sharding(mesh)
    replicated = sharding.replicated(mesh)
    train_rng = jax.random.fold_in(jax.random.key(config.seed), TRAIN_STREAM)

    with mesh_context(mesh):
        boxed = jax.eval_shape(task.init, jax.random.key(0), example)
        state_sharding = sharding.state_shardings(boxed, mesh)
        abstract_state = abstract_with_shardings(sharding.strip_axis_names(boxed), state_sharding)
    if transfer.lora_enabled(config) and not transfer.is_lora_state(abstract_state):
        raise ConfigError(f"lora.rank={config.lora.rank}: task {config.task.name!r} does not take LoRA adapters; "
                          "the classification and language_model tasks do. Set lora.rank=0.")

    def init(rng, batch):
        return sharding.strip_axis_names(task.init(rng, batch))

    def train_step(state, batch):
        # Per-step randomness from the step number: nothing to checkpoint, nothing reused.
        return task.train_step(state, batch, jax.random.fold_in(train_rng, state.step))

    return Run(
        config=config,
        mesh=mesh,
        dataset=dataset,
        task=task,
        total_steps=total_steps,
        abstract_state=abstract_state,
        example_batch=example,
        init=jax.jit(init, in_shardings=(replicated, batch_sharding), out_shardings=state_sharding),
        train_step=jax.jit(
            train_step, in_shardings=(state_sharding, batch_sharding),
            out_shardings=(state_sharding, replicated), donate_argnums=0,
        ),
        eval_step=jax.jit(
            task.eval_step, in_shardings=(state_sharding, batch_sharding, replicated), out_shardings=replicated,
        ),
    )


def restore_or_init(run: Run, checkpointer: Checkpointer, data_iterator: Any) -> tuple[Any, int]:
    """The latest checkpoint in the workdir (state and data position), else a fresh state."""
    latest = checkpointer.latest_step()
    if latest is not None:
        return checkpointer.restore(latest, run.abstract_state, data_iterator), latest
    with mesh_context(run.mesh):
        return run.init(jax.random.fold_in(jax.random.key(run.config.seed), INIT_STREAM), run.example_batch), 0


def load_pretrained_state(run: Run, state: Any) -> tuple[Any, dict[str, Any]]:
    """A fresh `state` with config.init_from's weights copied in, placed as `run` shards it; and what was loaded."""
    if not hasattr(state, "params"):
        raise ConfigError(f"init_from: task {run.config.task.name!r} keeps several networks; init_from loads "
                          "single-network states (classification, language models).")
    loaded, report = transfer.load_pretrained(run.config, jax.device_get(state))
    return jax.device_put(loaded, jax.tree.map(lambda leaf: leaf.sharding, run.abstract_state)), report


def restore_latest(run: Run, workdir: str) -> tuple[Any, int]:
    """(state, step) of the latest checkpoint in `workdir`, placed as `run` shards it."""
    checkpointer = Checkpointer(os.path.join(os.path.abspath(workdir), "checkpoints"))
    try:
        step = checkpointer.latest_step()
        if step is None:
            raise FileNotFoundError(f"No checkpoint in {workdir}/checkpoints; train first with `jaxai train`.")
        return checkpointer.restore(step, run.abstract_state), step
    finally:
        checkpointer.close()
