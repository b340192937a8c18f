"""Benchmark: train an MNIST experiment with the real `jaxai train` command; print one JSON line.

    python bench/mnist.py --config experiments/mnist_cnn.py [--config.train.num_epochs=3 ...]

Uses $JAXAI_DATA_DIR (default ../shared/data when it exists) for the raw MNIST files. Prints
test_accuracy, epochs, wall_s (the whole command: start-up, data, compile, training, evals),
train_s (the training loop), train_steps_per_s and images_per_s (mean over logged windows after the
first, i.e. without compilation), and the device.
"""

from __future__ import annotations

import argparse
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


def read_records(workdir: str) -> list[dict]:
    with open(os.path.join(workdir, "metrics.jsonl")) as file:
        return [json.loads(line) for line in file]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="experiments/mnist_cnn.py")
    parser.add_argument("--keep_workdir", default="", help="Train into this directory and keep it.")
    args, overrides = parser.parse_known_args()

    env = dict(os.environ)
    shared = os.path.join(os.path.dirname(ROOT), "shared", "data")
    if "JAXAI_DATA_DIR" not in env and os.path.isdir(shared):
        env["JAXAI_DATA_DIR"] = shared
    workdir = args.keep_workdir or tempfile.mkdtemp(prefix="jaxai-bench-")
    command = [sys.executable, "-m", "jaxai", "train", "--config", args.config, "--workdir", workdir,
               "--config.train.progress_bar=False", "--overwrite", *overrides]
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    wall_s = time.perf_counter() - start
    if completed.returncode:
        sys.stderr.write(completed.stdout + completed.stderr)
        sys.exit(completed.returncode)

    records = read_records(workdir)
    header = next(r for r in records if r["split"] == "run" and r.get("event") == "start")
    end = next(r for r in reversed(records) if r["split"] == "run" and r.get("event") == "end")
    train_records = [r for r in records if r["split"] == "train"]
    evals = [r for r in records if r["split"] == "eval"]
    steady = train_records[1:] or train_records
    steps_per_epoch = header["steps_per_epoch"]
    result = {
        "bench": "mnist",
        "config": args.config,
        "overrides": overrides,
        "test_accuracy": evals[-1]["accuracy"],
        "accuracy_by_epoch": [round(r["accuracy"], 4) for r in evals],
        "epochs": round(evals[-1]["step"] / steps_per_epoch, 3),
        "wall_s": round(wall_s, 1),
        "train_s": end["wall_s"],
        "train_steps_per_s": round(statistics.median(r["steps_per_s"] for r in steady), 1),
        "images_per_s": round(statistics.median(r["examples_per_s"] for r in steady)),
        "device": header["devices"],
        "allocator": header.get("allocator", "default"),
        "date": datetime.date.today().isoformat(),
    }
    print(json.dumps(result))
    if not args.keep_workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
