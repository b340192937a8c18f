"""Word-level corpora for skip-gram: vocabulary, frequent-word subsampling, (center, context) batches.

Training batches are drawn from (seed, step) alone, so a resumed run sees exactly the batches it would
have: the step gives the epoch, the epoch gives a seeded subsampling of the corpus (a new one each
epoch, as word2vec re-draws it on every pass), and the step's own rng picks `batch_size` centre
positions in that subsampled corpus and one context word for each.
"""

from __future__ import annotations

import collections
import functools
import re

import ml_collections
import numpy as np

from jaxai.data.dataset import Dataset
from jaxai.errors import DatasetError
from jaxai.data.pipeline import generated_batches, padded_batches, process_slice
from jaxai.data.text import read_corpus

WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")  # Lowercase words; inner apostrophes kept ("i'll", "o'er").
NOISE_POWER = 0.75  # Negative samples come from unigram^0.75 (Mikolov et al. 2013).
EVAL_SPLIT = "queries"  # The one eval split: query words whose nearest neighbours are reported.
NUM_FREQUENT_QUERIES = 12  # The most frequent content words queried at eval, besides QUERY_WORDS.
QUERY_WORDS = ("king", "queen", "man", "woman", "lord", "love")  # Also queried when in the vocabulary.
_BATCH_STREAM, _SUBSAMPLE_STREAM = 0, 1  # Distinct rng streams: [seed, stream, step or epoch].
# Function words (and their Early Modern English forms) that are not "content words" for the queries.
STOPWORDS = frozenset("""
a about after again all am an and any are art as at be been being but by can cannot could did do doth
does dost for from had has hast hath have he her here hers him his how i i'll i'm if in into is it it's
its let may me might mine more most much must my nay no nor not now o of on one or our out shall she should so some
such than that the thee their them then there these they thine this those thou thus thy 'tis tis to too
up upon us very was we were what when where which while who whom why will with would ye yet you your
""".split())


def tokenize(text: str) -> list[str]:
    """Lowercase words of `text`, in order."""
    return WORD.findall(text.lower())


def build_vocabulary(words: list[str], min_count: int) -> tuple[list[str], np.ndarray]:
    """Words seen at least `min_count` times, most frequent first (ties alphabetical), and their counts."""
    counts = collections.Counter(words)
    kept = sorted((word for word, count in counts.items() if count >= min_count), key=lambda w: (-counts[w], w))
    return kept, np.asarray([counts[word] for word in kept], np.int64)


def keep_probabilities(counts: np.ndarray, threshold: float) -> np.ndarray:
    """word2vec.c's subsampling: keep a word of frequency f with probability (sqrt(f/t) + 1) * t/f, at most 1."""
    if threshold <= 0:
        return np.ones(len(counts))
    frequency = counts / counts.sum()
    return np.minimum(1.0, (np.sqrt(frequency / threshold) + 1.0) * threshold / frequency)


def noise_distribution(counts: np.ndarray) -> np.ndarray:
    """The negative-sampling distribution: unigram counts ** 0.75, normalized."""
    weights = counts.astype(np.float64) ** NOISE_POWER
    return weights / weights.sum()


def context_offset_probabilities(window: int) -> np.ndarray:
    """P(|offset| = d), d = 1..window, of a pair drawn from word2vec's emitted pairs.

    word2vec draws a window b uniformly in 1..window for each centre and emits every context within b,
    so a pair at distance d is emitted when b >= d: weight (window - d + 1) / window.
    """
    weights = np.arange(window, 0, -1, dtype=np.float64)  # window - d + 1 for d = 1..window.
    return weights / weights.sum()


def query_words(vocab: list[str]) -> list[str]:
    """The eval queries: the most frequent content words, then QUERY_WORDS found in the vocabulary."""
    frequent = [word for word in vocab if word not in STOPWORDS][:NUM_FREQUENT_QUERIES]
    return frequent + [word for word in QUERY_WORDS if word in vocab and word not in frequent]


def _check_config(config: ml_collections.ConfigDict) -> None:
    if config.window < 1:
        raise DatasetError(f"data.window={config.window}; skip-gram needs a context window of at least 1 word.")
    if config.min_count < 1:
        raise DatasetError(f"data.min_count={config.min_count}; use 1 to keep every word.")
    if config.subsample < 0:
        raise DatasetError(f"data.subsample={config.subsample}; use a threshold such as 1e-3, or 0 to turn it off.")


def _read_text(config: ml_collections.ConfigDict) -> str:
    """Tiny Shakespeare for 'tiny_shakespeare_words' without data.path, else the file at data.path."""
    if config.name == "text_words" and not config.path:
        raise DatasetError("data.name='text_words' reads a corpus file: pass --config.data.path=/path/to/corpus.txt.")
    name = "tiny_shakespeare" if config.name == "tiny_shakespeare_words" else "text"
    return read_corpus(ml_collections.ConfigDict({"name": name, "path": config.path}))


def skipgram_dataset(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    """(center, context) id batches from (seed, step); eval batches of query-word ids."""
    _check_config(config)
    words = tokenize(_read_text(config))
    vocab, counts = build_vocabulary(words, config.min_count)
    if len(vocab) < 2:
        raise DatasetError(
            f"The corpus has {len(words)} words but only {len(vocab)} distinct ones occur at least "
            f"data.min_count={config.min_count} times; lower --config.data.min_count or use a longer corpus."
        )
    index = {word: i for i, word in enumerate(vocab)}
    tokens = np.asarray([index[word] for word in words if word in index], np.int32)  # Rare words dropped.
    keep = keep_probabilities(counts, config.subsample)
    expected_kept = float(np.sum(counts * keep))
    window, batch_size = int(config.window), int(config.batch_size)
    if expected_kept < 4 * (window + 1):
        raise DatasetError(
            f"Subsampling keeps about {expected_kept:.0f} of {len(tokens)} words, too few for data.window={window}; "
            "raise --config.data.subsample (or 0 to turn it off), or use a longer corpus."
        )
    offset_probs = context_offset_probabilities(window)
    rows = process_slice(batch_size)

    @functools.lru_cache(maxsize=2)
    def epoch_tokens(epoch: int) -> np.ndarray:
        """The corpus with frequent words subsampled, drawn afresh for each epoch."""
        rng = np.random.default_rng([seed, _SUBSAMPLE_STREAM, epoch])
        kept = tokens[rng.random(len(tokens)) < keep[tokens]]
        if len(kept) <= 2 * window:
            raise DatasetError(f"Epoch {epoch} kept {len(kept)} words after subsampling; raise data.subsample.")
        return kept

    # Pairs per epoch: a centre has on average window + 1 contexts (2 * E[b], b uniform in 1..window).
    steps_per_epoch = max(1, int(expected_kept * (window + 1)) // batch_size)

    def train_batch(step: int) -> dict[str, np.ndarray]:
        corpus = epoch_tokens(step // steps_per_epoch)
        rng = np.random.default_rng([seed, _BATCH_STREAM, step])
        centers = rng.integers(0, len(corpus), batch_size)
        distance = rng.choice(np.arange(1, window + 1), size=batch_size, p=offset_probs)
        contexts = centers + np.where(rng.random(batch_size) < 0.5, -distance, distance)
        outside = (contexts < 0) | (contexts >= len(corpus))
        contexts = np.where(outside, 2 * centers - contexts, contexts)  # Mirror at the corpus ends.
        return {"center": corpus[centers][rows], "context": corpus[contexts][rows]}

    queries = query_words(vocab)
    # `index` is the global query row: the task adds up the rows of all eval batches.
    query_arrays = {"query": np.asarray([index[word] for word in queries], np.int32), "index": np.arange(len(queries), dtype=np.int32)}

    def eval_batches(split: str, max_batches: int = 0):
        if split != EVAL_SPLIT:
            raise DatasetError(
                f"Word datasets evaluate nearest neighbours of query words: set data.eval_split and "
                f"data.test_split to {EVAL_SPLIT!r}, not {split!r}."
            )
        return padded_batches(query_arrays, config.eval_batch_size, max_batches)

    return Dataset(
        info={
            "vocab_size": len(vocab),
            "vocab": vocab,
            "counts": counts,
            "noise_probs": noise_distribution(counts),
            "queries": queries,
            "num_train_tokens": len(tokens),
        },
        train=generated_batches(train_batch),
        steps_per_epoch=steps_per_epoch,
        eval_batches=eval_batches,
    )
