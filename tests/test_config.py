"""Config loading: every experiment loads, overrides parse, bad keys get a helpful error."""

import glob
import os

import pytest

from jaxai.config import ConfigError, apply_overrides, load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = sorted(glob.glob(os.path.join(ROOT, "experiments", "*.py")))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=os.path.basename)
def test_every_experiment_loads_with_its_smoke_variant(path):
    full = load_config(path)
    smoke = load_config(path + ":smoke")
    assert full.task.name == smoke.task.name
    assert smoke.train.num_steps > 0 and smoke.train.num_steps <= 100


def test_overrides_parse_to_the_field_type():
    config = load_config(EXPERIMENTS[0], ["optimizer.learning_rate=3e-4", "train.num_steps=7", "data.shuffle=False"])
    assert config.optimizer.learning_rate == 3e-4
    assert config.train.num_steps == 7 and isinstance(config.train.num_steps, int)
    assert config.data.shuffle is False


def test_int_override_of_float_key_becomes_float():
    config = load_config(EXPERIMENTS[0], ["optimizer.learning_rate=1"])
    assert config.optimizer.learning_rate == 1.0 and isinstance(config.optimizer.learning_rate, float)


def test_unknown_key_names_the_key_and_its_nearest_spelling():
    config = load_config(os.path.join(ROOT, "experiments", "mnist_cnn.py"))
    with pytest.raises(ConfigError, match=r"Unknown config key 'optimizer.learnig_rate'.*Did you mean 'optimizer.learning_rate'"):
        apply_overrides(config, ["optimizer.learnig_rate=0.1"])


def test_unknown_section_is_refused():
    config = load_config(os.path.join(ROOT, "experiments", "mnist_cnn.py"))
    with pytest.raises(ConfigError, match=r"Unknown config key 'trian.num_steps'.*'train.num_steps'"):
        apply_overrides(config, ["trian.num_steps=3"])


def test_wrongly_typed_value_is_refused():
    config = load_config(os.path.join(ROOT, "experiments", "mnist_cnn.py"))
    with pytest.raises(ConfigError, match="train.num_steps.*expects int"):
        apply_overrides(config, ["train.num_steps=many"])
    with pytest.raises(ConfigError, match="expects True or False"):
        apply_overrides(config, ["data.shuffle=1"])


def test_missing_config_file_is_a_clear_error():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("experiments/no_such_experiment.py")


def test_locked_config_cannot_grow_keys():
    config = load_config(os.path.join(ROOT, "experiments", "mnist_cnn.py"))
    with pytest.raises(AttributeError):
        config.train.num_stepz = 3


def test_a_run_saved_before_newer_keys_reads_with_their_defaults(tmp_path):
    import json

    from jaxai.config import CONFIG_FILE, saved_config, to_json

    config = load_config(os.path.join(ROOT, "experiments", "mnist_cnn.py"))
    record = json.loads(to_json(config))
    del record["task"]["augment_flip"], record["lora"]  # As a run written before they existed.
    record["task"]["augment_shift"] = 3
    (tmp_path / CONFIG_FILE).write_text(json.dumps(record))
    saved = saved_config(str(tmp_path))
    assert saved.task.augment_flip is False and saved.lora.rank == 0  # Defaults filled in ...
    assert saved.task.augment_shift == 3  # ... and the run's own values kept.
