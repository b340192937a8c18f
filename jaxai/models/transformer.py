"""Decoder-only GPT (nanoGPT-style) in Flax linen, with a KV cache and sampling.

Layout: token + learned position embeddings -> `num_layers` pre-LayerNorm `Block`s
(causal `Attention`, GELU `MLP`, all sharing one `BlockConfig`; the encoder-decoder in
`jaxai.models.encoder_decoder` reuses them) -> final LayerNorm -> logits against the token embedding
table (tied input/output embeddings). Attention is jaxai's `causal_attention` by default
(`jaxai.models.attention`: a faster gradient on CPU); `attention_impl='cudnn'` gets
`jax.nn.dot_product_attention`'s fused flash kernel on GPUs (it needs bf16/fp16 compute).
Attention-probability dropout is not applied (the fused kernels have none); dropout acts on the
embeddings and on the residual branches. With a bf16 `dtype`, every matmul takes bf16 operands and
accumulates in float32 (`jaxai.models.precision`), while parameters and their gradients stay float32.

Every parameter names its axes (vocab, embed, heads, mlp, norm) for `jaxai.sharding`; attention
projections are 2-D with an ('embed', 'heads') layout, 'heads' spanning num_heads * head_dim, so
tensor parallelism splits whole heads when num_heads divides by the mesh's tensor size.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxai.errors import ConfigError
from jaxai.models.attention import check_implementation, dot_product_attention, masked_attention
from jaxai.models.precision import mixed_precision_dot_general, promote_inputs_only

Dtype = Any  # A dtype or its name ("float32", "bfloat16").
INIT_STD = 0.02


def _init(stddev: float, axes: tuple[str | None, ...]) -> nn.initializers.Initializer:
    return nn.with_logical_partitioning(nn.initializers.normal(stddev), axes)


def _zeros(axes: tuple[str | None, ...]) -> nn.initializers.Initializer:
    return nn.with_logical_partitioning(nn.initializers.zeros_init(), axes)


def _dense(features: int, use_bias: bool, dtype: Dtype, init_std: float, axes: tuple[str, str], name: str) -> nn.Dense:
    """A Dense whose matmul runs in `dtype` with float32 accumulation on the float32 kernel."""
    return nn.Dense(
        features, use_bias=use_bias, dtype=dtype, kernel_init=_init(init_std, axes), bias_init=_zeros(axes[1:]),
        promote_dtype=promote_inputs_only, dot_general=mixed_precision_dot_general, name=name,
    )


def _layer_norm(use_bias: bool, dtype: Dtype, name: str | None) -> nn.LayerNorm:
    return nn.LayerNorm(
        epsilon=1e-5,
        use_bias=use_bias,
        dtype=dtype,
        scale_init=nn.with_logical_partitioning(nn.initializers.ones_init(), ("norm",)),
        bias_init=_zeros(("norm",)),
        name=name,
    )


def _gelu(x: jax.Array) -> jax.Array:
    """Exact (erf) GELU, as nanoGPT's nn.GELU(), computed in float32 and returned in x's dtype.

    In bf16, XLA:CPU rounds after every elementwise op of erf's polynomial (convert pairs around
    each); in float32 the GELU and its gradient cost a fraction of that.
    """
    return nn.gelu(x.astype(jnp.float32), approximate=False).astype(x.dtype)


@dataclasses.dataclass(frozen=True)
class BlockConfig:
    """What every attention, MLP and block of one transformer shares (the GPT and the encoder-decoder)."""

    num_heads: int = 6
    mlp_ratio: int = 4
    use_bias: bool = True
    dropout_rate: float = 0.0
    residual_init_std: float = INIT_STD  # Init of the projections that write into the residual stream.
    dtype: Dtype = "float32"
    attention_impl: str | None = "jaxai"
    decode: bool = False  # Causal self-attention keeps a KV cache in 'cache' (GPT generation).


class Attention(nn.Module):
    """Multi-head attention of x over itself, or over `context` (cross-attention).

    `causal=True`: each position sees itself and the past (with `config.decode`, through a KV cache);
    `mask` [B, 1, T or 1, S] (True = may attend) hides padded keys. Without a mask, causal attention
    runs `config.attention_impl`; with one, `masked_attention`, which records its weights in
    'intermediates' when that collection is mutable.
    """

    config: BlockConfig
    causal: bool = True

    @nn.compact
    def __call__(
        self, x: jax.Array, *, train: bool, context: jax.Array | None = None, mask: jax.Array | None = None
    ) -> jax.Array:
        config = self.config
        embed_dim = x.shape[-1]
        if embed_dim % config.num_heads:
            raise ConfigError(f"embed_dim={embed_dim} must be divisible by num_heads={config.num_heads}.")
        head_dim = embed_dim // config.num_heads
        heads_axes = ("batch", "length", "heads", "kv")

        def project_in(name: str, inputs: jax.Array) -> jax.Array:  # [B, T, E] -> [B, T, N, H]
            # A 2-D kernel whose output axis is N heads of H contiguous features (not DenseGeneral's
            # 3-D kernel, whose flattened init trips Flax's logical constraints under jax.set_mesh).
            projected = _dense(embed_dim, config.use_bias, config.dtype, INIT_STD, ("embed", "heads"), name)(inputs)
            projected = projected.reshape(*inputs.shape[:2], config.num_heads, head_dim)  # [B, T, N, H]
            return nn.with_logical_constraint(projected, heads_axes)

        source = x if context is None else context
        query, key, value = project_in("query", x), project_in("key", source), project_in("value", source)
        decode = config.decode and self.causal and context is None
        if decode and self.has_variable("cache", "cached_key"):
            key, value, cache_mask = self._extend_cache(key, value)  # [B, S, N, H] over the whole cache
            out = jax.nn.dot_product_attention(query, key, value, mask=cache_mask, implementation="xla")
        elif mask is not None:
            out, probabilities = masked_attention(query, key, value, mask, self.causal)
            self.sow("intermediates", "attention_weights", probabilities)  # Kept only when asked for (tests, plots).
        elif self.causal:  # Training, scoring, and cache creation (whose shapes the init call sets).
            if decode:
                self._extend_cache(key, value)
            out = dot_product_attention(query, key, value, config.attention_impl)
        else:
            out, _ = masked_attention(query, key, value, jnp.ones((1, 1, 1, 1), bool))
        out = nn.with_logical_constraint(out, heads_axes).reshape(*x.shape[:2], embed_dim)  # [B, T, N*H]

        out = _dense(embed_dim, config.use_bias, config.dtype, config.residual_init_std, ("heads", "embed"), "out")(out)
        return nn.Dropout(config.dropout_rate, deterministic=not train)(out)

    def _extend_cache(self, key: jax.Array, value: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Writes `key`/`value` [B, T, N, H] at `cache_index`; returns the cache and the causal mask."""
        initialized = self.has_variable("cache", "cached_key")
        cached_key = self.variable("cache", "cached_key", jnp.zeros, key.shape, key.dtype)
        cached_value = self.variable("cache", "cached_value", jnp.zeros, value.shape, value.dtype)
        cache_index = self.variable("cache", "cache_index", lambda: jnp.array(0, jnp.int32))
        if not initialized:  # Creating the cache: its length is the length of this call's input.
            return key, value, jnp.ones((1, 1, 1, 1), bool)
        length, cache_length = key.shape[1], cached_key.value.shape[1]
        index = cache_index.value
        cached_key.value = jax.lax.dynamic_update_slice(cached_key.value, key, (0, index, 0, 0))
        cached_value.value = jax.lax.dynamic_update_slice(cached_value.value, value, (0, index, 0, 0))
        cache_index.value = index + length
        query_positions = index + jnp.arange(length)  # [T]
        mask = jnp.arange(cache_length)[None, :] <= query_positions[:, None]  # [T, S]: no look-ahead
        return cached_key.value, cached_value.value, mask[None, None]  # mask [1, 1, T, S]


class MLP(nn.Module):
    """Position-wise Dense -> GELU -> Dense, widening by `config.mlp_ratio`."""

    config: BlockConfig

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        config, embed_dim = self.config, x.shape[-1]
        hidden = _dense(config.mlp_ratio * embed_dim, config.use_bias, config.dtype, INIT_STD, ("embed", "mlp"), "up")(x)
        hidden = nn.with_logical_constraint(_gelu(hidden), ("batch", "length", "mlp"))
        out = _dense(embed_dim, config.use_bias, config.dtype, config.residual_init_std, ("mlp", "embed"), "down")(hidden)
        return nn.Dropout(config.dropout_rate, deterministic=not train)(out)


class Block(nn.Module):
    """Pre-LayerNorm block: x + Attention(LN(x)) [+ x + CrossAttention(LN(x), memory)], then x + MLP(LN(x)).

    The GPT's blocks are causal with no cross-attention; an encoder's are not causal and take the
    source padding `mask`; a decoder's are causal and attend over the encoder's `memory`.
    """

    config: BlockConfig
    causal: bool = True
    cross_attention: bool = False

    @nn.compact
    def __call__(
        self, x: jax.Array, *, train: bool, mask: jax.Array | None = None,
        memory: jax.Array | None = None, memory_mask: jax.Array | None = None,
    ) -> jax.Array:
        config, axes = self.config, ("batch", "length", "embed")
        x = x + Attention(config, self.causal, name="attention")(
            _layer_norm(config.use_bias, config.dtype, "attention_norm")(x), train=train, mask=mask
        )
        x = nn.with_logical_constraint(x, axes)
        if self.cross_attention:
            x = x + Attention(config, causal=False, name="cross_attention")(
                _layer_norm(config.use_bias, config.dtype, "cross_attention_norm")(x), train=train,
                context=memory, mask=memory_mask,
            )
            x = nn.with_logical_constraint(x, axes)
        x = x + MLP(config, name="mlp")(_layer_norm(config.use_bias, config.dtype, "mlp_norm")(x), train=train)
        return nn.with_logical_constraint(x, axes)


class GPT(nn.Module):
    """Decoder-only transformer language model: tokens [B, T] int -> logits [B, T, vocab] float32.

    `dtype` is the compute dtype (parameters stay float32). `attention_impl` is 'jaxai' (jaxai's
    `causal_attention`), or 'xla', 'cudnn' or None (JAX chooses) for `jax.nn.dot_product_attention`. With `decode=True`
    each call continues the sequence held in the 'cache' collection (see `generate`).
    """

    vocab_size: int = 256
    block_size: int = 256  # Longest context (number of learned positions).
    num_layers: int = 6
    num_heads: int = 6
    embed_dim: int = 384
    mlp_ratio: int = 4
    dropout_rate: float = 0.0
    use_bias: bool = True
    dtype: Dtype = "float32"
    attention_impl: str | None = "jaxai"
    decode: bool = False

    @nn.compact
    def __call__(self, tokens: jax.Array, *, train: bool) -> jax.Array:
        check_implementation(self.attention_impl)
        length = tokens.shape[1]
        if length > self.block_size:
            raise ValueError(f"Sequence length {length} exceeds block_size={self.block_size}.")
        positions = jnp.arange(length)  # [T]
        if self.decode:  # Positions continue from the tokens already in the cache.
            initialized = self.has_variable("cache", "position_index")
            position_index = self.variable("cache", "position_index", lambda: jnp.array(0, jnp.int32))
            if initialized:
                positions = positions + position_index.value
                position_index.value = position_index.value + length

        token_embed = nn.Embed(
            self.vocab_size, self.embed_dim, dtype=self.dtype,
            embedding_init=_init(INIT_STD, ("vocab", "embed")), name="token_embed",
        )
        position_embed = nn.Embed(
            self.block_size, self.embed_dim, dtype=self.dtype,
            embedding_init=_init(INIT_STD, (None, "embed")), name="position_embed",
        )
        x = token_embed(tokens) + position_embed(positions)[None]  # [B, T, E]
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = nn.with_logical_constraint(x, ("batch", "length", "embed"))

        block_config = BlockConfig(
            self.num_heads, self.mlp_ratio, self.use_bias, self.dropout_rate,
            INIT_STD / math.sqrt(2 * self.num_layers), self.dtype, self.attention_impl, self.decode,
        )
        for layer in range(self.num_layers):
            x = Block(block_config, name=f"block_{layer}")(x, train=train)
        x = _layer_norm(self.use_bias, self.dtype, "final_norm")(x)
        logits = token_embed.attend(x)  # [B, T, V]: tied with the input embedding
        logits = nn.with_logical_constraint(logits, ("batch", "length", "vocab"))
        return logits.astype(jnp.float32)


def flops_per_token(model: GPT | Mapping[str, Any]) -> float:
    """Training FLOPs per token (forward + backward), nanoGPT's 6N + 12*L*H*Q*T estimate.

    N counts the non-embedding parameters as nanoGPT does (the tied token table is counted,
    the position table is not).
    """
    model = _as_gpt(model)
    embed, layers, block = model.embed_dim, model.num_layers, model.block_size
    bias = int(model.use_bias)
    norm = (1 + bias) * embed
    per_layer = (
        2 * norm
        + 4 * (embed * embed + bias * embed)  # query, key, value, out
        + 2 * model.mlp_ratio * embed * embed + bias * (model.mlp_ratio * embed + embed)
    )
    num_params = model.vocab_size * embed + layers * per_layer + norm
    head_dim = embed // model.num_heads
    return 6.0 * num_params + 12.0 * layers * model.num_heads * head_dim * block


def sample_logits(rng: jax.Array, logits: jax.Array, temperature: float | jax.Array, top_k: int | None) -> jax.Array:
    """Next tokens [B] int32 from logits [B, V]: argmax for a Python 0 temperature, else top-k sampling."""
    if isinstance(temperature, (int, float)) and temperature == 0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    if top_k:  # None or 0 keeps the whole vocabulary.
        kth_largest = jax.lax.top_k(logits, min(top_k, logits.shape[-1]))[0][..., -1:]  # [B, 1]
        logits = jnp.where(logits < kth_largest, -jnp.inf, logits)
    return jax.random.categorical(rng, logits / temperature, axis=-1).astype(jnp.int32)


def generate(
    model: GPT | Mapping[str, Any],
    params: Any,
    prompt_tokens: jax.Array,
    rng: jax.Array,
    num_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    use_cache: bool = True,
) -> jax.Array:
    """Continues `prompt_tokens` [B, T0] by `num_tokens` sampled tokens -> [B, T0 + num_tokens].

    `use_cache=True` runs one token at a time against a KV cache (prompt + new tokens must fit
    in block_size); `use_cache=False` recomputes the context, cropped to its last block_size
    tokens, for every new token. `model` is a GPT or a mapping of GPT fields ('name' ignored).
    """
    model = _as_gpt(model).clone(decode=False)  # Boxed (logically partitioned) params are fine.
    prompt_tokens = jnp.asarray(prompt_tokens, jnp.int32)
    if prompt_tokens.ndim != 2 or prompt_tokens.shape[1] == 0:
        raise ValueError(f"prompt_tokens must be [batch, length>=1], got shape {prompt_tokens.shape}.")
    if num_tokens <= 0:
        return prompt_tokens
    temperature = float(temperature)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature}.")
    total = prompt_tokens.shape[1] + num_tokens
    sampling = dict(temperature=jnp.float32(temperature), greedy=temperature == 0, top_k=top_k)
    if not use_cache:
        return _generate_recompute(model, params, prompt_tokens, rng, num_tokens, **sampling)
    if total > model.block_size:
        raise ValueError(
            f"Prompt ({prompt_tokens.shape[1]}) + num_tokens ({num_tokens}) = {total} exceeds "
            f"block_size={model.block_size}; the KV cache cannot hold it. Use use_cache=False to crop."
        )
    return _generate_cached(model, params, prompt_tokens, rng, num_tokens, **sampling)


@functools.partial(jax.jit, static_argnames=("model", "num_tokens", "greedy", "top_k"))
def _generate_cached(model, params, prompt_tokens, rng, num_tokens, temperature, greedy, top_k):
    temperature = 0.0 if greedy else temperature  # A Python 0 makes sample_logits take the argmax.
    decoder = model.clone(decode=True)
    batch, prompt_length = prompt_tokens.shape
    cache_shapes = jax.eval_shape(
        lambda: decoder.apply(
            {"params": params}, jnp.zeros((batch, prompt_length + num_tokens), jnp.int32),
            train=False, mutable=["cache"],
        )[1]["cache"]
    )
    cache = jax.tree.map(lambda shape: jnp.zeros(shape.shape, shape.dtype), cache_shapes)

    def step(cache, tokens):  # tokens [B, T] -> next-token logits [B, V]
        logits, variables = decoder.apply({"params": params, "cache": cache}, tokens, train=False, mutable=["cache"])
        return variables["cache"], logits[:, -1]

    cache, logits = step(cache, prompt_tokens)  # The whole prompt fills the cache in one call.
    rngs = jax.random.split(rng, num_tokens)
    first = sample_logits(rngs[0], logits, temperature, top_k)

    def body(carry, step_rng):
        cache, token = carry
        cache, logits = step(cache, token[:, None])
        next_token = sample_logits(step_rng, logits, temperature, top_k)
        return (cache, next_token), next_token

    _, rest = jax.lax.scan(body, (cache, first), rngs[1:])  # rest [num_tokens - 1, B]
    return jnp.concatenate([prompt_tokens, first[:, None], rest.T], axis=1)


@functools.partial(jax.jit, static_argnames=("model", "num_tokens", "greedy", "top_k"))
def _generate_recompute(model, params, prompt_tokens, rng, num_tokens, temperature, greedy, top_k):
    temperature = 0.0 if greedy else temperature
    batch, prompt_length = prompt_tokens.shape
    total = prompt_length + num_tokens
    window = min(total, model.block_size)
    tokens = jnp.concatenate([prompt_tokens, jnp.zeros((batch, num_tokens), jnp.int32)], axis=1)  # [B, total]

    def body(tokens, step_and_rng):
        step, step_rng = step_and_rng
        length = prompt_length + step  # Tokens known so far.
        start = jnp.maximum(length - window, 0)
        context = jax.lax.dynamic_slice_in_dim(tokens, start, window, axis=1)  # [B, window]
        logits = model.apply({"params": params}, context, train=False)  # Later slots: causally unseen.
        last = jax.lax.dynamic_index_in_dim(logits, length - 1 - start, axis=1, keepdims=False)  # [B, V]
        next_token = sample_logits(step_rng, last, temperature, top_k)
        return jax.lax.dynamic_update_slice_in_dim(tokens, next_token[:, None], length, axis=1), None

    steps = (jnp.arange(num_tokens), jax.random.split(rng, num_tokens))
    tokens, _ = jax.lax.scan(body, tokens, steps)
    return tokens


def _as_gpt(model: GPT | Mapping[str, Any]) -> GPT:
    if isinstance(model, GPT):
        return model
    return GPT(**{key: value for key, value in dict(model).items() if key != "name"})
