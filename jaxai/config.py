"""Experiment configs: the base sections every run has, loading a config file, and overrides."""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import os
from typing import Any, Iterable

import ml_collections

from jaxai.errors import ConfigError, WorkdirError

CONFIG_FILE = "config.json"  # A run's config record in its workdir.


def base_config(task: str, model: str) -> ml_collections.ConfigDict:
    """Every key a run reads, with its default; experiments override values, never add keys."""
    from jaxai import models, optim, runtime, tasks, transfer  # Late import: models/tasks import jax.

    config = ml_collections.ConfigDict()
    config.seed = 0  # Root PRNG seed: init, dropout, data order all derive from it.
    config.task = tasks.task_config(task)  # Objective; its own keys are declared by the task module.
    config.model = models.model_config(model)  # Architecture; keys are the model's dataclass fields.
    config.optimizer = optim.default_config()
    config.init_from = transfer.default_init_from()  # Start from another run's weights (transfer learning).
    config.lora = transfer.default_lora()  # Low-rank adapters instead of training the weights.

    config.data = ml_collections.ConfigDict()
    config.data.name = "mnist"  # A name in jaxai.data's registry.
    config.data.data_dir = ""  # Raw files for offline preparation; '' -> $JAXAI_DATA_DIR, else download.
    config.data.tfds_dir = ""  # Prepared TFDS datasets; '' -> $TFDS_DATA_DIR, else ~/tensorflow_datasets.
    config.data.train_split = "train"  # TFDS split strings, slices allowed: 'train[:55000]'.
    config.data.eval_split = "test"  # Evaluated every train.eval_every steps.
    config.data.test_split = "test"  # Evaluated by `jaxai eval`.
    config.data.batch_size = 64  # Global batch (all devices, all processes).
    config.data.eval_batch_size = 1000  # Global eval batch; the last batch is padded and masked.
    config.data.shuffle = True  # Seeded shuffle of the training set, a new order every epoch.
    config.data.classes = ()  # Image datasets: keep these class ids, relabelled 0..k-1 in this order; () = all.
    config.data.examples_per_class = 0  # Image datasets: a seeded draw of this many training examples per class; 0 = all.
    config.data.image_size = 224  # imagenet2012: images resized (shorter side) and center-cropped to this square.
    config.data.path = ""  # Text datasets: a user's corpus file.
    config.data.tokenizer = "char"  # Text datasets: 'char' or 'byte'.
    config.data.block_size = 0  # Text datasets: tokens per training sequence.
    config.data.window = 5  # Word datasets: largest skip-gram context distance (word2vec samples 1..window).
    config.data.min_count = 5  # Word datasets: words seen fewer times are dropped from the vocabulary.
    config.data.subsample = 1e-3  # Word datasets: frequent-word subsampling threshold t (Mikolov); 0 = off.
    config.data.num_train_examples = 0  # Generated seq2seq datasets: training pairs; 0 -> the dataset's default.
    config.data.num_test_examples = 0  # Generated seq2seq datasets: held-out pairs (disjoint from train); 0 -> default.
    config.data.max_digits = 3  # addition: operands have 1..max_digits digits.
    config.data.max_length = 0  # Seq2seq datasets: longest source/target in tokens (reverse: string length); 0 -> default.
    config.data.frequency = "monthly"  # Forecasting (M3): yearly, quarterly, monthly or other.
    config.data.horizon = 0  # Forecasting: steps to forecast; 0 -> the dataset's horizon.
    config.data.input_length = 0  # Forecasting: history steps the model sees; 0 -> a multiple of the horizon.
    config.data.window_horizons = 1.5  # Forecasting: training cuts come from the last this-many horizons of each history.

    config.train = ml_collections.ConfigDict()
    config.train.num_epochs = 1  # Passes over the training set (ignored when num_steps > 0).
    config.train.num_steps = 0  # When > 0, overrides num_epochs.
    config.train.log_every = 100  # Steps between train-metric log lines.
    config.train.eval_every = 0  # Steps between evaluations; 0 -> once per epoch.
    config.train.eval_batches = 0  # Batches per evaluation; 0 -> the whole eval split.
    config.train.checkpoint_every = 0  # Steps between checkpoints; 0 -> once per epoch.
    config.train.max_to_keep = 3  # Checkpoints kept in WORKDIR/checkpoints.
    config.train.early_stopping_metric = ""  # e.g. 'accuracy' (an eval metric); '' disables.
    config.train.early_stopping_mode = "max"  # 'max' or 'min': which direction is better.
    config.train.early_stopping_patience = 3  # Evaluations without improvement before stopping.
    config.train.progress_bar = True  # tqdm bar on the terminal (off when not a TTY).

    config.mesh = ml_collections.ConfigDict()
    config.mesh.num_devices = 0  # Devices to use (the first N); 0 -> all.
    config.mesh.data = -1  # Devices on the data-parallel axis; -1 -> all not used by the others.
    config.mesh.fsdp = 1  # Devices sharding parameters and batch (ZeRO-3 style).
    config.mesh.tensor = 1  # Devices sharding heads / MLP width (Megatron style).

    config.runtime = ml_collections.ConfigDict()
    # XLA flags for the CPU backend, set before JAX starts; defaults measured per model family.
    config.runtime.xla_cpu_flags = runtime.family_xla_cpu_flags(model)
    return config


def load_config(path: str, overrides: Iterable[str] = ()) -> ml_collections.ConfigDict:
    """Loads `get_config()` from an experiment file, applies `key=value` overrides, locks it.

    `path` may end in `:VARIANT` (e.g. `experiments/mnist_cnn.py:smoke`), passed to get_config.
    """
    variant = ""
    if not os.path.isfile(path) and ":" in path:
        path, variant = path.rsplit(":", 1)
    config = load_experiment(path, variant)
    config.lock()
    apply_overrides(config, overrides)
    return config


def load_experiment(path: str, variant: str = "") -> ml_collections.ConfigDict:
    """An experiment file's `get_config(variant)`, unlocked: lets one experiment build on another."""
    if not os.path.isfile(path):
        raise ConfigError(f"Config file {path!r} does not exist; pass --config experiments/<name>.py.")
    spec = importlib.util.spec_from_file_location(f"jaxai_experiment_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"{path} defines no get_config() returning a ConfigDict.")
    try:
        config = module.get_config(variant) if variant else module.get_config()
    except TypeError as error:
        raise ConfigError(f"{path}: get_config does not take the variant {variant!r} ({error}).") from None
    return config


def apply_overrides(config: ml_collections.ConfigDict, overrides: Iterable[str]) -> None:
    """Applies overrides such as `optimizer.learning_rate=3e-4`; unknown keys raise ConfigError."""
    for override in overrides:
        key, sep, raw_value = override.partition("=")
        if not sep:
            raise ConfigError(f"Override {override!r} has no value; write --config.{override}=VALUE.")
        parent, leaf = _resolve(config, key)
        current = parent[leaf]
        if isinstance(current, ml_collections.ConfigDict):
            raise ConfigError(f"Config key {key!r} is a section; override one of its keys, e.g. {key}.{next(iter(current.keys()), 'x')}=...")
        parent[leaf] = _parse_value(key, raw_value, current)


def _resolve(config: ml_collections.ConfigDict, dotted_key: str) -> tuple[ml_collections.ConfigDict, str]:
    node = config
    parts = dotted_key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            prefix = ".".join(parts[:depth])
            raise ConfigError(_unknown_key_message(config, dotted_key, prefix))
        if depth == len(parts) - 1:
            return node, part
        node = node[part]
    raise AssertionError("unreachable")


def _unknown_key_message(config: ml_collections.ConfigDict, key: str, prefix: str) -> str:
    valid = list(flat_keys(config))
    suggestion = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f" Did you mean {suggestion[0]!r}?" if suggestion else ""
    where = f" under {prefix!r}" if prefix else ""
    return f"Unknown config key {key!r}{where}.{hint} Valid keys: `jaxai train --config FILE --show_config`."


def flat_keys(config: ml_collections.ConfigDict, prefix: str = "") -> Iterable[str]:
    """All leaf keys of a config, dotted."""
    for name, value in config.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, ml_collections.ConfigDict):
            yield from flat_keys(value, dotted + ".")
        else:
            yield dotted


def _parse_value(key: str, raw: str, current: Any) -> Any:
    if isinstance(current, str):
        quoted = len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\""
        return raw[1:-1] if quoted else raw
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        if current is None:
            return raw
        raise ConfigError(f"Cannot parse {raw!r} for config key {key!r} (expects {type(current).__name__}).") from None
    if isinstance(current, bool) and not isinstance(value, bool):
        raise ConfigError(f"Config key {key!r} expects True or False, got {raw!r}.")
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(current, tuple) and isinstance(value, list):
        return tuple(value)
    if current is not None and not isinstance(value, type(current)):
        raise ConfigError(f"Config key {key!r} expects {type(current).__name__}, got {raw!r}.")
    return value


def to_json(config: ml_collections.ConfigDict) -> str:
    """Stable JSON of a config, for the workdir's config record."""
    return json.dumps(json.loads(config.to_json_best_effort()), sort_keys=True, indent=2)


def saved_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a workdir's run was trained with (for eval, sampling, and loading a trained model)."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise WorkdirError(f"{workdir} holds no jaxai run ({CONFIG_FILE} missing); train into it first, or check the path.")
    with open(path) as file:
        saved = ml_collections.ConfigDict(_lists_to_tuples(json.load(file)))
    try:  # Keys added to jaxai since that run get their defaults, so newer code can read older runs.
        defaults = base_config(task=saved.task.name, model=saved.model.name)
    except (ConfigError, AttributeError, KeyError):  # Not a task or model this jaxai knows: as saved.
        return saved
    _fill_missing(saved, defaults)
    return saved


def _fill_missing(config: ml_collections.ConfigDict, defaults: ml_collections.ConfigDict) -> None:
    for key, value in defaults.items():
        if key not in config:
            config[key] = value
        elif isinstance(value, ml_collections.ConfigDict) and isinstance(config[key], ml_collections.ConfigDict):
            _fill_missing(config[key], value)


def _lists_to_tuples(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _lists_to_tuples(item) for key, item in value.items()}
    if isinstance(value, list):
        return tuple(_lists_to_tuples(item) for item in value)
    return value
