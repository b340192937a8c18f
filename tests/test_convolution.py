"""jaxai's transposed convolution by sub-pixel phases equals flax's, values and gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai.models.convolution import ConvTranspose, phase_taps


@pytest.mark.parametrize("kernel_size, stride, height, width", [(4, 2, 7, 7), (3, 2, 7, 9), (5, 2, 6, 6), (3, 1, 5, 5), (4, 3, 4, 5)])
def test_conv_transpose_equals_flax_values_and_gradients(kernel_size, stride, height, width):
    x = jax.random.normal(jax.random.key(0), (2, height, width, 3))
    reference = nn.ConvTranspose(4, (kernel_size, kernel_size), strides=(stride, stride), padding="SAME")
    variables = reference.init(jax.random.key(1), x)
    ours = ConvTranspose(4, kernel_size, stride)
    np.testing.assert_allclose(ours.apply(variables, x), reference.apply(variables, x), atol=1e-5)

    def loss(module):
        return lambda variables, x: jnp.sum(jnp.sin(module.apply(variables, x)))

    expected = jax.grad(loss(reference), argnums=(0, 1))(variables, x)
    found = jax.grad(loss(ours), argnums=(0, 1))(variables, x)
    for a, b in zip(jax.tree.leaves(found), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_phase_taps_of_the_dcgan_layer():
    # 4x4 stride 2: even outputs use taps 0 and 2 over x[m-1], x[m]; odd ones taps 1 and 3 over x[m], x[m+1].
    assert phase_taps(4, 2, 0) == ([0, 2], (1, 0))
    assert phase_taps(4, 2, 1) == ([1, 3], (0, 1))
