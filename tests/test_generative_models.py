"""VAE, MLPGAN, DCGAN: shapes, dtypes, exact parameter counts, spectral norm state, field checks."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai import models
from jaxai.models.gan import DCGAN, MLPGAN
from jaxai.models.vae import VAE


def count(params) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(nn.meta.unbox(params)))


def init_vae(model: VAE, batch: int = 2):
    images = jax.random.uniform(jax.random.key(1), (batch, *model.image_shape))
    noise = jax.random.normal(jax.random.key(2), (batch, model.latent_dim))
    return model.init(jax.random.key(0), images, noise), images, noise


def init_gan(model, batch: int = 3):
    z = jax.random.normal(jax.random.key(1), (batch, model.latent_dim))
    images = jax.random.uniform(jax.random.key(2), (batch, *model.image_shape), minval=-1, maxval=1)
    return model.init(jax.random.key(0), z, images), z, images


def test_default_vae_is_the_keras_layout():
    model = models.build_model(models.model_config("vae"), image_shape=(28, 28, 1))
    variables, images, noise = init_vae(model)
    # Encoder 320 + 18,496 + 36,928 + 50,192 + 2 * 34; decoder 9,408 + 36,928 + 36,928 + 18,464 + 289.
    assert count(variables["params"]) == 208_021
    logits, mean, logvar = model.apply(variables, images, noise)
    assert logits.shape == (2, 28, 28, 1) and logits.dtype == jnp.float32
    assert mean.shape == logvar.shape == (2, 2) and mean.dtype == logvar.dtype == jnp.float32


def test_pytorch_example_vae_is_the_mlp_architecture():
    model = VAE(architecture="mlp", mlp_features=(400,), latent_dim=20)
    variables, images, noise = init_vae(model)
    assert count(variables["params"]) == 784 * 400 + 400 + 2 * (400 * 20 + 20) + 20 * 400 + 400 + 400 * 784 + 784
    assert count(variables["params"]) == 652_824
    logits, mean, _ = model.apply(variables, images, noise)
    assert logits.shape == (2, 28, 28, 1) and mean.shape == (2, 20)


@pytest.mark.parametrize("architecture", ["conv", "mlp"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_outputs(architecture, likelihood):
    model = VAE(architecture=architecture, likelihood=likelihood, mlp_features=(32,), conv_features=(8, 16, 16))
    variables, images, noise = init_vae(model)
    decoded, mean, logvar = model.apply(variables, images, noise)
    if likelihood == "gaussian":
        assert isinstance(decoded, tuple) and len(decoded) == 2
        for part in decoded:
            assert part.shape == (2, 28, 28, 1) and part.dtype == jnp.float32
    else:
        assert decoded.shape == (2, 28, 28, 1) and decoded.dtype == jnp.float32
    # __call__ is decode at the reparameterised sample.
    z = mean + jnp.exp(0.5 * logvar) * noise
    expected = model.apply(variables, z, method=VAE.decode)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), decoded, expected)
    encoded = model.apply(variables, images, method=VAE.encode)
    np.testing.assert_allclose(encoded[0], mean, rtol=1e-6)


@pytest.mark.parametrize("architecture", ["conv", "mlp"])
def test_vae_in_bfloat16_returns_float32(architecture):
    model = VAE(architecture=architecture, mlp_features=(32,), conv_features=(8, 8, 8), dtype="bfloat16")
    variables, images, noise = init_vae(model)
    logits, mean, logvar = model.apply(variables, images, noise)
    assert logits.dtype == mean.dtype == logvar.dtype == jnp.float32


def test_conv_vae_crops_sizes_the_strides_do_not_divide():
    model = VAE(image_shape=(10, 9, 3), conv_features=(4, 8, 8), dense_features=5, likelihood="gaussian")
    variables, images, noise = init_vae(model)
    (mean, log_std), _, _ = model.apply(variables, images, noise)
    assert mean.shape == log_std.shape == (2, 10, 9, 3)


def test_vae_kernels_carry_logical_axis_names():
    variables, _, _ = init_vae(VAE(conv_features=(4, 8, 8)))
    specs = nn.get_partition_spec(variables["params"])
    conv_axes = jax.sharding.PartitionSpec(None, None, "conv_in", "conv_out")
    assert specs["encoder_convs_0"]["kernel"] == specs["decoder_convs_0"]["kernel"] == conv_axes
    assert specs["mean_head"]["kernel"] == jax.sharding.PartitionSpec("embed", "mlp")


@pytest.mark.parametrize(
    "name, image_shape, fields",
    [
        ("gan_mlp", (28, 28, 1), {}),
        ("dcgan", (28, 28, 1), {}),
        ("dcgan", (32, 32, 1), {"features": 8}),
        ("dcgan", (32, 32, 3), {"features": 8, "discriminator_norm": "layer"}),
        ("dcgan", (28, 28, 1), {"features": 8, "discriminator_norm": "none", "spectral_norm": True}),
    ],
)
def test_gan_shapes_dtypes_and_range(name, image_shape, fields):
    config = models.model_config(name)
    assert "image_shape" not in config
    config.update(fields)
    model = models.build_model(config, image_shape=image_shape)
    variables, z, images = init_gan(model)
    assert set(variables["params"]) == {"generator", "discriminator"}
    for train in (False, True):
        (fakes, logits), _ = model.apply(
            variables, z, images, train=train, mutable=["batch_stats"], rngs={"dropout": jax.random.key(3)}
        )
        assert fakes.shape == (3, *image_shape) and fakes.dtype == jnp.float32
        assert float(jnp.max(jnp.abs(fakes))) <= 1.0
        assert logits.shape == (3,) and logits.dtype == jnp.float32
    generated = model.apply(variables, z, train=True, mutable=["batch_stats"], method="generate")[0]
    np.testing.assert_allclose(generated, fakes, rtol=1e-5, atol=1e-6)


def test_gan_parameter_counts():
    variables, _, _ = init_gan(MLPGAN())
    assert count(variables["params"]["generator"]) == 1_486_352  # 100-256-512-1024-784.
    assert count(variables["params"]["discriminator"]) == 1_460_225  # 784-1024-512-256-1.

    variables, _, _ = init_gan(DCGAN())
    params = nn.meta.unbox(variables["params"])
    shapes = jax.tree.map(lambda leaf: leaf.shape, params)
    assert shapes["generator"] == {
        "Dense_0": {"kernel": (100, 7 * 7 * 128)},
        "BatchNorm_0": {"scale": (128,), "bias": (128,)},
        "ConvTranspose_0": {"kernel": (4, 4, 128, 64)},
        "BatchNorm_1": {"scale": (64,), "bias": (64,)},
        "ConvTranspose_1": {"kernel": (4, 4, 64, 1), "bias": (1,)},
    }
    assert shapes["discriminator"] == {
        "Conv_0": {"kernel": (4, 4, 1, 64), "bias": (64,)},
        "Conv_1": {"kernel": (4, 4, 64, 128)},
        "BatchNorm_0": {"scale": (128,), "bias": (128,)},
        "Dense_0": {"kernel": (7 * 7 * 128, 1), "bias": (1,)},
    }
    assert count(params["generator"]) == 759_681
    assert count(params["discriminator"]) == 138_689
    # The DCGAN paper's N(0, 0.02) kernels.
    assert 0.015 < float(jnp.std(params["generator"]["Dense_0"]["kernel"])) < 0.025


def test_dcgan_batch_norm_statistics_move_only_in_training():
    model = DCGAN(features=8)
    variables, z, images = init_gan(model)
    _, updates = model.apply(variables, z, images, train=True, mutable=["batch_stats"])
    _, frozen = model.apply(variables, z, images, train=False, mutable=["batch_stats"])
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), updates["batch_stats"], variables["batch_stats"])
    assert all(jax.tree.leaves(moved))
    jax.tree.map(np.testing.assert_array_equal, frozen["batch_stats"], variables["batch_stats"])


def test_layer_norm_discriminator_treats_examples_independently():
    """WGAN-GP's per-example gradient penalty needs a discriminator without batch statistics."""
    model = DCGAN(features=8, discriminator_norm="layer")
    variables, _, images = init_gan(model)
    assert "discriminator" not in variables.get("batch_stats", {})
    logits = model.apply(variables, images, train=True, method="discriminate")
    alone = model.apply(variables, images[:1], train=True, method="discriminate")
    np.testing.assert_allclose(alone, logits[:1], rtol=1e-5, atol=1e-6)


def test_spectral_norm_state_advances_only_in_training_and_finds_the_largest_singular_value():
    model = MLPGAN(image_shape=(4, 4, 1), discriminator_features=(8,), dropout_rate=0.0, spectral_norm=True)
    variables, _, images = init_gan(model)
    stats = variables["batch_stats"]["discriminator"]
    assert set(stats) == {"SpectralNorm_0", "SpectralNorm_1"}

    @functools.partial(jax.jit, static_argnames="train")
    def step(variables, train):
        _, updates = model.apply(variables, images, train=train, method="discriminate", mutable=["batch_stats"])
        return {**variables, **updates}

    unchanged = step(variables, False)
    jax.tree.map(np.testing.assert_array_equal, unchanged["batch_stats"], variables["batch_stats"])
    trained = variables
    for _ in range(30):
        trained = step(trained, True)
    sigma = trained["batch_stats"]["discriminator"]["SpectralNorm_0"]["Dense_0/kernel/sigma"]
    kernel = trained["params"]["discriminator"]["Dense_0"]["kernel"]  # [16, 8]
    top = np.linalg.svd(np.asarray(kernel), compute_uv=False)[0]
    np.testing.assert_allclose(float(sigma), top, rtol=1e-3)  # So the kernel as applied, W / sigma, has norm ~1.


@pytest.mark.parametrize(
    "build, field",
    [
        (lambda: VAE(latent_dim=0), "latent_dim"),
        (lambda: VAE(architecture="resnet"), "architecture"),
        (lambda: VAE(likelihood="poisson"), "likelihood"),
        (lambda: VAE(conv_strides=(2, 2)), "conv_strides"),
        (lambda: MLPGAN(latent_dim=0), "latent_dim"),
        (lambda: DCGAN(latent_dim=0), "latent_dim"),
        (lambda: DCGAN(image_shape=(64, 64, 3)), "image_shape"),
        (lambda: DCGAN(image_shape=(28, 32, 1)), "image_shape"),
        (lambda: DCGAN(discriminator_norm="group"), "discriminator_norm"),
    ],
)
def test_bad_fields_raise_naming_the_field(build, field):
    model = build()
    with pytest.raises(ValueError, match=field):
        if isinstance(model, VAE):
            init_vae(model)
        else:
            init_gan(model)
