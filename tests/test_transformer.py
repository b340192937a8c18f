"""GPT: parameter count, shapes, causality, KV-cache generation, bf16, axis names, overfitting."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh, PartitionSpec

from jaxai.data.tokenizers import make_tokenizer
from jaxai.models.transformer import GPT, flops_per_token, generate, sample_logits
from jaxai.sharding import LOGICAL_AXIS_RULES

TINY = dict(vocab_size=13, block_size=16, num_layers=2, num_heads=2, embed_dim=8)
TEXT = (
    "First Citizen: Before we proceed any further, hear me speak. All: Speak, speak. "
    "First Citizen: You are all resolved rather to die than to famish? All: Resolved. resolved. "
    "First Citizen: First, you know Caius Marcius is chief enemy to the people."
)[:200]


def random_tokens(seed: int, shape: tuple[int, ...], vocab_size: int) -> jax.Array:
    """Random ids from NumPy (jax.random would compile a kernel per shape)."""
    return jnp.asarray(np.random.default_rng(seed).integers(0, vocab_size, shape), jnp.int32)


@functools.partial(jax.jit, static_argnums=0)
def init(model: GPT):
    """Variables of `model`, compiled once per configuration.

    An 'rbg' key: its random ops compile several times faster on CPU than threefry's, which
    dominates the run time of these tests.
    """
    return model.init(jax.random.key(0, impl="rbg"), jnp.zeros((2, 1), jnp.int32), train=False)


@functools.partial(jax.jit, static_argnums=0)
def forward(model: GPT, variables, tokens: jax.Array) -> jax.Array:
    """Logits of a jitted, deterministic call (compiled once per model and shape)."""
    return model.apply(variables, tokens, train=False)


def abstract_variables(model: GPT):
    """Shapes, dtypes and axis names of the variables, without computing them."""
    return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((2, 4), jnp.int32), train=False))


def expected_param_count(vocab_size, block_size, num_layers, embed_dim, mlp_ratio=4, use_bias=True) -> int:
    embed, bias = embed_dim, int(use_bias)
    norm = embed * (1 + bias)  # scale (+ bias)
    attention = 4 * (embed * embed + bias * embed)  # query, key, value, out projections
    mlp = 2 * mlp_ratio * embed * embed + bias * (mlp_ratio * embed + embed)
    per_layer = 2 * norm + attention + mlp
    # Token table (tied with the output layer) + position table + blocks + final norm.
    return vocab_size * embed + block_size * embed + num_layers * per_layer + norm


def param_count(variables) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(nn.meta.unbox(variables["params"])))


@pytest.mark.parametrize("use_bias", [True, False])
def test_exact_parameter_count(use_bias):
    model = GPT(**TINY, use_bias=use_bias)
    expected = expected_param_count(13, 16, 2, 8, use_bias=use_bias)
    assert param_count(abstract_variables(model)) == expected
    # nanoGPT estimate: 6 * non-embedding params (position table excluded) + 12 * L * H * Q * T.
    assert flops_per_token(model) == 6 * (expected - 16 * 8) + 12 * 2 * 2 * 4 * 16


def test_output_shape_and_dtype():
    model = GPT(**TINY)
    variables = init(model)
    tokens = random_tokens(1, (3, 11), 13)
    logits = forward(model, variables, tokens)
    assert logits.shape == (3, 11, 13) and logits.dtype == jnp.float32
    with pytest.raises(ValueError, match="block_size"):
        model.apply(variables, jnp.zeros((1, 17), jnp.int32), train=False)


def test_causality():
    model = GPT(**TINY)
    variables = init(model)
    tokens = random_tokens(1, (2, 16), 13)
    logits = forward(model, variables, tokens)
    for t in (0, 5, 15):
        changed = forward(model, variables, tokens.at[:, t].set((tokens[:, t] + 1) % 13))
        np.testing.assert_allclose(changed[:, :t], logits[:, :t], atol=1e-6)
        assert not np.allclose(changed[:, t], logits[:, t])


def random_params(variables, seed: int = 3, stddev: float = 0.5):
    """Large random weights, so logits are far from ties (nanoGPT init makes them nearly uniform)."""
    generator = np.random.default_rng(seed)  # NumPy: no per-shape XLA compilation of random ops.
    params = nn.meta.unbox(variables["params"])
    return jax.tree.map(lambda x: jnp.asarray(stddev * generator.standard_normal(x.shape), jnp.float32), params)


def test_kv_cache_step_logits_match_full_forward():
    model = GPT(**TINY)
    params = random_params(init(model))
    tokens = random_tokens(1, (2, 10), 13)
    full = forward(model, {"params": params}, tokens)

    decoder = model.clone(decode=True)
    # Calling with mutable=["cache"] and no cache creates one as long as the input: 10 slots.
    cache = jax.eval_shape(
        lambda: decoder.apply({"params": params}, tokens, train=False, mutable=["cache"])[1]["cache"]
    )
    cache = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), cache)
    assert cache["block_0"]["attention"]["cached_key"].shape == (2, 10, 2, 4)  # [B, S, N, H]

    @jax.jit
    def step(cache, chunk):
        logits, variables = decoder.apply({"params": params, "cache": cache}, chunk, train=False, mutable=["cache"])
        return variables["cache"], logits

    steps = []
    for t in range(10):  # One token at a time (generate also feeds the prompt as one chunk).
        cache, logits = step(cache, tokens[:, t : t + 1])
        steps.append(logits)
    assert int(cache["block_1"]["attention"]["cache_index"]) == 10
    np.testing.assert_allclose(jnp.concatenate(steps, axis=1), full, atol=1e-4, rtol=1e-4)


def test_kv_cache_greedy_generation_equals_recomputation():
    model = GPT(**TINY)
    params = random_params(init(model))
    prompt = random_tokens(1, (2, 3), 13)
    rng = jax.random.key(4)
    cached = generate(model, params, prompt, rng, num_tokens=13, temperature=0.0)
    recomputed = generate(model, params, prompt, rng, num_tokens=13, temperature=0.0, use_cache=False)
    assert cached.shape == (2, 16) and cached.dtype == jnp.int32
    np.testing.assert_array_equal(cached[:, :3], prompt)
    np.testing.assert_array_equal(cached, recomputed)


def test_sample_logits():
    logits = jnp.log(jnp.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]]))  # [B=2, V=3]
    key = jax.random.key(0, impl="rbg")
    np.testing.assert_array_equal(sample_logits(key, logits, 0.0, None), [1, 0])  # Greedy.
    np.testing.assert_array_equal(sample_logits(key, logits, 1.0, 1), [1, 0])  # top_k=1 is greedy too.
    samples = sample_logits(key, jnp.broadcast_to(logits, (500, 2, 3)), 1.0, 2)  # 500 draws per row
    assert set(np.unique(samples[:, 0])) == {1, 2} and set(np.unique(samples[:, 1])) == {0, 2}


def test_generation_length_limits():
    model = GPT(**TINY)
    params = init(model)["params"]  # Boxed with axis names: generate accepts them as they are.
    prompt = jnp.zeros((1, 10), jnp.int32)
    with pytest.raises(ValueError, match="block_size"):
        generate(model, params, prompt, jax.random.key(0), num_tokens=7)
    # Without the cache the context is cropped to block_size, so any length works.
    sampled = generate(model, params, prompt, jax.random.key(0), num_tokens=9, top_k=5, use_cache=False)
    assert sampled.shape == (1, 19) and int(sampled.max()) < 13


def test_bf16_compute_keeps_float32_params():
    model = GPT(**TINY, dtype=jnp.bfloat16)
    variables = init(model)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(nn.meta.unbox(variables)))
    tokens = random_tokens(1, (2, 16), 13)
    logits = forward(model, variables, tokens)
    assert logits.dtype == jnp.float32 and bool(jnp.isfinite(logits).all())


def test_params_carry_logical_axis_names():
    variables = abstract_variables(GPT(**TINY))
    specs = jax.tree.leaves(nn.get_partition_spec(variables["params"]), is_leaf=lambda x: isinstance(x, PartitionSpec))
    assert len(specs) == len(jax.tree.leaves(variables["params"]))
    assert all(isinstance(spec, PartitionSpec) and len(spec) > 0 for spec in specs)
    names = {name for spec in specs for name in spec}
    assert {"vocab", "embed", "heads", "mlp", "norm"} <= names


def test_runs_sharded_with_the_project_rules():
    model = GPT(vocab_size=16, block_size=16, num_layers=1, num_heads=2, embed_dim=8)
    variables = init(model)
    tokens = random_tokens(1, (4, 16), 16)
    expected = forward(model, variables, tokens)
    mesh = Mesh(np.asarray(jax.devices()[:8]).reshape(2, 2, 2), ("data", "fsdp", "tensor"))
    specs = nn.logical_to_mesh_sharding(nn.get_partition_spec(variables), mesh, LOGICAL_AXIS_RULES)
    sharded = jax.device_put(variables, specs)
    assert sharded["params"]["token_embed"]["embedding"].value.sharding.spec == PartitionSpec("tensor", "fsdp")
    # Flax applies logical constraints only under jax.set_mesh (the legacy `with mesh:` leaves them no-ops).
    with jax.set_mesh(mesh), nn.logical_axis_rules(LOGICAL_AXIS_RULES):
        lowered = jax.jit(lambda v, t: model.apply(v, t, train=False)).lower(sharded, tokens)
        assert "sharding_constraint" in lowered.as_text()
        logits = lowered.compile()(sharded, tokens)
    np.testing.assert_allclose(logits, expected, atol=1e-5)


def test_tiny_gpt_overfits_200_characters():
    tokenizer = make_tokenizer("char", TEXT)
    ids = jnp.asarray(tokenizer.encode(TEXT))[None]  # [1, 200]
    inputs, targets = ids[:, :-1], ids[:, 1:]
    model = GPT(vocab_size=tokenizer.vocab_size, block_size=200, num_layers=1, num_heads=4, embed_dim=32)
    params = init(model)["params"]
    optimizer = optax.adamw(1e-2, weight_decay=0.0)

    @jax.jit
    def train_step(params, opt_state):
        def loss_fn(params):
            logits = model.apply({"params": params}, inputs, train=True)  # dropout_rate 0: no rng needed.
            return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state = optimizer.init(params)
    for _ in range(150):
        params, opt_state, loss = train_step(params, opt_state)
    assert float(loss) < 0.1
    # Greedy continuation of the first 10 characters reproduces the memorized text.
    continued = generate(model, params, inputs[:, :10], jax.random.key(0), num_tokens=20, temperature=0.0)
    assert tokenizer.decode(np.asarray(continued[0])) == TEXT[:30]
