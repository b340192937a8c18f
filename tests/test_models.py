"""MLP and CNN: shapes, exact parameter counts, logical axis names, gradients by finite differences."""

import flax.linen as nn
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai.models import build_model, model_config
from jaxai.models.cnn import CNN, max_pool_2x2
from jaxai.models.mlp import MLP


def count(params) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(nn.meta.unbox(params)))


def test_keras_cnn_has_the_keras_parameter_count():
    images = jnp.zeros((2, 28, 28, 1))
    variables = CNN(num_classes=10).init(jax.random.key(0), images, train=False)
    # Keras' summary of this model: 320 + 18,496 + 36,928 + 36,928 + 650.
    assert count(variables["params"]) == 93_322
    assert CNN(num_classes=10).apply(variables, images, train=False).shape == (2, 10)


def test_mlp_parameter_count_and_shape():
    images = jnp.zeros((3, 28, 28, 1))
    model = MLP(num_classes=10, features=(512, 512))
    variables = model.init(jax.random.key(0), images, train=False)
    assert count(variables["params"]) == 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10
    assert model.apply(variables, images, train=False).shape == (3, 10)


def test_cnn_with_batch_norm_keeps_batch_stats():
    model = CNN(features=(4, 8), pool_after=(True, False), dense_features=(), use_batch_norm=True)
    variables = model.init(jax.random.key(0), jnp.ones((2, 12, 12, 1)), train=False)
    assert "batch_stats" in variables
    _, updates = model.apply(variables, jnp.ones((2, 12, 12, 1)), train=True, mutable=["batch_stats"])
    assert jax.tree.structure(updates["batch_stats"]) == jax.tree.structure(variables["batch_stats"])


def test_parameters_carry_logical_axis_names():
    variables = CNN().init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)), train=False)
    specs = nn.get_partition_spec(variables["params"])
    assert specs["Conv_0"]["kernel"] == jax.sharding.PartitionSpec(None, None, "conv_in", "conv_out")
    assert specs["Dense_0"]["kernel"] == jax.sharding.PartitionSpec("embed", "mlp")


@pytest.mark.parametrize("size", [(6, 6), (11, 7)])  # Odd sizes drop the last row/column, as 'VALID' does.
def test_max_pool_2x2_matches_flax_max_pool_and_its_gradient(size):
    x = jax.random.normal(jax.random.key(1), (2, *size, 3))  # Continuous values: no tied maxima.
    reference = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))
    np.testing.assert_array_equal(max_pool_2x2(x), reference(x))
    weights = jax.random.normal(jax.random.key(2), reference(x).shape)
    ours = jax.grad(lambda x: jnp.sum(max_pool_2x2(x) * weights))(x)
    theirs = jax.grad(lambda x: jnp.sum(reference(x) * weights))(x)
    np.testing.assert_array_equal(ours, theirs)


def test_cnn_pooling_before_relu_equals_the_textbook_relu_then_pool():
    """The CNN pools before its ReLU; values and parameter gradients equal ReLU-then-nn.max_pool's."""
    model = CNN(features=(4, 8), pool_after=(True, False), dense_features=(5,))
    images = jax.random.normal(jax.random.key(3), (2, 12, 12, 1))
    labels = jnp.array([1, 7])
    params = model.init(jax.random.key(0), images, train=False)["params"]

    def textbook(params, images):  # Conv-ReLU-MaxPool-Conv-ReLU-Dense-ReLU-Dense, written out.
        x = nn.relu(nn.Conv(4, (3, 3), padding="VALID").apply({"params": params["Conv_0"]}, images))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = nn.relu(nn.Conv(8, (3, 3), padding="VALID").apply({"params": params["Conv_1"]}, x))
        x = nn.relu(nn.Dense(5).apply({"params": params["Dense_0"]}, x.reshape(2, -1)))
        return nn.Dense(10).apply({"params": params["Dense_1"]}, x)

    def loss(forward, params):
        logits = forward(params, images)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1))

    ours = jax.value_and_grad(lambda p: loss(lambda p, x: model.apply({"params": p}, x, train=False), p))
    theirs = jax.value_and_grad(lambda p: loss(textbook, p))
    (ours_loss, ours_grads), (their_loss, their_grads) = ours(params), theirs(nn.meta.unbox(params))
    np.testing.assert_allclose(ours_loss, their_loss, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), nn.meta.unbox(ours_grads), their_grads)


def test_mismatched_pool_layout_is_a_clear_error():
    with pytest.raises(ValueError, match="pool_after has 1 entries but model.features has 3"):
        CNN(pool_after=(True,)).init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)), train=False)


def test_model_config_lists_constructor_fields_and_builds():
    config = model_config("cnn")
    assert config.features == (32, 64, 64) and "num_classes" not in config
    assert isinstance(build_model(config, num_classes=3), CNN)


def test_mlp_gradients_match_finite_differences():
    """A 3-2-1 ReLU network, with its weights set by hand, against central differences."""
    with jax.enable_x64(True):
        model = MLP(num_classes=1, features=(2,), dtype="float64")
        params = {
            "Dense_0": {"kernel": jnp.array([[0.1, -0.2], [0.4, 0.3], [-0.5, 0.6]]), "bias": jnp.array([0.1, 0.2])},
            "Dense_1": {"kernel": jnp.array([[0.7], [-0.8]]), "bias": jnp.array([0.05])},
        }
        inputs = jnp.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
        targets = jnp.array([[1.0], [0.0]])

        def loss(p):
            return jnp.mean((model.apply({"params": p}, inputs, train=False) - targets) ** 2)

        analytic = jax.grad(loss)(params)
        flat, unravel = jax.flatten_util.ravel_pytree(params)
        epsilon = 1e-6
        numeric = np.array([
            (loss(unravel(flat.at[i].add(epsilon))) - loss(unravel(flat.at[i].add(-epsilon)))) / (2 * epsilon)
            for i in range(flat.size)
        ])
        np.testing.assert_allclose(jax.flatten_util.ravel_pytree(analytic)[0], numeric, rtol=1e-6, atol=1e-9)


def test_random_shift_translates_each_image_within_bounds():
    from jaxai.tasks.classification import random_shift

    images = jnp.zeros((16, 8, 8, 1)).at[:, 4, 4, 0].set(1.0)  # One bright pixel at (4, 4).
    shifted = random_shift(jax.random.key(0), images, max_shift=2)
    assert shifted.shape == images.shape
    rows, cols = jnp.nonzero(shifted[..., 0].reshape(16, 64) > 0)[1] // 8, jnp.nonzero(shifted[..., 0].reshape(16, 64) > 0)[1] % 8
    assert jnp.all(jnp.abs(rows - 4) <= 2) and jnp.all(jnp.abs(cols - 4) <= 2)
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 1  # Different images, different offsets.
    np.testing.assert_array_equal(shifted, random_shift(jax.random.key(0), images, max_shift=2))
