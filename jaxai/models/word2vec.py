"""Skip-gram word embeddings (word2vec): an input and an output table, dot-product logits."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def _uniform_init(dim: int) -> nn.initializers.Initializer:
    """word2vec.c's input-vector init: uniform in [-0.5/dim, 0.5/dim]."""

    def init(rng: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(rng, shape, dtype, -0.5 / dim, 0.5 / dim)

    return init


class SkipGram(nn.Module):
    """Input vectors `embed` (the embeddings) and output vectors `context`, both [vocab, embed_dim].

    The logit of a (center, context) pair is the dot product of the center's input vector and the
    context's output vector; negative sampling scores (center, noise word) pairs the same way.
    """

    vocab_size: int
    embed_dim: int = 100

    def setup(self) -> None:
        axes = ("vocab", "embed")
        shape = (self.vocab_size, self.embed_dim)
        self.embed = self.param("embed", nn.with_logical_partitioning(_uniform_init(self.embed_dim), axes), shape)
        # word2vec.c starts the output vectors at zero: every first logit is 0, sigma = 0.5.
        self.context = self.param("context", nn.with_logical_partitioning(nn.initializers.zeros_init(), axes), shape)

    def __call__(self, center: jax.Array, context: jax.Array, negatives: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Ids center [B], context [B], negatives [B, K] -> logits of the true pairs [B] and noise pairs [B, K]."""
        center_vectors = jnp.take(self.embed, center, axis=0)  # [B, D]
        positive = jnp.einsum("bd,bd->b", center_vectors, jnp.take(self.context, context, axis=0))  # [B]
        negative = jnp.einsum("bd,bkd->bk", center_vectors, jnp.take(self.context, negatives, axis=0))  # [B, K]
        return positive, negative

    def normalized_embeddings(self) -> jax.Array:
        """Unit-length input vectors [vocab, embed_dim]: dot products are cosine similarities."""
        norms = jnp.linalg.norm(self.embed, axis=-1, keepdims=True)  # [V, 1]
        return self.embed / jnp.maximum(norms, 1e-12)
