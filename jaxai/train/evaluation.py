"""Evaluation: a task's eval outputs over a split, reduced as the task says, then its metrics and pictures."""

from __future__ import annotations

from typing import Any, Mapping

import jax
import ml_collections
import numpy as np

from jaxai.errors import ConfigError
from jaxai.logging import MetricWriter
from jaxai.tasks.base import REDUCTIONS
from jaxai.train.build import EVAL_STREAM, VISUALIZE_STREAM, Run, build_run, mesh_context, restore_latest


class Reducer:
    """Combines per-batch eval outputs on the host: each output by its own reduction (default 'sum')."""

    def __init__(self, reductions: Mapping[str, str]):
        unknown = {name: how for name, how in reductions.items() if how not in REDUCTIONS}
        if unknown:
            raise ValueError(f"Unknown eval reductions {unknown}; use one of {REDUCTIONS}.")
        self._reductions = reductions
        self._values: dict[str, Any] = {}

    def add(self, outputs: dict[str, Any]) -> None:
        for name, value in outputs.items():
            how = self._reductions.get(name, "sum")
            value = np.asarray(value)
            if how == "sum":
                value = value.astype(np.float64) if np.issubdtype(value.dtype, np.floating) else value
            if name not in self._values:
                self._values[name] = [value] if how == "concat" else value
            elif how == "sum":
                self._values[name] = self._values[name] + value
            elif how == "max":
                self._values[name] = np.maximum(self._values[name], value)
            elif how == "min":
                self._values[name] = np.minimum(self._values[name], value)
            elif how == "concat":
                self._values[name].append(value)

    def result(self) -> dict[str, np.ndarray]:
        return {
            name: np.concatenate(value) if self._reductions.get(name) == "concat" else value
            for name, value in self._values.items()
        }


def evaluation_outputs(run: Run, state: Any, split: str, step: int, max_batches: int = 0) -> dict[str, np.ndarray]:
    """The task's eval outputs over a split (or its first `max_batches` batches), reduced."""
    reducer = Reducer(run.task.reductions)
    eval_key = run.stream_key(EVAL_STREAM, step)
    with mesh_context(run.mesh):
        for index, local_batch in enumerate(run.dataset.eval_batches(split, max_batches)):
            outputs = run.eval_step(state, run.put_batch(local_batch), jax.random.fold_in(eval_key, index))
            reducer.add(jax.device_get(outputs))
    return reducer.result()


def evaluate_state(run: Run, state: Any, split: str, max_batches: int = 0, step: int = 0) -> dict[str, Any]:
    """Task metrics of `state` over a whole split (or its first `max_batches` batches)."""
    return run.task.summarize(evaluation_outputs(run, state, split, step, max_batches))


def evaluate_and_log(
    run: Run, state: Any, split: str, step: int, writer: MetricWriter, label: str, max_batches: int = 0,
) -> tuple[dict[str, Any], list[str]]:
    """Metrics (logged as `label`: 'eval' in training, 'test' by `jaxai eval`) and the task's pictures.

    Pictures go to WORKDIR/images/<label>_<name>_<step>.png and TensorBoard; returns the metrics and
    lines for the terminal.
    """
    outputs = evaluation_outputs(run, state, split, step, max_batches)
    metrics = run.task.summarize(outputs)
    writer.write(step, label, metrics)
    lines = []
    if run.task.visualize is not None:
        with mesh_context(run.mesh):
            pictures = run.task.visualize(state, outputs, run.stream_key(VISUALIZE_STREAM, step))
        for name, picture in pictures.items():
            if isinstance(picture, str):
                writer.text(step, f"{label}/{name}", picture)
                lines.append(f"{name}:\n{picture}")
            else:
                path = writer.image(step, f"{label}/{name}", picture)
                if path:
                    lines.append(f"{name}: {path}")
    return metrics, lines


def evaluate(config: ml_collections.ConfigDict, workdir: str, split: str | None = None) -> dict[str, Any]:
    """Metrics of the latest checkpoint in `workdir` on `split` (default data.test_split); logged as 'test'."""
    run = build_run(config)
    state, step = restore_latest(run, workdir)
    writer = MetricWriter(workdir)
    try:
        metrics, lines = evaluate_and_log(run, state, split or config.data.test_split, step, writer, "test")
    finally:
        writer.close()
    for line in lines:
        print(line)
    return metrics


def track_best(train_config: ml_collections.ConfigDict, eval_metrics: dict[str, Any], best: float | None,
               evals_without_improvement: int) -> tuple[float | None, int]:
    """(best value so far, evaluations since it improved) of train.early_stopping_metric."""
    name = train_config.early_stopping_metric
    if not name:
        return best, 0
    if name not in eval_metrics:
        raise ConfigError(f"train.early_stopping_metric={name!r} is not an eval metric; choose one of {sorted(eval_metrics)}.")
    value = eval_metrics[name]
    improved = best is None or (value > best if train_config.early_stopping_mode == "max" else value < best)
    return (value, 0) if improved else (best, evals_without_improvement + 1)
