"""Benchmark: train a DQN experiment with `jaxai train` (seeds vmapped in one program); one JSON line.

    python bench/dqn.py --config experiments/cartpole_dqn.py                # target: >= 475 for 9 of 10 seeds in 60 s
    python bench/dqn.py --config experiments/minatar_breakout_dqn.py        # target: mean >= 15 in 15 minutes

Reports the final evaluation (each seed's mean return over its evaluation episodes, their mean and
standard deviation, how many seeds reach --target), every evaluation along the way, the seconds
from launching the command to the first evaluation whose mean return (or, with --seeds_at_target N,
whose count of seeds at --target) is reached, and wall_s: launch to exit, start-up and
compilation included.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run_training, summary  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="experiments/cartpole_dqn.py")
    parser.add_argument("--target", type=float, default=475.0, help="Return a seed (or the mean) must reach.")
    parser.add_argument("--seeds_at_target", type=int, default=9,
                        help="Seeds that must reach --target together; 0 judges the mean over seeds instead.")
    args, overrides = parser.parse_known_args()
    launched = time.time()
    records, wall_s = run_training(args.config, [*overrides, f"--config.task.target_return={args.target}"])
    evals = [r for r in records if r["split"] == "eval"]
    met = lambda r: (r["seeds_at_target"] >= args.seeds_at_target) if args.seeds_at_target else r["return"] >= args.target  # noqa: E731
    reached = [r for r in evals if met(r)]
    final = evals[-1]
    env_steps = [r["env_steps_per_s"] for r in records if r["split"] == "train" and "env_steps_per_s" in r][1:]
    result = {
        "bench": "dqn",
        "config": args.config,
        "overrides": overrides,
        "return": round(final["return"], 2),
        "return_std": round(final["return_std"], 2),
        "returns_by_seed": final["returns_by_seed"],
        "seeds_at_target": final["seeds_at_target"],
        "target": args.target,
        "evals": {r["step"]: [round(r["return"], 1), r["seeds_at_target"]] for r in evals},
        "target_met_at_end": met(final),
        "seconds_to_target": round(reached[0]["time"] - launched, 1) if reached else None,
        "env_steps_per_s": round(sorted(env_steps)[len(env_steps) // 2]) if env_steps else None,
        **summary(records, wall_s),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
