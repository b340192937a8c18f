"""jaxai command line: train, eval, sample, prepare and info.

  jaxai train --config experiments/mnist_cnn.py --workdir runs/mnist_cnn [--config.KEY=VALUE ...]
  jaxai eval --workdir runs/mnist_cnn [--split test]
  jaxai sample --workdir runs/gpt --prompt "ROMEO:" --num_tokens 500 --temperature 0.8 --top_k 200
  jaxai sample --workdir runs/mnist_vae --num 64 --out grid.png      (generative image models: a PNG grid)
  jaxai prepare --config experiments/mnist_cnn.py      (prepare the dataset, e.g. from local raw files)
  jaxai info                                           (devices, versions and settings in effect)
"""

from __future__ import annotations

import json
import os
import sys
from typing import NamedTuple

from absl import app, flags

from jaxai.errors import UsageError

COMMANDS = ("train", "eval", "sample", "prepare", "info")

flags.DEFINE_string("config", None, "Experiment file defining get_config(); override keys with --config.KEY=VALUE.")
flags.DEFINE_string("workdir", None, "Run directory: checkpoints, metrics.jsonl, TensorBoard events, config.json.")
flags.DEFINE_bool("overwrite", False, "train: delete a different run found in --workdir instead of refusing.")
flags.DEFINE_bool("show_config", False, "Print the resolved config (every key, with overrides) and exit.")
flags.DEFINE_string("split", None, "eval: the split to evaluate (default: the config's data.test_split).")
flags.DEFINE_string("prompt", "\n", "sample: text the generation continues.")
flags.DEFINE_integer("num_tokens", 500, "sample: tokens to generate.")
flags.DEFINE_float("temperature", 0.8, "sample: softmax temperature; 0 means greedy.")
flags.DEFINE_integer("top_k", 200, "sample: keep only the k most likely tokens (0 keeps all).")
flags.DEFINE_integer("num", 0, "sample: how many samples (0: the task's default, 1 text or 64 images).")
flags.DEFINE_string("out", None, "sample: PNG file for image samples (default WORKDIR/samples.png).")
flags.DEFINE_integer("seed", 0, "sample: PRNG seed for sampling; the same seed gives the same output.")
flags.DEFINE_float("benchmark_seconds", 10.0, "info: seconds of micro-benchmark (CNN and GPT steps); 0 skips it.")
FLAGS = flags.FLAGS


class CommandLine(NamedTuple):
    positional: list[str]  # Program name and command.
    overrides: list[str]  # `KEY=VALUE` from each `--config.KEY=VALUE`.


def parse_flags(argv: list[str]) -> CommandLine:
    """absl parsing, with `--config.KEY=VALUE` collected as config overrides."""
    if "--help" in argv or "-h" in argv:
        print(__doc__)
        print(FLAGS.module_help(sys.modules[__name__]))
        sys.exit(0)
    overrides, rest = [], [argv[0]]
    arguments = iter(argv[1:])
    for argument in arguments:
        if argument.startswith("--config."):
            override = argument[len("--config."):]
            if "=" not in override:
                override = f"{override}={next(arguments, '')}"
            overrides.append(override)
        else:
            rest.append(argument)
    return CommandLine(FLAGS(rest), overrides)


def _load_config(overrides: list[str]):
    from jaxai.config import load_config, saved_config

    if FLAGS.config:
        return load_config(FLAGS.config, overrides)
    if FLAGS.workdir:
        from jaxai.config import apply_overrides

        config = saved_config(FLAGS.workdir)
        config.lock()
        apply_overrides(config, overrides)
        return config
    raise UsageError("Pass --config experiments/<name>.py (or --workdir of an existing run).")


def main(command_line: CommandLine) -> int:
    argv = command_line.positional
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise UsageError(f"Usage: jaxai {{{'|'.join(COMMANDS)}}} [flags]; `jaxai --help` lists the flags. Got: {' '.join(argv[1:]) or 'nothing'}.")
    command = argv[1]
    from absl import logging

    from jaxai import runtime

    logging.set_verbosity(logging.WARNING)  # Orbax logs every checkpoint step at INFO.

    if command == "info":
        runtime.initialize(None)
        from jaxai.info import print_info

        print_info(FLAGS.benchmark_seconds)
        return 0
    config = _load_config(command_line.overrides)
    if FLAGS.show_config:
        print(config)
        return 0
    runtime.initialize(config)
    if command == "prepare":
        from jaxai.data import build_dataset

        dataset = build_dataset(config.data, seed=config.seed)
        facts = {key: value for key, value in dataset.info.items() if isinstance(value, (int, float, str, tuple))}
        print(f"{config.data.name} ready: {facts}")
        return 0
    if not FLAGS.workdir:
        raise UsageError(f"jaxai {command} needs --workdir (where the run's checkpoints and metrics live).")
    if command == "train":
        from jaxai.train.loop import train

        metrics = train(config, FLAGS.workdir, overwrite=FLAGS.overwrite)
    elif command == "eval":
        from jaxai.train.evaluation import evaluate

        metrics = evaluate(config, FLAGS.workdir, FLAGS.split)
    else:
        from jaxai.tasks.base import SampleOptions
        from jaxai.train.sample import sample, write_samples

        options = SampleOptions(num=FLAGS.num, prompt=FLAGS.prompt, num_tokens=FLAGS.num_tokens,
                                temperature=FLAGS.temperature, top_k=FLAGS.top_k)
        samples = sample(config, FLAGS.workdir, options, seed=FLAGS.seed)
        print(write_samples(samples, FLAGS.out or os.path.join(FLAGS.workdir, "samples.png")))
        return 0
    scalars = {key: value for key, value in metrics.items() if isinstance(value, (int, float))}
    print(json.dumps({"workdir": os.path.abspath(FLAGS.workdir), **scalars}))
    return 0


def _main_with_clear_errors(command_line: CommandLine) -> None:
    from jaxai.errors import USER_ERRORS

    try:
        sys.exit(main(command_line))
    except USER_ERRORS as error:
        print(f"jaxai: error: {error}", file=sys.stderr)
        sys.exit(1)


def run() -> None:
    """Console-script entry point."""
    from jaxai import runtime

    runtime.ensure_allocator(sys.argv)  # Before anything allocates: may re-execute this command.
    app.run(_main_with_clear_errors, flags_parser=parse_flags)

