"""Benchmark: a forecasting experiment trained with the real `jaxai train` for several seeds, and the
classical baselines on the same test split; one JSON line.

    python bench/forecast.py --config experiments/m3_monthly_lstm_attention.py [--seeds 0 1 2] [--config.KEY=VALUE ...]
    python bench/forecast.py --config experiments/m3_monthly_lstm_attention.py:yearly
    python bench/forecast.py --config.data.eval_split=validation      # choose recipes here: each history's last horizon held out

Prints, for jaxai, each seed's final test sMAPE, MASE and OWA and their means over seeds; for each
baseline (naive, seasonal naive, Naive2, statsmodels' Theta) its sMAPE, MASE and OWA on the same
series; whether the mean beats Theta on each metric; and wall_s, the whole benchmark's seconds
(every training command, start-up and compilation included, and the baselines).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import load_bench_config, run_training, summary  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="experiments/m3_monthly_lstm_attention.py")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args, overrides = parser.parse_known_args()
    start = time.perf_counter()
    runs = []
    for seed in args.seeds:
        records, wall_s = run_training(args.config, [*overrides, f"--config.seed={seed}"])
        final = [r for r in records if r["split"] == "eval"][-1]
        runs.append({"seed": seed, **{k: round(final[k], 4) for k in ("smape", "mase", "owa")},
                     "wall_s": round(wall_s, 1), "timing": summary(records, wall_s)})
    config = load_bench_config(args.config, overrides)
    baselines = baseline_accuracy(config.data)
    print(json.dumps(report(args.config, overrides, runs, baselines, time.perf_counter() - start)))


def baseline_accuracy(data) -> dict[str, dict[str, float]]:
    """sMAPE, MASE, OWA and seconds of each baseline on the experiment's series."""
    from jaxai.data.series import held_out_last_horizon, load_m3, read_csv_series
    from jaxai.tasks import forecast_metrics

    if data.name == "m3":
        series = load_m3(data.frequency, int(data.horizon))
    else:
        series = read_csv_series(data.path, data.frequency, int(data.horizon))
    if data.eval_split == "validation":  # The same held-out horizon the runs were scored on.
        series = held_out_last_horizon(series)
    results = {}
    for name in forecast_metrics.BASELINES:
        began = time.perf_counter()
        forecasts = forecast_metrics.baseline_forecasts(name, series.histories, series.horizon, series.period)
        results[name] = {**forecast_metrics.accuracy(series.histories, series.tests, forecasts, series.period),
                         "seconds": round(time.perf_counter() - began, 1)}
    naive2 = results["naive2"]
    for result in results.values():
        result["owa"] = forecast_metrics.owa(result["smape"], result["mase"], naive2["smape"], naive2["mase"])
        for key in ("smape", "mase", "owa"):
            result[key] = round(result[key], 4)
    return results


def report(config: str, overrides: list[str], runs: list[dict], baselines: dict, wall_s: float) -> dict:
    mean = {key: round(statistics.mean(run[key] for run in runs), 4) for key in ("smape", "mase", "owa")}
    theta = baselines["theta"]
    first = runs[0]["timing"]
    return {
        "bench": "forecast",
        "config": config,
        "overrides": overrides,
        "jaxai": {"per_seed": [{k: run[k] for k in ("seed", "smape", "mase", "owa", "wall_s")} for run in runs], "mean": mean},
        "baselines": baselines,
        "beats_theta": {"smape": mean["smape"] < theta["smape"], "mase": mean["mase"] < theta["mase"]},
        "wall_s": round(wall_s, 1),
        "train_s_per_seed": [run["timing"]["train_s"] for run in runs],
        "ms_per_step": first["ms_per_step"],
        "device": first["device"],
        "date": first["date"],
    }


if __name__ == "__main__":
    main()
