"""nanoGPT's CPU "baby" GPT on Tiny Shakespeare characters: 4 layers, 4 heads, 128 dims, block 64.

    jaxai train --config experiments/shakespeare_char_gpt_cpu.py --workdir runs/gpt_cpu
    jaxai sample --workdir runs/gpt_cpu --prompt "ROMEO:" --num_tokens 500

nanoGPT's recipe (batch 12, 2,000 iters, AdamW with cosine decay to a tenth, warm-up 100, beta2
0.99, weight decay 0.1, clip 1.0, no dropout), except the peak learning rate: 2e-3 instead of
nanoGPT's 1e-3 reaches val loss 1.80 in the same 2,000 iterations, where 1e-3 gives 1.91 here
(nanoGPT reports ~1.88). `:nanogpt` is nanoGPT's exact recipe, for side-by-side runs. Compute is
bfloat16 with float32 parameters (faster on CPU). bench/RESULTS.md has the measured figures.
"""

import ml_collections

from jaxai.config import base_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config(task="language_model", model="gpt")
    config.data.name = "tiny_shakespeare"
    config.data.tokenizer = "char"
    config.data.block_size = 64
    config.data.batch_size = 12
    config.data.eval_batch_size = 256
    config.data.eval_split = "val"
    config.data.test_split = "val"
    config.model.block_size = 64
    config.model.num_layers = 4
    config.model.num_heads = 4
    config.model.embed_dim = 128
    config.model.dropout_rate = 0.0
    config.model.use_bias = False  # nanoGPT's default: no biases in Linear and LayerNorm.
    config.model.dtype = "bfloat16"
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 2e-3
    config.optimizer.b2 = 0.99
    config.optimizer.weight_decay = 0.1
    config.optimizer.grad_clip_norm = 1.0
    config.optimizer.schedule.name = "cosine"
    config.optimizer.schedule.warmup_steps = 100
    config.optimizer.schedule.end_value_fraction = 0.1
    config.train.num_steps = 2000
    config.train.log_every = 100
    config.train.eval_every = 1000
    config.train.checkpoint_every = 1000
    if variant == "nanogpt":
        config.optimizer.learning_rate = 1e-3
    elif variant == "smoke":
        config.data.batch_size = 16
        config.data.eval_batch_size = 64
        config.model.num_layers = 1
        config.model.embed_dim = 32
        config.model.num_heads = 2
        config.train.num_steps = 10
        config.train.log_every = 5
        config.train.eval_every = 10
        config.train.eval_batches = 2
        config.optimizer.schedule.warmup_steps = 2
    elif variant:
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '', 'nanogpt' and 'smoke'.")
    return config
