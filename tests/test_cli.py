"""The `jaxai` command as a user types it: clear one-line errors, train then eval, runtime settings."""

import json
import os
import re
import subprocess
import sys

import pytest

from jaxai import runtime
from jaxai.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = "experiments/mnist_cnn.py:smoke"
SMOKE_PATH = os.path.join(ROOT, SMOKE)


def jaxai(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jaxai", *args], cwd=ROOT, capture_output=True, text=True, timeout=240,
        env={**os.environ, **(env or {})},
    )


def test_train_then_eval_from_the_command_line(tmp_path):
    workdir = str(tmp_path / "run")
    trained = jaxai("train", "--config", SMOKE, "--workdir", workdir, "--config.train.num_steps=4")
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout.strip().splitlines()[-1])["num_examples"] == 512
    evaluated = jaxai("eval", "--workdir", workdir)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "accuracy" in json.loads(evaluated.stdout.strip().splitlines()[-1])
    with open(os.path.join(workdir, "metrics.jsonl")) as file:
        header = json.loads(file.readline())
    # The allocator jaxai chose is the one the run reports.
    assert header["allocator"] == runtime.choose_allocator("auto")[0]


def test_unknown_config_key_is_one_clear_line(tmp_path):
    result = jaxai("train", "--config", SMOKE, "--workdir", str(tmp_path), "--config.train.num_stepz=3")
    assert result.returncode == 1
    assert "Unknown config key 'train.num_stepz'" in result.stderr and "Did you mean 'train.num_steps'" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_xla_flag_is_refused_by_jaxai_not_aborted_by_xla(tmp_path):
    result = jaxai("train", "--config", SMOKE, "--workdir", str(tmp_path), "--config.runtime.xla_cpu_flags=--xla_cpu_use_mkl_dnn=true")
    assert result.returncode == 1
    assert "Unknown XLA flag '--xla_cpu_use_mkl_dnn'" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_offline_mnist_names_both_remedies(tmp_path):
    empty = tmp_path / "raw"
    empty.mkdir()
    result = jaxai(
        "train", "--config", "experiments/mnist_cnn.py", "--workdir", str(tmp_path / "run"),
        f"--config.data.data_dir={empty}", env={"TFDS_DATA_DIR": str(tmp_path / "tfds")},
    )
    assert result.returncode == 1
    assert "train-images-idx3-ubyte.gz" in result.stderr and "JAXAI_DATA_DIR" in result.stderr
    assert "Traceback" not in result.stderr


def test_info_reports_the_opted_out_allocator_and_a_micro_benchmark(tmp_path):
    result = jaxai("info", "--benchmark_seconds=0.4", env={"JAXAI_ALLOCATOR": "system"})
    assert result.returncode == 0, result.stderr
    assert "allocator: system" in result.stdout
    benchmark = re.search(r"CNN ([\d,]+) images/s, baby GPT ([\d.]+) ms/iter", result.stdout)
    assert benchmark and float(benchmark[1].replace(",", "")) > 0 and float(benchmark[2]) > 0


def test_help_explains_the_commands():
    result = jaxai("--help")
    assert result.returncode == 0
    assert "jaxai train --config" in result.stdout and "--workdir" in result.stdout


def test_family_xla_flags_are_known_flags_and_reach_the_config():
    for flags in runtime.FAMILY_XLA_CPU_FLAGS.values():
        runtime.validate_xla_flags(flags.split())  # A typo here would abort every run of the family.
    cnn = load_config(SMOKE_PATH)
    assert cnn.runtime.xla_cpu_flags == runtime.family_xla_cpu_flags("cnn") != ""
    assert load_config(SMOKE_PATH, ["runtime.xla_cpu_flags="]).runtime.xla_cpu_flags == ""  # Overridable.


def test_allocator_choice_logic():
    assert runtime.choose_allocator("system") == ("system", None)
    with pytest.raises(runtime.RuntimeSettingError, match="JAXAI_ALLOCATOR='tcmallocc' is not one of"):
        runtime.choose_allocator("tcmallocc")
    name, path = runtime.choose_allocator("auto")
    assert name in ("tcmalloc", "jemalloc", "mimalloc", "glibc-tuned")
    assert (path is None) == (name == "glibc-tuned")
