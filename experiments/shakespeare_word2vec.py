"""Word2vec (skip-gram, negative sampling) on Tiny Shakespeare words: 100 dims, window 5, 5 negatives.

    jaxai train --config experiments/shakespeare_word2vec.py --workdir runs/word2vec

Vocabulary: words seen >= 5 times (3,322 of 12k); frequent words subsampled with t=1e-3; batches of
1024 (center, context) pairs, 816 an epoch; Adam 1e-2 with a cosine decay to 0 (word2vec also decays
its rate to 0), 5 epochs: final train loss ~2.36. Each eval prints the nearest neighbours of the most
frequent content words (and king, queen, man, woman, lord, love), e.g. king: richard iii vi edward ii,
go: instantly come sirrah tarry along hie; the run ends by writing vectors.tsv + metadata.tsv
(TensorBoard projector) and vectors.npy + vocab.txt to the workdir. A 2-core CPU trains it in under a
minute (bench/word2vec.py; bench/RESULTS.md has the figures).
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
    config.data.eval_batch_size = 64  # All ~15 query words in one eval batch (several batches work too).
    config.data.eval_split = "queries"
    config.data.test_split = "queries"
    config.model.embed_dim = 100
    config.task.num_negatives = 5
    config.task.num_neighbours = 8
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 1e-2
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
