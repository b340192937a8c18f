"""The VAE task: closed-form KL, gradients through the sample, the importance-weighted bound, the fixed
test binarization, pictures, `jaxai sample`, and one-line config errors."""

import math
import os
import re
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxai.config import load_config
from jaxai.errors import ConfigError
from jaxai.models.vae import VAE
from jaxai.tasks import vae as vae_task
from jaxai.tasks.base import SampleOptions
from jaxai.train.build import build_run, mesh_context, restore_latest
from jaxai.train.evaluation import evaluate, evaluation_outputs
from jaxai.train.loop import train
from run_helpers import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = "experiments/mnist_vae.py:smoke"


def smoke_config(*overrides: str):
    return load_config(os.path.join(ROOT, SMOKE), ["train.progress_bar=False", *overrides])


def jaxai(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jaxai", *args], cwd=ROOT, capture_output=True, text=True, timeout=240)


def tiny_vae():
    """A random 4x4 MLP VAE, its parameters, and four binary images."""
    model = VAE(image_shape=(4, 4, 1), architecture="mlp", mlp_features=(8,), latent_dim=2)
    images = jax.random.bernoulli(jax.random.key(1), 0.4, (4, 4, 4, 1)).astype(jnp.float32)
    params = nn.meta.unbox(model.init(jax.random.key(0), images, jnp.zeros((4, 2)))["params"])
    return model, params, images


def test_kl_is_the_closed_form():
    mean = jnp.array([[1.0, -2.0], [0.0, 0.0]])
    variance = jnp.array([[4.0, 0.25], [1.0, 1.0]])
    kl = vae_task.kl_divergence(mean, jnp.log(variance))
    # By hand: 1/2 (var + mean^2 - 1 - log var) per dimension; N(0, I) against itself is 0.
    by_hand = 0.5 * ((4 + 1 - 1 - math.log(4)) + (0.25 + 4 - 1 - math.log(0.25)))
    np.testing.assert_allclose(kl, [by_hand, 0.0], rtol=1e-6, atol=1e-7)
    # Monte Carlo: E_q[log q(z) - log p(z)] over 200,000 draws.
    z = mean[0] + jnp.sqrt(variance[0]) * jax.random.normal(jax.random.key(0), (200_000, 2))
    log_q = jnp.sum(-0.5 * ((z - mean[0]) ** 2 / variance[0] + jnp.log(variance[0]) + math.log(2 * math.pi)), -1)
    log_p = jnp.sum(-0.5 * (z**2 + math.log(2 * math.pi)), -1)
    assert float(jnp.mean(log_q - log_p)) == pytest.approx(by_hand, abs=0.02)
    # The KL weight's warm-up ramps linearly from 0.
    assert [float(vae_task.kl_warmup(jnp.array(step), 10)) for step in (0, 5, 10, 20)] == [0.0, 0.5, 1.0, 1.0]


def test_gaussian_likelihood_has_a_floored_std():
    target = jnp.array([[0.2, 0.9]])
    mean, log_std = jnp.array([[0.0, 1.0]]), jnp.log(jnp.array([[0.5, 0.02]]))
    std = np.array([0.5, 0.02]) + 0.01  # The decoder's std plus task.gaussian_min_std.
    by_hand = np.sum(-0.5 * ((np.array([0.2, 0.9]) - np.array([0.0, 1.0])) / std) ** 2 - np.log(std) - 0.5 * math.log(2 * math.pi))
    np.testing.assert_allclose(vae_task.log_likelihood((mean, log_std), target, "gaussian", 0.01), [by_hand], rtol=1e-5)
    # Bernoulli: y log sigmoid(l) + (1 - y) log sigmoid(-l), soft targets too.
    logits, soft = jnp.array([[2.0, -1.0]]), jnp.array([[1.0, 0.25]])
    expected = math.log(1 / (1 + math.exp(-2))) + 0.25 * math.log(1 / (1 + math.exp(1))) + 0.75 * math.log(1 / (1 + math.exp(-1)))
    np.testing.assert_allclose(vae_task.log_likelihood(logits, soft, "bernoulli"), [expected], rtol=1e-6)


def test_gradients_reach_the_encoder_through_the_sample():
    model, params, images = tiny_vae()
    noise = jax.random.normal(jax.random.key(2), (4, 2))

    def reconstruction_only(params):  # No KL term: the encoder learns only through z = mean + std * noise.
        decoded, _, _ = model.apply({"params": params}, images, noise)
        return -jnp.mean(vae_task.log_likelihood(decoded, images, "bernoulli"))

    grads = jax.grad(reconstruction_only)(params)
    for name in ("encoder_layers_0", "mean_head", "logvar_head"):
        assert float(jnp.abs(grads[name]["kernel"]).sum()) > 0, name


def test_importance_weighted_bound_is_above_the_elbo_and_tightens_with_k():
    model, params, images = tiny_vae()
    mean, logvar = model.apply({"params": params}, images, method="encode")
    decode = lambda z: model.apply({"params": params}, z, method="decode")  # noqa: E731

    def draws(k: int, chunk: int, count: int = 2000) -> np.ndarray:
        """`count` independent k-sample estimates per image: [count, 4]."""
        estimate = lambda key: vae_task.iw_log_likelihood(decode, images, mean, logvar, key, k, chunk, "bernoulli")  # noqa: E731
        return np.asarray(jax.jit(jax.vmap(estimate))(jax.random.split(jax.random.key(3), count)))

    # The ELBO: E_q[log p(x|z)] (many samples) minus the closed-form KL.
    z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(jax.random.key(4), (20_000, *mean.shape))
    log_px = jax.vmap(lambda zs: vae_task.log_likelihood(decode(zs), images, "bernoulli"))(z)
    elbo = np.asarray(jnp.mean(log_px, 0) - vae_task.kl_divergence(mean, logvar))
    single = draws(1, 1)
    # k = 1 is the ELBO in expectation: within 4 standard errors of the mean over 2,000 draws.
    assert np.all(np.abs(single.mean(0) - elbo) < 4 * single.std(0) / np.sqrt(len(single)) + 0.02), (single.mean(0), elbo)
    k1, k10, k100 = single.mean(0), draws(10, 7).mean(0), draws(100, 32).mean(0)  # Chunks that do not divide k, too.
    assert np.all(k1 < k10) and np.all(k10 < k100) and np.all(k100 > elbo), (elbo, k1, k10, k100)


def test_the_test_binarization_does_not_depend_on_the_eval_batch_size():
    latents = {}
    for eval_batch_size in (104, 256):  # 512 test images: 5 batches (the last padded) or 2.
        run = build_run(smoke_config("model.latent_dim=2", f"data.eval_batch_size={eval_batch_size}"))
        with mesh_context(run.mesh):
            state = run.init(jax.random.key(0), run.example_batch)
        outputs = evaluation_outputs(run, state, "test", step=0)
        keep = outputs["latent_mask"].astype(bool)
        assert keep.sum() == 512
        latents[eval_batch_size] = (outputs["inputs"], outputs["latent_mean"][keep])  # The means see every image.
    np.testing.assert_array_equal(latents[104][0], latents[256][0])
    assert set(np.unique(latents[104][0])) == {0.0, 1.0}
    np.testing.assert_allclose(latents[104][1], latents[256][1], rtol=1e-5, atol=1e-6)
    # The images come from the seed and the row: another seed binarizes them differently.
    images = jnp.full((3, 28, 28, 1), 0.5)
    rows = jnp.arange(3, dtype=jnp.int32)
    first = vae_task.fixed_binarization(vae_task.example_keys(0, rows), images)
    np.testing.assert_array_equal(first[1:], vae_task.fixed_binarization(vae_task.example_keys(0, rows[1:]), images[1:]))
    assert not np.array_equal(first, vae_task.fixed_binarization(vae_task.example_keys(1, rows), images))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A smoke run with a 2-D latent and masking noise: every picture the task draws."""
    workdir = str(tmp_path_factory.mktemp("vae"))
    config = smoke_config("model.latent_dim=2", "task.denoise=mask", "optimizer.learning_rate=3e-3")
    train(config, workdir)
    return config, workdir


def test_smoke_training_lowers_the_loss_and_draws_its_pictures(trained):
    config, workdir = trained
    losses = [record["loss"] for record in read_metrics(workdir, "train")]
    assert losses[-1] < losses[0] - 5, losses
    assert {"loss", "kl", "reconstruction", "images_per_s"} <= set(read_metrics(workdir, "train")[0])
    names = sorted(os.listdir(os.path.join(workdir, "images")))
    expected = ["denoising", "latent_means", "manifold", "prior_samples", "reconstructions"]
    assert names == sorted([f"eval_{name}_{step:08d}.png" for name in expected for step in (10, 20)] + ["train_curves_00000020.png"]), names
    pairs = np.asarray(Image.open(os.path.join(workdir, "images", "eval_reconstructions_00000020.png")))
    assert pairs.shape == (2 + 8 * 30, 2 + 8 * 30)  # 32 (input, reconstruction) pairs, 4 a row.
    manifold = np.asarray(Image.open(os.path.join(workdir, "images", "eval_manifold_00000020.png")))
    assert manifold.shape == (2 + 20 * 30, 2 + 20 * 30)
    scatter = np.asarray(Image.open(os.path.join(workdir, "images", "eval_latent_means_00000020.png")))
    assert scatter.ndim == 3 and scatter.shape[-1] == 3
    metrics = read_metrics(workdir, "eval")[-1]
    assert metrics["iw_nll"] <= metrics["neg_elbo"] + 1.0 and metrics["num_examples"] == 512
    # iw_samples=0 skips the estimate: the same checkpoint evaluates without iw_nll.
    config = load_config(os.path.join(ROOT, SMOKE), ["model.latent_dim=2", "task.denoise=mask", "task.iw_samples=0"])
    assert "iw_nll" not in evaluate(config, workdir) and "neg_elbo" in read_metrics(workdir, "test")[-1]


def test_jaxai_sample_writes_a_png_and_the_same_seed_gives_the_same_bytes(trained, tmp_path):
    _, workdir = trained
    for name, seed in (("a.png", "0"), ("b.png", "0"), ("c.png", "1")):
        result = jaxai("sample", "--workdir", workdir, "--num", "16", "--seed", seed, "--out", str(tmp_path / name))
        assert result.returncode == 0, result.stderr
    grid = np.asarray(Image.open(tmp_path / "a.png"))
    assert grid.shape == (2 + 4 * 30, 2 + 4 * 30)  # 16 samples: 4x4 greyscale 28x28 images.
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "c.png").read_bytes()
    # The task's own sampler: decoder means in [0, 1], the same rng the same images.
    run = build_run(trained[0])
    state, _ = restore_latest(run, workdir)
    with mesh_context(run.mesh):
        first = run.task.sample(state, jax.random.key(5), SampleOptions())
        again = run.task.sample(state, jax.random.key(5), SampleOptions())
    assert first.shape == (64, 28, 28, 1) and 0 <= first.min() and first.max() <= 1
    np.testing.assert_array_equal(first, again)


def test_latent_dim_zero_is_one_clear_line(tmp_path):
    result = jaxai("train", "--config", SMOKE, "--workdir", str(tmp_path), "--config.model.latent_dim=0")
    assert result.returncode == 1
    assert result.stderr.strip() == "jaxai: error: model.latent_dim must be at least 1, got 0."


@pytest.mark.parametrize("overrides, message", [
    (["task.iw_samples=-1"], "task.iw_samples must be >= 0"),
    (["task.iw_samples=0", "train.early_stopping_metric=iw_nll", "train.early_stopping_mode=min"],
     "train.early_stopping_metric='iw_nll' needs importance samples; set task.iw_samples > 0"),
    (["train.early_stopping_metric=neg_elbo"], "is lower-is-better; set train.early_stopping_mode='min'"),
    (["task.denoise=blur"], "task.denoise='blur'; choose one of"),
    (["task.binarize=static"], "task.binarize='static'; choose one of"),
    (["task.iw_chunk=0"], "task.iw_chunk must be >= 1"),
], ids=["negative_iw_samples", "iw_nll_without_samples", "max_mode", "denoise", "binarize", "iw_chunk"])
def test_bad_settings_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_run(smoke_config(*overrides))
