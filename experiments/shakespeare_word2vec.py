"""Word2vec (skip-gram, negative sampling) on Tiny Shakespeare words: 100 dims, window 5, 5 negatives.

    jaxai train --config experiments/shakespeare_word2vec.py --workdir runs/word2vec

Vocabulary: words seen >= 5 times (~3.3k); frequent words subsampled with t=1e-3; Adam 3e-3 decayed
linearly to 0 (as word2vec decays its rate), batch 1024 pairs. Each eval prints the nearest neighbours of
the most frequent content words (and king, queen, man, woman, lord, love); the run ends by writing
vectors.tsv + metadata.tsv (TensorBoard projector) and vectors.npy + vocab.txt to the workdir.
A 2-core CPU trains it in about a minute (bench/word2vec.py; bench/RESULTS.md has the figures).
`experiments/shakespeare_word2vec.py:smoke` is a seconds-long variant for tests.
"""

import ml_collections

from jaxai.config import base_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config(task="word2vec", model="skipgram")
    config.data.name = "tiny_shakespeare_words"
    config.data.window = 5
    config.data.min_count = 5
    config.data.subsample = 1e-3
    config.data.batch_size = 1024
    config.data.eval_batch_size = 64  # Holds every query word (~20): the eval is one batch.
    config.data.eval_split = "queries"
    config.data.test_split = "queries"
    config.model.embed_dim = 100
    config.task.num_negatives = 5
    config.task.num_neighbours = 8
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 3e-3
    config.optimizer.schedule.name = "cosine"
    config.train.num_epochs = 5
    config.train.log_every = 200
    if variant == "smoke":
        config.model.embed_dim = 16
        config.data.batch_size = 256
        config.train.num_steps = 20
        config.train.log_every = 5
        config.train.eval_every = 10
        config.train.checkpoint_every = 10
    elif variant:
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '' and 'smoke'.")
    return config
