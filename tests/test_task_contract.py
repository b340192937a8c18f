"""The Task contract the loop trains every family through, on a task that makes its own data."""

import os

import numpy as np
import pytest
from PIL import Image

from jaxai import tasks
from jaxai.config import base_config
from jaxai.errors import UsageError
from jaxai.tasks.base import SampleOptions
from jaxai.train.evaluation import Reducer
from jaxai.train.loop import train
from jaxai.train.sample import sample, write_samples
from run_helpers import interrupted_copy, read_metrics


@pytest.fixture
def toy_config(monkeypatch):
    monkeypatch.setitem(tasks._REGISTRY, "toy_stateful", "toy_stateful_task")
    config = base_config(task="toy_stateful", model="mlp")
    config.data.name = "none"
    config.train.update(num_steps=20, log_every=5, eval_every=10, checkpoint_every=10, progress_bar=False)
    return config


def test_a_task_that_makes_its_own_data_trains_logs_and_resumes(toy_config, tmp_path):
    metrics = train(toy_config, str(tmp_path / "whole"))
    train_records = read_metrics(str(tmp_path / "whole"), "train")
    assert train_records[-1]["td_loss"] < train_records[0]["td_loss"] / 5  # The state's own data taught it.
    assert "loss" not in train_records[0] and "examples_per_s" not in train_records[0]
    assert train_records[0]["env_steps_per_s"] == pytest.approx(16 * train_records[0]["steps_per_s"])
    header = read_metrics(str(tmp_path / "whole"), "run")[0]
    assert (header["num_parameters"], header["num_parameters_online"], header["num_parameters_target"]) == (8, 4, 4)
    assert metrics["num_returns"] == 8 and metrics["first_shape"] == [8, 4]
    assert metrics["best_return"] >= metrics["return"]

    interrupted_copy(str(tmp_path / "whole"), str(tmp_path / "resumed"), checkpoint_step=10)
    train(toy_config, str(tmp_path / "resumed"))
    assert read_metrics(str(tmp_path / "resumed"), "train") != []
    strip = lambda records: [{k: v for k, v in r.items() if not k.endswith(("_s", "_ms", "time"))} for r in records]
    assert strip(read_metrics(str(tmp_path / "resumed"), "eval")) == strip(read_metrics(str(tmp_path / "whole"), "eval"))


def test_eval_randomness_comes_from_the_seed_and_the_step(toy_config, tmp_path):
    first = train(toy_config, str(tmp_path / "a"))
    again = train(toy_config, str(tmp_path / "b"))
    assert first == again
    toy_config.seed = 1
    assert train(toy_config, str(tmp_path / "c"))["return"] != first["return"]


def test_pictures_are_written_as_png_and_text_is_logged(toy_config, tmp_path):
    train(toy_config, str(tmp_path))
    names = sorted(os.listdir(tmp_path / "images"))
    assert names == ["eval_noise_00000010.png", "eval_noise_00000020.png", "train_curves_00000020.png"]
    curves = np.asarray(Image.open(tmp_path / "images" / names[-1]))
    assert curves.shape == (240, 2 * 320, 3)  # One 4x3-inch panel at 80 dpi per train metric: td_loss, mean_observation.
    grid = np.asarray(Image.open(tmp_path / "images" / names[0]))
    assert grid.shape == (2 + 2 * 8, 2 + 2 * 8)  # A 2x2 grid of 6x6 greyscale images, 2 pixels apart.
    assert os.listdir(tmp_path / "tensorboard")


def test_sample_asks_the_task_and_the_same_seed_gives_the_same_png(toy_config, tmp_path):
    train(toy_config, str(tmp_path))
    first = sample(toy_config, str(tmp_path), SampleOptions(num=6), seed=3)
    assert first.shape == (6, 5, 5, 3)
    write_samples(first, str(tmp_path / "a.png"))
    write_samples(sample(toy_config, str(tmp_path), SampleOptions(num=6), seed=3), str(tmp_path / "b.png"))
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    write_samples(sample(toy_config, str(tmp_path), SampleOptions(num=6), seed=4), str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").read_bytes() != (tmp_path / "a.png").read_bytes()


def test_sample_refuses_a_task_that_generates_nothing(tmp_path):
    from jaxai.config import load_config

    config = load_config(os.path.join(os.path.dirname(__file__), "..", "experiments", "mnist_cnn.py:smoke"),
                         ["train.progress_bar=False", "train.num_steps=2"])
    train(config, str(tmp_path))
    with pytest.raises(UsageError, match="'classification' task, which generates nothing"):
        sample(config, str(tmp_path), SampleOptions())


def test_reductions_combine_outputs_as_the_task_says():
    reducer = Reducer({"top": "max", "low": "min", "rows": "concat", "shown": "first"})
    reducer.add({"total": np.float32(1.5), "top": np.array([1, 5]), "low": np.array(3.0), "rows": np.ones((2, 3)), "shown": np.zeros(2)})
    reducer.add({"total": np.float32(2.0), "top": np.array([4, 2]), "low": np.array(-1.0), "rows": np.zeros((1, 3)), "shown": np.ones(2)})
    result = reducer.result()
    assert result["total"] == 3.5 and result["total"].dtype == np.float64
    np.testing.assert_array_equal(result["top"], [4, 5])
    assert result["low"] == -1.0 and result["rows"].shape == (3, 3)
    np.testing.assert_array_equal(result["shown"], [0, 0])
    with pytest.raises(ValueError, match="Unknown eval reductions"):
        Reducer({"x": "mean"})
