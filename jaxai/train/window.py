"""The metric window: train metrics of the steps since the last log line, reduced to means and throughput."""

from __future__ import annotations

import math
import time
from typing import Any, Mapping

import jax
import numpy as np

from jaxai.flops import Peak


class MetricWindow:
    """Collects each step's metrics (still on device) and the host time spent on data between logs."""

    def __init__(self, step: int, units_per_step: Mapping[str, float], flops_per_step: float, peak: Peak | None):
        self.units_per_step = dict(units_per_step)
        self.flops_per_step = flops_per_step
        self.peak = peak
        self.restart(step)

    def restart(self, step: int) -> None:
        """Starts a new window at `step`; time from now on counts."""
        self.metrics: list[dict[str, jax.Array]] = []
        self.start_step = step
        self.start_time = time.perf_counter()
        self.data_seconds = 0.0  # Host time spent producing and placing this window's batches.

    def restart_clock(self) -> None:
        """Excludes what just happened (eval, checkpointing) from the throughput."""
        self.start_time = time.perf_counter()

    def add(self, metrics: dict[str, jax.Array], data_seconds: float) -> None:
        self.metrics.append(metrics)
        self.data_seconds += data_seconds

    def __bool__(self) -> bool:
        return bool(self.metrics)

    def means(self, step: int) -> dict[str, float]:
        """Mean of each metric over the window, plus steps/s, `<unit>_per_s`, step_ms, data_ms, utilisation."""
        fetched = jax.device_get(self.metrics)
        means = {key: float(np.mean([metrics[key] for metrics in fetched])) for key in fetched[0]}
        elapsed = time.perf_counter() - self.start_time
        steps = step - self.start_step
        means["steps_per_s"] = steps / elapsed
        for unit, per_step in self.units_per_step.items():
            means[f"{unit}_per_s"] = steps * per_step / elapsed
        # step_ms is the wall time per step; data_ms the part of it the host spent on next(batch) and
        # its transfer, during which the device runs the steps already dispatched (async dispatch).
        means["step_ms"] = 1000 * elapsed / steps
        means["data_ms"] = 1000 * self.data_seconds / steps
        if self.flops_per_step and self.peak and self.peak.flops:
            means[self.peak.metric] = steps * self.flops_per_step / elapsed / (self.peak.flops * jax.device_count())
        return means


def non_finite(means: dict[str, float]) -> bool:
    return not all(math.isfinite(value) for value in means.values())


def progress_postfix(means: dict[str, float], headline: str, task_metrics: list[str],
                     units: list[str], utilisation: str | None) -> dict[str, str]:
    """The progress bar's fields: the task's metrics (headline first), throughput, utilisation, step time."""
    postfix = {name: f"{means[name]:.4g}" for name in [headline] + [m for m in task_metrics if m != headline] if name in means}
    if units:
        postfix[f"{units[0]}/s"] = f"{means[f'{units[0]}_per_s']:,.0f}"
    if utilisation and utilisation in means:
        label = "mfu" if utilisation == "mfu" else "of matmul"
        postfix[label] = f"{100 * means[utilisation]:.1f}%"
    postfix["ms/step"] = f"{means['step_ms']:.1f} (data {means['data_ms']:.1f})"
    return postfix
