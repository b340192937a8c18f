"""Generative adversarial networks: a generator and a discriminator, each with its own optimizer.

One `train_step` (one jitted call) makes `task.critic_steps` discriminator updates, then one
generator update. With critic_steps = k > 1 the batch is SPLIT into k chunks of batch_size / k
examples (chunk i holds examples i, i+k, i+2k, ...; the data is shuffled, so each chunk is a random
draw): each critic update sees fresh real images, as in WGAN-GP's reference code, which draws a new
batch per critic iteration; the generator update then draws batch_size / k latents. A train step
thus consumes `data.batch_size` images whatever k is (units_per_step {"images": batch_size}).

Losses (`task.loss`; module-level pure functions on logits, per example):
- 'minimax' (Goodfellow et al. 2014): D maximises log D(x) + log(1 - D(G(z))); G minimises
  log(1 - D(G(z))), which saturates when D wins.
- 'non_saturating' (the paper's practical variant, PyTorch's DCGAN): D as minimax; G minimises
  -log D(G(z)).
- 'hinge' (Miyato et al. / SAGAN): D: relu(1 - D(x)) + relu(1 + D(G(z))); G: -D(G(z)).
- 'wgan_gp' (Gulrajani et al. 2017): critic D(G(z)) - D(x) + gp_weight (||grad D(x_hat)|| - 1)^2 on
  random per-example interpolates x_hat of real and fake; G: -D(G(z)). The penalty is per example,
  so the critic must not use batch norm (a ConfigError says so).

Networks: the model (models.gan: MLPGAN or DCGAN) holds params {'generator', 'discriminator'};
each is one `TrainState` (params, opt_state, step, model_state) of the `GANState`. A network's
model_state holds its own part of the non-parameter collections ({'batch_stats': ...}: the
generator's batch-norm statistics, the discriminator's batch norm / spectral-norm vectors).
- One generator forward pass per step (training mode: batch statistics; G's running statistics
  updated) makes the fakes of the generator update. With critic_steps = 1 the discriminator update
  uses those same fakes, as PyTorch's DCGAN does; with k > 1 each critic update generates its own
  (G's running statistics untouched there).
- Discriminator update: D on the real images and on the fakes as two batches (separate batch-norm
  statistics, as PyTorch's DCGAN), D's state updated.
- Generator update: D (updated, training mode, its state changes dropped) on the fakes, gradients
  through D and back through the kept generator forward pass (jax.vjp).
`config.optimizer` is the generator's optimizer, `config.task.discriminator_optimizer` the
discriminator's (its schedule counts discriminator updates: critic_steps per train step).
`task.generator_ema` > 0 keeps an exponential moving average of the generator's weights, which
evaluation, pictures and `jaxai sample` use.

Metrics: train d_loss (with the penalty for wgan_gp), g_loss, d_real and d_fake (mean D(x) and
D(G(z)) after the sigmoid for minimax/non_saturating, raw critic outputs for hinge/wgan_gp), and for
wgan_gp gp and wasserstein (mean D(x) - mean D(G(z)), the critic's estimate of the distance). With
critic_steps > 1 the discriminator metrics are means over the critic updates. The headline is
d_loss: it diagnoses every loss (d_loss -> 0 means D wins and G has stopped learning; near 2 log 2
for the logistic losses means balance), and for WGAN-GP it is the negated distance estimate, which
tracks sample quality; g_loss means little on its own, as it moves with the discriminator.
Eval (on the eval split): as many samples (eval rng) as the batch has real images; the same four
discriminator metrics in eval mode (d_loss without the penalty), and, where
`jaxai.tasks.sample_quality` is importable and task.quality_classifier != 'none', sample-quality
metrics from a pretrained MNIST classifier: fid (the Frechet distance of its features, generated
vs real eval images), confident_fraction and the class histogram (MNIST), or modes_covered and
mode_kl (Stacked MNIST, each channel classified). Pictures: a grid of 64 samples of a fixed noise
(task.eval_noise_seed), the same latents at every evaluation.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxai import models, optim
from jaxai.errors import ConfigError
from jaxai.tasks import sample_quality
from jaxai.tasks.base import Batch, Metrics, PyTree, SampleOptions, Task, TrainState, split_variables

LOSSES = ("minimax", "non_saturating", "hinge", "wgan_gp")
GENERATOR, DISCRIMINATOR = "generator", "discriminator"
GRID_SAMPLES = 64  # Samples in the picture of each evaluation, and `jaxai sample`'s default.
_LOGISTIC = ("minimax", "non_saturating")


def default_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.loss = "non_saturating"  # minimax | non_saturating | hinge | wgan_gp.
    config.gp_weight = 10.0  # wgan_gp: weight (lambda) of the gradient penalty.
    config.critic_steps = 1  # Discriminator updates per generator update; the batch is split into this many chunks.
    config.generator_ema = 0.0  # Decay of an EMA of the generator's weights for eval and samples; 0 = off.
    config.eval_noise_seed = 0  # Seed of the fixed latents of the sample grid shown at each evaluation.
    # Sample-quality metrics at eval from a pretrained MNIST classifier (jaxai.tasks.sample_quality):
    # its workdir; '' = the module's cache directory; 'none' = off.
    config.quality_classifier = ""
    config.discriminator_optimizer = optim.default_config()  # The discriminator's; `optimizer` is the generator's.
    return config


@flax.struct.dataclass
class GANState:
    """Both networks with their optimizers, and the EMA of the generator's weights ({} when off)."""

    step: jax.Array  # Train steps taken (generator updates).
    generator: TrainState
    discriminator: TrainState  # Its step counts discriminator updates: critic_steps per train step.
    ema_params: PyTree


# ---------------------------------------------------------------------------------------------
# Losses: pure functions of logits, per example ([B] in, [B] out).


def discriminator_loss(loss: str, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """Per-example discriminator loss of pairs (D(x_i), D(G(z_i))), without any gradient penalty."""
    if loss in _LOGISTIC:  # -log sigmoid(r) - log(1 - sigmoid(f))
        return jax.nn.softplus(-real_logits) + jax.nn.softplus(fake_logits)
    if loss == "hinge":
        return jax.nn.relu(1.0 - real_logits) + jax.nn.relu(1.0 + fake_logits)
    if loss == "wgan_gp":
        return fake_logits - real_logits
    raise ValueError(f"Unknown GAN loss {loss!r}; choose one of {LOSSES}.")


def generator_loss(loss: str, fake_logits: jax.Array) -> jax.Array:
    """Per-example generator loss of D(G(z_i))."""
    if loss == "minimax":  # log(1 - sigmoid(f))
        return -jax.nn.softplus(fake_logits)
    if loss == "non_saturating":  # -log sigmoid(f)
        return jax.nn.softplus(-fake_logits)
    if loss in ("hinge", "wgan_gp"):
        return -fake_logits
    raise ValueError(f"Unknown GAN loss {loss!r}; choose one of {LOSSES}.")


def discriminator_outputs(loss: str, logits: jax.Array) -> jax.Array:
    """What d_real / d_fake report: D's probability for the logistic losses, the raw output otherwise."""
    return jax.nn.sigmoid(logits) if loss in _LOGISTIC else logits


def gradient_penalty(
    critic: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array, rng: jax.Array, weight: float
) -> tuple[jax.Array, jax.Array]:
    """WGAN-GP: weight * (||grad_x critic(x_hat)|| - 1)^2 per example, x_hat = e x + (1 - e) G(z), e ~ U[0, 1].

    `critic` maps images [B, ...] to outputs [B], each example's output depending on that example
    only (no batch norm), so the gradient of their sum is each example's own gradient.
    Returns (penalties [B], gradient norms [B]).
    """
    shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    epsilon = jax.random.uniform(rng, shape, real.dtype)
    interpolates = epsilon * real + (1.0 - epsilon) * fake
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(interpolates)
    norms = jnp.sqrt(jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=-1) + 1e-12)
    return weight * jnp.square(norms - 1.0), norms


def to_signed(images: jax.Array) -> jax.Array:
    """uint8 pixels [0, 255] -> float32 in [-1, 1]; float inputs are taken as already in [-1, 1]."""
    if images.dtype == jnp.uint8:
        return images.astype(jnp.float32) / 127.5 - 1.0
    return images.astype(jnp.float32)


def to_unit(images: jax.Array) -> jax.Array:
    """Generator output in [-1, 1] -> [0, 1]."""
    return jnp.clip((images + 1.0) * 0.5, 0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Config.


def discriminator_optimizer_config(task_config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """task.discriminator_optimizer, complete; a ConfigError in one line when missing or partial."""
    section = task_config.get("discriminator_optimizer")
    fix = "add it as config.task.discriminator_optimizer = optim.default_config() (base_config(task='gan', ...) does)"
    if not isinstance(section, ml_collections.ConfigDict) or not section.keys():
        raise ConfigError(f"the GAN needs task.discriminator_optimizer, the discriminator's optimizer section; {fix}.")
    missing = sorted(set(optim.default_config().keys()) - set(section.keys()))
    if missing:
        raise ConfigError(f"the GAN needs task.discriminator_optimizer to have every optimizer key, missing {missing}; {fix}.")
    return section


def _make_discriminator_optimizer(config: ml_collections.ConfigDict, updates: int) -> optax.GradientTransformation:
    try:
        return optim.make_optimizer(discriminator_optimizer_config(config.task), updates)
    except ConfigError as error:  # optim names keys 'optimizer.<key>': say which section.
        raise ConfigError(str(error).replace("optimizer.", "task.discriminator_optimizer.", 1)) from None


def _check_config(config: ml_collections.ConfigDict, model: Any) -> None:
    task = config.task
    if task.loss not in LOSSES:
        raise ConfigError(f"task.loss={task.loss!r} is not a GAN loss; choose one of {', '.join(LOSSES)}.")
    if int(task.critic_steps) < 1:
        raise ConfigError(f"task.critic_steps={task.critic_steps} must be >= 1 (discriminator updates per generator update).")
    if config.data.batch_size % int(task.critic_steps):
        raise ConfigError(
            f"data.batch_size={config.data.batch_size} does not split into task.critic_steps={task.critic_steps} "
            f"chunks; use a multiple of {task.critic_steps}."
        )
    if not 0.0 <= float(task.generator_ema) < 1.0:
        raise ConfigError(f"task.generator_ema={task.generator_ema} must be in [0, 1); 0 turns the EMA off.")
    if float(task.gp_weight) < 0:
        raise ConfigError(f"task.gp_weight={task.gp_weight} must be >= 0.")
    if not (hasattr(model, "generate") and hasattr(model, "discriminate")):
        raise ConfigError(f"task 'gan' needs a GAN model: set model.name to 'gan_mlp' or 'dcgan', not {config.model.name!r}.")
    if int(config.model.latent_dim) < 1:
        raise ConfigError(f"model.latent_dim={config.model.latent_dim}: the generator needs at least 1 latent dimension.")
    if task.loss == "wgan_gp" and getattr(model, "discriminator_norm", "none") == "batch":
        raise ConfigError(
            "task.loss='wgan_gp' penalises per-example gradients, which batch norm mixes across the batch: "
            "set --config.model.discriminator_norm=layer (or none)."
        )


# ---------------------------------------------------------------------------------------------
# The task.


def build(config: ml_collections.ConfigDict, dataset_info: dict[str, Any], total_steps: int) -> Task:
    """The GAN task; `dataset_info` supplies `image_shape`."""
    image_shape = tuple(dataset_info["image_shape"])
    model = models.build_model(config.model, image_shape=image_shape)
    _check_config(config, model)
    loss_name = str(config.task.loss)
    critic_steps = int(config.task.critic_steps)
    gp_weight = float(config.task.gp_weight)
    ema_decay = float(config.task.generator_ema)
    batch_size = int(config.data.batch_size)
    latent_dim = int(model.latent_dim)
    g_tx = optim.make_optimizer(config.optimizer, total_steps)
    d_tx = _make_discriminator_optimizer(config, total_steps * critic_steps)
    fixed_noise_key = jax.random.key(int(config.task.eval_noise_seed))
    quality = _QualityHook(str(config.task.quality_classifier), image_shape, config.data)

    def apply(name, params, model_state, inputs, *, train, rng=None):
        """(output, new model_state) of one network; model_state is that network's {collection: tree}."""
        variables = {"params": {name: params}, **{col: {name: tree} for col, tree in model_state.items()}}
        method = "generate" if name == GENERATOR else "discriminate"
        rngs = {"dropout": rng} if rng is not None else None
        if not (train and model_state):
            return model.apply(variables, inputs, train=train, method=method, rngs=rngs), model_state
        output, updated = model.apply(variables, inputs, train=train, method=method, rngs=rngs, mutable=list(model_state))
        return output, {col: tree[name] for col, tree in updated.items()}

    def eval_generator(state: GANState) -> tuple[PyTree, PyTree]:
        return (state.ema_params if ema_decay else state.generator.params), state.generator.model_state

    def init(rng: jax.Array, batch: Batch) -> GANState:
        params_rng, dropout_rng = jax.random.split(rng)
        images = to_signed(batch["image"])
        z = jnp.zeros((images.shape[0], latent_dim), jnp.float32)
        variables = model.init({"params": params_rng, "dropout": dropout_rng}, z, images, train=False)
        params, others = split_variables(variables)

        def network(name, tx):
            model_state = {col: tree[name] for col, tree in others.items() if name in tree}
            return TrainState(step=jnp.zeros((), jnp.int32), params=params[name],
                              opt_state=tx.init(params[name]), model_state=model_state)

        generator = network(GENERATOR, g_tx)
        return GANState(step=jnp.zeros((), jnp.int32), generator=generator,
                        discriminator=network(DISCRIMINATOR, d_tx),
                        ema_params=generator.params if ema_decay else {})

    def critic_update(disc: TrainState, real: jax.Array, fakes: jax.Array, rng: jax.Array):
        """One discriminator update on real images and as many fakes (no gradient into the generator)."""
        real_rng, fake_rng, gp_rng, gp_drop_rng = jax.random.split(rng, 4)
        fakes = jax.lax.stop_gradient(fakes)

        def loss_fn(params):
            real_logits, model_state = apply(DISCRIMINATOR, params, disc.model_state, real, train=True, rng=real_rng)
            fake_logits, model_state = apply(DISCRIMINATOR, params, model_state, fakes, train=True, rng=fake_rng)
            losses = discriminator_loss(loss_name, real_logits, fake_logits)
            metrics = {"d_real": jnp.mean(discriminator_outputs(loss_name, real_logits)),
                       "d_fake": jnp.mean(discriminator_outputs(loss_name, fake_logits))}
            if loss_name == "wgan_gp":
                critic = lambda x: apply(DISCRIMINATOR, params, model_state, x, train=True, rng=gp_drop_rng)[0]  # noqa: E731
                penalties, _ = gradient_penalty(critic, real, fakes, gp_rng, gp_weight)
                metrics["gp"] = jnp.mean(penalties)
                metrics["wasserstein"] = -jnp.mean(losses)
                losses = losses + penalties
            return jnp.mean(losses), (metrics, model_state)

        (loss, (metrics, model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(disc.params)
        return disc.apply_gradients(grads, d_tx, model_state=model_state), {"d_loss": loss, **metrics}

    def train_step(state: GANState, batch: Batch, rng: jax.Array) -> tuple[GANState, Metrics]:
        real = to_signed(batch["image"])
        critic_rng, z_rng, gen_rng, disc_rng = jax.random.split(rng, 4)
        gen = state.generator
        # The generator's forward pass of its update, kept for the backward pass (jax.vjp). With one
        # critic step the discriminator update uses these same fakes, as PyTorch's DCGAN does: one
        # generator forward per step.
        z = jax.random.normal(z_rng, (real.shape[0] // critic_steps, latent_dim), jnp.float32)
        generate_fn = lambda params: apply(GENERATOR, params, gen.model_state, z, train=True, rng=gen_rng)  # noqa: E731
        fakes, generator_vjp, gen_model_state = jax.vjp(generate_fn, gen.params, has_aux=True)
        if critic_steps == 1:
            disc, d_metrics = critic_update(state.discriminator, real, fakes, critic_rng)
        else:  # Chunk i: examples i, i+k, ... ([B] -> [B/k, k] -> [k, B/k]); fresh fakes for each.
            # Unrolled, not lax.scan: XLA:CPU runs convolutions inside a loop several times slower.
            chunks = real.reshape(real.shape[0] // critic_steps, critic_steps, *real.shape[1:]).swapaxes(0, 1)
            disc, history = state.discriminator, []
            for chunk, key in zip(chunks, jax.random.split(critic_rng, critic_steps)):
                z_key, gen_key, update_key = jax.random.split(key, 3)
                chunk_z = jax.random.normal(z_key, (chunk.shape[0], latent_dim), jnp.float32)
                chunk_fakes, _ = apply(GENERATOR, gen.params, gen.model_state, chunk_z, train=True, rng=gen_key)
                disc, metrics = critic_update(disc, chunk, chunk_fakes, update_key)
                history.append(metrics)
            d_metrics = jax.tree.map(lambda *values: jnp.mean(jnp.stack(values)), *history)

        def fakes_loss(fakes):  # Through the updated discriminator; its state changes are dropped.
            fake_logits, _ = apply(DISCRIMINATOR, disc.params, disc.model_state, fakes, train=True, rng=disc_rng)
            return jnp.mean(generator_loss(loss_name, fake_logits))

        g_loss, fakes_grad = jax.value_and_grad(fakes_loss)(fakes)
        (grads,) = generator_vjp(fakes_grad)
        gen = gen.apply_gradients(grads, g_tx, model_state=gen_model_state)
        ema_params = state.ema_params
        if ema_decay:
            ema_params = optax.incremental_update(gen.params, ema_params, step_size=1.0 - ema_decay)
        new_state = state.replace(step=state.step + 1, generator=gen, discriminator=disc, ema_params=ema_params)
        return new_state, {**d_metrics, "g_loss": g_loss}

    def eval_step(state: GANState, batch: Batch, rng: jax.Array) -> Metrics:
        real = to_signed(batch["image"])
        mask = batch["mask"].astype(jnp.float32)
        params, gen_state = eval_generator(state)
        z = jax.random.normal(rng, (real.shape[0], latent_dim), jnp.float32)
        fakes, _ = apply(GENERATOR, params, gen_state, z, train=False)
        disc = state.discriminator
        real_logits, _ = apply(DISCRIMINATOR, disc.params, disc.model_state, real, train=False)
        fake_logits, _ = apply(DISCRIMINATOR, disc.params, disc.model_state, fakes, train=False)
        outputs = {
            "examples": jnp.sum(mask),
            "d_loss_sum": jnp.sum(discriminator_loss(loss_name, real_logits, fake_logits) * mask),
            "g_loss_sum": jnp.sum(generator_loss(loss_name, fake_logits) * mask),
            "d_real_sum": jnp.sum(discriminator_outputs(loss_name, real_logits) * mask),
            "d_fake_sum": jnp.sum(discriminator_outputs(loss_name, fake_logits) * mask),
        }
        outputs.update(quality.outputs(to_unit(real), to_unit(fakes), mask))
        return outputs

    def summarize(sums: dict[str, Any]) -> dict[str, Any]:
        count = max(float(sums["examples"]), 1.0)
        metrics = {name: float(sums[f"{name}_sum"]) / count for name in ("d_loss", "g_loss", "d_real", "d_fake")}
        if loss_name == "wgan_gp":
            metrics["wasserstein"] = metrics["d_real"] - metrics["d_fake"]
        metrics.update(quality.metrics(sums))
        metrics["num_examples"] = int(count)
        return metrics

    @functools.partial(jax.jit, static_argnums=3)
    def generate_images(params: PyTree, model_state: PyTree, rng: jax.Array, num: int) -> jax.Array:
        z = jax.random.normal(rng, (num, latent_dim), jnp.float32)
        return to_unit(apply(GENERATOR, params, model_state, z, train=False)[0])

    def visualize(state: GANState, outputs: dict[str, np.ndarray], rng: jax.Array) -> dict[str, np.ndarray]:
        """Samples of the fixed evaluation noise: the same latents at every step."""
        return {"samples": np.asarray(jax.device_get(generate_images(*eval_generator(state), fixed_noise_key, GRID_SAMPLES)))}

    def sample(state: GANState, rng: jax.Array, options: SampleOptions) -> jax.Array:
        """options.num (default 64) images in [0, 1] from prior noise (the EMA generator when kept)."""
        return generate_images(*eval_generator(state), rng, options.num or GRID_SAMPLES)

    return Task(
        init=init, train_step=train_step, eval_step=eval_step, summarize=summarize,
        headline="d_loss", units_per_step={"images": batch_size},
        networks=lambda state: {GENERATOR: state.generator.params, DISCRIMINATOR: state.discriminator.params},
        visualize=visualize, sample=sample,
    )


class _QualityHook:
    """Sample-quality eval outputs and metrics via jaxai.tasks.sample_quality, when enabled.

    Enabled when task.quality_classifier != 'none' and the images are 28x28
    with 1 channel (MNIST) or several (Stacked MNIST: a digit per channel, each classified alone).
    The classifier is trained (once, into its directory, on real MNIST) and loaded on first use, at
    the first eval step's trace, so building the task (`jaxai sample`, `jaxai info`) does neither.
    """

    def __init__(self, setting: str, image_shape: tuple[int, ...], data_config: ml_collections.ConfigDict):
        self.module = None
        if setting == "none" or len(image_shape) != 3 or image_shape[:2] != (28, 28):
            return
        self.module = sample_quality
        self.setting, self.channels = setting, image_shape[-1]
        self.data_dir, self.tfds_dir = str(data_config.data_dir), str(data_config.tfds_dir)

    @functools.cached_property
    def classifier(self):
        """The MNIST classifier of task.quality_classifier ('' = the module's cache dir), trained there once."""
        workdir = self.setting or self.module.default_classifier_dir()
        workdir = self.module.ensure_quality_classifier(workdir, self.data_dir, self.tfds_dir)
        return self.module.load_quality_classifier(workdir)

    def outputs(self, real01: jax.Array, fake01: jax.Array, mask: jax.Array) -> dict[str, jax.Array]:
        if self.module is None:
            return {}
        sq, classify = self.module, self.classifier.features
        if self.channels == 1:
            (_, real_features), (fake_probs, fake_features) = classify(real01), classify(fake01)
            per_channel = None
        else:  # Stacked MNIST: classify each channel; features of the channels side by side.
            real_parts = [classify(real01[..., c : c + 1]) for c in range(self.channels)]
            fake_parts = [classify(fake01[..., c : c + 1]) for c in range(self.channels)]
            real_features = jnp.concatenate([f for _, f in real_parts], axis=-1)
            fake_features = jnp.concatenate([f for _, f in fake_parts], axis=-1)
            per_channel = jnp.stack([p for p, _ in fake_parts], axis=1)  # [B, C, 10]
        outputs = {**sq.moment_outputs("real", real_features, mask), **sq.moment_outputs("fake", fake_features, mask)}
        outputs.update(sq.class_outputs(fake_probs, mask) if per_channel is None else sq.mode_outputs(per_channel, mask))
        return outputs

    def metrics(self, sums: dict[str, Any]) -> dict[str, Any]:
        if self.module is None:
            return {}
        sq = self.module
        metrics = {"fid": float(sq.frechet_distance_from_sums(sums, "real", "fake")),
                   "quality_classifier": self.classifier.path}  # Which classifier measured it, for the record.
        metrics.update(sq.class_metrics(sums) if self.channels == 1 else sq.mode_metrics(sums))
        return metrics
