"""Benchmark: train a seq2seq experiment with `jaxai train`, time it to a held-out exact match; one JSON line.

    python bench/seq2seq.py --config experiments/addition_seq2seq.py            # the Transformer
    python bench/seq2seq.py --config experiments/addition_lstm_attention.py     # the LSTM, same task
    python bench/seq2seq.py --config experiments/dates_seq2seq.py --beam_check 2000

Prints exact match (greedy decoding of every held-out problem, never teacher-forced) at each eval
and at the end, `seconds_to_target`: wall seconds from launching the command to the first eval at or
above --target (start-up, data generation, compilation and evals included), and wall_s.
`--beam_check N` then restores the final checkpoint and decodes the first N held-out sources greedily
and with beam search (width 4, no length penalty): the JSON gets both exact matches and how often the
beam's best hypothesis is less likely than greedy's (the target is never).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, load_bench_config, run_training, summary  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="experiments/addition_seq2seq.py")
    parser.add_argument("--target", type=float, default=0.995, help="Held-out exact match to time.")
    parser.add_argument("--beam_check", type=int, default=0, help="Held-out sources to decode greedily and by beam.")
    args, overrides = parser.parse_known_args()
    workdir = tempfile.mkdtemp(prefix="jaxai-bench-seq2seq-") if args.beam_check else ""
    launched = time.time()
    records, wall_s = run_training(args.config, overrides, workdir)
    evals = [r for r in records if r["split"] == "eval"]
    reached = [r for r in evals if r["exact_match"] >= args.target]
    result = {
        "bench": "seq2seq",
        "config": args.config,
        "overrides": overrides,
        "exact_match": evals[-1]["exact_match"],
        "token_accuracy": evals[-1]["token_accuracy"],
        "num_examples": evals[-1]["num_examples"],
        "exact_match_by_eval": {r["step"]: round(r["exact_match"], 4) for r in evals},
        "target": args.target,
        "seconds_to_target": round(reached[0]["time"] - launched, 1) if reached else None,
        **summary(records, wall_s),
    }
    if args.beam_check:
        result.update(beam_check(args.config, overrides, workdir, args.beam_check))
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result))


def beam_check(config_path: str, overrides: list[str], workdir: str, num: int) -> dict:
    """Greedy vs beam (width 4) on the first `num` held-out sources of the trained model."""
    import jax
    import numpy as np

    from jaxai.models import decoding
    from jaxai.tasks import seq2seq
    from jaxai.train.build import build_run, restore_latest

    os.chdir(ROOT)
    config = load_bench_config(config_path, overrides)
    run = build_run(config)
    state, _ = restore_latest(run, workdir)
    model = seq2seq.build_seq2seq_model(config, run.dataset.info)
    arrays = next(run.dataset.eval_batches(config.data.eval_split, 1))
    source, target = arrays["source"][:num], arrays["target"][:num]

    @jax.jit
    def both(params, source):
        decode_fn = seq2seq.source_decoder(model, params, source)
        greedy, greedy_log_prob = decoding.greedy_decode(decode_fn, len(source), target.shape[1])
        beams, _, beam_log_prob = decoding.beam_search(decode_fn, len(source), target.shape[1], 4, 0.0)
        return greedy, greedy_log_prob, beams[:, 0], beam_log_prob[:, 0]

    greedy, greedy_log_prob, beam, beam_log_prob = jax.device_get(both(state.params, source))
    return {
        "beam_check_examples": int(len(source)),
        "greedy_exact_match": float(np.mean(seq2seq.exact_match(greedy, target))),
        "beam4_exact_match": float(np.mean(seq2seq.exact_match(beam, target))),
        "beam4_below_greedy": int(np.sum(beam_log_prob < greedy_log_prob - 1e-5)),
    }


if __name__ == "__main__":
    main()
