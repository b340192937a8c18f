"""The one training driver: mesh, data, sharded state, jitted steps, eval, checkpoints, resume."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from typing import Any, Iterator

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from jaxai import data as data_lib
from jaxai import sharding, tasks
from jaxai.checkpoint import Checkpointer, abstract_with_shardings
from jaxai.config import ConfigError
from jaxai.info import peak_flops
from jaxai.logging import MetricWriter, ProgressBar, format_metrics
from jaxai.train.workdir import prepare_workdir


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite metric."""


@dataclasses.dataclass
class Run:
    """Everything built from a config before the first step: mesh, data, task and its jitted steps."""

    config: ml_collections.ConfigDict
    mesh: jax.sharding.Mesh
    dataset: data_lib.Dataset
    task: tasks.Task
    total_steps: int
    abstract_state: Any  # ShapeDtypeStructs with shardings: the init output and the restore target.
    example_batch: dict[str, jax.Array]  # The first training batch, for shapes and init.
    init: Any
    train_step: Any
    eval_step: Any

    def put_batch(self, local_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        return sharding.to_global_batch(local_batch, self.mesh)


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
    sharding.check_batch_fits(config.data.batch_size, mesh)
    sharding.check_batch_fits(config.data.eval_batch_size, mesh, "data.eval_batch_size")
    dataset = data_lib.build_dataset(config.data, seed=config.seed)
    total_steps = total_train_steps(config, dataset.steps_per_epoch)
    task = tasks.task_module(config.task.name).build(config, dataset.info, total_steps)

    example = sharding.to_global_batch(next(iter(dataset.train)), mesh)
    batch_sharding = sharding.batch_sharding(mesh)
    replicated = sharding.replicated(mesh)
    train_rng = jax.random.fold_in(jax.random.key(config.seed), 1)

    with mesh_context(mesh):
        boxed = jax.eval_shape(task.init, jax.random.key(0), example)
        state_sharding = sharding.state_shardings(boxed, mesh)
        abstract_state = abstract_with_shardings(sharding.strip_axis_names(boxed), state_sharding)

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
        eval_step=jax.jit(task.eval_step, in_shardings=(state_sharding, batch_sharding), out_shardings=replicated),
    )


def evaluate_state(run: Run, state: Any, split: str, max_batches: int = 0) -> dict[str, Any]:
    """Task metrics of `state` over a whole split (or its first `max_batches` batches)."""
    totals: dict[str, np.ndarray] = {}
    with mesh_context(run.mesh):
        for local_batch in run.dataset.eval_batches(split, max_batches):
            sums = jax.device_get(run.eval_step(state, run.put_batch(local_batch)))
            for key, value in sums.items():
                totals[key] = totals[key] + value if key in totals else np.asarray(value, np.float64)
    return run.task.summarize(totals)


def restore_or_init(run: Run, checkpointer: Checkpointer, data_iterator: Any) -> tuple[Any, int]:
    """The latest checkpoint in the workdir (state and data position), else a fresh state."""
    latest = checkpointer.latest_step()
    if latest is not None:
        return checkpointer.restore(latest, run.abstract_state, data_iterator), latest
    init_rng = jax.random.fold_in(jax.random.key(run.config.seed), 0)
    with mesh_context(run.mesh):
        return run.init(init_rng, run.example_batch), 0


def _is_due(step: int, every: int) -> bool:
    return every > 0 and step % every == 0


def _mean_metrics(window: list[dict[str, jax.Array]]) -> dict[str, float]:
    stacked = jax.device_get(window)
    return {key: float(np.mean([metrics[key] for metrics in stacked])) for key in stacked[0]}


def train(config: ml_collections.ConfigDict, workdir: str, *, overwrite: bool = False) -> dict[str, Any]:
    """Trains `config` in `workdir`, resuming from its latest checkpoint; returns the last eval metrics."""
    workdir = os.path.abspath(workdir)
    prepare_workdir(workdir, config, overwrite)
    run = build_run(config)
    train_config = config.train
    eval_every = train_config.eval_every or run.dataset.steps_per_epoch
    checkpoint_every = train_config.checkpoint_every or run.dataset.steps_per_epoch
    log_every = max(1, train_config.log_every)

    writer = MetricWriter(workdir)
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), train_config.max_to_keep)
    data_iterator: Iterator = iter(run.dataset.train)
    state, step = restore_or_init(run, checkpointer, data_iterator)
    _save_artifacts(run, workdir)
    writer.write(step, "run", _run_header(run, resumed=step > 0))
    bar = ProgressBar(run.total_steps, step, enabled=train_config.progress_bar)
    bar.write(f"{'Resuming' if step else 'Starting'} at step {step}/{run.total_steps} "
              f"({_parameter_count(run.abstract_state):,} parameters, mesh {dict(run.mesh.shape)}).")

    window: list[dict[str, jax.Array]] = []
    window_start, window_time = step, time.perf_counter()
    data_seconds = 0.0  # Host time spent producing and placing this window's batches.
    eval_metrics: dict[str, Any] = {}
    best, evals_without_improvement = None, 0
    last_saved = step
    peak = peak_flops() if run.task.flops_per_example else 0.0
    start_time = time.perf_counter()

    def flush() -> None:
        """Fetches the window's metrics, stops on a non-finite value, logs means and throughput."""
        nonlocal window, window_start, window_time, data_seconds
        if not window:
            return
        means = _mean_metrics(window)
        if not all(math.isfinite(value) for value in means.values()):
            checkpointer.wait()
            kept = checkpointer.latest_step()
            raise NonFiniteLossError(
                f"Training metrics became non-finite between steps {window_start} and {step}: "
                f"{format_metrics(means)}. The last good checkpoint (step {kept}) is kept in {checkpointer.directory}. "
                "Lower --config.optimizer.learning_rate or set --config.optimizer.grad_clip_norm=1.0."
            )
        elapsed = time.perf_counter() - window_time
        steps_done = step - window_start
        means["steps_per_s"] = steps_done / elapsed
        means["examples_per_s"] = steps_done * config.data.batch_size / elapsed
        # step_ms is the wall time per step; data_ms the part of it the host spent on next(batch) and
        # its transfer, during which the device runs the steps already dispatched (async dispatch).
        means["step_ms"] = 1000 * elapsed / steps_done
        means["data_ms"] = 1000 * data_seconds / steps_done
        tokens_per_example = run.dataset.info.get("block_size", 0)
        if tokens_per_example:
            means["tokens_per_s"] = means["examples_per_s"] * tokens_per_example
        if run.task.flops_per_example and peak:
            means["mfu"] = means["examples_per_s"] * run.task.flops_per_example / (peak * jax.device_count())
        writer.write(step, "train", means)
        bar.update(0, _progress_postfix(means))
        if not bar.active:  # No terminal (a log file, a batch job): a line per logging event instead.
            bar.write(f"step {step}/{run.total_steps}: train " + " ".join(f"{k}={v}" for k, v in _progress_postfix(means).items()))
        window, window_start, window_time, data_seconds = [], step, time.perf_counter(), 0.0

    try:
        with mesh_context(run.mesh):
            while step < run.total_steps:
                data_start = time.perf_counter()
                batch = run.put_batch(next(data_iterator))
                data_seconds += time.perf_counter() - data_start
                state, metrics = run.train_step(state, batch)
                step += 1
                window.append(metrics)
                bar.update(1)
                last = step == run.total_steps
                evaluate_now = _is_due(step, eval_every) or last
                save_now = _is_due(step, checkpoint_every) or last
                if _is_due(step, log_every) or evaluate_now or save_now:
                    flush()
                if evaluate_now:
                    eval_metrics = evaluate_state(run, state, config.data.eval_split, train_config.eval_batches)
                    writer.write(step, "eval", eval_metrics)
                    bar.write(f"step {step}: eval {format_metrics(eval_metrics)}")
                    best, evals_without_improvement = _track_best(train_config, eval_metrics, best, evals_without_improvement)
                    stop_early = bool(train_config.early_stopping_metric) and evals_without_improvement >= train_config.early_stopping_patience
                else:
                    stop_early = False
                if save_now or stop_early:
                    checkpointer.save(step, state, data_iterator)
                    last_saved = step
                if evaluate_now or save_now or stop_early:
                    window_time = time.perf_counter()  # Throughput counts training steps only.
                if stop_early:
                    bar.write(f"Early stopping at step {step}: eval {train_config.early_stopping_metric} "
                              f"has not improved for {evals_without_improvement} evaluations (best {best:.4f}).")
                    break
        if not eval_metrics:  # Resumed at the end: report the final metrics again.
            eval_metrics = evaluate_state(run, state, config.data.eval_split, train_config.eval_batches)
        if run.task.export is not None and jax.process_index() == 0:
            run.task.export(jax.device_get(state), workdir)
        writer.write(step, "run", {"event": "end", "wall_s": round(time.perf_counter() - start_time, 3), "last_checkpoint": last_saved})
    finally:
        bar.close()
        checkpointer.wait()
        checkpointer.close()
        writer.close()
    return eval_metrics


def _progress_postfix(means: dict[str, float]) -> dict[str, str]:
    postfix = {"loss": f"{means['loss']:.4f}"}
    if "tokens_per_s" in means:
        postfix["tok/s"] = f"{means['tokens_per_s']:,.0f}"
    else:
        postfix["ex/s"] = f"{means['examples_per_s']:,.0f}"
    if "mfu" in means:
        postfix["mfu"] = f"{100 * means['mfu']:.1f}%"
    postfix["ms/step"] = f"{means['step_ms']:.1f} (data {means['data_ms']:.1f})"
    return postfix


def _track_best(train_config, eval_metrics, best, evals_without_improvement):
    name = train_config.early_stopping_metric
    if not name:
        return best, 0
    if name not in eval_metrics:
        raise ConfigError(f"train.early_stopping_metric={name!r} is not an eval metric; choose one of {sorted(eval_metrics)}.")
    value = eval_metrics[name]
    improved = best is None or (value > best if train_config.early_stopping_mode == "max" else value < best)
    return (value, 0) if improved else (best, evals_without_improvement + 1)


def _parameter_count(abstract_state: Any) -> int:
    params = getattr(abstract_state, "params", abstract_state)
    return int(sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(params)))


def _run_header(run: Run, resumed: bool) -> dict[str, Any]:
    from jaxai import runtime

    return {
        "event": "resume" if resumed else "start",
        "total_steps": run.total_steps,
        "steps_per_epoch": run.dataset.steps_per_epoch,
        "num_parameters": _parameter_count(run.abstract_state),
        "devices": f"{jax.device_count()}x {jax.devices()[0].device_kind}",
        "mesh": dict(run.mesh.shape),
        **runtime.describe(),
    }


def _save_artifacts(run: Run, workdir: str) -> None:
    """Files the run needs later besides the state (e.g. the tokenizer's vocabulary)."""
    if jax.process_index() != 0:
        return
    for name, artifact in run.dataset.artifacts.items():
        artifact.save(os.path.join(workdir, name))


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


def evaluate(config: ml_collections.ConfigDict, workdir: str, split: str | None = None) -> dict[str, Any]:
    """Metrics of the latest checkpoint in `workdir` on `split` (default data.test_split); logged as 'test'."""
    run = build_run(config)
    state, step = restore_latest(run, workdir)
    metrics = evaluate_state(run, state, split or config.data.test_split)
    writer = MetricWriter(workdir)
    writer.write(step, "test", metrics)
    writer.close()
    return metrics
