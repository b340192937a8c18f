"""Metrics out of a run: WORKDIR/metrics.jsonl, TensorBoard events, and the terminal."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any

import jax
import numpy as np

from jaxai.images import image_grid, save_png
from jaxai.lazy_imports import without


def _scalar(value: Any) -> Any:
    value = np.asarray(value)
    if value.ndim == 0:
        return value.item()
    return value.tolist()


class MetricWriter:
    """Appends one JSON object per logging event to metrics.jsonl and mirrors scalars to TensorBoard.

    Every line has `step`, `split` ('train', 'eval', 'test' or 'run') and metric values by name.
    Only process 0 writes.
    """

    def __init__(self, workdir: str, tensorboard: bool = True):
        self.enabled = jax.process_index() == 0
        self.workdir = workdir
        self.path = os.path.join(workdir, "metrics.jsonl")
        self._tensorboard = None
        if self.enabled:
            os.makedirs(workdir, exist_ok=True)
            self._file = open(self.path, "a", buffering=1)
            if tensorboard:
                with without("torch"):  # tensorboardX imports it only to accept torch tensors
                    from tensorboardX import SummaryWriter

                self._tensorboard = SummaryWriter(os.path.join(workdir, "tensorboard"))

    def write(self, step: int, split: str, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"step": int(step), "split": split, "time": round(time.time(), 3)}
        record.update({name: _scalar(value) for name, value in metrics.items()})
        self._file.write(json.dumps(record) + "\n")
        if self._tensorboard is not None:
            for name, value in record.items():
                if name not in ("step", "split", "time") and isinstance(value, (int, float)) and math.isfinite(value):
                    self._tensorboard.add_scalar(f"{split}/{name}", value, step)

    def text(self, step: int, tag: str, text: str) -> None:
        """A text artifact (e.g. generated samples) in TensorBoard."""
        if self.enabled and self._tensorboard is not None:
            self._tensorboard.add_text(tag, text, step)

    def image(self, step: int, tag: str, images: np.ndarray) -> str | None:
        """Images ([H, W, C] or [N, H, W, C] as a grid) -> WORKDIR/images/<tag>_<step>.png and TensorBoard.

        Returns the PNG's path (None on processes other than 0).
        """
        if not self.enabled:
            return None
        grid = image_grid(images)
        path = os.path.join(self.workdir, "images", f"{tag.replace('/', '_')}_{int(step):08d}.png")
        save_png(path, grid)
        if self._tensorboard is not None:
            self._tensorboard.add_image(tag, grid, step, dataformats="HWC")
        return path

    def close(self) -> None:
        if self.enabled:
            self._file.close()
            if self._tensorboard is not None:
                self._tensorboard.close()


class ProgressBar:
    """A tqdm bar with the latest loss and throughput; silent off a terminal or on other processes."""

    def __init__(self, total: int, initial: int, enabled: bool = True, unit: str = "step"):
        self._bar = None
        if enabled and jax.process_index() == 0 and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True)

    @property
    def active(self) -> bool:
        """Whether a bar is drawn (else progress goes out as log lines)."""
        return self._bar is not None

    def update(self, steps: int, postfix: dict[str, str] | None = None) -> None:
        if self._bar is not None:
            self._bar.update(steps)
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)

    def write(self, line: str) -> None:
        """A log line that does not break the bar."""
        if self._bar is not None:
            self._bar.write(line)
        elif jax.process_index() == 0:
            print(line, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def format_metrics(metrics: dict[str, Any], keys: tuple[str, ...] | None = None) -> str:
    """'loss=0.1234 accuracy=0.9876' for the scalar metrics (or the given keys)."""
    parts = []
    for name, value in metrics.items():
        if keys is not None and name not in keys:
            continue
        if isinstance(value, float):
            parts.append(f"{name}={value:.4f}" if abs(value) < 1e4 else f"{name}={value:.3g}")
        elif isinstance(value, int):
            parts.append(f"{name}={value}")
    return " ".join(parts)
