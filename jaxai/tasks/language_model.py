"""Next-token language modelling (GPT or RNN): cross-entropy, val loss and perplexity, sampling."""

from __future__ import annotations

import importlib
import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxai import models, transfer
from jaxai.models import transformer
from jaxai.tasks.base import Batch, Metrics, SampleOptions, Task, TrainState, split_variables


def default_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.z_loss = 0.0  # Weight of log(Z)^2, keeps the softmax normaliser near 1 (PaLM); 0 = off.
    return config


def build(config: ml_collections.ConfigDict, dataset_info: dict[str, Any], total_steps: int) -> Task:
    """The language-model task; `dataset_info` supplies `vocab_size`."""
    base_model = build_lm(config, dataset_info)
    model = transfer.wrap_model(config, base_model)  # LoRA adapters when config.lora.rank > 0.
    tx = transfer.make_optimizer(config, total_steps)
    z_loss = float(config.task.z_loss)

    def init(rng: jax.Array, batch: Batch) -> TrainState:
        params_rng, dropout_rng = jax.random.split(rng)
        variables = model.init({"params": params_rng, "dropout": dropout_rng}, batch["inputs"], train=False)
        params, model_state = split_variables(variables)
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), model_state=model_state)

    def train_step(state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
        def loss_fn(params):
            logits = logits_of(model.apply({"params": params}, batch["inputs"], train=True, rngs={"dropout": rng}))
            loss = token_cross_entropy(logits, batch["targets"]).mean()
            if z_loss:
                loss += z_loss * jnp.mean(jax.nn.logsumexp(logits, axis=-1) ** 2)
            return loss

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads, tx), {"loss": loss, "grad_norm": optax.tree.norm(grads)}

    def eval_step(state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
        logits = logits_of(model.apply({"params": state.params}, batch["inputs"], train=False))
        mask = batch["mask"].astype(jnp.float32)[:, None]  # [B, 1]: padded sequences count zero.
        losses = token_cross_entropy(logits, batch["targets"])  # [B, T]
        return {"loss_sum": jnp.sum(losses * mask), "count": jnp.sum(mask) * losses.shape[1]}

    batch_size, block_size = config.data.batch_size, dataset_info["block_size"]
    tokenizer = dataset_info.get("tokenizer")  # Absent where a task is built without its data (jaxai info).

    def sample(state: TrainState, rng: jax.Array, options: SampleOptions) -> list[str]:
        """`options.num` continuations of the prompt (GPT: with a KV cache while the text fits the block)."""
        generate = importlib.import_module(type(base_model).__module__).generate
        prompt_tokens = np.tile(tokenizer.encode(options.prompt)[None, :], (options.num or 1, 1))  # [S, T0]
        fits_cache = config.model.name != "gpt" or prompt_tokens.shape[1] + options.num_tokens <= config.model.block_size
        tokens = generate(
            base_model, transfer.merged_params(config, jax.device_get(state.params)), prompt_tokens, rng, options.num_tokens,
            temperature=options.temperature, top_k=options.top_k or None, use_cache=fits_cache,
        )
        return [tokenizer.decode(np.asarray(row)) for row in tokens]

    return Task(init=init, train_step=train_step, eval_step=eval_step, summarize=summarize, sample=sample,
                units_per_step={"tokens": batch_size * block_size, "examples": batch_size},
                flops_per_step=batch_size * flops_per_sequence(base_model, block_size),
                export=transfer.export_merged(config))


def flops_per_sequence(model, block_size: int) -> float:
    """Training FLOPs of one sequence: nanoGPT's estimate for a GPT, 6 x params x tokens otherwise."""
    if isinstance(model, transformer.GPT):
        return transformer.flops_per_token(model) * block_size
    tokens = jax.numpy.zeros((1, block_size), jax.numpy.int32)
    params = jax.eval_shape(lambda: model.init(jax.random.key(0), tokens, train=False))["params"]
    return 6.0 * sum(leaf.size for leaf in jax.tree.leaves(params)) * block_size


def build_lm(config: ml_collections.ConfigDict, dataset_info: dict[str, Any]):
    """The configured GPT or RNN with the data's vocabulary (and the GPT's block size)."""
    fields = {"vocab_size": int(dataset_info["vocab_size"])}
    if config.model.name == "gpt" and config.model.block_size < dataset_info["block_size"]:
        raise ValueError(
            f"model.block_size={config.model.block_size} is smaller than data.block_size={dataset_info['block_size']}; "
            "the model has no positions for the later tokens. Make them equal."
        )
    return models.build_model(config.model, **fields)


def logits_of(output: Any) -> jax.Array:
    """Model output -> logits (recurrent models also return their carries)."""
    return output[0] if isinstance(output, tuple) else output


def token_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Per-token cross-entropy in float32: [B, T, V], [B, T] -> [B, T]."""
    return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)


def summarize(sums: dict[str, Any]) -> dict[str, Any]:
    loss = float(sums["loss_sum"]) / float(sums["count"])
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "num_tokens": int(sums["count"])}
