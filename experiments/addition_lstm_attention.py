"""Addition as strings with an LSTM encoder-decoder and Bahdanau attention: "123+45" -> "168".

    jaxai train --config experiments/addition_lstm_attention.py --workdir runs/addition_lstm
    jaxai train --config experiments/addition_lstm_attention.py:dot --workdir runs/addition_lstm_dot

The same data and held-out scoring as experiments/addition_seq2seq.py (the Transformer), so
bench/seq2seq.py reports the two side by side. Variant 'dot': Luong's dot-product ("general")
attention after the decoder LSTM instead of additive attention inside its recurrence.
"""

import ml_collections

from jaxai.config import base_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config(task="seq2seq", model="lstm_seq2seq")
    config.data.name = "addition"
    config.data.max_digits = 3
    config.data.batch_size = 128
    config.data.eval_batch_size = 2000
    config.model.hidden_size = 128
    config.model.num_layers = 1
    config.model.embed_dim = 64
    config.model.attention = "bahdanau"
    config.task.label_smoothing = 0.0
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 3e-3
    config.optimizer.grad_clip_norm = 1.0
    config.optimizer.schedule.name = "cosine"
    config.optimizer.schedule.warmup_steps = 100
    config.train.num_steps = 3000
    config.train.log_every = 100
    config.train.eval_every = 1000
    config.train.checkpoint_every = 1000
    if variant in ("smoke", "dot"):
        config.model.attention = "dot" if variant == "dot" else "bahdanau"
    if variant == "smoke":
        config.data.num_train_examples = 512
        config.data.num_test_examples = 64
        config.data.batch_size = 32
        config.data.eval_batch_size = 64
        config.model.hidden_size = 32
        config.model.embed_dim = 16
        config.train.num_steps = 6
        config.train.log_every = 3
        config.train.eval_every = 6
        config.train.checkpoint_every = 6
        config.optimizer.schedule.warmup_steps = 2
    elif variant not in ("", "dot"):
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '', 'dot' and 'smoke'.")
    return config
