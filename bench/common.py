"""Shared by the benchmarks: run the real `jaxai train` command and read back its metrics.jsonl."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench_env() -> dict[str, str]:
    """This process's environment, with JAXAI_DATA_DIR pointing at ../shared/data when unset and present."""
    env = dict(os.environ)
    shared = os.path.join(os.path.dirname(ROOT), "shared", "data")
    if "JAXAI_DATA_DIR" not in env and os.path.isdir(shared):
        env["JAXAI_DATA_DIR"] = shared
    return env


def run_training(config: str, overrides: list[str], keep_workdir: str = "") -> tuple[list[dict], float]:
    """Trains `config` with `python -m jaxai train` in a fresh workdir; (metrics records, wall seconds)."""
    env = bench_env()
    workdir = keep_workdir or tempfile.mkdtemp(prefix="jaxai-bench-")
    command = [sys.executable, "-m", "jaxai", "train", "--config", config, "--workdir", workdir,
               "--config.train.progress_bar=False", "--overwrite", *overrides]
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    wall_s = time.perf_counter() - start
    if completed.returncode:
        sys.stderr.write(completed.stdout + completed.stderr)
        sys.exit(completed.returncode)
    with open(os.path.join(workdir, "metrics.jsonl")) as file:
        records = [json.loads(line) for line in file]
    if not keep_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return records, wall_s


def summary(records: list[dict], wall_s: float) -> dict:
    """Timing and device facts every benchmark reports."""
    header = next(r for r in records if r["split"] == "run" and r.get("event") == "start")
    end = next(r for r in reversed(records) if r["split"] == "run" and r.get("event") == "end")
    train = [r for r in records if r["split"] == "train"]
    steady = train[1:] or train  # The first window includes compilation.
    result = {
        "wall_s": round(wall_s, 1),
        "train_s": end["wall_s"],
        "train_steps_per_s": round(statistics.median(r["steps_per_s"] for r in steady), 2),
        "ms_per_step": round(1000 / statistics.median(r["steps_per_s"] for r in steady), 2),
        # Host time per step spent fetching and placing the batch (overlaps the dispatched steps).
        "data_ms_per_step": round(statistics.median(r["data_ms"] for r in steady), 3),
        "device": header["devices"],
        "allocator": header.get("allocator", "default"),
        "date": datetime.date.today().isoformat(),
    }
    for name in steady[0]:  # The task's throughput units (examples_per_s, tokens_per_s, ...).
        if name.endswith("_per_s") and name != "steps_per_s":
            result[name] = round(statistics.median(r[name] for r in steady))
    for name in ("mfu", "flops_vs_matmul"):
        if name in steady[0]:
            result[name] = round(statistics.median(r[name] for r in steady), 4)
    return result


def load_bench_config(config: str, overrides: list[str]):
    """The experiment's locked config with a benchmark's `--config.KEY=VALUE` overrides, as `jaxai train` reads them."""
    sys.path.insert(0, ROOT)
    from jaxai.config import load_config

    return load_config(os.path.join(ROOT, config), [override.removeprefix("--config.") for override in overrides])
