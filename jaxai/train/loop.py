"""The one training driver: data, sharded state, jitted steps, periodic eval and checkpoints, resume."""

from __future__ import annotations

import json
import os
import time
from typing import Any, Iterator

import jax
import ml_collections

from jaxai import runtime, transfer
from jaxai.checkpoint import Checkpointer
from jaxai.errors import NonFiniteLossError
from jaxai.flops import peak_flops
from jaxai.images import curves_figure
from jaxai.logging import MetricWriter, ProgressBar, format_metrics
from jaxai.tasks.base import parameter_counts
from jaxai.train.build import Run, build_run, load_pretrained_state, mesh_context, restore_or_init
from jaxai.train.evaluation import evaluate_and_log, track_best
from jaxai.train.window import MetricWindow, non_finite, progress_postfix
from jaxai.train.workdir import prepare_workdir


def is_due(step: int, every: int) -> bool:
    return every > 0 and step % every == 0


class Cadence:
    """When to log, evaluate and checkpoint (in steps; 0 in the config means once per epoch)."""

    def __init__(self, train_config: ml_collections.ConfigDict, steps_per_epoch: int, total_steps: int):
        self.log_every = max(1, train_config.log_every)
        self.eval_every = train_config.eval_every or steps_per_epoch
        self.checkpoint_every = train_config.checkpoint_every or steps_per_epoch
        self.total_steps = total_steps

    def evaluate(self, step: int) -> bool:
        return is_due(step, self.eval_every) or step == self.total_steps

    def save(self, step: int) -> bool:
        return is_due(step, self.checkpoint_every) or step == self.total_steps

    def log(self, step: int) -> bool:
        return is_due(step, self.log_every) or self.evaluate(step) or self.save(step)


class Trainer:
    """One training run in a workdir: the state, its writers and the periodic actions around each step."""

    def __init__(self, run: Run, workdir: str):
        self.run, self.workdir = run, workdir
        self.config = run.config
        self.cadence = Cadence(self.config.train, run.dataset.steps_per_epoch, run.total_steps)
        self.writer = MetricWriter(workdir)
        self.checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), self.config.train.max_to_keep)
        self.data_iterator: Iterator = iter(run.dataset.train)
        self.state, self.step = restore_or_init(run, self.checkpointer, self.data_iterator)
        self.init_report: dict[str, Any] = {}
        if self.step == 0 and self.config.init_from.path:  # A resumed run never reads init_from again.
            self.state, self.init_report = load_pretrained_state(run, self.state)
        self.last_saved = self.step
        self.bar = ProgressBar(run.total_steps, self.step, enabled=self.config.train.progress_bar)
        peak = peak_flops() if run.task.flops_per_step else None
        self.window = MetricWindow(self.step, run.task.units_per_step, run.task.flops_per_step, peak)
        self.utilisation = peak.metric if peak else None
        self.eval_metrics: dict[str, Any] = {}
        self.best, self.evals_without_improvement = None, 0
        self.task_metric_names: list[str] = [run.task.headline]  # The train metrics the task returns.

    def start(self) -> None:
        """Saves the data's artifacts, logs the run header and the opening line."""
        if jax.process_index() == 0:
            for name, artifact in self.run.dataset.artifacts.items():
                artifact.save(os.path.join(self.workdir, name))
        counts = parameter_counts(self.run.task, self.run.abstract_state)
        header = run_header(self.run, counts, resumed=self.step > 0)
        if transfer.freeze_pattern(self.config) and hasattr(self.run.abstract_state, "params"):
            header["num_trainable_parameters"] = transfer.trainable_parameters(self.config, self.run.abstract_state.params)
        if self.init_report:
            header["init_from"] = self.init_report
        self.writer.write(self.step, "run", header)
        networks = "" if len(counts) == 1 else " (" + ", ".join(f"{name} {count:,}" for name, count in counts.items()) + ")"
        self.bar.write(f"{'Resuming' if self.step else 'Starting'} at step {self.step}/{self.run.total_steps} "
                       f"({header['num_parameters']:,} parameters{networks}{trainable_note(header)}, "
                       f"mesh {dict(self.run.mesh.shape)}).")
        if self.init_report:
            new_head = f"; new head, freshly initialised: {', '.join(self.init_report['new_head'])}" if self.init_report["new_head"] else ""
            self.bar.write(f"Loaded {self.init_report['loaded']} parameter arrays from {self.init_report['path']}{new_head}.")

    def train_one_step(self) -> None:
        data_start = time.perf_counter()
        batch = self.run.put_batch(next(self.data_iterator))
        data_seconds = time.perf_counter() - data_start
        self.state, metrics = self.run.train_step(self.state, batch)
        self.step += 1
        self.window.add(metrics, data_seconds)
        self.bar.update(1)

    def log_window(self) -> None:
        """Logs the window's means and throughput; stops on a non-finite value, keeping the last checkpoint."""
        if not self.window:
            return
        means = self.window.means(self.step)
        if non_finite(means):
            self.checkpointer.wait()
            raise NonFiniteLossError(
                f"Training metrics became non-finite between steps {self.window.start_step} and {self.step}: "
                f"{format_metrics(means)}. The last good checkpoint (step {self.checkpointer.latest_step()}) is kept in "
                f"{self.checkpointer.directory}. Lower --config.optimizer.learning_rate or set --config.optimizer.grad_clip_norm=1.0."
            )
        self.writer.write(self.step, "train", means)
        task_metrics = list(self.window.metrics[0])
        self.task_metric_names = [self.run.task.headline] + [name for name in task_metrics if name != self.run.task.headline]
        postfix = progress_postfix(means, self.run.task.headline, task_metrics, list(self.run.task.units_per_step), self.utilisation)
        self.bar.update(0, postfix)
        if not self.bar.active:  # No terminal (a log file, a batch job): a line per logging event instead.
            self.bar.write(f"step {self.step}/{self.run.total_steps}: train " + " ".join(f"{k}={v}" for k, v in postfix.items()))
        self.window.restart(self.step)

    def evaluate(self) -> bool:
        """Evaluates and logs; True when early stopping says to stop."""
        train_config = self.config.train
        self.eval_metrics, lines = evaluate_and_log(
            self.run, self.state, self.config.data.eval_split, self.step, self.writer, "eval", train_config.eval_batches,
        )
        self.bar.write(f"step {self.step}: eval {format_metrics(self.eval_metrics)}")
        for line in lines:
            self.bar.write(f"  {line}")
        self.best, self.evals_without_improvement = track_best(train_config, self.eval_metrics, self.best, self.evals_without_improvement)
        stop = bool(train_config.early_stopping_metric) and self.evals_without_improvement >= train_config.early_stopping_patience
        if stop:
            self.bar.write(f"Early stopping at step {self.step}: eval {train_config.early_stopping_metric} "
                           f"has not improved for {self.evals_without_improvement} evaluations (best {self.best:.4f}).")
        return stop

    def save(self) -> None:
        self.checkpointer.save(self.step, self.state, self.data_iterator)
        self.last_saved = self.step

    def after_step(self) -> bool:
        """The periodic actions due at this step; True when training should stop early."""
        step = self.step
        evaluate_now, save_now = self.cadence.evaluate(step), self.cadence.save(step)
        if self.cadence.log(step):
            self.log_window()
        stop_early = self.evaluate() if evaluate_now else False
        if save_now or stop_early:
            self.save()
        if evaluate_now or save_now:
            self.window.restart_clock()  # Throughput counts training steps only.
        return stop_early

    def finish(self, wall_s: float) -> None:
        if not self.eval_metrics:  # Resumed at the end: report the final metrics again.
            self.evaluate()
        if self.run.task.export is not None and jax.process_index() == 0:
            files = self.run.task.export(jax.device_get(self.state), self.workdir)
            for what, path in files.items():
                self.bar.write(f"Exported {what}: {path}")
            if files:
                self.writer.write(self.step, "run", {"event": "export", **files})
        self.plot_train_curves()
        self.writer.write(self.step, "run", {"event": "end", "wall_s": round(wall_s, 3), "last_checkpoint": self.last_saved})

    def plot_train_curves(self) -> None:
        """The task's train metrics over the whole run (resumed parts too) as WORKDIR/images/train_curves_<step>.png."""
        if not self.writer.enabled or not os.path.exists(self.writer.path):
            return
        with open(self.writer.path) as file:
            records = [record for record in map(json.loads, file) if record["split"] == "train"]
        names = [name for name in self.task_metric_names if any(name in record for record in records)]
        if names:
            self.writer.image(self.step, "train/curves", curves_figure(records, names))

    def close(self) -> None:
        self.bar.close()
        self.checkpointer.wait()
        self.checkpointer.close()
        self.writer.close()


def train(config: ml_collections.ConfigDict, workdir: str, *, overwrite: bool = False) -> dict[str, Any]:
    """Trains `config` in `workdir`, resuming from its latest checkpoint; returns the last eval metrics."""
    workdir = os.path.abspath(workdir)
    prepare_workdir(workdir, config, overwrite)
    trainer = Trainer(build_run(config), workdir)
    start_time = time.perf_counter()
    try:
        trainer.start()
        with mesh_context(trainer.run.mesh):
            while trainer.step < trainer.run.total_steps:
                trainer.train_one_step()
                if trainer.after_step():
                    break
        trainer.finish(time.perf_counter() - start_time)
    finally:
        trainer.close()
    return trainer.eval_metrics


def trainable_note(header: dict[str, Any]) -> str:
    """', N trainable' where some parameters are frozen."""
    trainable = header.get("num_trainable_parameters")
    return f", {trainable:,} trainable" if trainable is not None else ""


def run_header(run: Run, counts: dict[str, int], resumed: bool) -> dict[str, Any]:
    """The 'run' record opening a run: sizes, devices, process settings."""
    header = {
        "event": "resume" if resumed else "start",
        "total_steps": run.total_steps,
        "steps_per_epoch": run.dataset.steps_per_epoch,
        "num_parameters": sum(counts.values()),
        "devices": f"{jax.device_count()}x {jax.devices()[0].device_kind}",
        "mesh": dict(run.mesh.shape),
        **runtime.describe(),
    }
    if len(counts) > 1:
        header.update({f"num_parameters_{name}": count for name, count in counts.items()})
    return header
