"""A run's workdir: its config record, and refusing to mix two different runs in one directory."""

from __future__ import annotations

import json
import os
import shutil

import jax
import ml_collections

from jaxai.config import CONFIG_FILE, to_json
from jaxai.errors import WorkdirError

# Keys that change how a run is observed, not what it computes: a resume may change them.
OBSERVATION_KEYS = {
    "train.log_every", "train.eval_every", "train.eval_batches", "train.checkpoint_every",
    "train.max_to_keep", "train.progress_bar", "data.data_dir", "data.tfds_dir",
}


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_differences(saved: dict, current: dict) -> list[str]:
    """Keys (outside OBSERVATION_KEYS) whose values differ between two config records."""
    saved, current = _flatten(saved), _flatten(current)
    keys = sorted((set(saved) | set(current)) - OBSERVATION_KEYS)
    return [f"{key}: {saved.get(key, '<absent>')!r} -> {current.get(key, '<absent>')!r}" for key in keys if saved.get(key) != current.get(key)]


def prepare_workdir(workdir: str, config: ml_collections.ConfigDict, overwrite: bool) -> None:
    """Creates the workdir, or checks that it holds a run of this same config (or wipes it on request)."""
    record = to_json(config)
    path = os.path.join(workdir, CONFIG_FILE)
    if os.path.exists(path):
        with open(path) as file:
            saved = json.load(file)
        differences = config_differences(saved, json.loads(record))
        if differences and not overwrite:
            shown = "\n  ".join(differences[:10])
            raise WorkdirError(
                f"Workdir {workdir} holds a run with a different config:\n  {shown}\n"
                "Use another --workdir, or pass --overwrite to delete that run and start afresh."
            )
        if overwrite:
            if jax.process_index() == 0:
                shutil.rmtree(workdir)
    elif overwrite and os.path.isdir(workdir) and jax.process_index() == 0:
        shutil.rmtree(workdir)
    if os.path.isdir(workdir) and not os.path.exists(path) and os.listdir(workdir):
        raise WorkdirError(
            f"Workdir {workdir} is not empty and holds no jaxai run ({CONFIG_FILE} missing). "
            "Use another --workdir, or pass --overwrite to delete its contents."
        )
    if jax.process_index() == 0:
        os.makedirs(workdir, exist_ok=True)
        temporary = path + ".tmp"
        with open(temporary, "w") as file:
            file.write(record)
        os.replace(temporary, path)
