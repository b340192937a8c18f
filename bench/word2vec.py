"""Benchmark: train the word2vec experiment with the real `jaxai train` command; print one JSON line.

    python bench/word2vec.py [--config experiments/shakespeare_word2vec.py] [--config.train.num_epochs=5 ...]

Prints final_loss (mean train loss of the last logged window), epochs, epoch_s (one epoch of training
steps at the median logged rate, i.e. without compilation, evals and checkpoints), the common timing
figures (bench/common.py), pairs_per_s, and the device. The nearest neighbours of a few frequent
words at the last eval go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run_training, summary  # noqa: E402

SHOWN_WORDS = ("king", "queen", "lord", "love", "man", "good", "go")  # Neighbours printed to stderr.


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="experiments/shakespeare_word2vec.py")
    parser.add_argument("--keep_workdir", default="", help="Train into this directory and keep it.")
    args, overrides = parser.parse_known_args()
    records, wall_s = run_training(args.config, overrides, args.keep_workdir)
    header = next(r for r in records if r["split"] == "run")
    train_records = [r for r in records if r["split"] == "train"]
    evals = [r for r in records if r["split"] == "eval"]
    timing = summary(records, wall_s)
    result = {
        "bench": "word2vec",
        "config": args.config,
        "overrides": overrides,
        "final_loss": round(train_records[-1]["loss"], 4),
        "epochs": round(evals[-1]["step"] / header["steps_per_epoch"], 3),
        "steps_per_epoch": header["steps_per_epoch"],
        "epoch_s": round(header["steps_per_epoch"] / timing["train_steps_per_s"], 2),
        "pairs_per_s": timing.pop("pairs_per_s"),
        "analogies": evals[-1].get("analogies", {}),
        **timing,
    }
    print(json.dumps(result))
    nearest = evals[-1].get("nearest", {})
    for word in SHOWN_WORDS:
        if word in nearest:
            print(f"{word}: {' '.join(nearest[word])}", file=sys.stderr)


if __name__ == "__main__":
    main()
