"""Every experiment trains in its smoke variant through the one loop, and its eval metrics are finite."""

import glob
import math
import os

import pytest

from jaxai.config import load_config
from jaxai.train.loop import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = sorted(glob.glob(os.path.join(ROOT, "experiments", "*.py")))
# Real-data experiments whose smoke variant keeps the real dataset are covered by their own tests.
TRAINABLE = [path for path in EXPERIMENTS if load_config(path + ":smoke").data.name != "mnist"]


@pytest.mark.parametrize("path", TRAINABLE, ids=os.path.basename)
def test_smoke_variant_trains(path, tmp_path):
    config = load_config(path + ":smoke", ["train.progress_bar=False"])
    metrics = train(config, str(tmp_path))
    scalars = [value for value in metrics.values() if isinstance(value, float)]
    assert scalars and all(math.isfinite(value) for value in scalars), metrics
    assert os.path.exists(tmp_path / "metrics.jsonl")
