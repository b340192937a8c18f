"""Helpers for tests that train into a workdir: reading metrics.jsonl, faking an interrupted run."""

import json
import os
import shutil


def read_metrics(workdir: str, split: str) -> list[dict]:
    """The records of one split ('train', 'eval', 'test', 'run') in a workdir's metrics.jsonl."""
    with open(os.path.join(workdir, "metrics.jsonl")) as file:
        return [record for record in map(json.loads, file) if record["split"] == split]


def interrupted_copy(whole: str, resumed: str, checkpoint_step: int) -> None:
    """Copies a finished run's workdir as it was when killed right after its `checkpoint_step` checkpoint."""
    shutil.copytree(whole, resumed)
    checkpoints = os.path.join(resumed, "checkpoints")
    for name in os.listdir(checkpoints):
        if name.isdigit() and int(name) > checkpoint_step:
            shutil.rmtree(os.path.join(checkpoints, name))
    with open(os.path.join(resumed, "metrics.jsonl")) as file:
        kept = [line for line in file if json.loads(line)["step"] <= checkpoint_step]
    with open(os.path.join(resumed, "metrics.jsonl"), "w") as file:
        file.writelines(kept)
