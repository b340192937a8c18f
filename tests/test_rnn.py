"""LSTM layer against a step-by-step reference; RNNLM: shapes, parameter counts, stateful generation, overfitting."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec

from jaxai.data.tokenizers import make_tokenizer
from jaxai.models.rnn import LSTM, RNNLM, TokenInputs, generate

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


def reference_lstm(params: dict, x: jax.Array, carry: tuple[jax.Array, jax.Array]):
    """nn.OptimizedLSTMCell stepped one time step at a time in Python, on LSTM's parameters split per gate."""
    cell = nn.OptimizedLSTMCell(features=params["recurrent_kernel"].shape[0])
    inputs_kernel = jnp.split(params["input_kernel"], 4, axis=-1)
    hidden_kernel = jnp.split(params["recurrent_kernel"], 4, axis=-1)
    bias = jnp.split(params["bias"], 4)
    cell_params = {}
    for gate, wi, wh, b in zip("ifgo", inputs_kernel, hidden_kernel, bias):
        cell_params[f"i{gate}"] = {"kernel": wi}
        cell_params[f"h{gate}"] = {"kernel": wh, "bias": b}
    outputs, carries = [], []
    for t in range(x.shape[1]):
        carry, h = cell.apply({"params": cell_params}, carry, x[:, t])
        outputs.append(h)
        carries.append(carry)
    return carries, jnp.stack(outputs, axis=1)  # carries after every step; outputs [B, T, H]


def lstm_case(seed: int = 0, batch: int = 3, length: int = 7):
    """An LSTM (E=5, H=8), its parameters, inputs [B, T, E] and a random initial carry."""
    layer = LSTM(HIDDEN)
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(batch, length, EMBED)), jnp.float32)
    carry = tuple(jnp.asarray(rng.normal(size=(batch, HIDDEN)), jnp.float32) for _ in range(2))
    params = nn.meta.unbox(layer.init(jax.random.key(seed), x)["params"])
    params["bias"] = jnp.asarray(rng.normal(size=params["bias"].shape), jnp.float32)  # Zero at init: test it too.
    return layer, params, x, carry


def test_lstm_equals_stepwise_reference_in_outputs_and_gradients():
    layer, params, x, carry = lstm_case()
    rng = np.random.default_rng(1)
    weights = [jnp.asarray(rng.normal(size=shape), jnp.float32) for shape in ((3, 7, HIDDEN), (3, HIDDEN), (3, HIDDEN))]

    def loss(outputs, final):  # Weighs every output and both final carries, so every cotangent is nonzero.
        return jnp.sum(outputs * weights[0]) + jnp.sum(final[0] * weights[1]) + jnp.sum(final[1] * weights[2])

    def ours(params, x, carry):
        final, outputs = layer.apply({"params": params}, x, carry)
        return loss(outputs, final), (final, outputs)

    def reference(params, x, carry):
        carries, outputs = reference_lstm(params, x, carry)
        return loss(outputs, carries[-1]), (carries[-1], outputs)

    (value, (final, outputs)), grads = jax.jit(jax.value_and_grad(ours, argnums=(0, 1, 2), has_aux=True))(params, x, carry)
    (ref_value, (ref_final, ref_outputs)), ref_grads = jax.value_and_grad(reference, argnums=(0, 1, 2), has_aux=True)(
        params, x, carry
    )
    assert outputs.shape == (3, 7, HIDDEN) and outputs.dtype == jnp.float32
    np.testing.assert_allclose(outputs, ref_outputs, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), final, ref_final)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    assert jax.tree.structure(grads) == jax.tree.structure(ref_grads)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4), grads, ref_grads)


def test_lstm_lengths_return_each_sequences_last_carry():
    layer, params, x, carry = lstm_case(seed=2, batch=4)
    lengths = jnp.array([7, 3, 0, 1])
    rng = np.random.default_rng(3)
    weights = [jnp.asarray(rng.normal(size=(4, HIDDEN)), jnp.float32) for _ in range(2)]

    def final_carry_loss(params, x, carry):
        final, _ = layer.apply({"params": params}, x, carry, lengths)
        return jnp.sum(final[0] * weights[0]) + jnp.sum(final[1] * weights[1]), final

    def reference_loss(params, x, carry):
        carries, _ = reference_lstm(params, x, carry)
        # Each row's carry after its last real step: step lengths-1, or the initial carry for length 0.
        final = tuple(
            jnp.stack([carry[part][row] if n == 0 else carries[n - 1][part][row] for row, n in enumerate(lengths.tolist())])
            for part in range(2)
        )
        return jnp.sum(final[0] * weights[0]) + jnp.sum(final[1] * weights[1]), final

    (_, final), grads = jax.jit(jax.value_and_grad(final_carry_loss, argnums=(0, 1, 2), has_aux=True))(params, x, carry)
    (_, ref_final), ref_grads = jax.value_and_grad(reference_loss, argnums=(0, 1, 2), has_aux=True)(params, x, carry)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), final, ref_final)
    np.testing.assert_array_equal(final[1][2], carry[1][2])  # Length 0: the initial carry.
    assert not np.allclose(final[1][1], layer.apply({"params": params}, x, carry)[0][1][1])  # Not the last step's.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4), grads, ref_grads)
    # Inputs after a row's length do not reach its carry.
    np.testing.assert_array_equal(grads[1][1, 3:], 0.0)


def test_lstm_token_inputs_equal_looked_up_rows():
    layer, params, _, carry = lstm_case()
    table = jnp.asarray(np.random.default_rng(5).normal(size=(VOCAB, EMBED)), jnp.float32)
    ids = random_tokens(6, (3, 7), VOCAB)

    def run(params, table, tokens_as_table_rows):
        inputs = TokenInputs(table, ids) if tokens_as_table_rows else table[ids]
        (c, h), outputs = layer.apply({"params": params}, inputs, carry)
        return jnp.sum(outputs**2) + jnp.sum(c * h), outputs

    grad = jax.jit(jax.grad(run, argnums=(0, 1), has_aux=True), static_argnums=2)
    (folded_grads, folded), (grads, outputs) = grad(params, table, True), grad(params, table, False)
    np.testing.assert_allclose(folded, outputs, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4), folded_grads, grads)


def test_lstm_init_params_and_low_precision():
    layer, _, x, _ = lstm_case()
    variables = layer.init(jax.random.key(4), x)
    params = nn.meta.unbox(variables["params"])
    assert {name: value.shape for name, value in params.items()} == {
        "input_kernel": (EMBED, 4 * HIDDEN), "recurrent_kernel": (HIDDEN, 4 * HIDDEN), "bias": (4 * HIDDEN,)}
    specs = nn.get_partition_spec(variables["params"])
    assert specs == {"input_kernel": PartitionSpec("embed", "mlp"), "recurrent_kernel": PartitionSpec(None, "mlp"),
                     "bias": PartitionSpec("mlp")}
    for block in jnp.split(params["recurrent_kernel"], 4, axis=-1):  # Orthogonal per gate, as OptimizedLSTMCell.
        np.testing.assert_allclose(block @ block.T, np.eye(HIDDEN), atol=1e-5)
    np.testing.assert_array_equal(params["bias"], 0.0)

    (c, h), outputs = LSTM(HIDDEN, dtype=jnp.bfloat16).apply(variables, x)
    (ref_c, ref_h), ref_outputs = layer.apply(variables, x)
    assert outputs.dtype == jnp.bfloat16 and c.dtype == h.dtype == jnp.float32
    np.testing.assert_allclose(outputs.astype(jnp.float32), ref_outputs, atol=3e-2)
    np.testing.assert_allclose(c, ref_c, atol=3e-2)


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
