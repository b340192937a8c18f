"""Encoder-decoder Transformer (Vaswani et al., 2017) built from the GPT's blocks.

Layout: a shared token embedding (source and target use one vocabulary) + learned or sinusoidal
positions -> `num_layers` non-causal pre-LayerNorm `Block`s over the source (padded positions
masked) -> final LayerNorm = memory; the target, shifted right behind BOS, runs through
`num_decoder_layers` causal `Block`s that also attend over the memory (cross-attention) -> final
LayerNorm -> logits against the embedding table (tied). Token id 0 is padding throughout.

`encode` and `decode` are separate methods so decoding (`jaxai.models.decoding`) encodes a source
once and reruns only the decoder as the target grows.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxai.errors import ConfigError
from jaxai.models.attention import check_implementation
from jaxai.models.transformer import INIT_STD, Block, BlockConfig, _init, _layer_norm

PAD = 0  # Padding token id; sequences carry it after their end.


def padding_mask(tokens: jax.Array) -> jax.Array:
    """[B, S] token ids -> [B, 1, 1, S] attention mask: True at real (non-padding) keys."""
    return (tokens != PAD)[:, None, None, :]


def sinusoidal_positions(length: int, dim: int) -> np.ndarray:
    """The original Transformer's fixed position encodings, [length, dim] float32."""
    positions = np.arange(length)[:, None]
    frequencies = np.exp(-math.log(10000.0) * np.arange(0, dim, 2) / dim)[None, :]
    table = np.zeros((length, dim), np.float32)
    table[:, 0::2] = np.sin(positions * frequencies)
    table[:, 1::2] = np.cos(positions * frequencies[:, : dim // 2])
    return table


class EncoderDecoder(nn.Module):
    """(source [B, S], target_in [B, T]) int -> logits [B, T, vocab] float32."""

    vocab_size: int = 256
    max_length: int = 128  # Longest source or target (number of positions).
    num_layers: int = 3  # Encoder blocks.
    num_decoder_layers: int = 0  # 0 -> num_layers.
    num_heads: int = 4
    embed_dim: int = 128
    mlp_ratio: int = 4
    dropout_rate: float = 0.0
    use_bias: bool = True
    positions: str = "learned"  # 'learned' or 'sinusoidal'.
    dtype: Any = "float32"
    attention_impl: str | None = "jaxai"  # The decoder's causal self-attention (see jaxai.models.attention).

    def setup(self) -> None:
        check_implementation(self.attention_impl)
        if self.positions not in ("learned", "sinusoidal"):
            raise ConfigError(f"model.positions={self.positions!r}: use 'learned' or 'sinusoidal'.")
        decoder_layers = self.num_decoder_layers or self.num_layers
        self.token_embed = nn.Embed(
            self.vocab_size, self.embed_dim, dtype=self.dtype, embedding_init=_init(INIT_STD, ("vocab", "embed"))
        )
        if self.positions == "learned":
            self.position_embed = nn.Embed(
                self.max_length, self.embed_dim, dtype=self.dtype, embedding_init=_init(INIT_STD, (None, "embed"))
            )
        config = BlockConfig(
            self.num_heads, self.mlp_ratio, self.use_bias, self.dropout_rate,
            INIT_STD / math.sqrt(2 * (self.num_layers + decoder_layers)), self.dtype, self.attention_impl,
        )
        self.encoder_blocks = [Block(config, causal=False) for _ in range(self.num_layers)]
        self.decoder_blocks = [Block(config, causal=True, cross_attention=True) for _ in range(decoder_layers)]
        self.encoder_norm = _layer_norm(self.use_bias, self.dtype, None)
        self.decoder_norm = _layer_norm(self.use_bias, self.dtype, None)
        self.dropout = nn.Dropout(self.dropout_rate)

    def __call__(self, source: jax.Array, target_in: jax.Array, *, train: bool) -> jax.Array:
        return self.decode(self.encode(source, train=train), source, target_in, train=train)

    def encode(self, source: jax.Array, *, train: bool) -> jax.Array:
        """Source tokens [B, S] -> memory [B, S, E]."""
        x = self._embed(source, train)
        mask = padding_mask(source)
        for block in self.encoder_blocks:
            x = block(x, train=train, mask=mask)
        return self.encoder_norm(x)

    def decode(self, memory: jax.Array, source: jax.Array, target_in: jax.Array, *, train: bool) -> jax.Array:
        """Logits [B, T, V] for each next target token, given the memory of `source` and `target_in` [B, T]."""
        x = self._embed(target_in, train)
        memory_mask = padding_mask(source)
        for block in self.decoder_blocks:
            # Target padding needs no mask: it only follows a sequence's end, which causal attention never looks past.
            x = block(x, train=train, memory=memory, memory_mask=memory_mask)
        logits = self.token_embed.attend(self.decoder_norm(x))  # Tied with the input embedding.
        return logits.astype(jnp.float32)

    def _embed(self, tokens: jax.Array, train: bool) -> jax.Array:
        length = tokens.shape[1]
        if length > self.max_length:
            raise ValueError(f"Sequence length {length} exceeds model.max_length={self.max_length}.")
        if self.positions == "learned":
            positions = self.position_embed(jnp.arange(length))
        else:
            positions = jnp.asarray(sinusoidal_positions(length, self.embed_dim), self.dtype)
        x = self.token_embed(tokens) * (1.0 if self.positions == "learned" else math.sqrt(self.embed_dim))
        x = x + positions[None]
        x = self.dropout(x, deterministic=not train)
        return nn.with_logical_constraint(x, ("batch", "length", "embed"))
