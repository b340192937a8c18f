"""Stacked LSTM/GRU character language model (char-rnn style), and the LSTM layer it runs on.

Layout: token embedding -> `num_layers` recurrent layers (`LSTM` below, or `nn.RNN` over
`nn.GRUCell`) -> Dense logits. Dropout acts on every non-recurrent connection (embedding output,
between layers, before the head), as in Zaremba et al. (2014).

`LSTM` is a whole-sequence layer: the input projections of all time steps are one matmul
outside the recurrence, so only h @ W_h runs inside the scan; its gradient is written by hand
(`lstm_recurrence`), and the recurrent kernel's gradient is one matmul over all time steps after
the reverse scan instead of one small matmul per step.

Parameters carry logical axis names: input kernels ('embed', 'mlp'), recurrent kernels
(None, 'mlp'), biases ('mlp',). RNN-sized models are best run purely data-parallel, where the
names do not matter.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxai.errors import ConfigError
from jaxai.models.precision import mixed_precision_matmul
from jaxai.models.transformer import sample_logits

Carries = tuple[Any, ...]  # One carry per layer: (c, h) for an LSTM, h for a GRU; each [B, hidden].
CELLS = ("lstm", "gru")
UNROLL = 1  # Time steps per scan iteration; 2 and 5 measured no faster on XLA:CPU (char-rnn 2x512).
GATES = 4  # LSTM gates in the kernels' last axis, in nn.OptimizedLSTMCell's order: i, f, g, o.


def per_gate(init: nn.initializers.Initializer) -> nn.initializers.Initializer:
    """An initializer of a [K, 4H] kernel that initializes each gate's [K, H] block with `init` on its own.

    As nn.OptimizedLSTMCell (one kernel per gate): an orthogonal [H, 4H] matrix is not four orthogonal blocks.
    """

    def initialize(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        *rest, width = shape
        blocks = [init(gate_key, (*rest, width // GATES), dtype) for gate_key in jax.random.split(key, GATES)]
        return jnp.concatenate(blocks, axis=-1)

    return initialize


def _matmul(x: jax.Array, kernel: jax.Array, dtype: Any) -> jax.Array:
    """x [..., K] @ kernel [K, N] in the compute dtype, accumulated in float32 -> float32."""
    if jnp.dtype(dtype) == jnp.float32:
        return jnp.dot(x.astype(jnp.float32), kernel)
    return mixed_precision_matmul(x.astype(dtype), kernel).astype(jnp.float32)


def _gate_scale(hidden: int) -> jax.Array:
    """[4H]: 2 on the candidate gate g, 1 on i, f, o. tanh(z) = 2 sigmoid(2z) - 1 puts all four gates in one
    elementwise op over [B, 4H] (XLA:CPU otherwise runs a fusion per gate inside the loop)."""
    return jnp.repeat(jnp.array([1.0, 1.0, 2.0, 1.0], jnp.float32), hidden)


def _activations(preactivations: jax.Array, scale: jax.Array) -> jax.Array:
    """Gates i, f, o = sigmoid(z) and g = tanh(z), as one [B, 4H] array."""
    return jax.nn.sigmoid(preactivations * scale) * scale - (scale - 1)


def _recurrence_forward(inputs_proj, recurrent_kernel, c0, h0, dtype):
    kernel = recurrent_kernel.astype(dtype)  # Cast once, outside the loop.
    scale = _gate_scale(kernel.shape[0])

    def step(carry, projected):  # projected [B, 4H]: this step's input projection + bias.
        c, h = carry
        hidden = lax.dot(h.astype(dtype), kernel, preferred_element_type=jnp.float32)  # [B, 4H]
        activations = _activations(projected + hidden, scale)
        i, f, g, o = jnp.split(activations, GATES, axis=-1)
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (c, h), (h, c, activations)

    _, (hs, cs, activations) = lax.scan(step, (c0, h0), inputs_proj, unroll=UNROLL)  # [T, B, H], [T, B, H], [T, B, 4H]
    return (hs, cs), (hs, cs, activations, kernel, c0, h0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def lstm_recurrence(
    inputs_proj: jax.Array, recurrent_kernel: jax.Array, c0: jax.Array, h0: jax.Array, dtype: Any = jnp.float32
) -> tuple[jax.Array, jax.Array]:
    """The LSTM recurrence over time-major input projections [T, B, 4H] (gates i, f, g, o, bias included).

    From the carry (c0, h0) [B, H], returns every step's (h, c), each [T, B, H] float32. h @ W_h runs
    in `dtype` with float32 accumulation; gates and carries stay float32.
    """
    return _recurrence_forward(inputs_proj, recurrent_kernel, c0, h0, dtype)[0]


def _recurrence_fwd(inputs_proj, recurrent_kernel, c0, h0, dtype):
    outputs, residuals = _recurrence_forward(inputs_proj, recurrent_kernel, c0, h0, dtype)
    return outputs, (*residuals, jnp.zeros((), recurrent_kernel.dtype))  # The scalar carries the kernel's dtype.


def _recurrence_bwd(dtype, residuals, cotangents):
    hs, cs, activations, kernel, c0, h0, kernel_dtype_of = residuals
    d_hs, d_cs = cotangents  # [T, B, H] each: what the outputs and the returned carries feed back.
    c_prev = jnp.concatenate([c0[None], cs[:-1]])  # [T, B, H]
    kernel_t = kernel.T  # [4H, H]
    scale = _gate_scale(kernel.shape[0])

    def step(carry, inputs):
        dh_next, dc_next = carry  # Gradients into this step's h and c from the step after it.
        d_h, d_c, acts, c, c_before = inputs
        i, f, g, o = jnp.split(acts, GATES, axis=-1)
        dh = d_h + dh_next
        tanh_c = jnp.tanh(c)
        dc = d_c + dc_next + dh * o * (1 - tanh_c * tanh_c)
        d_acts = jnp.concatenate([dc * g, dc * c_before, dc * i, dh * tanh_c], axis=-1)  # [B, 4H]
        # Gradient of the pre-activations: a(1 - a) for sigmoid gates, 1 - a^2 for tanh, in one expression.
        d_pre = d_acts * (acts + scale - 1) * (1 - acts)
        dh_prev = lax.dot(d_pre.astype(dtype), kernel_t, preferred_element_type=jnp.float32)  # [B, H]
        return (dh_prev, dc * f), d_pre

    zeros = jnp.zeros_like(c0)
    (dh0, dc0), d_pre = lax.scan(step, (zeros, zeros), (d_hs, d_cs, activations, cs, c_prev), reverse=True, unroll=UNROLL)
    h_prev = jnp.concatenate([h0[None], hs[:-1]])  # [T, B, H]
    # dW_h = sum_t h_{t-1}^T d_pre_t: one [H, T*B] @ [T*B, 4H] matmul instead of T small ones.
    # h_prev goes features-first ([H, T, B]) so XLA:CPU's fast dot gets its transposed operand in memory.
    d_kernel = lax.dot_general(
        jnp.moveaxis(h_prev, -1, 0).astype(dtype), d_pre.astype(dtype), (((1, 2), (0, 1)), ((), ())),
        preferred_element_type=jnp.float32,
    )  # [H, 4H]
    return d_pre, d_kernel.astype(kernel_dtype_of.dtype), dc0, dh0


lstm_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


class TokenInputs(NamedTuple):
    """An LSTM's inputs given as rows of an embedding table: x = table[ids]."""

    table: jax.Array  # [V, E]
    ids: jax.Array  # [B, T] int


class LSTM(nn.Module):
    """An LSTM layer over whole sequences: x [B, T, E] -> (carry (c, h) [B, H] each, outputs [B, T, H]).

    Gates, parameters and initialisation as nn.OptimizedLSTMCell (i, f, g, o; lecun_normal input
    kernel, orthogonal recurrent kernel per gate, zero bias), stored as one [E, 4H] input kernel,
    one [H, 4H] recurrent kernel and one [4H] bias. Parameters and carries are float32; matmuls
    run in `dtype` with float32 accumulation, and the outputs come out in `dtype`.

    `x` may be `TokenInputs(table, ids)`: the input projection is then applied to the V table rows
    and gathered (V x E x 4H multiply-adds instead of B x T x E x 4H; the same function).

    `initial_carry` (c, h) defaults to zeros. With `lengths` [B] (padding at the end), the carry
    returned is each sequence's after its last real step (the initial carry for length 0); outputs
    past a sequence's length are those of the recurrence running on over the padding.
    """

    hidden_size: int
    dtype: Any = "float32"  # Compute dtype; parameters and carries stay float32.

    @nn.compact
    def __call__(
        self,
        x: jax.Array | TokenInputs,
        initial_carry: tuple[jax.Array, jax.Array] | None = None,
        lengths: jax.Array | None = None,
    ) -> tuple[tuple[jax.Array, jax.Array], jax.Array]:
        batch, features = (x.ids.shape[0], x.table.shape[1]) if isinstance(x, TokenInputs) else (x.shape[0], x.shape[2])
        hidden = self.hidden_size
        input_kernel = self.param(
            "input_kernel",
            nn.with_logical_partitioning(per_gate(nn.initializers.lecun_normal()), ("embed", "mlp")),
            (features, GATES * hidden), jnp.float32,
        )
        recurrent_kernel = self.param(
            "recurrent_kernel",
            nn.with_logical_partitioning(per_gate(nn.initializers.orthogonal()), (None, "mlp")),
            (hidden, GATES * hidden), jnp.float32,
        )
        bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros_init(), ("mlp",)),
                          (GATES * hidden,), jnp.float32)
        if initial_carry is None:
            initial_carry = (jnp.zeros((batch, hidden), jnp.float32), jnp.zeros((batch, hidden), jnp.float32))
        c0, h0 = (jnp.asarray(part, jnp.float32) for part in initial_carry)
        # All time steps' input projections in one matmul, time-major for the scan.
        if isinstance(x, TokenInputs):
            table_proj = _matmul(x.table, input_kernel, self.dtype) + bias  # [V, 4H]
            inputs_proj = jnp.take(table_proj, jnp.swapaxes(x.ids, 0, 1), axis=0)  # [T, B, 4H]
        else:
            inputs_proj = _matmul(jnp.swapaxes(x, 0, 1), input_kernel, self.dtype) + bias  # [T, B, 4H]
        hs, cs = lstm_recurrence(inputs_proj, recurrent_kernel, c0, h0, jnp.dtype(self.dtype))  # [T, B, H] each
        if lengths is None:
            carry = (cs[-1], hs[-1])
        else:
            last = jnp.clip(jnp.asarray(lengths) - 1, 0, None)  # [B]
            rows = jnp.arange(batch)
            started = (jnp.asarray(lengths) > 0)[:, None]
            carry = (jnp.where(started, cs[last, rows], c0), jnp.where(started, hs[last, rows], h0))
        return carry, jnp.swapaxes(hs, 0, 1).astype(self.dtype)  # outputs [B, T, H]


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
        if self.cell not in CELLS:
            raise ConfigError(f"Unknown cell {self.cell!r}; valid cells: {sorted(CELLS)}.")
        if initial_carries is not None and len(initial_carries) != self.num_layers:
            raise ValueError(f"initial_carries has {len(initial_carries)} entries, expected {self.num_layers}.")
        dropout = nn.Dropout(self.dropout_rate, deterministic=not train)
        embed = nn.Embed(
            self.vocab_size,
            self.embed_dim or self.hidden_size,
            dtype=self.dtype,
            embedding_init=nn.with_logical_partitioning(nn.linear.default_embed_init, ("vocab", "embed")),
            name="token_embed",
        )
        # The first LSTM can project the V embedding rows instead of B x T looked-up ones (the same
        # function) when there are fewer rows and no dropout between the two.
        fold_embedding = (
            self.cell == "lstm" and (self.dropout_rate == 0 or not train) and tokens.size > self.vocab_size
        )
        x = None if fold_embedding else embed(tokens)  # [B, T, E]
        carries = []
        for layer in range(self.num_layers):
            initial_carry = None if initial_carries is None else initial_carries[layer]
            if self.cell == "lstm":
                inputs = TokenInputs(embed.embedding.astype(self.dtype), tokens) if x is None else dropout(x)
                carry, x = LSTM(self.hidden_size, dtype=self.dtype, name=f"lstm_{layer}")(
                    inputs, initial_carry
                )  # x [B, T, hidden]
            else:
                cell = nn.GRUCell(
                    features=self.hidden_size,
                    dtype=self.dtype,
                    kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), ("embed", "mlp")),
                    recurrent_kernel_init=nn.with_logical_partitioning(nn.initializers.orthogonal(), (None, "mlp")),
                    bias_init=nn.with_logical_partitioning(nn.initializers.zeros_init(), ("mlp",)),
                    name=f"gru_{layer}",
                )
                carry, x = nn.RNN(cell, return_carry=True)(dropout(x), initial_carry=initial_carry)  # x [B, T, hidden]
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
