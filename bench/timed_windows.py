"""Throughput in windows of step time, shared by a jaxai benchmark and its PyTorch peer (same rules both sides)."""

from __future__ import annotations

import statistics
import time
from typing import Callable

WARMUP_STEPS = 1  # Untimed (still trained): the first step is several times slower.
WINDOW_S = 2.0  # Seconds of step time per throughput reading.


def timed_windows(train_step: Callable[[int], float], batch_size: int, seconds: float) -> dict:
    """Runs `train_step(step) -> loss` (returning only once the step is done) until `seconds` of timed steps.

    After WARMUP_STEPS untimed steps, steps are timed in windows of ~WINDOW_S; the run stops at the first
    window end past `seconds`. Returns images_per_s (median over windows), images_per_s_best, windows,
    loss (the last window's mean), steps and train_s.
    """
    windows = []  # [images, seconds, summed loss, steps]
    current = [0, 0.0, 0.0, 0]
    train_s, step = 0.0, 0
    while True:
        start = time.perf_counter()
        loss = train_step(step)
        elapsed = time.perf_counter() - start
        step += 1
        if step <= WARMUP_STEPS:
            continue
        current = [current[0] + batch_size, current[1] + elapsed, current[2] + loss, current[3] + 1]
        train_s += elapsed
        if current[1] >= WINDOW_S:
            windows.append(current)
            current = [0, 0.0, 0.0, 0]
            if train_s >= seconds:
                break
    speeds = [w[0] / w[1] for w in windows]
    return {
        "images_per_s": round(statistics.median(speeds), 1),
        "images_per_s_best": round(max(speeds), 1),
        "windows": len(windows),
        "loss": round(windows[-1][2] / windows[-1][3], 4),
        "steps": step,
        "train_s": round(train_s, 2),
    }
