"""jaxai's causal attention: the same values and gradients as jax.nn's, bf16 matmuls, clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai.models.attention import causal_attention, dot_product_attention
from jaxai.models.transformer import GPT
from jaxpr_helpers import dot_generals

SHAPE = (2, 7, 3, 4)  # [B, T, N, H]


def qkv_and_cotangent(dtype=jnp.float32):
    keys = jax.random.split(jax.random.key(0), 4)
    return [jax.random.normal(key, SHAPE, jnp.float32).astype(dtype) for key in keys]


def reference(query, key, value):
    return jax.nn.dot_product_attention(query, key, value, is_causal=True, implementation="xla")


def value_and_grads(attention, query, key, value, cotangent):
    out, vjp = jax.vjp(attention, query, key, value)
    return (out, *vjp(cotangent))


def test_float32_values_and_gradients_equal_jax_nn():
    *qkv, cotangent = qkv_and_cotangent()
    ours = value_and_grads(causal_attention, *qkv, cotangent)
    expected = value_and_grads(reference, *qkv, cotangent)
    for name, got, want in zip(("out", "d_query", "d_key", "d_value"), ours, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=name)


def test_bf16_tracks_float32_and_every_matmul_takes_bf16_operands_accumulating_in_float32():
    *qkv, cotangent = qkv_and_cotangent()
    low = [array.astype(jnp.bfloat16) for array in (*qkv, cotangent)]
    ours = value_and_grads(causal_attention, *low)
    expected = value_and_grads(reference, *qkv, cotangent)
    for name, got, want in zip(("out", "d_query", "d_key", "d_value"), ours, expected):
        assert got.dtype == jnp.bfloat16, name
        np.testing.assert_allclose(got.astype(jnp.float32), want, rtol=0.05, atol=0.05, err_msg=name)
    dots = dot_generals(lambda *args: value_and_grads(causal_attention, *args), *low)
    assert len(dots) == 6  # Scores and output forward; four in the backward pass.
    for eqn in dots:
        assert [var.aval.dtype for var in eqn.invars] == [jnp.bfloat16, jnp.bfloat16], eqn
        assert eqn.params["preferred_element_type"] == jnp.float32, eqn


def test_no_position_sees_the_future():
    query, key, value, _ = qkv_and_cotangent()
    out = causal_attention(query, key, value)
    changed = causal_attention(query, key.at[:, 4:].add(1.0), value.at[:, 4:].add(1.0))
    np.testing.assert_array_equal(out[:, :4], changed[:, :4])
    assert not np.allclose(out[:, 4:], changed[:, 4:])


def test_gpt_gives_the_same_logits_and_gradients_with_jaxai_and_jax_nn_attention():
    tokens = jnp.asarray(np.random.default_rng(0).integers(0, 11, (2, 12)), jnp.int32)
    fields = dict(vocab_size=11, block_size=12, num_layers=2, num_heads=2, embed_dim=8)
    params = GPT(**fields).init(jax.random.key(0), tokens, train=False)["params"]

    def loss(params, attention_impl):
        logits = GPT(**fields, attention_impl=attention_impl).apply({"params": params}, tokens, train=False)
        return jnp.mean(jax.nn.log_softmax(logits)[..., 0])

    ours, ours_grads = jax.value_and_grad(loss)(params, "jaxai")
    theirs, their_grads = jax.value_and_grad(loss)(params, "xla")
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7), ours_grads, their_grads)


def test_unknown_implementation_is_refused_with_the_choices():
    query, key, value, _ = qkv_and_cotangent()
    with pytest.raises(ValueError, match="'jaxai'.*'cudnn'"):
        dot_product_attention(query, key, value, implementation="flash")
    tokens = jnp.zeros((1, 4), jnp.int32)
    with pytest.raises(ValueError, match="attention_impl='flash'"):
        GPT(vocab_size=5, block_size=4, num_layers=1, num_heads=1, embed_dim=4, attention_impl="flash").init(
            jax.random.key(0), tokens, train=False)
