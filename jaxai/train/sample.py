"""`jaxai sample`: text from a trained language model's latest checkpoint."""

from __future__ import annotations

import importlib
import os

import jax
import ml_collections
import numpy as np

from jaxai import models
from jaxai.data.tokenizers import load_tokenizer
from jaxai.train.loop import build_run, restore_latest


def sample(
    config: ml_collections.ConfigDict, workdir: str, *, prompt: str, num_tokens: int, temperature: float,
    top_k: int, num_samples: int = 1, seed: int = 0,
) -> list[str]:
    """`num_samples` continuations of `prompt`, decoded with the run's saved tokenizer."""
    if config.task.name != "language_model":
        raise ValueError(f"`jaxai sample` needs a language-model run; {workdir} trained task {config.task.name!r}.")
    tokenizer_path = os.path.join(workdir, "tokenizer.json")
    if not os.path.exists(tokenizer_path):
        raise FileNotFoundError(f"{tokenizer_path} is missing; train into {workdir} with `jaxai train` first.")
    tokenizer = load_tokenizer(tokenizer_path)
    params = restore_latest(build_run(config), workdir)[0].params

    model = models.build_model(config.model, vocab_size=tokenizer.vocab_size)
    generate = importlib.import_module(type(model).__module__).generate
    prompt_tokens = np.tile(tokenizer.encode(prompt)[None, :], (num_samples, 1))  # [S, T0]
    fits_cache = config.model.name != "gpt" or prompt_tokens.shape[1] + num_tokens <= config.model.block_size
    tokens = generate(
        model, jax.device_get(params), prompt_tokens, jax.random.key(seed), num_tokens,
        temperature=temperature, top_k=top_k or None, use_cache=fits_cache,
    )
    return [tokenizer.decode(np.asarray(row)) for row in tokens]
