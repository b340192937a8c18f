"""LSTM encoder-decoder with attention (Bahdanau et al., 2015; Luong et al., 2015).

Layout: a shared token embedding -> `num_layers` LSTM layers over the source = memory [B, S, H];
the decoder's LSTM layers start from the encoder's carries after each source's last real token
and read the target shifted right behind BOS. Attention over the memory (padded positions masked):

- 'bahdanau' (additive): before each decoder step, score_s = v . tanh(W h_{t-1} + U m_s); the
  context vector is fed to the first decoder layer with the token, so the recurrence runs step by
  step (`nn.scan`).
- 'dot' (Luong's "general"): score_s = (W h_t) . m_s on the top decoder layer's outputs; the
  decoder LSTMs see no context, so their input projections run as one matmul (`jaxai.models.rnn.LSTM`).

Both end in tanh(Dense([h_t; context_t])) -> Dense logits. `encode`/`decode` are separate for
`jaxai.models.decoding`. Token id 0 is padding.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxai.errors import ConfigError
from jaxai.models.encoder_decoder import PAD
from jaxai.models.rnn import LSTM

Memory = tuple[jax.Array, tuple[Any, ...]]  # (encoder outputs [B, S, H], each layer's final (c, h) carry)
ATTENTIONS = ("bahdanau", "dot")


def _masked_softmax(scores: jax.Array, mask: jax.Array) -> jax.Array:
    """Softmax over the last axis of float32 scores where `mask` (broadcastable) is True."""
    return jax.nn.softmax(jnp.where(mask, scores.astype(jnp.float32), jnp.finfo(jnp.float32).min), axis=-1)


class BahdanauStep(nn.Module):
    """One decoder step: attend with the previous hidden state, then an LSTM cell on [token; context]."""

    hidden_size: int
    dtype: Any = "float32"

    @nn.compact
    def __call__(self, carry, token_embedding, memory, memory_keys, source_mask):
        _, hidden = carry
        query = nn.Dense(self.hidden_size, use_bias=False, dtype=self.dtype, name="query")(hidden)  # [B, A]
        energies = jnp.tanh(memory_keys + query[:, None, :])  # [B, S, A]
        scores = nn.Dense(1, use_bias=False, dtype=self.dtype, name="energy")(energies)[..., 0]  # [B, S]
        weights = _masked_softmax(scores, source_mask)  # [B, S]
        context = jnp.einsum("bs,bsh->bh", weights.astype(memory.dtype), memory)
        inputs = jnp.concatenate([token_embedding, context.astype(token_embedding.dtype)], axis=-1)
        carry, output = nn.OptimizedLSTMCell(self.hidden_size, dtype=self.dtype, name="cell")(carry, inputs)
        return carry, (output, context, weights)


class LSTMSeq2Seq(nn.Module):
    """(source [B, S], target_in [B, T]) int -> logits [B, T, vocab] float32."""

    vocab_size: int = 256
    hidden_size: int = 256
    num_layers: int = 1
    embed_dim: int = 0  # 0 -> hidden_size.
    attention: str = "bahdanau"  # 'bahdanau' (additive) or 'dot' (Luong's general).
    dropout_rate: float = 0.0
    dtype: Any = "float32"

    def setup(self) -> None:
        if self.attention not in ATTENTIONS:
            raise ConfigError(f"model.attention={self.attention!r}: use one of {ATTENTIONS}.")
        self.token_embed = nn.Embed(self.vocab_size, self.embed_dim or self.hidden_size, dtype=self.dtype)
        self.encoder = [LSTM(self.hidden_size, self.dtype) for _ in range(self.num_layers)]
        first_decoder_layers = 0 if self.attention == "dot" else 1
        self.decoder = [LSTM(self.hidden_size, self.dtype) for _ in range(self.num_layers - first_decoder_layers)]
        if self.attention == "bahdanau":
            self.memory_key = nn.Dense(self.hidden_size, use_bias=False, dtype=self.dtype)
            self.attention_step = nn.scan(
                BahdanauStep, variable_broadcast="params", split_rngs={"params": False},
                in_axes=(1, nn.broadcast, nn.broadcast, nn.broadcast), out_axes=1,
            )(self.hidden_size, self.dtype)
        else:
            self.query = nn.Dense(self.hidden_size, use_bias=False, dtype=self.dtype)
        self.combine = nn.Dense(self.hidden_size, dtype=self.dtype)
        self.head = nn.Dense(self.vocab_size, dtype=self.dtype)
        self.dropout = nn.Dropout(self.dropout_rate)

    def __call__(self, source: jax.Array, target_in: jax.Array, *, train: bool) -> jax.Array:
        return self.decode(self.encode(source, train=train), source, target_in, train=train)

    def encode(self, source: jax.Array, *, train: bool) -> Memory:
        """Source tokens [B, S] -> (outputs [B, S, H], each layer's carry after the last real token)."""
        lengths = jnp.sum(source != PAD, axis=1)
        x = self.token_embed(source)
        carries = []
        for layer in self.encoder:
            carry, x = layer(self.dropout(x, deterministic=not train), lengths=lengths)
            carries.append(carry)
        return x, tuple(carries)

    def decode(self, memory: Memory, source: jax.Array, target_in: jax.Array, *, train: bool) -> jax.Array:
        """Logits [B, T, V] for each next target token given the encoded source and `target_in` [B, T]."""
        outputs, carries = memory
        source_mask = source != PAD  # [B, S]
        x = self.dropout(self.token_embed(target_in), deterministic=not train)
        if self.attention == "bahdanau":
            keys = self.memory_key(outputs)  # U m_s, computed once for every step.
            _, (x, context, weights) = self.attention_step(carries[0], x, outputs, keys, source_mask)
            self.sow("intermediates", "attention_weights", weights)  # [B, T, S]
            carries = carries[1:]
        for layer, carry in zip(self.decoder, carries):
            _, x = layer(self.dropout(x, deterministic=not train), carry)
        if self.attention == "dot":
            scores = jnp.einsum("bth,bsh->bts", self.query(x), outputs)
            weights = _masked_softmax(scores, source_mask[:, None, :])  # [B, T, S]
            self.sow("intermediates", "attention_weights", weights)
            context = jnp.einsum("bts,bsh->bth", weights.astype(outputs.dtype), outputs)
        combined = jnp.tanh(self.combine(jnp.concatenate([x, context.astype(x.dtype)], axis=-1)))
        return self.head(self.dropout(combined, deterministic=not train)).astype(jnp.float32)
