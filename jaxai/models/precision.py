"""Mixed-precision matmuls: low-precision operands, float32 accumulation, in both passes.

XLA:CPU runs a bfloat16 x bfloat16 dot that asks for a float32 result about 2x faster than a float32
dot, and 2.5x faster than a bfloat16 dot with a bfloat16 result, which it computes in float32 after
converting its operands (this 2-core Zen 4, 768x128 @ 128x512: ~300 vs ~160 vs ~120 GFLOP/s). JAX's
own backward pass of such a dot multiplies float32 cotangents, so it takes the slow path; the
custom gradient below keeps the backward matmuls in the fast form too. On GPUs and TPUs this is the
usual bf16 contract (their bf16 dots accumulate in float32), so the same code serves every backend.

The float32 kernel goes into the matmul and is cast inside it, so its gradient comes out in float32
(not rounded to bf16 and converted back), and `nn.Dense(promote_dtype=promote_inputs_only, ...)`
leaves the kernel to it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax.linen import dtypes as nn_dtypes
from jax import lax


def promote_inputs_only(*args: jax.Array | None, dtype: Any = None, inexact: bool = True) -> list[jax.Array | None]:
    """`promote_dtype` for `nn.Dense`: inputs and bias to `dtype`, the kernel left for the matmul to cast."""
    if dtype is None:  # No compute dtype: Flax's own promotion to a common dtype.
        return list(nn_dtypes.promote_dtype(*args, inexact=inexact))
    inputs, kernel, bias = args
    cast = lambda array: None if array is None else jnp.asarray(array, dtype)  # noqa: E731
    return [cast(inputs), kernel, cast(bias)]


def mixed_precision_dot_general(
    lhs: jax.Array,
    rhs: jax.Array,
    dimension_numbers: Any,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """`lax.dot_general` for `nn.Dense(dot_general=...)`: float32 accumulation, result in the inputs' dtype.

    float32 inputs, or contractions other than Dense's, go to `lax.dot_general` unchanged (after
    casting a kernel of another dtype to the inputs').
    """
    (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
    is_dense = (
        tuple(lhs_contract) == (lhs.ndim - 1,) and tuple(rhs_contract) == (0,)
        and not lhs_batch and not rhs_batch and rhs.ndim == 2
    )
    if lhs.dtype == jnp.float32 or not is_dense or preferred_element_type is not None:
        return lax.dot_general(lhs, rhs.astype(lhs.dtype), dimension_numbers, precision, preferred_element_type)
    return mixed_precision_matmul(lhs, rhs)


@jax.custom_vjp
def mixed_precision_matmul(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """x [..., K] @ kernel [K, N] -> [..., N] in x's dtype, the kernel cast to it, accumulated in float32."""
    return _forward(x, kernel)[0]


def _dot(lhs: jax.Array, rhs: jax.Array, contracting: tuple[tuple[int, ...], tuple[int, ...]]) -> jax.Array:
    return lax.dot_general(lhs, rhs, (contracting, ((), ())), preferred_element_type=jnp.float32)


def _forward(x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array, Any]]:
    low_kernel = kernel.astype(x.dtype)
    out = _dot(x, low_kernel, ((x.ndim - 1,), (0,))).astype(x.dtype)
    return out, (x, low_kernel, jnp.zeros((), kernel.dtype))  # The scalar carries the kernel's dtype.


def _backward(residuals: tuple[jax.Array, jax.Array, Any], grad: jax.Array) -> tuple[jax.Array, jax.Array]:
    x, kernel, kernel_dtype_of = residuals
    grad = grad.astype(x.dtype)
    grad_x = _dot(grad, kernel, ((grad.ndim - 1,), (1,)))  # [..., N] . [K, N] over N -> [..., K]
    # The kernel gradient contracts over the rows of x and grad: XLA:CPU's fast (YNNPACK) dot wants
    # x transposed in memory, [K, rows]; a plain x.T is folded into the dot as a column-major operand,
    # which sends the dot to a float32 path 2x slower. Moving K to the front of x with its leading
    # axes intact ([K, B, T], contracted over B and T) makes XLA write the transposed copy.
    row_axes = tuple(range(x.ndim - 1))
    x_features_first = jnp.moveaxis(x, -1, 0)  # [K, ...rows]
    grad_kernel = _dot(x_features_first, grad, (tuple(axis + 1 for axis in row_axes), row_axes))  # -> [K, N]
    return grad_x.astype(x.dtype), grad_kernel.astype(kernel_dtype_of.dtype)


mixed_precision_matmul.defvjp(_forward, _backward)
