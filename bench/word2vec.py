"""Benchmark: train the word2vec experiment with the real `jaxai train` command; print one JSON line.

    python bench/word2vec.py [--config experiments/shakespeare_word2vec.py] [--config.train.num_epochs=5 ...]

Prints final_loss (mean train loss of the last logged window), epochs, epoch_s (one epoch of training
steps at the median logged rate, i.e. without compilation, evals and checkpoints), wall_s (the whole
command: start-up, data, compile, training, evals, export), train_s (the training loop),
train_steps_per_s and pairs_per_s (medians over logged windows after the first), and the device.
The nearest neighbours of a few frequent words at the last eval go to stderr.
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
SHOWN_WORDS = ("king", "queen", "lord", "love", "man", "good", "go")  # Neighbours printed to stderr.


def read_records(workdir: str) -> list[dict]:
    with open(os.path.join(workdir, "metrics.jsonl")) as file:
        return [json.loads(line) for line in file]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="experiments/shakespeare_word2vec.py")
    parser.add_argument("--keep_workdir", default="", help="Train into this directory and keep it.")
    args, overrides = parser.parse_known_args()

    workdir = args.keep_workdir or tempfile.mkdtemp(prefix="jaxai-bench-")
    command = [sys.executable, "-m", "jaxai", "train", "--config", args.config, "--workdir", workdir,
               "--config.train.progress_bar=False", "--overwrite", *overrides]
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
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
    steps_per_s = statistics.median(r["steps_per_s"] for r in steady)
    result = {
        "bench": "word2vec",
        "config": args.config,
        "overrides": overrides,
        "final_loss": round(train_records[-1]["loss"], 4),
        "epochs": round(evals[-1]["step"] / steps_per_epoch, 3),
        "steps_per_epoch": steps_per_epoch,
        "epoch_s": round(steps_per_epoch / steps_per_s, 2),
        "wall_s": round(wall_s, 1),
        "train_s": end["wall_s"],
        "train_steps_per_s": round(steps_per_s, 1),
        "pairs_per_s": round(statistics.median(r["examples_per_s"] for r in steady)),
        "analogies": evals[-1].get("analogies", {}),
        "device": header["devices"],
        "allocator": header.get("allocator", "default"),
        "date": datetime.date.today().isoformat(),
    }
    print(json.dumps(result))
    nearest = evals[-1].get("nearest", {})
    for word in SHOWN_WORDS:
        if word in nearest:
            print(f"{word}: {' '.join(nearest[word])}", file=sys.stderr)
    if not args.keep_workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
