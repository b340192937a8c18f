"""Word2vec: the skip-gram model, word data (vocabulary, subsampling, noise, exact batches), training, export."""

import collections
import itertools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai.config import load_config
from jaxai.data import DatasetError, build_dataset
from jaxai.data.words import keep_probabilities, tokenize
from jaxai.models.word2vec import SkipGram
from jaxai.train.loop import train
from run_helpers import interrupted_copy, read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(ROOT, "experiments", "shakespeare_word2vec.py:smoke")
# Words of a group always occur together (a sentence is a shuffled group): each other's nearest neighbours.
GROUPS = (("red", "green", "blue"), ("apple", "pear", "plum"), ("oak", "elm", "ash"), ("cat", "dog", "mouse"))


def write_corpus(path, words: list[str]) -> str:
    path.write_text(" ".join(words) + "\n")
    return str(path)


def group_corpus(num_sentences: int = 1000) -> list[str]:
    rng = np.random.default_rng(0)
    return [word for g in rng.integers(0, len(GROUPS), num_sentences) for word in rng.permutation(GROUPS[g])]


def toy_config(path: str, *overrides: str):
    return load_config(SMOKE, [
        "data.name='text_words'", f"data.path={path!r}", "data.min_count=1", "data.subsample=0.0", "data.window=2",
        "data.batch_size=64", "data.eval_batch_size=16", "train.progress_bar=False", *overrides,
    ])


def test_skipgram_parameters_and_init():
    model = SkipGram(vocab_size=50, embed_dim=8)
    ids = jnp.zeros((4,), jnp.int32)
    params = jax.device_get(model.init(jax.random.key(0), ids, ids, jnp.zeros((4, 3), jnp.int32))["params"])
    embed, context = params["embed"].unbox(), params["context"].unbox()
    assert embed.shape == context.shape == (50, 8)
    assert params["embed"].names == ("vocab", "embed")
    assert np.abs(embed).max() <= 0.5 / 8 and np.abs(embed).max() > 0.25 / 8
    assert not context.any()  # Output vectors start at zero, as in word2vec.c.


def test_training_pulls_co_occurring_words_together_and_exports_vectors(tmp_path):
    config = toy_config(write_corpus(tmp_path / "corpus.txt", group_corpus()), "data.window=1", "train.num_steps=200",
                        "train.eval_every=200", "optimizer.learning_rate=0.02")
    workdir = str(tmp_path / "run")
    metrics = train(config, workdir)
    losses = [record["loss"] for record in read_metrics(workdir, "train")]
    assert losses[-1] < 0.6 * losses[0], losses
    group_of = {word: group for group in GROUPS for word in group}
    assert sorted(metrics["nearest"]) == sorted(group_of)  # Every word of this corpus is a query.
    for word, neighbours in metrics["nearest"].items():
        assert set(neighbours[:2]) == set(group_of[word]) - {word}, (word, neighbours)
    vocab = open(os.path.join(workdir, "vocab.txt")).read().split()
    assert sorted(vocab) == sorted(group_of)
    assert np.load(os.path.join(workdir, "vectors.npy")).shape == (12, 16)
    assert len(np.loadtxt(os.path.join(workdir, "vectors.tsv"), delimiter="\t")) == 12
    assert open(os.path.join(workdir, "metadata.tsv")).read().split("\n")[:-1] == vocab
    exported = [record for record in read_metrics(workdir, "run") if record.get("event") == "export"]
    assert len(exported) == 1 and exported[0]["vocab.txt"] == os.path.join(workdir, "vocab.txt")  # And said so.


def frequency_corpus() -> list[str]:
    rng = np.random.default_rng(1)
    rare = ["rare" + "".join(letters) for letters in itertools.product("abcdefgh", repeat=2)][:40]
    words = ["common"] * 6000 + [word for word in rare for _ in range(60)]
    return list(rng.permutation(words))


def test_subsampling_drops_frequent_words_more(tmp_path):
    counts = np.asarray([10000, 1000, 100, 10])
    keep = keep_probabilities(counts, 1e-3)
    assert np.all(np.diff(keep) > 0) and keep[-1] == 1.0
    np.testing.assert_allclose(keep[0], (np.sqrt(counts[0] / counts.sum() / 1e-3) + 1) * 1e-3 * counts.sum() / counts[0])

    words = frequency_corpus()
    dataset = build_dataset(toy_config(write_corpus(tmp_path / "c.txt", words), "data.subsample=0.01").data, seed=0)
    centers = np.concatenate([batch["center"] for batch in itertools.islice(iter(dataset.train), 50)])
    common = dataset.info["vocab"].index("common")
    raw_share = words.count("common") / len(words)
    assert np.mean(centers == common) < 0.5 * raw_share  # 0.71 of the raw words, ~0.25 after subsampling.


def test_noise_distribution_is_unigram_to_the_three_quarters(tmp_path):
    words = frequency_corpus()
    dataset = build_dataset(toy_config(write_corpus(tmp_path / "c.txt", words)).data, seed=0)
    counts = collections.Counter(tokenize(" ".join(words)))
    expected = np.asarray([counts[word] for word in dataset.info["vocab"]], np.float64) ** 0.75
    np.testing.assert_allclose(dataset.info["noise_probs"], expected / expected.sum())
    assert dataset.info["vocab"][0] == "common" and dataset.info["vocab_size"] == 41


def test_batches_depend_only_on_seed_and_step(tmp_path):
    config = toy_config(write_corpus(tmp_path / "c.txt", frequency_corpus()), "data.subsample=0.01", "data.batch_size=512")
    first = build_dataset(config.data, seed=3)
    assert first.steps_per_epoch < 40  # The batches compared below cross epochs (new subsampling).
    iterator = iter(first.train)
    expected = [next(iterator) for _ in range(60)]
    # A rebuilt dataset gives the same batches; so does an iterator restored at step 35 (a resumed run).
    again = list(itertools.islice(iter(build_dataset(config.data, seed=3).train), 60))
    resumed = iter(build_dataset(config.data, seed=3).train)
    for _ in range(35):
        next(resumed)
    state = resumed.get_state()
    restored = iter(build_dataset(config.data, seed=3).train)
    restored.set_state(state)
    for step in range(60):
        for key in ("center", "context"):
            np.testing.assert_array_equal(again[step][key], expected[step][key])
    for step in range(35, 60):
        batch = next(restored)
        for key in ("center", "context"):
            np.testing.assert_array_equal(batch[key], expected[step][key])
    other_seed = next(iter(build_dataset(config.data, seed=4).train))
    assert not np.array_equal(other_seed["center"], expected[0]["center"])


def test_smoke_run_resumes_exactly(tmp_path):
    """The smoke experiment (Tiny Shakespeare): 20 steps == 10 steps, stop, resume to 20."""
    config = load_config(SMOKE, ["train.progress_bar=False", "train.log_every=1", "train.max_to_keep=5"])
    whole, resumed = str(tmp_path / "whole"), str(tmp_path / "resumed")
    train(config, whole)
    interrupted_copy(whole, resumed, checkpoint_step=10)
    train(config, resumed)
    assert [r["step"] for r in read_metrics(resumed, "run") if r.get("event") == "resume"] == [10]
    losses = [{r["step"]: r["loss"] for r in read_metrics(run, "train")} for run in (whole, resumed)]
    assert losses[0] == losses[1] and len(losses[0]) == 20
    np.testing.assert_array_equal(np.load(os.path.join(whole, "vectors.npy")), np.load(os.path.join(resumed, "vectors.npy")))
    assert read_metrics(whole, "eval")[-1]["nearest"] == read_metrics(resumed, "eval")[-1]["nearest"]


def test_too_small_a_corpus_for_min_count_says_what_to_change(tmp_path):
    config = toy_config(write_corpus(tmp_path / "c.txt", ["to", "be", "or", "not", "to", "be"]), "data.min_count=5")
    with pytest.raises(DatasetError, match="min_count=5.*lower --config.data.min_count"):
        build_dataset(config.data, seed=0)


def test_the_eval_split_must_be_the_queries(tmp_path):
    config = toy_config(write_corpus(tmp_path / "c.txt", group_corpus(50)), "data.eval_split='test'")
    with pytest.raises(DatasetError, match="'queries'"):
        next(iter(build_dataset(config.data, seed=0).eval_batches(config.data.eval_split, 0)))
