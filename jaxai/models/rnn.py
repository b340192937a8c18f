"""Stacked LSTM/GRU character language model (char-rnn style) on Flax recurrent cells.

Layout: token embedding -> `num_layers` recurrent layers (`nn.RNN` over `nn.OptimizedLSTMCell`
or `nn.GRUCell`) -> Dense logits. Dropout acts on every non-recurrent connection (embedding
output, between layers, before the head), as in Zaremba et al. (2014).

Parameters carry logical axis names (the cells accept partitioning-wrapped initializers):
input kernels ('embed', 'mlp'), recurrent kernels (None, 'mlp'), biases ('mlp',). RNN-sized
models are best run purely data-parallel, where the names do not matter.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxai.errors import ConfigError
from jaxai.models.transformer import sample_logits

Carries = tuple[Any, ...]  # One carry per layer: (c, h) for an LSTM, h for a GRU; each [B, hidden].
_CELLS = {"lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell}


class RNNLM(nn.Module):
    """Recurrent language model: tokens [B, T] -> (logits [B, T, vocab] float32, carries)."""

    vocab_size: int = 256
    hidden_size: int = 512
    num_layers: int = 2
    cell: str = "lstm"  # 'lstm' | 'gru'
    dropout_rate: float = 0.0
    embed_dim: int | None = None  # None: hidden_size.
    dtype: Any = "float32"  # Compute dtype; parameters and carries stay float32.

    @nn.compact
    def __call__(
        self, tokens: jax.Array, *, train: bool, initial_carries: Carries | None = None
    ) -> tuple[jax.Array, Carries]:
        if self.cell not in _CELLS:
            raise ConfigError(f"Unknown cell {self.cell!r}; valid cells: {sorted(_CELLS)}.")
        if initial_carries is not None and len(initial_carries) != self.num_layers:
            raise ValueError(f"initial_carries has {len(initial_carries)} entries, expected {self.num_layers}.")
        dropout = nn.Dropout(self.dropout_rate, deterministic=not train)
        x = nn.Embed(
            self.vocab_size,
            self.embed_dim or self.hidden_size,
            dtype=self.dtype,
            embedding_init=nn.with_logical_partitioning(nn.linear.default_embed_init, ("vocab", "embed")),
            name="token_embed",
        )(tokens)  # [B, T, E]
        carries = []
        for layer in range(self.num_layers):
            cell = _CELLS[self.cell](
                features=self.hidden_size,
                dtype=self.dtype,
                kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), ("embed", "mlp")),
                recurrent_kernel_init=nn.with_logical_partitioning(nn.initializers.orthogonal(), (None, "mlp")),
                bias_init=nn.with_logical_partitioning(nn.initializers.zeros_init(), ("mlp",)),
                name=f"{self.cell}_{layer}",
            )
            initial_carry = None if initial_carries is None else initial_carries[layer]
            carry, x = nn.RNN(cell, return_carry=True)(
                dropout(x), initial_carry=initial_carry
            )  # x [B, T, hidden]
            carries.append(carry)
        logits = nn.Dense(
            self.vocab_size,
            dtype=self.dtype,
            kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), ("mlp", "vocab")),
            bias_init=nn.with_logical_partitioning(nn.initializers.zeros_init(), ("vocab",)),
            name="head",
        )(dropout(x))  # [B, T, V]
        return logits.astype(jnp.float32), tuple(carries)


def generate(
    model: RNNLM,
    params: Any,
    prompt_tokens: jax.Array,
    rng: jax.Array,
    num_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    use_cache: bool = True,
) -> jax.Array:
    """Continues `prompt_tokens` [B, T0] by `num_tokens` sampled tokens -> [B, T0 + num_tokens].

    `use_cache=True` carries the recurrent state and feeds one token at a time (no length limit);
    `use_cache=False` reruns the whole sequence from a zero state for every token (slow; a check).
    """
    prompt_tokens = jnp.asarray(prompt_tokens, jnp.int32)
    if prompt_tokens.ndim != 2 or prompt_tokens.shape[1] == 0:
        raise ValueError(f"prompt_tokens must be [batch, length>=1], got shape {prompt_tokens.shape}.")
    if num_tokens <= 0:
        return prompt_tokens
    temperature = float(temperature)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature}.")
    run = _generate_stateful if use_cache else _generate_recompute
    return run(model, params, prompt_tokens, rng, num_tokens, jnp.float32(temperature), temperature == 0, top_k)


@functools.partial(jax.jit, static_argnames=("model", "num_tokens", "greedy", "top_k"))
def _generate_stateful(model, params, prompt_tokens, rng, num_tokens, temperature, greedy, top_k):
    temperature = 0.0 if greedy else temperature  # A Python 0 makes sample_logits take the argmax.
    logits, carries = model.apply({"params": params}, prompt_tokens, train=False)
    rngs = jax.random.split(rng, num_tokens)
    first = sample_logits(rngs[0], logits[:, -1], temperature, top_k)

    def body(state, step_rng):
        carries, token = state
        logits, carries = model.apply({"params": params}, token[:, None], train=False, initial_carries=carries)
        next_token = sample_logits(step_rng, logits[:, -1], temperature, top_k)
        return (carries, next_token), next_token

    _, rest = jax.lax.scan(body, (carries, first), rngs[1:])  # rest [num_tokens - 1, B]
    return jnp.concatenate([prompt_tokens, first[:, None], rest.T], axis=1)


@functools.partial(jax.jit, static_argnames=("model", "num_tokens", "greedy", "top_k"))
def _generate_recompute(model, params, prompt_tokens, rng, num_tokens, temperature, greedy, top_k):
    temperature = 0.0 if greedy else temperature  # A Python 0 makes sample_logits take the argmax.
    batch, prompt_length = prompt_tokens.shape
    tokens = jnp.concatenate([prompt_tokens, jnp.zeros((batch, num_tokens), jnp.int32)], axis=1)  # [B, total]

    def body(tokens, step_and_rng):
        step, step_rng = step_and_rng
        length = prompt_length + step  # Tokens known so far; later slots are not yet seen.
        logits, _ = model.apply({"params": params}, tokens, train=False)
        last = jax.lax.dynamic_index_in_dim(logits, length - 1, axis=1, keepdims=False)  # [B, V]
        next_token = sample_logits(step_rng, last, temperature, top_k)
        return jax.lax.dynamic_update_slice_in_dim(tokens, next_token[:, None], length, axis=1), None

    tokens, _ = jax.lax.scan(body, tokens, (jnp.arange(num_tokens), jax.random.split(rng, num_tokens)))
    return tokens
