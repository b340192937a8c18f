"""The language-model task through the loop: exact resume on the text path, tokenizer kept, sampling."""

import json
import math
import os

import jax
import numpy as np
import pytest

from jaxai.config import load_config
from jaxai.data import build_dataset
from jaxai.errors import DatasetError
from jaxai.tasks.base import SampleOptions
from jaxai.data.tokenizers import load_tokenizer
from jaxai.train.build import build_run, restore_latest
from jaxai.train.loop import train
from jaxai.train.sample import sample
from run_helpers import interrupted_copy, read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPT_SMOKE = os.path.join(ROOT, "experiments", "shakespeare_char_gpt_cpu.py:smoke")


def losses_by_step(workdir: str) -> dict[int, float]:
    return {record["step"]: record["loss"] for record in read_metrics(workdir, "train")}


def test_text_batches_depend_only_on_seed_and_step():
    config = load_config(GPT_SMOKE)
    first = iter(build_dataset(config.data, seed=3).train)
    batches = [next(first) for _ in range(3)]
    again = iter(build_dataset(config.data, seed=3).train)
    again.set_state(json.loads(json.dumps(first.get_state())))  # A restored position...
    later = next(first)
    np.testing.assert_array_equal(next(again)["inputs"], later["inputs"])  # ...continues identically.
    assert not np.array_equal(batches[0]["inputs"], batches[1]["inputs"])
    np.testing.assert_array_equal(batches[0]["targets"][:, :-1], batches[0]["inputs"][:, 1:])


def test_gpt_resume_is_exact_on_the_text_path(tmp_path):
    config = load_config(GPT_SMOKE, ["train.progress_bar=False", "train.num_steps=10", "train.log_every=1",
                                     "train.checkpoint_every=5", "train.max_to_keep=5"])
    whole, resumed = str(tmp_path / "whole"), str(tmp_path / "resumed")
    train(config, whole)
    interrupted_copy(whole, resumed, checkpoint_step=5)
    train(config, resumed)
    assert losses_by_step(resumed) == losses_by_step(whole)


def test_tokenizer_is_saved_and_sampling_continues_the_prompt(tmp_path):
    config = load_config(GPT_SMOKE, ["train.progress_bar=False"])
    train(config, str(tmp_path))
    tokenizer = load_tokenizer(str(tmp_path / "tokenizer.json"))
    assert tokenizer.vocab_size == 65  # Tiny Shakespeare's distinct characters.
    texts = sample(config, str(tmp_path), SampleOptions(num=2, prompt="ROMEO:", num_tokens=20, temperature=0.8, top_k=10))
    assert len(texts) == 2 and all(text.startswith("ROMEO:") and len(text) == 26 for text in texts)
    greedy = sample(config, str(tmp_path), SampleOptions(prompt="ROMEO:", num_tokens=80, temperature=0.0, top_k=0))
    assert greedy == sample(config, str(tmp_path), SampleOptions(prompt="ROMEO:", num_tokens=80, temperature=0.0, top_k=0))


def test_a_user_corpus_trains_and_bad_paths_are_clear(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 200)
    config = load_config(GPT_SMOKE, ["data.name=text", f"data.path={corpus}", "data.tokenizer=byte", "train.progress_bar=False"])
    metrics = train(config, str(tmp_path / "run"))
    assert metrics["loss"] < math.log(256)  # Already better than uniform over the 256 bytes.
    missing = load_config(GPT_SMOKE, ["data.name=text", f"data.path={tmp_path / 'nope.txt'}"])
    with pytest.raises(DatasetError, match="nope.txt.*does not exist"):
        build_dataset(missing.data, seed=0)


def test_bf16_compute_keeps_float32_params_and_tracks_the_float32_loss(tmp_path):
    """bf16 compute: parameters stay float32; after 10 steps the loss is within 0.02 of float32's."""
    final = {}
    for dtype in ("float32", "bfloat16"):
        config = load_config(GPT_SMOKE, ["train.progress_bar=False", "train.log_every=1", f"model.dtype={dtype}"])
        train(config, str(tmp_path / dtype))
        final[dtype] = losses_by_step(str(tmp_path / dtype))
        params = restore_latest(build_run(config), str(tmp_path / dtype))[0].params
        assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {np.dtype("float32")}
    for step in final["float32"]:
        assert abs(final["bfloat16"][step] - final["float32"][step]) < 0.02, (step, final)
