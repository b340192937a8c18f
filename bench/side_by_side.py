"""Side-by-side benchmark: jaxai and its PyTorch peer, same model and recipe, same machine, one run.

    pip install -e '.[peers]'                    # PyTorch 2.13 CPU, for the peer scripts only
    python bench/side_by_side.py --model all     # or cnn / gpt / vae / dcgan / resnet18 / lstm

Every training runs alone, one after another, never two at once. Each model prints one JSON line
holding every run's figures and the ratios issue #10 targets:

cnn  1. jaxai, the Keras recipe   `bench/mnist.py --config experiments/mnist_cnn.py:keras`
     2. PyTorch eager, same recipe `bench/peers/torch_mnist_cnn.py --epochs N --evals_per_epoch 4`
        (N=--torch_epochs, default 6: the Keras recipe needs ~4-5 epochs to reach 99.0%; evaluated
        every quarter epoch, as jaxai's experiment is)
     3. jaxai, its best recipe     `bench/mnist.py --config experiments/mnist_cnn.py`
     images_per_s_ratio = (1) / (2) (see below); time_to_99_ratio = (3) / (2), both over training seconds
     (evaluations excluded, jaxai's compilation included) and over wall seconds since the command
     started. When PyTorch never reaches 99.0%, its time is more than its whole run, so the ratio
     is reported as an upper bound (`time_to_99_ratio_at_most`).
gpt  1. jaxai, nanoGPT's recipe    `bench/lm.py --config experiments/shakespeare_char_gpt_cpu.py:nanogpt`
     2. jaxai, its fastest recipe  `bench/lm.py --config experiments/shakespeare_char_gpt_cpu.py:fast`
     3. PyTorch, nanoGPT's recipe  `bench/peers/torch_nanogpt.py`
     ms_per_iter_ratio = jaxai (1) / PyTorch (3); wall_s_ratio likewise for (1) and (2); val losses;
     time_to_1.88_ratio = (2)'s wall seconds from launch to its first eval <= 1.88 / (3)'s wall_s.
vae  jaxai `experiments/mnist_vae_mlp_torch.py` (PyTorch's example VAE: 784-400-20, Adam 1e-3, batch 128,
     dynamically binarized MNIST) for --gen_steps steps, alternating with `bench/peers/torch_vae.py`
     for --gen_seconds, --gen_repeats times; images_per_s_ratio = best jaxai / best PyTorch (and medians).
dcgan the same with `experiments/mnist_dcgan.py` (non-saturating DCGAN, batch 64; sample-quality
     evaluation off) and `bench/peers/torch_dcgan.py`: training images per second, one D and one G
     update per batch on both sides.
resnet18 issue "Vision": ResNet-18 with the CIFAR stem (11,173,962 parameters both sides), synthetic
     32x32x3 uint8 images, batch 128, SGD momentum 0.9 lr 0.1, BN in training mode: `bench/resnet.py`
     (jaxai's classification task and its jitted step, the resnet family's allocator and XLA flags,
     no data pipeline) alternating with `bench/peers/torch_resnet.py` (PyTorch eager, channels_last),
     each for --gen_seconds of timed steps after compilation/warm-up, --gen_repeats pairs (--gen_steps
     does not apply); images_per_s_ratio = best jaxai / best PyTorch (and medians). A step takes
     ~7-16 s on the shared 2-core VM, one step per ~2 s window: give --gen_seconds 30 or more for
     several windows per reading.
lstm issue #17: char-rnn's 2x512 LSTM step (batch 50, 50 characters, Adam 2e-3, clipping 5). jaxai:
     `bench/lm.py --config experiments/shakespeare_char_lstm.py` (the real `jaxai train` on Tiny
     Shakespeare, logged every 5 steps, the first window with compilation dropped) for --lstm_steps
     steps, as the experiment has it (float32) and with bf16 matmuls (`--config.model.dtype=bfloat16`),
     alternating with `bench/peers/torch_char_rnn.py` (PyTorch eager nn.LSTM, float32) for
     --gen_seconds, --gen_repeats rounds. Each run's reading is its median window;
     ms_per_iter_ratio = best jaxai reading / best PyTorch reading (the target is <= 0.8), the
     *_median ratios the medians' ratio, *_bf16 the same for the bf16 runs; ms_per_iter_best_window
     holds each run's fastest window.
dqn_atari issue #18: Atari Breakout, the Nature network and CleanRL's update ratio (one update of batch 32
     per 4 environment steps, one environment): `experiments/atari_breakout_dqn.py` (jaxai's compiled
     driver stepping ALE through host callbacks) alternating with `bench/peers/torch_dqn_atari.py`
     (PyTorch eager, numpy replay buffer, the same Gymnasium wrappers), --gen_repeats rounds, each
     --atari_learning_starts steps of acting only, then --atari_learning_steps timed while learning.
     env_steps_per_s_ratio = best jaxai / best PyTorch learning-phase environment steps per second
     (target >= 1.5), *_median the medians'.

Throughput on this shared VM moves by 10-40% between minutes, so after the runs above
`--speed_repeats` (default 2) short pairs alternate jaxai and PyTorch (the CNN for one epoch, the
GPT for 500 iterations); images_per_s_ratio and ms_per_iter_ratio compare the best reading of each
side (the least disturbed), and the *_median ratios the medians. Every reading is in the JSON.

The machine must be otherwise idle: PyTorch's OpenMP threads slow down up to 10x when another
process holds a core. Each run records the 1-minute load average seen just before it started
(`load_before`); after the first run it still carries the previous run's own threads, so only the
first is a clean reading of what else the machine was doing.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import lm as lm_bench  # noqa: E402
import mnist as mnist_bench  # noqa: E402
from common import ROOT, bench_env, run_training, summary  # noqa: E402

TARGET_ACCURACY = 0.99
TARGET_LOSS = 1.88  # Issue #10: nanoGPT's baby GPT reaches 1.8857.


def log(message: str) -> None:
    sys.stderr.write(f"[side_by_side {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def load_1m() -> float:
    return round(os.getloadavg()[0], 2)


def run_jaxai(bench, config: str, overrides: list[str]) -> tuple[dict, list[dict], float]:
    """Runs `jaxai train` through bench/common.py: (the bench's JSON fields, metrics records, launch time)."""
    log(f"jaxai {config} {' '.join(overrides)}")
    load = load_1m()
    launched = time.time()
    records, wall_s = run_training(config, overrides)
    result = bench.report(config, overrides, records, wall_s)
    result["load_before"] = load
    return result, records, launched


def run_peer(script: str, arguments: list[str]) -> dict:
    """Runs a PyTorch peer script in its own process; its JSON line."""
    return run_script(os.path.join(BENCH, "peers", script), arguments)


def run_script(path: str, arguments: list[str]) -> dict:
    """Runs a benchmark script that prints one JSON line, in its own process; that line, with load_before."""
    command = [sys.executable, path, *arguments]
    log(" ".join(command[1:]))
    load = load_1m()
    completed = subprocess.run(command, env=bench_env(), cwd=ROOT, capture_output=True, text=True)
    if completed.returncode:
        sys.stderr.write(completed.stdout + completed.stderr)
        sys.exit(completed.returncode)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["load_before"] = load
    return result


def training_seconds_to(records: list[dict], step: int) -> float:
    """Seconds spent in training steps up to `step`: the logged windows' lengths (evals excluded)."""
    header = next(r for r in records if r["split"] == "run")
    previous, total = header["step"], 0.0
    for record in records:
        if record["split"] == "train" and record["step"] <= step:
            total += (record["step"] - previous) / record["steps_per_s"]
            previous = record["step"]
    return total


def first_eval(records: list[dict], launched: float, reached) -> dict | None:
    """The first eval record satisfying `reached`: its step, training seconds and wall seconds."""
    header = next(r for r in records if r["split"] == "run")
    for record in records:
        if record["split"] == "eval" and reached(record):
            return {
                "step": record["step"],
                "epoch": round(record["step"] / header["steps_per_epoch"], 3),
                "train_s": round(training_seconds_to(records, record["step"]), 2),
                "wall_s": round(record["time"] - launched, 2),  # Since the command was launched.
                "since_run_start_s": round(record["time"] - header["time"], 2),
            }
    return None


def ratio(numerator, denominator, digits: int = 3):
    return round(numerator / denominator, digits) if numerator is not None and denominator else None


def side_by_side_cnn(args) -> dict:
    jaxai_overrides = [f"--config.train.num_epochs={args.cnn_epochs}"] if args.cnn_epochs else []
    keras, keras_records, keras_launched = run_jaxai(mnist_bench, "experiments/mnist_cnn.py:keras", jaxai_overrides)
    keras["time_to_99_s"] = first_eval(keras_records, keras_launched, lambda r: r["accuracy"] >= TARGET_ACCURACY)
    torch_run = run_peer("torch_mnist_cnn.py", ["--epochs", str(args.torch_epochs), "--evals_per_epoch", "4"])
    best, best_records, best_launched = run_jaxai(mnist_bench, "experiments/mnist_cnn.py", jaxai_overrides)
    best["time_to_99_s"] = first_eval(best_records, best_launched, lambda r: r["accuracy"] >= TARGET_ACCURACY)

    jaxai_speeds, torch_speeds = [keras["images_per_s"]], [torch_run["images_per_s"]]
    for _ in range(args.speed_repeats):  # One-epoch pairs, alternating, for throughput only.
        jaxai_speeds.append(run_jaxai(mnist_bench, "experiments/mnist_cnn.py:keras", ["--config.train.num_epochs=1"])[0]["images_per_s"])
        torch_speeds.append(run_peer("torch_mnist_cnn.py", ["--epochs", "1"])["images_per_s"])

    result = {
        "side_by_side": "mnist_cnn",
        "jaxai_keras": keras,
        "torch_keras": torch_run,
        "jaxai_best": best,
        "images_per_s": {"jaxai_keras": jaxai_speeds, "torch_keras": torch_speeds, "jaxai_best": best["images_per_s"]},
        "images_per_s_ratio": ratio(max(jaxai_speeds), max(torch_speeds)),
        "images_per_s_ratio_median": ratio(statistics.median(jaxai_speeds), statistics.median(torch_speeds)),
    }
    ours, theirs = best["time_to_99_s"], torch_run["time_to_99_s"]
    for kind in ("train_s", "wall_s"):
        if ours is None:
            result[f"time_to_99_ratio_{kind}"] = None  # jaxai's best recipe never reached 99.0%.
        elif theirs is not None:
            result[f"time_to_99_ratio_{kind}"] = ratio(ours[kind], theirs[kind])
        else:
            result[f"time_to_99_ratio_{kind}"] = None
            result[f"time_to_99_ratio_{kind}_at_most"] = ratio(ours[kind], torch_run[kind])
    return result


def side_by_side_gpt(args) -> dict:
    overrides, peer_args = [], []
    if args.gpt_iters:  # A shorter run (a smoke test); the warm-up shrinks only when it would not fit.
        warmup = 100 if args.gpt_iters > 100 else args.gpt_iters // 10
        overrides = [f"--config.train.num_steps={args.gpt_iters}", f"--config.optimizer.schedule.warmup_steps={warmup}"]
        peer_args = ["--max_iters", str(args.gpt_iters), "--lr_decay_iters", str(args.gpt_iters), "--warmup_iters", str(warmup)]
    nanogpt, nanogpt_records, nanogpt_launched = run_jaxai(lm_bench, "experiments/shakespeare_char_gpt_cpu.py:nanogpt", overrides)
    fast, fast_records, fast_launched = run_jaxai(lm_bench, "experiments/shakespeare_char_gpt_cpu.py:fast", overrides)
    for run, records, launched in ((nanogpt, nanogpt_records, nanogpt_launched), (fast, fast_records, fast_launched)):
        run[f"time_to_{TARGET_LOSS}_s"] = first_eval(records, launched, lambda r: r["loss"] <= TARGET_LOSS)
    torch_run = run_peer("torch_nanogpt.py", peer_args)
    jaxai_speeds, torch_speeds = [nanogpt["ms_per_step"]], [torch_run["ms_per_iter"]]
    short = 500  # Iterations of each extra pair, alternating, for ms/iter only.
    for _ in range(args.speed_repeats):
        jaxai_speeds.append(run_jaxai(lm_bench, "experiments/shakespeare_char_gpt_cpu.py:nanogpt", [
            f"--config.train.num_steps={short}", f"--config.train.eval_every={short}"])[0]["ms_per_step"])
        torch_speeds.append(run_peer("torch_nanogpt.py", [
            "--max_iters", str(short), "--lr_decay_iters", str(short), "--eval_every", str(short)])["ms_per_iter"])

    return {
        "side_by_side": "baby_gpt",
        "jaxai_nanogpt": nanogpt,
        "jaxai_fast": fast,
        "torch_nanogpt": torch_run,
        "ms_per_iter": {"jaxai_nanogpt": jaxai_speeds, "jaxai_fast": fast["ms_per_step"], "torch_nanogpt": torch_speeds},
        # Fastest against fastest of the alternating runs: the least disturbed reading of each.
        "ms_per_iter_ratio": ratio(min(jaxai_speeds), min(torch_speeds)),
        "ms_per_iter_ratio_median": ratio(statistics.median(jaxai_speeds), statistics.median(torch_speeds)),
        "ms_per_iter_ratio_first_pair": ratio(nanogpt["ms_per_step"], torch_run["ms_per_iter"]),
        "val_loss": {"jaxai_nanogpt": nanogpt["val_loss"], "jaxai_fast": fast["val_loss"],
                     "torch_nanogpt": torch_run["val_loss"]},
        "wall_s": {"jaxai_nanogpt": nanogpt["wall_s"], "jaxai_fast": fast["wall_s"], "torch_nanogpt": torch_run["wall_s"]},
        # Issue #10: jaxai's wall time (since launch) to val <= 1.88 against nanoGPT's whole 2,000-iteration run.
        f"time_to_{TARGET_LOSS}_ratio": ratio((fast[f"time_to_{TARGET_LOSS}_s"] or {}).get("wall_s"), torch_run["wall_s"]),
        "wall_s_ratio": {"jaxai_nanogpt": ratio(nanogpt["wall_s"], torch_run["wall_s"]),
                         "jaxai_fast": ratio(fast["wall_s"], torch_run["wall_s"])},
    }


# Generative families: jaxai experiment, its quick-eval overrides, PyTorch peer.
GENERATIVE = {
    "vae": ("experiments/mnist_vae_mlp_torch.py", ["--config.task.iw_samples=0"], "torch_vae.py"),
    "dcgan": ("experiments/mnist_dcgan.py", ["--config.task.quality_classifier=none"], "torch_dcgan.py"),
}


def side_by_side_resnet18(args) -> dict:
    """Training images/s of jaxai's ResNet-18 step and PyTorch eager's, alternating, --gen_repeats pairs."""
    seconds = ["--seconds", str(args.gen_seconds)]
    jaxai_runs, torch_runs = [], []
    for _ in range(args.gen_repeats):
        jaxai_runs.append(run_script(os.path.join(BENCH, "resnet.py"), seconds))
        torch_runs.append(run_peer("torch_resnet.py", seconds))
    jaxai_speeds = [run["images_per_s"] for run in jaxai_runs]
    torch_speeds = [run["images_per_s"] for run in torch_runs]
    return {
        "side_by_side": "resnet18",
        "images_per_s": {"jaxai": jaxai_speeds, "torch": torch_speeds},
        "images_per_s_best_window": {"jaxai": [run["images_per_s_best"] for run in jaxai_runs],
                                     "torch": [run["images_per_s_best"] for run in torch_runs]},
        "images_per_s_ratio": ratio(max(jaxai_speeds), max(torch_speeds)),
        "images_per_s_ratio_median": ratio(statistics.median(jaxai_speeds), statistics.median(torch_speeds)),
        "load_before": {"jaxai": [run["load_before"] for run in jaxai_runs],
                        "torch": [run["load_before"] for run in torch_runs]},
        "num_parameters": {"jaxai": jaxai_runs[0]["num_parameters"], "torch": torch_runs[0]["num_parameters"]},
        "jaxai_xla_flags": jaxai_runs[0]["xla_flags"],
        "jaxai_allocator": jaxai_runs[0]["allocator"],
        "torch_memory_format": torch_runs[0]["memory_format"],
        "seconds": args.gen_seconds,
    }


LSTM_CONFIG = "experiments/shakespeare_char_lstm.py"
LSTM_VARIANTS = {"jaxai": [], "jaxai_bf16": ["--config.model.dtype=bfloat16"]}  # Overrides of each jaxai run.


def best_window_ms(records: list[dict]) -> float:
    """The fastest logged train window's ms per step, the first (compiling) window left out."""
    train = [r for r in records if r["split"] == "train"]
    return round(1000 / max(r["steps_per_s"] for r in (train[1:] or train)), 2)


def side_by_side_lstm(args) -> dict:
    """ms/iter of char-rnn's LSTM step: jaxai (float32, bf16 matmuls) alternating with PyTorch eager, --gen_repeats rounds."""
    steps = args.lstm_steps
    overrides = [f"--config.train.num_steps={steps}", "--config.train.log_every=5", f"--config.train.eval_every={steps}",
                 f"--config.train.checkpoint_every={steps}", "--config.train.eval_batches=1",
                 "--config.optimizer.schedule.warmup_steps=10"]
    readings = {name: [] for name in (*LSTM_VARIANTS, "torch")}
    best_windows = {name: [] for name in readings}
    loads = {name: [] for name in readings}
    jaxai_run = None
    for _ in range(args.gen_repeats):
        for name, extra in LSTM_VARIANTS.items():
            jaxai_run, records, _ = run_jaxai(lm_bench, LSTM_CONFIG, overrides + extra)
            readings[name].append(jaxai_run["ms_per_step"])
            best_windows[name].append(best_window_ms(records))
            loads[name].append(jaxai_run["load_before"])
        torch_run = run_peer("torch_char_rnn.py", ["--seconds", str(args.gen_seconds)])
        readings["torch"].append(torch_run["ms_per_iter"])
        best_windows["torch"].append(torch_run["ms_per_iter_best"])
        loads["torch"].append(torch_run["load_before"])
    result = {"side_by_side": "char_rnn_lstm", "ms_per_iter": readings, "ms_per_iter_best_window": best_windows}
    for name in LSTM_VARIANTS:
        suffix = name.removeprefix("jaxai")
        result[f"ms_per_iter_ratio{suffix}"] = ratio(min(readings[name]), min(readings["torch"]))
        result[f"ms_per_iter_ratio{suffix}_median"] = ratio(statistics.median(readings[name]), statistics.median(readings["torch"]))
        result[f"ms_per_iter_ratio{suffix}_best_window"] = ratio(min(best_windows[name]), min(best_windows["torch"]))
    return {
        **result,
        "load_before": loads,
        "num_parameters": {"jaxai": jaxai_run["num_parameters"], "torch": torch_run["num_parameters"]},
        "jaxai_allocator": jaxai_run["allocator"],
        "jaxai_steps": steps,
        "torch_seconds": args.gen_seconds,
    }


def side_by_side_generative(args, family: str) -> dict:
    """Training images/s of jaxai and its PyTorch peer, alternating, --gen_repeats pairs."""
    config, quick_eval, peer = GENERATIVE[family]
    steps = args.gen_steps
    overrides = [f"--config.train.num_steps={steps}", f"--config.train.eval_every={steps}",
                 f"--config.train.checkpoint_every={steps}", "--config.train.eval_batches=1", *quick_eval]
    jaxai_speeds, torch_speeds, loads = [], [], []
    for _ in range(args.gen_repeats):
        log(f"jaxai {config} {' '.join(overrides)}")
        loads.append(load_1m())
        records, wall_s = run_training(config, overrides)
        jaxai_speeds.append(summary(records, wall_s)["images_per_s"])
        torch_speeds.append(run_peer(peer, ["--seconds", str(args.gen_seconds)])["images_per_s"])
    return {
        "side_by_side": family,
        "images_per_s": {"jaxai": jaxai_speeds, "torch": torch_speeds},
        "images_per_s_ratio": ratio(max(jaxai_speeds), max(torch_speeds)),
        "images_per_s_ratio_median": ratio(statistics.median(jaxai_speeds), statistics.median(torch_speeds)),
        "load_before_jaxai": loads,
        "jaxai_steps": steps,
        "torch_seconds": args.gen_seconds,
    }


ATARI_CONFIG = "experiments/atari_breakout_dqn.py"
ATARI_STEPS_PER_CALL = 500


def learning_env_steps_per_s(records: list[dict], learning_starts: int) -> list[float]:
    """env_steps_per_s of each logged window that lies wholly after `learning_starts` environment steps."""
    train = [r for r in records if r["split"] == "train"]
    return [r["env_steps_per_s"] for previous, r in zip(train, train[1:])
            if previous["step"] * ATARI_STEPS_PER_CALL >= learning_starts]


def side_by_side_dqn_atari(args) -> dict:
    """Atari Breakout DQN (Nature network, one update per 4 steps): environment steps per second while
    learning, jaxai's jitted driver with host environments alternating with the CleanRL-style PyTorch peer."""
    starts, total = args.atari_learning_starts, args.atari_learning_starts + args.atari_learning_steps
    calls = total // ATARI_STEPS_PER_CALL
    overrides = [f"--config.train.num_steps={calls}", f"--config.task.steps_per_call={ATARI_STEPS_PER_CALL}",
                 f"--config.task.learning_starts={starts}", f"--config.task.buffer_size={args.atari_buffer}",
                 "--config.train.log_every=1", f"--config.train.eval_every={calls}", f"--config.train.checkpoint_every={calls}",
                 "--config.task.eval_episodes=1", "--config.task.atari.max_episode_steps=200"]
    peer_arguments = ["--total_timesteps", str(calls * ATARI_STEPS_PER_CALL), "--learning_starts", str(starts),
                      "--buffer_size", str(args.atari_buffer), "--seed", "0"]
    readings = {"jaxai": [], "torch": []}
    loads = {"jaxai": [], "torch": []}
    for _ in range(args.gen_repeats):
        log(f"jaxai {ATARI_CONFIG} {' '.join(overrides)}")
        loads["jaxai"].append(load_1m())
        records, _ = run_training(ATARI_CONFIG, overrides)
        readings["jaxai"].append(round(statistics.median(learning_env_steps_per_s(records, starts)), 1))
        torch_run = run_peer("torch_dqn_atari.py", peer_arguments)
        readings["torch"].append(round(torch_run["learning_steps_per_s"], 1))
        loads["torch"].append(torch_run["load_before"])
    return {
        "side_by_side": "dqn_atari_breakout",
        "learning_env_steps_per_s": readings,
        "env_steps_per_s_ratio": ratio(max(readings["jaxai"]), max(readings["torch"])),
        "env_steps_per_s_ratio_median": ratio(statistics.median(readings["jaxai"]), statistics.median(readings["torch"])),
        "learning_starts": starts,
        "learning_steps": calls * ATARI_STEPS_PER_CALL - starts,
        "buffer_size": args.atari_buffer,
        "torch_threads": torch_run["torch_threads"],
        "load_before": loads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("cnn", "gpt", "vae", "dcgan", "resnet18", "lstm", "dqn_atari", "all"), default="all")
    parser.add_argument("--torch_epochs", type=int, default=6, help="Epochs of the PyTorch CNN (Keras recipe).")
    parser.add_argument("--cnn_epochs", type=int, default=0, help="Epochs of both jaxai CNN runs (0: the experiment's).")
    parser.add_argument("--speed_repeats", type=int, default=2,
                        help="Extra short jaxai/PyTorch pairs, alternating, whose throughput joins the comparison.")
    parser.add_argument("--gpt_iters", type=int, default=0, help="Iterations of every GPT run (0: 2,000, the recipe's).")
    parser.add_argument("--gen_steps", type=int, default=600, help="vae/dcgan: training steps of each jaxai run.")
    parser.add_argument("--gen_seconds", type=int, default=20,
                        help="vae/dcgan/lstm: training seconds of each PyTorch run; resnet18: of each run, both sides.")
    parser.add_argument("--gen_repeats", type=int, default=3, help="vae/dcgan/resnet18/lstm: alternating jaxai/PyTorch rounds.")
    parser.add_argument("--lstm_steps", type=int, default=40, help="lstm: training steps of each jaxai run.")
    parser.add_argument("--atari_learning_starts", type=int, default=2000, help="dqn_atari: environment steps before updates.")
    parser.add_argument("--atari_learning_steps", type=int, default=6000, help="dqn_atari: environment steps timed while learning.")
    parser.add_argument("--atari_buffer", type=int, default=10_000, help="dqn_atari: replay buffer size, both sides.")
    args = parser.parse_args()
    if importlib.util.find_spec("torch") is None:
        sys.exit("bench/side_by_side.py runs PyTorch peers: install them with `pip install -e '.[peers]'` "
                 "(torch==2.13.0; on Linux x86_64 take the CPU wheel, e.g. "
                 "`pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu`).")
    context = {"date": datetime.date.today().isoformat(), "machine": f"{os.cpu_count()} cpus, {platform.processor() or platform.machine()}"}
    if args.model in ("cnn", "all"):
        print(json.dumps({**side_by_side_cnn(args), **context}), flush=True)
    if args.model in ("gpt", "all"):
        print(json.dumps({**side_by_side_gpt(args), **context}), flush=True)
    for family in GENERATIVE:
        if args.model in (family, "all"):
            print(json.dumps({**side_by_side_generative(args, family), **context}), flush=True)
    if args.model in ("resnet18", "all"):
        print(json.dumps({**side_by_side_resnet18(args), **context}), flush=True)
    if args.model in ("lstm", "all"):
        print(json.dumps({**side_by_side_lstm(args), **context}), flush=True)
    if args.model in ("dqn_atari", "all"):
        print(json.dumps({**side_by_side_dqn_atari(args), **context}), flush=True)


if __name__ == "__main__":
    main()
