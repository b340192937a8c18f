"""Task registry. A task is a training objective: a config section and a `Task` of pure functions."""

from __future__ import annotations

import difflib
import importlib
from types import ModuleType

import ml_collections

from jaxai.errors import ConfigError

from jaxai.tasks.base import Task

# name -> module defining `default_config()` and `build(config, dataset_info, total_steps) -> Task`.
_REGISTRY = {
    "classification": "jaxai.tasks.classification",
    "gan": "jaxai.tasks.gan",
    "language_model": "jaxai.tasks.language_model",
    "seq2seq": "jaxai.tasks.seq2seq",
    "word2vec": "jaxai.tasks.word2vec",
    "vae": "jaxai.tasks.vae",
    "forecasting": "jaxai.tasks.forecasting",
    "dqn": "jaxai.tasks.dqn",
}

__all__ = ["Task", "task_config", "task_module"]


def task_module(name: str) -> ModuleType:
    """The module implementing task `name`."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"Unknown task {name!r}.{hint} Known tasks: {sorted(_REGISTRY)}.")
    return importlib.import_module(_REGISTRY[name])


def task_config(name: str) -> ml_collections.ConfigDict:
    """The task's config section: `name` plus the task's own keys at their defaults."""
    config = task_module(name).default_config()
    config.name = name
    return config
