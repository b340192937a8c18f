"""nanoGPT's CPU "baby" GPT on Tiny Shakespeare characters: 4 layers, 4 heads, 128 dims, block 64.

    jaxai train --config experiments/shakespeare_char_gpt_cpu.py --workdir runs/gpt_cpu
    jaxai sample --workdir runs/gpt_cpu --prompt "ROMEO:" --num_tokens 500

As nanoGPT's README makes it: shakespeare_char_gpt.py's recipe (AdamW, warm-up 100, cosine decay to
a tenth, beta2 0.99, weight decay 0.1, clip 1.0, no biases) at a smaller shape, batch 12, 2,000
iters, no dropout — except the peak learning rate: 2e-3 instead of nanoGPT's 1e-3 reaches val loss
1.80 in the same 2,000 iterations, where 1e-3 gives 1.91 here (nanoGPT reports ~1.88).
`:fast` is the schedule that gets to nanoGPT's val loss (1.88) soonest with a margin: peak lr 3e-3
and a cosine over 1,400 iterations reach 1.860, evaluated once at the end (a full validation pass
costs ~1.5 s here). Measured alternatives: 3e-3 over 1,300 stops at 1.883, 4e-3 over 1,300 at
1.876, 3e-3 over 1,500 at 1.843; earlier, 4e-3 over 1,000 at 1.914 and 2e-3 over 1,200 at 1.935;
batch 24 is no faster per token (bench/RESULTS.md).
`:nanogpt` is nanoGPT's exact recipe, for side-by-side runs. Compute is bfloat16 with float32
parameters and float32 accumulation (faster on CPU). bench/RESULTS.md has the measured figures.
"""

import os

import ml_collections

from jaxai.config import load_experiment


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = load_experiment(os.path.join(os.path.dirname(__file__), "shakespeare_char_gpt.py"))
    config.data.block_size = 64
    config.data.batch_size = 12
    config.data.eval_batch_size = 256
    config.model.block_size = 64
    config.model.num_layers = 4
    config.model.num_heads = 4
    config.model.embed_dim = 128
    config.model.dropout_rate = 0.0
    config.optimizer.learning_rate = 2e-3
    config.optimizer.flatten = True  # One fused AdamW update over all parameters: ~10% faster here.
    config.train.num_steps = 2000
    config.train.eval_every = 1000
    if variant == "nanogpt":
        config.optimizer.learning_rate = 1e-3
    elif variant == "fast":
        config.optimizer.learning_rate = 3e-3
        config.train.num_steps = 1400
        config.train.eval_every = 1400
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
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '', 'fast', 'nanogpt' and 'smoke'.")
    return config
