"""Variational autoencoder: the ELBO by the reparameterisation trick; eval adds an importance-weighted NLL.

Per image x (pixels summed, nats): -ELBO = -log p(x|z) + KL(q(z|x) || N(0, I)), one sample
z = mean + exp(logvar / 2) * eps with eps ~ N(0, I) drawn from the step's rng, the KL in closed form.
Training minimises -log p(x|z) + beta_t * KL, beta_t ramping linearly from 0 to `task.beta` over
`task.kl_warmup_steps`; the logged `loss` is always the true negative ELBO (beta = 1).
Likelihood (`model.likelihood`): 'bernoulli' (decoder logits; MNIST binarized afresh every step, or
its [0, 1] intensities used as soft targets with `task.binarize='none'`) or 'gaussian' (per-pixel
mean and log std; models the [0, 1] intensities, never binarized). Denoising (`task.denoise`): the
encoder sees a corrupted image, the decoder is scored on the clean one.

Eval (the split in `data.eval_split` / `data.test_split`): `neg_elbo` (nats per image, one sample),
`reconstruction`, `kl`, `active_units` (latent dimensions whose posterior mean varies over the data,
Cov_x E_q[z_d] > 0.01, Burda et al. 2015), and with `task.iw_samples` = k > 0 the importance-weighted
estimate log p(x) ~ logsumexp_j [log p(x|z_j) + log p(z_j) - log q(z_j|x)] - log k, z_j ~ q(z|x),
reported as `iw_nll` (nats per image). The eval images are binarized once: each example from
fold_in(key(task.test_binarization_seed), its row in the split), so the binarized split is the same
whatever the eval batch size (denoising corruption likewise); the Monte-Carlo noise of the estimates
comes from the loop's eval rng.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxai import models, optim
from jaxai.errors import ConfigError
from jaxai.images import figure_to_array, image_grid
from jaxai.models.vae import ARCHITECTURES, LIKELIHOODS
from jaxai.tasks.base import Batch, Metrics, SampleOptions, Task, TrainState, split_variables

BINARIZE = ("dynamic", "none")
DENOISE = ("", "gaussian", "mask")
NUM_SHOWN = 32  # Test images shown as reconstruction pairs / denoising triplets at each eval.
NUM_PRIOR_SAMPLES = 64  # Prior samples in the eval picture, and `jaxai sample`'s default.
MANIFOLD_SIZE = 20  # 2-D latent: a 20x20 grid decoded over the standard normal's quantiles.
MAX_SCATTER_POINTS = 5000  # 2-D latent: test-set posterior means plotted at most.
ACTIVE_UNIT_THRESHOLD = 0.01  # Cov_x(E_q[z_d]) above this counts latent dimension d as active.
LOWER_IS_BETTER = ("neg_elbo", "iw_nll", "reconstruction")
_LOG_2PI = math.log(2.0 * math.pi)


def default_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.beta = 1.0  # Weight of the KL term in the training objective (beta-VAE); metrics report the true ELBO.
    config.kl_warmup_steps = 0  # The KL weight ramps linearly from 0 to beta over this many steps; 0 = off.
    # Bernoulli likelihood: 'dynamic' binarizes every training batch afresh from the step's rng;
    # 'none' uses the [0, 1] intensities as Bernoulli targets (as PyTorch's and Keras' examples do).
    config.binarize = "dynamic"
    # With binarize='dynamic' the eval split is binarized once, each example from its own key derived
    # from this seed and its row in the split: the same images whatever the eval batch size.
    config.test_binarization_seed = 0
    config.denoise = ""  # '' | 'gaussian' | 'mask': corrupt the encoder's input, score the clean image.
    config.noise_std = 0.5  # denoise='gaussian': std of the noise added to pixels in [0, 1] (then clipped).
    config.mask_fraction = 0.5  # denoise='mask': probability that a pixel is set to 0.
    config.iw_samples = 0  # Eval: importance samples per image for `iw_nll` (e.g. 1000); 0 = skip.
    config.iw_chunk = 10  # Importance samples drawn at once per image: memory ~ iw_chunk x eval batch decodes.
    config.gaussian_min_std = 0.01  # Gaussian likelihood: std = decoder std + this (constant pixels need a floor).
    return config


def build(config: ml_collections.ConfigDict, dataset_info: dict[str, Any], total_steps: int) -> Task:
    """The VAE task for `config`; `dataset_info` supplies `image_shape` (and the eval batches `example_index`)."""
    check_config(config, dataset_info)
    t = config.task
    image_shape = tuple(int(size) for size in dataset_info["image_shape"])
    model = models.build_model(config.model, image_shape=image_shape)
    tx = optim.make_optimizer(config.optimizer, total_steps)
    likelihood, latent_dim = config.model.likelihood, int(config.model.latent_dim)
    binarize = likelihood == "bernoulli" and t.binarize == "dynamic"
    beta, warmup_steps = float(t.beta), int(t.kl_warmup_steps)
    iw_samples, iw_chunk = int(t.iw_samples), int(t.iw_chunk)
    min_std = float(t.gaussian_min_std)
    corrupt = make_corruption(t)
    test_seed = int(t.test_binarization_seed)
    scatter = latent_dim == 2

    def init(rng: jax.Array, batch: Batch) -> TrainState:
        images = preprocess(batch["image"])
        noise = jnp.zeros((images.shape[0], latent_dim), jnp.float32)
        params, model_state = split_variables(model.init(rng, images, noise))
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), model_state=model_state)

    def train_step(state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
        binarize_rng, corrupt_rng, noise_rng = jax.random.split(rng, 3)
        target = preprocess(batch["image"])  # [B, H, W, C] in [0, 1]
        if binarize:
            target = jax.random.bernoulli(binarize_rng, target).astype(jnp.float32)
        inputs = corrupt(corrupt_rng, target) if corrupt else target
        noise = jax.random.normal(noise_rng, (target.shape[0], latent_dim), jnp.float32)  # [B, D]
        kl_weight = beta * kl_warmup(state.step, warmup_steps)

        def loss_fn(params):
            decoded, mean, logvar = model.apply({"params": params, **state.model_state}, inputs, noise)
            reconstruction = -log_likelihood(decoded, target, likelihood, min_std)  # [B]
            kl = kl_divergence(mean, logvar)  # [B]
            return jnp.mean(reconstruction + kl_weight * kl), (jnp.mean(reconstruction), jnp.mean(kl))

        (_, (reconstruction, kl)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        metrics = {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}
        if warmup_steps:
            metrics["kl_weight"] = kl_weight
        return state.apply_gradients(grads, tx), metrics

    def eval_step(state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
        noise_rng, iw_rng = jax.random.split(rng)
        variables = {"params": state.params, **state.model_state}
        images = preprocess(batch["image"])
        keys = example_keys(test_seed, batch["example_index"])  # [B]: fixed per example of the split.
        target = fixed_binarization(keys, images) if binarize else images
        inputs = jax.vmap(lambda key, x: corrupt(jax.random.fold_in(key, 1), x))(keys, target) if corrupt else target
        mean, logvar = model.apply(variables, inputs, method="encode")  # [B, D] each
        noise = jax.random.normal(noise_rng, mean.shape, jnp.float32)
        decoded = model.apply(variables, mean + jnp.exp(0.5 * logvar) * noise, method="decode")
        reconstruction = -log_likelihood(decoded, target, likelihood, min_std)  # [B]
        kl = kl_divergence(mean, logvar)  # [B]
        mask = batch["mask"].astype(jnp.float32)
        outputs = {
            "neg_elbo_sum": jnp.sum((reconstruction + kl) * mask),
            "reconstruction_sum": jnp.sum(reconstruction * mask),
            "kl_sum": jnp.sum(kl * mask),
            "count": jnp.sum(mask),
            "latent_mean_sum": jnp.sum(mean * mask[:, None], axis=0),  # [D]: for active units.
            "latent_mean_square_sum": jnp.sum(jnp.square(mean) * mask[:, None], axis=0),  # [D]
        }
        if iw_samples:
            decode = lambda z: model.apply(variables, z, method="decode")  # noqa: E731
            log_px = iw_log_likelihood(decode, target, mean, logvar, iw_rng, iw_samples, iw_chunk, likelihood, min_std)
            outputs["iw_log_likelihood_sum"] = jnp.sum(log_px * mask)
        # Pictures ('first': the first batch's): clean inputs and their reconstructions at the posterior mean.
        shown = min(NUM_SHOWN, images.shape[0])
        clean_mean = model.apply(variables, target[:shown], method="encode")[0] if corrupt else mean[:shown]
        outputs["inputs"] = target[:shown]
        outputs["reconstructions"] = mean_image(model.apply(variables, clean_mean, method="decode"), likelihood)
        if corrupt:
            outputs["noisy"] = inputs[:shown]
            outputs["denoised"] = mean_image(model.apply(variables, mean[:shown], method="decode"), likelihood)
        if scatter:  # 'concat': the split's posterior means, for the latent-space plot.
            outputs["latent_mean"] = mean
            outputs["latent_mask"] = batch["mask"]
            if "label" in batch:
                outputs["latent_label"] = batch["label"]
        return outputs

    def summarize(outputs: dict[str, Any]) -> dict[str, Any]:
        count = float(outputs["count"])
        mean = np.asarray(outputs["latent_mean_sum"]) / count
        variance = np.asarray(outputs["latent_mean_square_sum"]) / count - np.square(mean)
        metrics = {
            "neg_elbo": float(outputs["neg_elbo_sum"]) / count,
            "reconstruction": float(outputs["reconstruction_sum"]) / count,
            "kl": float(outputs["kl_sum"]) / count,
            "active_units": int(np.sum(variance > ACTIVE_UNIT_THRESHOLD)),
            "num_examples": int(count),
        }
        if "iw_log_likelihood_sum" in outputs:
            metrics["iw_nll"] = -float(outputs["iw_log_likelihood_sum"]) / count
            metrics["iw_samples"] = iw_samples
        return metrics

    @jax.jit
    def decode_images(params, z: jax.Array) -> jax.Array:
        """Decoder means in [0, 1], [N, H, W, C], of latents z [N, D]."""
        return mean_image(model.apply({"params": params}, z, method="decode"), likelihood)

    # Prior samples shown at every eval: the same latents each time, so the grids compare across steps.
    prior_key = jax.random.fold_in(jax.random.key(config.seed), 7)

    def visualize(state: TrainState, outputs: dict[str, Any], rng: jax.Array) -> dict[str, np.ndarray]:
        """Reconstruction pairs, prior samples, denoising triplets; for a 2-D latent the manifold and a scatter."""
        pictures = {}
        inputs, reconstructions = np.asarray(outputs["inputs"]), np.asarray(outputs["reconstructions"])
        pictures["reconstructions"] = image_grid(interleave(inputs, reconstructions), columns=8)  # 4 pairs a row.
        if "noisy" in outputs:
            triplets = interleave(np.asarray(outputs["noisy"]), np.asarray(outputs["denoised"]), inputs)
            pictures["denoising"] = image_grid(triplets, columns=12)  # noisy | output | clean, 4 a row.
        z = jax.random.normal(prior_key, (NUM_PRIOR_SAMPLES, latent_dim), jnp.float32)
        pictures["prior_samples"] = np.asarray(decode_images(state.params, z))
        if scatter:
            pictures["manifold"] = image_grid(np.asarray(decode_images(state.params, manifold_latents())), columns=MANIFOLD_SIZE)
            keep = np.asarray(outputs["latent_mask"]).astype(bool)
            means = np.asarray(outputs["latent_mean"])[keep][:MAX_SCATTER_POINTS]
            labels = np.asarray(outputs["latent_label"])[keep][:MAX_SCATTER_POINTS] if "latent_label" in outputs else None
            pictures["latent_means"] = scatter_plot(means, labels)
        return pictures

    def sample(state: TrainState, rng: jax.Array, options: SampleOptions) -> np.ndarray:
        """`options.num` (default 64) decoder means of prior samples z ~ N(0, I); the same rng, the same images."""
        z = jax.random.normal(rng, (options.num or NUM_PRIOR_SAMPLES, latent_dim), jnp.float32)
        return np.asarray(jax.device_get(decode_images(state.params, z)))

    reductions = {name: "first" for name in ("inputs", "reconstructions", "noisy", "denoised")}
    reductions.update({name: "concat" for name in ("latent_mean", "latent_mask", "latent_label")})
    return Task(init=init, train_step=train_step, eval_step=eval_step, summarize=summarize, reductions=reductions,
                units_per_step={"images": config.data.batch_size}, visualize=visualize, sample=sample)


def check_config(config: ml_collections.ConfigDict, dataset_info: dict[str, Any]) -> None:
    """One-line ConfigErrors for settings the VAE task cannot run."""
    t, m = config.task, config.model
    if m.name != "vae":
        raise ConfigError(f"task.name='vae' trains a VAE model; set model.name='vae' (got {m.name!r}).")
    if "image_shape" not in dataset_info:
        raise ConfigError(f"task.name='vae' needs an image dataset such as data.name='mnist'; got data.name={config.data.name!r}.")
    _require(m.latent_dim >= 1, f"model.latent_dim must be at least 1, got {m.latent_dim}.")
    _require(m.architecture in ARCHITECTURES, f"model.architecture={m.architecture!r}; choose one of {ARCHITECTURES}.")
    _require(m.likelihood in LIKELIHOODS, f"model.likelihood={m.likelihood!r}; choose one of {LIKELIHOODS}.")
    _require(t.beta >= 0, f"task.beta must be >= 0, got {t.beta}.")
    _require(t.kl_warmup_steps >= 0, f"task.kl_warmup_steps must be >= 0 (0 turns the warm-up off), got {t.kl_warmup_steps}.")
    _require(t.binarize in BINARIZE, f"task.binarize={t.binarize!r}; choose one of {BINARIZE}.")
    _require(t.denoise in DENOISE, f"task.denoise={t.denoise!r}; choose one of {DENOISE} ('' is off).")
    if t.denoise == "gaussian":
        _require(t.noise_std > 0, f"task.noise_std must be > 0 with task.denoise='gaussian', got {t.noise_std}.")
    if t.denoise == "mask":
        _require(0 < t.mask_fraction < 1, f"task.mask_fraction must be in (0, 1) with task.denoise='mask', got {t.mask_fraction}.")
    _require(t.iw_samples >= 0, f"task.iw_samples must be >= 0 (0 skips the importance-weighted estimate), got {t.iw_samples}.")
    _require(t.iw_chunk >= 1, f"task.iw_chunk must be >= 1, got {t.iw_chunk}.")
    _require(t.gaussian_min_std > 0, f"task.gaussian_min_std must be > 0, got {t.gaussian_min_std}.")
    metric = config.train.early_stopping_metric
    if metric == "iw_nll" and t.iw_samples == 0:
        raise ConfigError("train.early_stopping_metric='iw_nll' needs importance samples; set task.iw_samples > 0, e.g. 100.")
    if metric in LOWER_IS_BETTER and config.train.early_stopping_mode != "min":
        raise ConfigError(f"train.early_stopping_metric={metric!r} is lower-is-better; set train.early_stopping_mode='min'.")


def _require(condition: Any, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def preprocess(images: jax.Array) -> jax.Array:
    """uint8 pixels -> float32 in [0, 1]."""
    return images.astype(jnp.float32) / 255.0


def kl_warmup(step: jax.Array, warmup_steps: int) -> jax.Array:
    """The KL weight's ramp: step / warmup_steps up to 1 (1 throughout when warmup_steps is 0)."""
    if not warmup_steps:
        return jnp.ones((), jnp.float32)
    return jnp.minimum(1.0, step.astype(jnp.float32) / warmup_steps)


def kl_divergence(mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL(N(mean, exp(logvar)) || N(0, I)) per example, [B, D] -> [B]: 1/2 sum(var + mean^2 - 1 - logvar)."""
    return 0.5 * jnp.sum(jnp.exp(logvar) + jnp.square(mean) - 1.0 - logvar, axis=-1)


def log_likelihood(decoded: Any, target: jax.Array, likelihood: str, min_std: float = 0.01) -> jax.Array:
    """log p(target | decoder output), summed over every axis after the first: [B, ...] -> [B].

    'bernoulli': `decoded` are logits, targets in [0, 1] (binary, or intensities as soft targets).
    'gaussian': `decoded` is (mean, log_std); the std used is exp(log_std) + min_std.
    """
    if likelihood == "bernoulli":
        # -BCE = y log s(l) + (1 - y) log s(-l) = y l - softplus(l): one softplus a pixel instead of two log-sigmoids.
        per_pixel = target * decoded - jax.nn.softplus(decoded)
    else:
        mean, log_std = decoded
        log_std = jnp.logaddexp(log_std, math.log(min_std))  # log(exp(log_std) + min_std)
        per_pixel = -0.5 * jnp.square((target - mean) * jnp.exp(-log_std)) - log_std - 0.5 * _LOG_2PI
    return jnp.sum(per_pixel.reshape(per_pixel.shape[0], -1), axis=-1)


def mean_image(decoded: Any, likelihood: str) -> jax.Array:
    """The decoder's mean image in [0, 1]: sigmoid of the logits, or the Gaussian mean clipped."""
    if likelihood == "bernoulli":
        return jax.nn.sigmoid(decoded)
    return jnp.clip(decoded[0], 0.0, 1.0)


def iw_log_likelihood(
    decode: Callable[[jax.Array], Any], target: jax.Array, mean: jax.Array, logvar: jax.Array, rng: jax.Array,
    num_samples: int, chunk: int, likelihood: str, min_std: float = 0.01,
) -> jax.Array:
    """Importance-weighted estimate of log p(target) per example, [B], with q(z|x) = N(mean, exp(logvar)).

    log (1/k) sum_j p(x|z_j) p(z_j) / q(z_j|x), z_j ~ q, in chunks of `chunk` samples per example (the
    decoder sees chunk x B latents at once); k = 1 is the single-sample ELBO estimate. A lower bound on
    log p(x) in expectation, tightening as k grows (Burda et al. 2015).
    """
    batch, latent_dim = mean.shape
    chunk = min(chunk, num_samples)
    num_chunks = -(-num_samples // chunk)
    std = jnp.exp(0.5 * logvar)

    def log_weights(carry, key):
        eps = jax.random.normal(key, (batch, chunk, latent_dim), jnp.float32)  # [B, c, D]
        z = mean[:, None] + std[:, None] * eps
        # Batch-major flattening keeps the batch axis' sharding: [B * c, D] -> decoder -> [B, c, ...].
        decoded = decode(z.reshape(batch * chunk, latent_dim))
        tiled = jnp.repeat(target, chunk, axis=0)  # [B * c, H, W, C], example-major like z.
        log_px = log_likelihood(decoded, tiled, likelihood, min_std).reshape(batch, chunk)
        log_pz = -0.5 * jnp.sum(jnp.square(z) + _LOG_2PI, axis=-1)  # [B, c]
        log_qz = -0.5 * jnp.sum(jnp.square(eps) + logvar[:, None] + _LOG_2PI, axis=-1)  # [B, c]
        return carry, log_px + log_pz - log_qz

    _, weights = jax.lax.scan(log_weights, None, jax.random.split(rng, num_chunks))  # [n, B, c]
    weights = jnp.moveaxis(weights, 0, 1).reshape(batch, num_chunks * chunk)[:, :num_samples]  # [B, k]
    return jax.nn.logsumexp(weights, axis=-1) - math.log(num_samples)


def example_keys(seed: int, example_index: jax.Array) -> jax.Array:
    """One key per example, from the seed and the example's row in its split: [B] int -> [B] keys."""
    base = jax.random.key(seed)
    return jax.vmap(lambda index: jax.random.fold_in(base, index))(example_index)


def fixed_binarization(keys: jax.Array, images: jax.Array) -> jax.Array:
    """Bernoulli(pixel) draws per example from its own key: [B] keys, [B, H, W, C] in [0, 1] -> {0., 1.}."""
    return jax.vmap(lambda key, image: jax.random.bernoulli(key, image).astype(jnp.float32))(keys, images)


def make_corruption(t: ml_collections.ConfigDict) -> Callable[[jax.Array, jax.Array], jax.Array] | None:
    """(rng, images in [0, 1]) -> the encoder's corrupted input, per task.denoise; None when off."""
    if t.denoise == "gaussian":
        noise_std = float(t.noise_std)
        return lambda rng, x: jnp.clip(x + noise_std * jax.random.normal(rng, x.shape, x.dtype), 0.0, 1.0)
    if t.denoise == "mask":
        keep = 1.0 - float(t.mask_fraction)
        return lambda rng, x: x * jax.random.bernoulli(rng, keep, x.shape).astype(x.dtype)
    return None


def interleave(*groups: np.ndarray) -> np.ndarray:
    """[N, ...] arrays a, b, ... -> [G * N, ...] as a0, b0, ..., a1, b1, ...: pairs or triplets side by side."""
    return np.stack(groups, axis=1).reshape(-1, *groups[0].shape[1:])


def manifold_latents(size: int = MANIFOLD_SIZE) -> np.ndarray:
    """[size^2, 2] latents on a grid over N(0, 1)'s quantiles (i + 1/2) / size; rows top to bottom = z1 high to low."""
    from jax.scipy.stats import norm

    values = np.asarray(norm.ppf((np.arange(size) + 0.5) / size), np.float32)
    z0, z1 = np.meshgrid(values, values[::-1])
    return np.stack([z0.ravel(), z1.ravel()], axis=-1)


def scatter_plot(means: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """Posterior means [N, 2], coloured by label, as an RGB image (matplotlib without pyplot)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 5), dpi=100)
    axes = figure.add_subplot()
    points = axes.scatter(means[:, 0], means[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7)
    if labels is not None:
        figure.colorbar(points, ax=axes, ticks=np.unique(labels))
    axes.set_xlabel("z[0]")
    axes.set_ylabel("z[1]")
    axes.set_title(f"posterior means of {len(means)} test images")
    figure.tight_layout()
    return figure_to_array(figure)
