"""Greedy and beam-search decoding for encoder-decoder models: jittable, fixed shapes.

Both take `decode_fn(target_in [N, L]) -> logits [N, L, V]`, the model's decoder with the encoded
sources bound, for N = batch x r rows: each source repeated r times in a row (greedy: r = 1; beam
search: r = beam_size). Output step t reads the logits at position t of a buffer that holds
BOS and the tokens chosen so far; later positions hold padding, which a causal or recurrent decoder
never reads before it writes them. A sequence ends at EOS; after it come PAD tokens at no cost.
PAD and BOS are never chosen as output tokens.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

PAD, BOS, EOS = 0, 1, 2
NEG_INF = -1e9  # Finite, so that sums of "impossible" scores never turn into NaN.

DecodeFn = Callable[[jax.Array], jax.Array]


def _step_log_probs(decode_fn: DecodeFn, buffer: jax.Array, step: jax.Array) -> jax.Array:
    """log p(next token) [N, V] at output position `step`, PAD and BOS excluded."""
    logits = jax.lax.dynamic_index_in_dim(decode_fn(buffer[:, :-1]), step, axis=1, keepdims=False)
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return log_probs.at[:, PAD].set(NEG_INF).at[:, BOS].set(NEG_INF)


def greedy_decode(decode_fn: DecodeFn, batch_size: int, length: int) -> tuple[jax.Array, jax.Array]:
    """The most likely token at every step: (tokens [B, L] int32, log-probability [B] of each sequence)."""
    buffer = jnp.zeros((batch_size, length + 1), jnp.int32).at[:, 0].set(BOS)  # Decoder input, BOS first.

    def body(step, carry):
        buffer, log_prob, done = carry
        log_probs = _step_log_probs(decode_fn, buffer, step)
        token = jnp.where(done, PAD, jnp.argmax(log_probs, axis=-1).astype(jnp.int32))
        log_prob = log_prob + jnp.where(done, 0.0, jnp.take_along_axis(log_probs, token[:, None], axis=1)[:, 0])
        buffer = jax.lax.dynamic_update_slice_in_dim(buffer, token[:, None], step + 1, axis=1)
        return buffer, log_prob, done | (token == EOS)

    init = (buffer, jnp.zeros((batch_size,), jnp.float32), jnp.zeros((batch_size,), bool))
    buffer, log_prob, _ = jax.lax.fori_loop(0, length, body, init)
    return buffer[:, 1:], log_prob


def sequence_lengths(tokens: jax.Array) -> jax.Array:
    """Tokens up to and including the first EOS (all of them where there is none): [..., L] -> [...]."""
    is_eos = tokens == EOS
    first = jnp.argmax(is_eos, axis=-1)
    return jnp.where(jnp.any(is_eos, axis=-1), first + 1, tokens.shape[-1])


def length_normalized(log_prob: jax.Array, lengths: jax.Array, length_penalty: float) -> jax.Array:
    """GNMT's ranking score: log p / ((5 + length) / 6) ** length_penalty (0: plain log-probability)."""
    return log_prob / ((5.0 + lengths) / 6.0) ** length_penalty


def beam_search(
    decode_fn: DecodeFn, batch_size: int, length: int, beam_size: int, length_penalty: float = 0.0
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The `beam_size` best sequences per source, best first: (tokens [B, K, L], scores [B, K], log-probs [B, K]).

    Beams are ranked by log-probability while searching, and the finished hypotheses by
    `length_normalized` scores. The greedy sequence competes too: plain beam search can drop it
    early and end below it, so with `length_penalty=0` the best beam is never less likely than greedy.
    """
    k, num = beam_size, batch_size * beam_size
    buffer = jnp.zeros((num, length + 1), jnp.int32).at[:, 0].set(BOS)
    # Only the first beam of each source is live at the start: K copies of one prefix are one hypothesis.
    log_prob = jnp.tile(jnp.array([0.0] + [NEG_INF] * (k - 1), jnp.float32), batch_size)

    def body(step, carry):
        buffer, log_prob, done = carry
        log_probs = _step_log_probs(decode_fn, buffer, step)  # [N, V]
        finished_row = jnp.full_like(log_probs, NEG_INF).at[:, PAD].set(0.0)  # Ended beams only pad.
        log_probs = jnp.where(done[:, None], finished_row, log_probs)
        vocab = log_probs.shape[-1]
        candidates = (log_prob[:, None] + log_probs).reshape(batch_size, k * vocab)
        top_scores, top_index = jax.lax.top_k(candidates, k)  # [B, K]
        parent = (top_index // vocab + jnp.arange(batch_size)[:, None] * k).reshape(num)
        token = (top_index % vocab).reshape(num).astype(jnp.int32)
        buffer = jax.lax.dynamic_update_slice_in_dim(buffer[parent], token[:, None], step + 1, axis=1)
        return buffer, top_scores.reshape(num), done[parent] | (token == EOS)

    buffer, log_prob, _ = jax.lax.fori_loop(0, length, body, (buffer, log_prob, jnp.zeros((num,), bool)))
    tokens = buffer[:, 1:].reshape(batch_size, k, length)
    log_prob = log_prob.reshape(batch_size, k)

    greedy_tokens, greedy_log_prob = greedy_decode(decode_fn, batch_size, length)
    duplicate = jnp.any(jnp.all(tokens == greedy_tokens[:, None], axis=-1), axis=1)  # [B]
    tokens = jnp.concatenate([tokens, greedy_tokens[:, None]], axis=1)  # [B, K+1, L]
    log_prob = jnp.concatenate([log_prob, jnp.where(duplicate, NEG_INF, greedy_log_prob)[:, None]], axis=1)
    scores = length_normalized(log_prob, sequence_lengths(tokens), length_penalty)
    order = jnp.argsort(-scores, axis=1)[:, :k]
    pick = lambda values: jnp.take_along_axis(values, order if values.ndim == 2 else order[..., None], axis=1)
    return pick(tokens), pick(scores), pick(log_prob)
