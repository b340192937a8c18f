"""RNNLM: shapes, parameter counts, stateful generation, overfitting."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec

from jaxai.data.tokenizers import make_tokenizer
from jaxai.models.rnn import RNNLM, generate

TEXT = (
    "First Citizen: Before we proceed any further, hear me speak. All: Speak, speak. "
    "First Citizen: You are all resolved rather to die than to famish? All: Resolved. resolved. "
    "First Citizen: First, you know Caius Marcius is chief enemy to the people."
)[:200]
VOCAB, HIDDEN, EMBED, LAYERS = 11, 8, 5, 2


def random_tokens(seed: int, shape: tuple[int, ...], vocab_size: int) -> jax.Array:
    """Random ids from NumPy (jax.random would compile a kernel per shape)."""
    return jnp.asarray(np.random.default_rng(seed).integers(0, vocab_size, shape), jnp.int32)


def expected_param_count(cell: str) -> int:
    embedding = VOCAB * EMBED
    head = HIDDEN * VOCAB + VOCAB
    if cell == "lstm":  # 4 gates: input kernel, recurrent kernel, one bias each.
        layer = lambda inputs: 4 * (inputs * HIDDEN + HIDDEN * HIDDEN + HIDDEN)
    else:  # 3 gates with input kernels + biases, 3 recurrent kernels, one extra bias (candidate).
        layer = lambda inputs: 3 * (inputs * HIDDEN + HIDDEN) + 3 * HIDDEN * HIDDEN + HIDDEN
    return embedding + layer(EMBED) + (LAYERS - 1) * layer(HIDDEN) + head


def tiny(cell: str, **fields) -> RNNLM:
    return RNNLM(vocab_size=VOCAB, hidden_size=HIDDEN, num_layers=LAYERS, cell=cell, embed_dim=EMBED, **fields)


@functools.partial(jax.jit, static_argnums=0)
def init(model: RNNLM):
    """Variables of `model`, compiled once per configuration.

    An 'rbg' key: its random ops compile several times faster on CPU than threefry's, which
    dominates the run time of these tests.
    """
    return model.init(jax.random.key(0, impl="rbg"), jnp.zeros((2, 1), jnp.int32), train=False)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_shapes_param_count_and_axis_names(cell):
    model = tiny(cell, dtype=jnp.bfloat16)
    tokens = jnp.zeros((3, 7), jnp.int32)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), tokens, train=False))
    params = nn.meta.unbox(variables["params"])
    assert sum(leaf.size for leaf in jax.tree.leaves(params)) == expected_param_count(cell)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))  # bf16 compute only.
    specs = jax.tree.leaves(nn.get_partition_spec(variables["params"]), is_leaf=lambda x: isinstance(x, PartitionSpec))
    assert len(specs) == len(jax.tree.leaves(params)) and all(len(spec) > 0 for spec in specs)

    logits, carries = jax.eval_shape(lambda variables: model.apply(variables, tokens, train=False), variables)
    assert logits.shape == (3, 7, VOCAB) and logits.dtype == jnp.float32
    assert len(carries) == LAYERS
    carry_shape = ((3, HIDDEN), (3, HIDDEN)) if cell == "lstm" else (3, HIDDEN)
    assert jax.tree.map(lambda x: x.shape, carries[0]) == carry_shape


def test_unknown_cell():
    with pytest.raises(ValueError, match="'lstm'"):
        tiny("transformer").init(jax.random.key(0), jnp.zeros((1, 2), jnp.int32), train=False)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_stateful_steps_equal_full_sequence(cell):
    model = tiny(cell)
    variables = init(model)
    tokens = random_tokens(1, (2, 9), VOCAB)

    @jax.jit
    def full_and_stepwise(tokens):
        full_logits, full_carries = model.apply(variables, tokens, train=False)
        first_logits, carries = model.apply(variables, tokens[:, :1], train=False)  # From the zero state.

        def step(carries, token):  # token [B]: one token at a time, carrying the state.
            logits, carries = model.apply(variables, token[:, None], train=False, initial_carries=carries)
            return carries, logits[:, 0]

        carries, step_logits = jax.lax.scan(step, carries, tokens[:, 1:].T)  # step_logits [T-1, B, V]
        stepwise = jnp.concatenate([first_logits, step_logits.transpose(1, 0, 2)], axis=1)
        return full_logits, full_carries, stepwise, carries

    full_logits, full_carries, stepwise_logits, stepwise_carries = full_and_stepwise(tokens)
    np.testing.assert_allclose(stepwise_logits, full_logits, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), stepwise_carries, full_carries)

    prompt = tokens[:, :3]
    sampled = generate(model, variables["params"], prompt, jax.random.key(2), num_tokens=6, temperature=0.0)
    assert sampled.shape == (2, 9) and sampled.dtype == jnp.int32
    np.testing.assert_array_equal(sampled[:, :3], prompt)
    # Greedy: every generated token is the argmax of the full-sequence logits at the step before.
    logits = full_and_stepwise(sampled)[0]
    np.testing.assert_array_equal(sampled[:, 3:], jnp.argmax(logits[:, 2:-1], axis=-1))


def test_dropout_only_in_training():
    model = tiny("lstm", dropout_rate=0.5)
    variables = init(tiny("lstm"))  # Dropout adds no parameters.
    tokens = random_tokens(1, (2, 6), VOCAB)

    @jax.jit
    def run(rng):
        train_logits, _ = model.apply(variables, tokens, train=True, rngs={"dropout": rng})
        eval_logits, _ = model.apply(variables, tokens, train=False)
        return train_logits, eval_logits

    first, eval_logits = run(jax.random.key(0, impl="rbg"))
    second, _ = run(jax.random.key(1, impl="rbg"))
    assert not np.allclose(first, second) and not np.allclose(first, eval_logits)


def test_tiny_lstm_overfits_200_characters():
    tokenizer = make_tokenizer("char", TEXT)
    ids = jnp.asarray(tokenizer.encode(TEXT))[None]  # [1, 200]
    inputs, targets = ids[:, :-1], ids[:, 1:]
    model = RNNLM(vocab_size=tokenizer.vocab_size, hidden_size=64, num_layers=1, cell="lstm")
    params = init(model)["params"]
    optimizer = optax.adam(1e-2)

    @jax.jit
    def train_step(params, opt_state):
        def loss_fn(params):
            logits, _ = model.apply({"params": params}, inputs, train=False)
            return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state = optimizer.init(params)
    for _ in range(200):
        params, opt_state, loss = train_step(params, opt_state)
    assert float(loss) < 0.1
    # Greedy continuation reproduces the text, carrying the state or recomputing from scratch.
    for use_cache in (True, False):
        continued = generate(model, params, inputs[:, :10], jax.random.key(0), 30, temperature=0.0, use_cache=use_cache)
        assert tokenizer.decode(np.asarray(continued[0])) == TEXT[:40]
