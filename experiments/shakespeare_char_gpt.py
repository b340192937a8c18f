"""nanoGPT's shakespeare_char GPT: 6 layers, 6 heads, 384 dims, block 256, batch 64, dropout 0.2.

    jaxai train --config experiments/shakespeare_char_gpt.py --workdir runs/gpt

5,000 iters of AdamW (lr 1e-3 -> 1e-4 cosine, warm-up 100, beta2 0.99, weight decay 0.1, clip 1.0).
nanoGPT reaches val loss 1.4697 in ~3 minutes on an A100. Meant for a GPU; bfloat16 compute.
"""

import ml_collections

from jaxai.config import base_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config(task="language_model", model="gpt")
    config.data.name = "tiny_shakespeare"
    config.data.tokenizer = "char"
    config.data.block_size = 256
    config.data.batch_size = 64
    config.data.eval_batch_size = 128
    config.data.eval_split = "val"
    config.data.test_split = "val"
    config.model.block_size = 256
    config.model.num_layers = 6
    config.model.num_heads = 6
    config.model.embed_dim = 384
    config.model.dropout_rate = 0.2
    config.model.use_bias = False  # nanoGPT's default: no biases in Linear and LayerNorm.
    config.model.dtype = "bfloat16"
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 1e-3
    config.optimizer.b2 = 0.99
    config.optimizer.weight_decay = 0.1
    config.optimizer.grad_clip_norm = 1.0
    config.optimizer.schedule.name = "cosine"
    config.optimizer.schedule.warmup_steps = 100
    config.optimizer.schedule.end_value_fraction = 0.1
    config.train.num_steps = 5000
    config.train.log_every = 100
    config.train.eval_every = 500
    config.train.checkpoint_every = 1000
    if variant == "smoke":
        config.data.block_size = 32
        config.data.batch_size = 16
        config.data.eval_batch_size = 64
        config.model.block_size = 32
        config.model.num_layers = 1
        config.model.embed_dim = 48
        config.train.num_steps = 10
        config.train.log_every = 5
        config.train.eval_every = 10
        config.train.eval_batches = 2
        config.optimizer.schedule.warmup_steps = 2
    elif variant:
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '' and 'smoke'.")
    return config
