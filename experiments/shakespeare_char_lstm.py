"""char-rnn's 2x512 LSTM on Tiny Shakespeare characters.

    jaxai train --config experiments/shakespeare_char_lstm.py --workdir runs/lstm
    jaxai sample --workdir runs/lstm --prompt "ROMEO:" --num_tokens 500

Karpathy's char-rnn defaults: 2 layers of 512 LSTM units, sequences of 50 characters, batch 50,
learning rate 2e-3, gradient clipping 5. Adam here (char-rnn uses RMSprop) with cosine decay.
bench/RESULTS.md compares its val loss with the baby GPT's at equal wall time.
"""

import ml_collections

from jaxai.config import base_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config(task="language_model", model="rnn")
    config.data.name = "tiny_shakespeare"
    config.data.tokenizer = "char"
    config.data.block_size = 50
    config.data.batch_size = 50
    config.data.eval_batch_size = 250
    config.data.eval_split = "val"
    config.data.test_split = "val"
    config.model.cell = "lstm"
    config.model.hidden_size = 512
    config.model.num_layers = 2
    config.model.dropout_rate = 0.0
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 2e-3
    config.optimizer.grad_clip_norm = 5.0
    config.optimizer.schedule.name = "cosine"
    config.optimizer.schedule.warmup_steps = 50
    config.optimizer.schedule.end_value_fraction = 0.1
    config.train.num_steps = 2000
    config.train.log_every = 100
    config.train.eval_every = 1000
    config.train.checkpoint_every = 1000
    if variant == "smoke":
        config.data.block_size = 16
        config.data.batch_size = 16
        config.data.eval_batch_size = 64
        config.model.hidden_size = 32
        config.train.num_steps = 10
        config.train.log_every = 5
        config.train.eval_every = 10
        config.train.eval_batches = 2
        config.optimizer.schedule.warmup_steps = 2
    elif variant:
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '' and 'smoke'.")
    return config
