"""Sequence to sequence: models, decoding, generated data, the task end to end."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai.data import seq2seq as data
from jaxai.errors import DatasetError
from jaxai.models import decoding
from jaxai.models.encoder_decoder import EncoderDecoder
from jaxai.models.seq2seq_rnn import LSTMSeq2Seq
from jaxai.tasks.seq2seq import exact_match, output_agreement, shift_right, source_decoder


VOCAB = 20


def _models():
    return {
        "transformer": EncoderDecoder(vocab_size=VOCAB, max_length=16, num_layers=2, num_heads=2, embed_dim=16),
        "bahdanau": LSTMSeq2Seq(vocab_size=VOCAB, hidden_size=16, num_layers=2, attention="bahdanau"),
        "dot": LSTMSeq2Seq(vocab_size=VOCAB, hidden_size=16, num_layers=1, attention="dot"),
    }


def _padded_source(rng_seed: int = 0):
    rng = np.random.default_rng(rng_seed)
    source = rng.integers(3, VOCAB, size=(3, 8)).astype(np.int32)
    lengths = np.array([8, 5, 2])
    source[np.arange(8)[None, :] >= lengths[:, None]] = 0
    return jnp.asarray(source), lengths


@pytest.mark.parametrize("name", ["transformer", "bahdanau", "dot"])
def test_padding_does_not_change_real_positions(name):
    model = _models()[name]
    source, lengths = _padded_source()
    target_in = jnp.asarray(np.random.default_rng(1).integers(3, VOCAB, size=(3, 6)), jnp.int32)
    params = model.init(jax.random.key(0), source, target_in, train=False)
    # Longer padding, same real tokens: the encoder's outputs at real positions and the logits stay put.
    longer = jnp.pad(source, ((0, 0), (0, 4)))
    memory = model.apply(params, source, train=False, method="encode")
    memory_longer = model.apply(params, longer, train=False, method="encode")
    encoded = memory if name == "transformer" else memory[0]
    encoded_longer = memory_longer if name == "transformer" else memory_longer[0]
    for row, length in enumerate(lengths):
        np.testing.assert_allclose(encoded[row, :length], encoded_longer[row, :length], atol=1e-5)
    np.testing.assert_allclose(model.apply(params, source, target_in, train=False),
                               model.apply(params, longer, target_in, train=False), atol=1e-5)


@pytest.mark.parametrize("name", ["transformer", "bahdanau", "dot"])
def test_cross_attention_weights_sum_to_one_over_real_source_positions(name):
    model = _models()[name]
    source, lengths = _padded_source()
    target_in = jnp.ones((3, 6), jnp.int32)
    params = model.init(jax.random.key(0), source, target_in, train=False)
    _, state = model.apply(params, source, target_in, train=False, mutable=["intermediates"])
    found = {"/".join(str(getattr(k, "key", k)) for k in path): leaf
             for path, leaf in jax.tree_util.tree_leaves_with_path(state["intermediates"])}
    cross = [w for path, w in found.items() if name != "transformer" or "cross_attention" in path]
    assert cross, found.keys()
    real = np.arange(8)[None, :] < lengths[:, None]  # [B, S]
    for weights in cross:
        weights = np.asarray(weights)
        weights = weights.reshape(3, -1, 8)  # [B, (heads x) T, S]
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
        assert np.all(weights * ~real[:, None, :] < 1e-6)


def _decode_fn(model, params, source):
    return source_decoder(model, params["params"], source)


def _sequence_log_prob(decode_fn, tokens):
    """Teacher-forced log p(tokens) up to and including EOS, the independent check of decoders' scores."""
    target_in = jnp.concatenate([jnp.full_like(tokens[:, :1], decoding.BOS), tokens[:, :-1]], axis=1)
    log_probs = jax.nn.log_softmax(decode_fn(target_in), axis=-1)
    picked = jnp.take_along_axis(log_probs, tokens[..., None], axis=-1)[..., 0]
    lengths = decoding.sequence_lengths(tokens)
    return jnp.sum(jnp.where(jnp.arange(tokens.shape[1])[None] < lengths[:, None], picked, 0.0), axis=1)


@pytest.mark.parametrize("name", ["transformer", "bahdanau"])
def test_beam_search_width_one_is_greedy_and_wider_is_never_less_likely(name):
    model = _models()[name]
    source, _ = _padded_source()
    params = model.init(jax.random.key(3), source, jnp.ones((3, 6), jnp.int32), train=False)
    decode_fn = _decode_fn(model, params, source)
    greedy, greedy_log_prob = jax.jit(lambda: decoding.greedy_decode(decode_fn, 3, 6))()
    np.testing.assert_allclose(greedy_log_prob, _sequence_log_prob(decode_fn, greedy), atol=1e-4)
    beam1, _, _ = decoding.beam_search(decode_fn, 3, 6, beam_size=1)
    np.testing.assert_array_equal(beam1[:, 0], greedy)
    tokens, scores, log_prob = jax.jit(lambda: decoding.beam_search(decode_fn, 3, 6, beam_size=4))()
    assert tokens.shape == (3, 4, 6)
    assert np.all(np.diff(np.asarray(scores), axis=1) <= 0)  # Best first.
    assert np.all(np.asarray(log_prob[:, 0]) >= np.asarray(greedy_log_prob) - 1e-5)
    for beam in range(4):  # Reported log-probabilities are the model's own.
        np.testing.assert_allclose(log_prob[:, beam], _sequence_log_prob(decode_fn, tokens[:, beam]), atol=1e-4)


def test_beam_search_never_below_greedy_on_many_random_models():
    source, _ = _padded_source()
    for seed in range(6):
        model = EncoderDecoder(vocab_size=6, max_length=16, num_layers=1, num_heads=2, embed_dim=8)
        params = model.init(jax.random.key(seed), source % 6, jnp.ones((3, 5), jnp.int32), train=False)
        decode_fn = _decode_fn(model, params, source % 6)
        _, greedy_log_prob = decoding.greedy_decode(decode_fn, 3, 5)
        _, _, log_prob = decoding.beam_search(decode_fn, 3, 5, beam_size=4, length_penalty=0.0)
        assert np.all(np.asarray(log_prob[:, 0]) >= np.asarray(greedy_log_prob) - 1e-5)


def test_generated_splits_are_disjoint_and_fixed_by_the_seed():
    for name, draw in [("addition", lambda rng: data.addition_problem(rng, 2)),
                       ("reverse", lambda rng: data.reversal_problem(rng, 4)),
                       ("dates", data.date_problem)]:
        train, test = data.disjoint_splits(draw, 2000, 300, seed=5)
        again = data.disjoint_splits(draw, 2000, 300, seed=5)
        assert (train, test) == again, name
        assert data.disjoint_splits(draw, 2000, 300, seed=6)[1] != test, name
        assert len({source for source, _ in test}) == 300, name
        if name == "dates":  # Disjoint by calendar date, whatever the spelling.
            assert not {t for _, t in train} & {t for _, t in test}
        else:
            assert not {s for s, _ in train} & {s for s, _ in test}, name
    source, target, _ = data.addition_problem(np.random.default_rng(0), 3)
    a, b = source.split("+")
    assert int(target) == int(a) + int(b)


def test_dates_are_normalised_correctly():
    import datetime

    day = datetime.date(2021, 3, 3)
    spellings = {spell(day) for spell in data.DATE_FORMATS}
    assert {"3 March 2021", "03/03/21", "Wednesday, 3 March 2021", "March 3, 2021"} <= spellings
    rng = np.random.default_rng(0)
    for _ in range(50):
        _, target, key = data.date_problem(rng)
        assert datetime.date.fromisoformat(target).isoformat() == target == key


def test_tokens_round_trip_and_arrays_are_padded():
    arrays = data.to_arrays([("12+3", "15"), ("café", "éfac")], source_length=6, target_length=6)
    assert data.decode(arrays["source"][1]) == "café"
    assert data.decode(arrays["target"][0]) == "15"
    assert arrays["target"][0].tolist()[:3] == [ord("1") + 3, ord("5") + 3, decoding.EOS]
    assert arrays["source"][0, 4:].tolist() == [0, 0]


def test_tsv_reader_names_the_line_without_a_tab(tmp_path):
    path = tmp_path / "corpus.tsv"
    path.write_text("hello\tbonjour\n\ncat\tchat\nno tab here\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"line 4: no tab"):
        data.read_tsv(str(path))
    path.write_text("hello\tbonjour\ncat\tchat\n", encoding="utf-8")
    assert data.read_tsv(str(path)) == [("hello", "bonjour"), ("cat", "chat")]


def test_metrics_on_hand_made_outputs():
    eos = decoding.EOS
    target = jnp.array([[5, 6, eos, 0], [5, 6, eos, 0], [5, eos, 0, 0]])
    predicted = jnp.array([[5, 6, eos, 0], [5, 7, eos, 0], [5, 9, eos, 0]])
    np.testing.assert_array_equal(exact_match(predicted, target), [1.0, 0.0, 0.0])
    correct, compared = output_agreement(predicted, target)
    np.testing.assert_array_equal(correct.sum(1), [3, 2, 1])
    np.testing.assert_array_equal(compared, [3, 3, 3])
    np.testing.assert_array_equal(shift_right(target)[:, 0], decoding.BOS)


def test_tfds_translation_set_reads_pairs_in_its_language_order():
    import tensorflow_datasets as tfds

    from jaxai import data as data_lib
    from jaxai.config import load_config

    config = load_config("experiments/addition_seq2seq.py:smoke", ["data.name=wmt14_translate/de-en", "data.max_length=24"])
    with tfds.testing.mock_data(num_examples=40):
        dataset = data_lib.build_dataset(config.data, seed=0)
    batch = next(iter(dataset.train))
    assert batch["source"].shape[1] <= 24 and batch["target"].shape[1] <= 24
    assert dataset.info["vocab_size"] == data.VOCAB_SIZE
    assert np.all(np.sum(batch["target"] == decoding.EOS, axis=1) == 1)  # Every target ends.


def test_a_tsv_corpus_trains_and_reports_bleu(tmp_path):
    from jaxai.config import load_config
    from jaxai.train.loop import train

    rng = np.random.default_rng(0)
    words = ["cat", "dog", "sun", "tree", "blue", "red", "big", "old"]
    lines = []
    for _ in range(400):
        sentence = " ".join(rng.choice(words, size=int(rng.integers(2, 5))))
        lines.append(f"{sentence}\t{sentence.upper()}")
    (tmp_path / "corpus.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = load_config("experiments/addition_seq2seq.py:smoke", [
        "data.name=tsv", f"data.path={tmp_path / 'corpus.tsv'}", "data.num_test_examples=40", "task.bleu=True",
        "train.num_steps=60", "train.eval_every=60", "train.log_every=10", "train.progress_bar=False",
        "model.embed_dim=64", "optimizer.learning_rate=3e-3",
    ])
    metrics = train(config, str(tmp_path / "run"))
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    losses = [r["loss"] for r in records if r["split"] == "train"]
    assert losses[-1] < 0.6 * losses[0], losses
    assert 0.0 <= metrics["bleu"] <= 100.0 and metrics["num_examples"] == 40
