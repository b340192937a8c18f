"""Benchmark: train an image classification experiment with the real `jaxai train` command; one JSON line.

    python bench/mnist.py --config experiments/mnist_cnn.py [--config.train.num_epochs=3 ...]
    python bench/mnist.py --config experiments/fashion_mnist_resnet.py    # any classification experiment

Uses $JAXAI_DATA_DIR (default ../shared/data when it exists) for the raw MNIST files. Prints
test_accuracy (after the last epoch) and per epoch, epochs, wall_s (the whole command: start-up,
data, compilation, training, evals), train_s (the loop), steps/s and images/s (median over logged
windows after the first, so without compilation), and the device.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run_training, summary  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="experiments/mnist_cnn.py")
    parser.add_argument("--keep_workdir", default="", help="Train into this directory and keep it.")
    args, overrides = parser.parse_known_args()
    records, wall_s = run_training(args.config, overrides, args.keep_workdir)
    print(json.dumps(report(args.config, overrides, records, wall_s)))


def report(config: str, overrides: list[str], records: list[dict], wall_s: float) -> dict:
    """This benchmark's JSON fields from a run's metrics records (also used by bench/side_by_side.py)."""
    header = next(r for r in records if r["split"] == "run")
    evals = [r for r in records if r["split"] == "eval"]
    result = {
        "bench": "mnist",
        "config": config,
        "overrides": overrides,
        "test_accuracy": evals[-1]["accuracy"],
        "accuracy_by_epoch": [round(r["accuracy"], 4) for r in evals],
        "epochs": round(evals[-1]["step"] / header["steps_per_epoch"], 3),
        **summary(records, wall_s),
    }
    result["images_per_s"] = result.pop("examples_per_s")
    return result


if __name__ == "__main__":
    main()
