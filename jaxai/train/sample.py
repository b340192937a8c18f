"""`jaxai sample`: what the task of a trained run generates (text, or a PNG grid of images)."""

from __future__ import annotations

import os

import jax
import ml_collections
import numpy as np

from jaxai.errors import UsageError
from jaxai.images import save_png
from jaxai.tasks.base import SampleOptions
from jaxai.train.build import build_run, mesh_context, restore_latest


def sample(config: ml_collections.ConfigDict, workdir: str, options: SampleOptions, seed: int = 0) -> list[str] | np.ndarray:
    """Samples from the latest checkpoint in `workdir`: texts, or images [N, H, W, C] in [0, 1].

    The same seed gives the same output.
    """
    run = build_run(config)
    if run.task.sample is None:
        raise UsageError(
            f"`jaxai sample` needs a generative run (a language model, VAE or GAN); {workdir} trained the "
            f"{config.task.name!r} task, which generates nothing. Use `jaxai eval --workdir {workdir}` instead."
        )
    if options.num < 0:
        raise UsageError(f"--num={options.num}: ask for at least one sample.")
    state, _ = restore_latest(run, workdir)
    with mesh_context(run.mesh):
        samples = run.task.sample(state, jax.random.key(seed), options)
    return samples if isinstance(samples, list) else np.asarray(jax.device_get(samples))


def write_samples(samples: list[str] | np.ndarray, out: str) -> str:
    """Texts as they are; images as a PNG grid at `out`. Returns what to print."""
    if isinstance(samples, list):
        return "\n---------------\n".join(samples)
    save_png(out, samples)
    return f"{len(samples)} samples -> {os.path.abspath(out)}"
