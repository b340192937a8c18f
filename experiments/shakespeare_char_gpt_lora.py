"""LoRA fine-tuning of a Tiny Shakespeare GPT on another text: Python's documentation, or a text you name.

    jaxai train --config experiments/shakespeare_char_gpt_lora.py:pretrain --workdir runs/gpt_bytes
    jaxai train --config experiments/shakespeare_char_gpt_lora.py --workdir runs/gpt_lora
    jaxai train --config experiments/shakespeare_char_gpt_lora.py --workdir runs/gpt_lora_mine \
        --config.data.name=text --config.data.path=my_corpus.txt
    jaxai sample --workdir runs/gpt_lora --prompt "The with statement"

Both sides read bytes (tokenizer 'byte', 256 tokens), so the pretrained embeddings fit any text.
`:pretrain` is experiments/shakespeare_char_gpt_cpu.py's baby GPT and recipe on Tiny Shakespeare's
bytes. '' loads it (init_from.path) and trains LoRA adapters of rank 8 on every attention and MLP
projection (query, key, value, out, up, down) on data.name='python_docs' (Python's help topics,
shipped with Python), the embeddings, norms and weights frozen; the export holds the merged weights.
`:full` fine-tunes every weight instead, `:scratch` trains the same GPT on the new text from random
weights, both with the same steps, for comparison. bench/transfer.py runs them; bench/RESULTS.md
has the figures and trainable-parameter counts.
Variants: `:smoke` is a seconds-long LoRA run of a tiny GPT on Tiny Shakespeare, for tests.
"""

import os

import ml_collections

from jaxai.config import load_experiment

PRETRAINED = "runs/gpt_bytes"  # Where the :pretrain command above writes.
STEPS = 600


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    if variant not in ("", "pretrain", "full", "scratch", "smoke"):
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '', 'pretrain', 'full', 'scratch' and 'smoke'.")
    base = os.path.join(os.path.dirname(__file__), "shakespeare_char_gpt_cpu.py")
    config = load_experiment(base, "smoke" if variant == "smoke" else "")
    config.data.tokenizer = "byte"
    if variant == "pretrain":
        return config
    config.optimizer.flatten = False  # Frozen weights have no moments: nothing to flatten them with.
    config.train.num_steps = 10 if variant == "smoke" else STEPS
    config.train.eval_every = 10 if variant == "smoke" else 200
    config.optimizer.schedule.warmup_steps = 2 if variant == "smoke" else 50
    if variant != "smoke":
        config.data.name = "python_docs"
        config.init_from.path = PRETRAINED
    if variant in ("", "smoke"):
        config.lora.rank = 8
        config.lora.alpha = 16.0
        config.lora.targets = "attention|mlp"
        config.optimizer.learning_rate = 3e-3
        config.optimizer.weight_decay = 0.0
    elif variant == "full":
        config.optimizer.learning_rate = 1e-3
    elif variant == "scratch":
        config.init_from.path = ""
    return config
