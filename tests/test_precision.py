"""Mixed-precision matmuls: bf16 operands with float32 accumulation, forward and backward."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxai.models.precision import mixed_precision_dot_general, mixed_precision_matmul, promote_inputs_only
from jaxpr_helpers import dot_generals

DENSE = (((2,), (0,)), ((), ()))  # [B, T, K] x [K, N], as nn.Dense calls it.


def operands(x_shape=(3, 5, 16)):
    x = jax.random.normal(jax.random.key(0), x_shape)
    kernel = jax.random.normal(jax.random.key(1), (x_shape[-1], 8))
    return x, kernel


def loss(matmul, x, kernel):
    """The float32 kernel goes in as it is: the matmul casts it (as Dense with promote_inputs_only does)."""
    return jnp.sum(jnp.sin(matmul(x.astype(jnp.bfloat16), kernel).astype(jnp.float32)))


@pytest.mark.parametrize("x_shape", [(3, 5, 16), (15, 16), (2, 3, 2, 16)])
def test_value_and_gradients_match_float32_within_bf16_rounding(x_shape):
    x, kernel = operands(x_shape)
    value, (grad_x, grad_kernel) = jax.value_and_grad(loss, argnums=(1, 2))(mixed_precision_matmul, x, kernel)
    ref_value, (ref_x, ref_kernel) = jax.value_and_grad(
        lambda x, k: jnp.sum(jnp.sin(x @ k)), argnums=(0, 1))(x, kernel)
    assert mixed_precision_matmul(x.astype(jnp.bfloat16), kernel).dtype == jnp.bfloat16
    assert grad_kernel.dtype == jnp.float32
    np.testing.assert_allclose(value, ref_value, rtol=0.05, atol=0.5)
    np.testing.assert_allclose(grad_x, ref_x, rtol=0.05, atol=0.1)
    np.testing.assert_allclose(grad_kernel, ref_kernel, rtol=0.05, atol=0.3)


def test_kernel_gradient_keeps_float32_precision():
    """Summed over rows in float32 and returned as such: not rounded to bf16 and converted back."""
    x, kernel = operands()
    grad_kernel = jax.grad(functools.partial(loss, mixed_precision_matmul), argnums=1)(x, kernel)
    rounded = grad_kernel.astype(jnp.bfloat16).astype(jnp.float32)
    assert np.mean(np.asarray(grad_kernel) != np.asarray(rounded)) > 0.9


def test_every_matmul_of_the_step_takes_bf16_operands_and_accumulates_in_float32():
    x, kernel = operands()
    dots = dot_generals(jax.grad(functools.partial(loss, mixed_precision_matmul), argnums=(0, 1)), x, kernel)
    assert len(dots) == 3, dots  # Forward, input gradient, kernel gradient.
    for eqn in dots:
        assert [v.aval.dtype for v in eqn.invars] == [jnp.bfloat16, jnp.bfloat16], eqn
        assert eqn.params["preferred_element_type"] == jnp.float32, eqn


def test_dense_with_promote_inputs_only_keeps_a_float32_kernel_and_gradient():
    dense = nn.Dense(8, dtype=jnp.bfloat16, promote_dtype=promote_inputs_only, dot_general=mixed_precision_dot_general)
    x, _ = operands()
    params = dense.init(jax.random.key(0), x)["params"]
    out = dense.apply({"params": params}, x)
    grads = jax.grad(lambda p: jnp.sum(dense.apply({"params": p}, x).astype(jnp.float32)))(params)
    assert out.dtype == jnp.bfloat16
    assert {leaf.dtype for leaf in jax.tree.leaves((params, grads))} == {jnp.dtype(jnp.float32)}
    expected = x.astype(jnp.bfloat16).astype(jnp.float32) @ params["kernel"] + params["bias"]
    np.testing.assert_allclose(out.astype(jnp.float32), expected, rtol=0.02, atol=0.05)
    assert promote_inputs_only(x, params["kernel"], None, dtype=None)[0].dtype == jnp.float32  # Flax's promotion.


def test_dot_general_adapter_routes_only_dense_bf16_contractions():
    x, kernel = operands()
    bf16_x, bf16_kernel = x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16)
    np.testing.assert_array_equal(
        mixed_precision_dot_general(bf16_x, kernel, DENSE), mixed_precision_matmul(bf16_x, bf16_kernel))
    np.testing.assert_array_equal(mixed_precision_dot_general(x, kernel, DENSE), lax.dot_general(x, kernel, DENSE))
    other = (((1,), (0,)), ((), ()))  # Not Dense's contraction: plain lax.dot_general.
    square = jnp.ones((4, 4), jnp.bfloat16)
    np.testing.assert_array_equal(mixed_precision_dot_general(square, square, other), lax.dot_general(square, square, other))
