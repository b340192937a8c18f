"""Benchmark: train a VAE experiment with the real `jaxai train`, then `jaxai eval` its k-sample NLL; one JSON line.

    python bench/vae.py --config experiments/mnist_vae.py [--iw_samples 1000] [--config.train.num_epochs=3 ...]

Trains in a fresh workdir (kept with --keep_workdir), then runs `python -m jaxai eval --workdir W
--config.task.iw_samples=K` on the test split. Prints neg_elbo (one-sample negative ELBO, nats per
image), iw_nll (importance-weighted test NLL with k = K samples per image, nats), k, epochs,
neg_elbo_by_eval (the training evals), wall_s (training command: start-up, data, compilation,
training, evals), train_s (the loop), eval_s (the k-sample eval command), steps/s and images/s (median
over logged windows after the first, so without compilation), and the device. Uses $JAXAI_DATA_DIR
(default ../shared/data when it exists) for the raw MNIST files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, bench_env, run_training, summary  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="experiments/mnist_vae.py")
    parser.add_argument("--iw_samples", type=int, default=1000, help="Importance samples per test image (k).")
    parser.add_argument("--keep_workdir", default="", help="Train into this directory and keep it.")
    args, overrides = parser.parse_known_args()
    if args.iw_samples < 1:
        parser.error(f"--iw_samples={args.iw_samples}: the bench reports an importance-weighted NLL; ask for k >= 1.")
    workdir = args.keep_workdir or tempfile.mkdtemp(prefix="jaxai-bench-vae-")
    try:
        records, wall_s = run_training(args.config, overrides, keep_workdir=workdir)
        test, eval_s = run_eval(workdir, args.iw_samples)
    finally:
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report(args.config, overrides, records, wall_s, test, eval_s, args.iw_samples)))


def run_eval(workdir: str, iw_samples: int) -> tuple[dict, float]:
    """`jaxai eval` of the latest checkpoint with k importance samples: (its JSON line, seconds)."""
    command = [sys.executable, "-m", "jaxai", "eval", "--workdir", workdir, f"--config.task.iw_samples={iw_samples}"]
    start = time.perf_counter()
    completed = subprocess.run(command, env=bench_env(), cwd=ROOT, capture_output=True, text=True)
    eval_s = time.perf_counter() - start
    if completed.returncode:
        sys.stderr.write(completed.stdout + completed.stderr)
        sys.exit(completed.returncode)
    return json.loads(completed.stdout.strip().splitlines()[-1]), eval_s


def report(config: str, overrides: list[str], records: list[dict], wall_s: float, test: dict, eval_s: float,
           iw_samples: int) -> dict:
    """This benchmark's JSON fields from the training records and the k-sample eval."""
    header = next(r for r in records if r["split"] == "run")
    evals = [r for r in records if r["split"] == "eval"]
    return {
        "bench": "vae",
        "config": config,
        "overrides": overrides,
        "neg_elbo": round(test["neg_elbo"], 3),
        "iw_nll": round(test["iw_nll"], 3),
        "k": iw_samples,
        "active_units": test.get("active_units"),
        "num_test_images": test["num_examples"],
        "neg_elbo_by_eval": [round(r["neg_elbo"], 2) for r in evals],
        "epochs": round(evals[-1]["step"] / header["steps_per_epoch"], 3),
        "eval_s": round(eval_s, 1),
        **summary(records, wall_s),
    }


if __name__ == "__main__":
    main()
