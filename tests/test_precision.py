"""Mixed-precision matmuls: bf16 operands with float32 accumulation, forward and backward."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxai.models.precision import mixed_precision_dot_general, mixed_precision_matmul

DENSE = (((2,), (0,)), ((), ()))  # [B, T, K] x [K, N], as nn.Dense calls it.


def operands():
    x = jax.random.normal(jax.random.key(0), (3, 5, 16))
    kernel = jax.random.normal(jax.random.key(1), (16, 8))
    return x, kernel


def loss(matmul, x, kernel):
    return jnp.sum(jnp.sin(matmul(x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16)).astype(jnp.float32)))


def test_value_and_gradients_match_float32_within_bf16_rounding():
    x, kernel = operands()
    value, (grad_x, grad_kernel) = jax.value_and_grad(loss, argnums=(1, 2))(mixed_precision_matmul, x, kernel)
    ref_value, (ref_x, ref_kernel) = jax.value_and_grad(
        lambda x, k: jnp.sum(jnp.sin(x @ k)), argnums=(0, 1))(x, kernel)
    assert mixed_precision_matmul(x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16)).dtype == jnp.bfloat16
    np.testing.assert_allclose(value, ref_value, rtol=0.05, atol=0.5)
    np.testing.assert_allclose(grad_x, ref_x, rtol=0.05, atol=0.1)
    np.testing.assert_allclose(grad_kernel, ref_kernel, rtol=0.05, atol=0.3)


def test_every_matmul_of_the_step_takes_bf16_operands_and_accumulates_in_float32():
    x, kernel = operands()
    jaxpr = jax.make_jaxpr(jax.grad(functools.partial(loss, mixed_precision_matmul), argnums=(0, 1)))(x, kernel)
    dots = []

    def collect(jaxpr):  # Walks into the custom-VJP calls' inner jaxprs.
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                dots.append(eqn)
            for param in eqn.params.values():
                inner = getattr(param, "jaxpr", param)
                if hasattr(inner, "eqns"):
                    collect(inner)

    collect(jaxpr.jaxpr)
    assert len(dots) == 3, dots  # Forward, input gradient, kernel gradient.
    for eqn in dots:
        assert [v.aval.dtype for v in eqn.invars] == [jnp.bfloat16, jnp.bfloat16], eqn
        assert eqn.params["preferred_element_type"] == jnp.float32, eqn


def test_dot_general_adapter_routes_only_dense_bf16_contractions():
    x, kernel = operands()
    bf16_x, bf16_kernel = x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16)
    np.testing.assert_array_equal(
        mixed_precision_dot_general(bf16_x, bf16_kernel, DENSE), mixed_precision_matmul(bf16_x, bf16_kernel))
    np.testing.assert_array_equal(mixed_precision_dot_general(x, kernel, DENSE), lax.dot_general(x, kernel, DENSE))
    other = (((1,), (0,)), ((), ()))  # Not Dense's contraction: plain lax.dot_general.
    square = jnp.ones((4, 4), jnp.bfloat16)
    np.testing.assert_array_equal(mixed_precision_dot_general(square, square, other), lax.dot_general(square, square, other))
