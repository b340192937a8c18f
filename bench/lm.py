"""Benchmark: train a language-model experiment with the real `jaxai train`; print one JSON line.

    python bench/lm.py --config experiments/shakespeare_char_gpt_cpu.py
    python bench/lm.py --config experiments/shakespeare_char_lstm.py --config.train.num_steps=600

Prints the final val loss (over every non-overlapping block of the val split), the val loss at
each eval, wall_s (whole command), train_s (the loop), ms per iteration and tokens/s (median over
logged windows after the first), MFU against the device's peak, and the device.
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
    parser.add_argument("--config", default="experiments/shakespeare_char_gpt_cpu.py")
    parser.add_argument("--keep_workdir", default="", help="Train into this directory and keep it.")
    args, overrides = parser.parse_known_args()
    records, wall_s = run_training(args.config, overrides, args.keep_workdir)
    print(json.dumps(report(args.config, overrides, records, wall_s)))


def report(config: str, overrides: list[str], records: list[dict], wall_s: float) -> dict:
    """This benchmark's JSON fields from a run's metrics records (also used by bench/side_by_side.py)."""
    evals = [r for r in records if r["split"] == "eval"]
    start = next(r for r in records if r["split"] == "run")
    return {
        "bench": "lm",
        "config": config,
        "overrides": overrides,
        "val_loss": round(evals[-1]["loss"], 4),
        "val_loss_by_step": {r["step"]: round(r["loss"], 4) for r in evals},
        "steps": evals[-1]["step"],
        "num_parameters": start["num_parameters"],
        **summary(records, wall_s),
    }


if __name__ == "__main__":
    main()
