"""Date normalisation with an encoder-decoder Transformer: "3 March 2021", "03/03/21", ... -> "2021-03-03".

    jaxai train --config experiments/dates_seq2seq.py --workdir runs/dates
    jaxai sample --workdir runs/dates --prompt "Friday, 24 December 1999"

Ten spellings (jaxai.data.seq2seq.DATE_FORMATS; numeric ones day first, two-digit years 1950-2049);
the 10,000 held-out dates never appear in training in any spelling. Scored by greedy decoding.
"""

import ml_collections

from jaxai.config import base_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config(task="seq2seq", model="encoder_decoder")
    config.data.name = "dates"
    config.data.batch_size = 128
    config.data.eval_batch_size = 2000
    config.model.num_layers = 2
    config.model.num_heads = 4
    config.model.embed_dim = 64
    config.model.max_length = 32
    config.task.label_smoothing = 0.0
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 2e-3
    config.optimizer.grad_clip_norm = 1.0
    config.optimizer.schedule.name = "cosine"
    config.optimizer.schedule.warmup_steps = 200
    config.train.num_steps = 2000
    config.train.log_every = 100
    config.train.eval_every = 500
    config.train.checkpoint_every = 1000
    if variant == "smoke":
        config.data.num_train_examples = 512
        config.data.num_test_examples = 64
        config.data.batch_size = 32
        config.data.eval_batch_size = 64
        config.model.num_layers = 1
        config.model.embed_dim = 32
        config.train.num_steps = 6
        config.train.log_every = 3
        config.train.eval_every = 6
        config.train.checkpoint_every = 6
        config.optimizer.schedule.warmup_steps = 2
    elif variant:
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '' and 'smoke'.")
    return config
