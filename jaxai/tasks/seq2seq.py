"""Sequence to sequence: teacher-forced training, free-running (greedy or beam) decoding at eval.

Training: the decoder reads the target shifted right behind BOS; cross-entropy with label
smoothing over the real target tokens (EOS included, padding masked). Evaluation never uses the
reference: each source is decoded from BOS alone (`task.beam_size` 1 = greedy, else beam search
with `task.length_penalty`), and the headline is exact match (the whole output equals the target),
then token accuracy (output and target agreeing position by position, over the longer of the two),
the teacher-forced loss, and with `task.bleu` corpus BLEU by sacrebleu. A few decoded examples are
logged as text at each evaluation; `jaxai sample --prompt SOURCE` decodes a source of one's own.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxai import models, transfer
from jaxai.data import seq2seq as seq2seq_data
from jaxai.errors import ConfigError
from jaxai.models.decoding import BOS, PAD, DecodeFn, beam_search, greedy_decode
from jaxai.tasks.base import Batch, Metrics, SampleOptions, Task, TrainState, split_variables
from jaxai.tasks.classification import cross_entropy
from jaxai.tasks.language_model import token_cross_entropy

NUM_EXAMPLES_SHOWN = 8  # Decoded examples logged as text at each evaluation.


def default_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.label_smoothing = 0.1  # Weight moved from the reference token to a uniform distribution.
    config.beam_size = 1  # Eval and sample decoding: 1 = greedy, more = beam search of that width.
    config.length_penalty = 0.6  # Beam search ranking: log p / ((5 + length) / 6) ** this (GNMT); 0 = none.
    config.bleu = False  # Also report corpus BLEU (sacrebleu) of the decoded texts: for text corpora.
    return config


def build(config: ml_collections.ConfigDict, dataset_info: dict[str, Any], total_steps: int) -> Task:
    """The seq2seq task; `dataset_info` supplies vocab_size, source_length and target_length."""
    source_length, target_length = int(dataset_info["source_length"]), int(dataset_info["target_length"])
    model = build_seq2seq_model(config, dataset_info)
    tx = transfer.make_optimizer(config, total_steps)
    smoothing, beam_size = float(config.task.label_smoothing), int(config.task.beam_size)
    if beam_size < 1:
        raise ConfigError(f"task.beam_size={beam_size}: use 1 for greedy decoding or more for beam search.")
    translate = functools.partial(decode_sources, model, target_length=target_length, beam_size=beam_size,
                                  length_penalty=float(config.task.length_penalty))

    def init(rng: jax.Array, batch: Batch) -> TrainState:
        params_rng, dropout_rng = jax.random.split(rng)
        variables = model.init({"params": params_rng, "dropout": dropout_rng}, batch["source"],
                               shift_right(batch["target"]), train=False)
        params, model_state = split_variables(variables)
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), model_state=model_state)

    def train_step(state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
        target = batch["target"]
        weights = (target != PAD).astype(jnp.float32)

        def loss_fn(params):
            logits = model.apply({"params": params}, batch["source"], shift_right(target), train=True,
                                 rngs={"dropout": rng})
            loss = jnp.sum(smoothed_cross_entropy(logits, target, smoothing) * weights) / jnp.sum(weights)
            return loss, logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        teacher_forced = jnp.sum((jnp.argmax(logits, -1) == target) * weights) / jnp.sum(weights)
        metrics = {"loss": loss, "teacher_forced_accuracy": teacher_forced, "grad_norm": optax.tree.norm(grads)}
        return state.apply_gradients(grads, tx), metrics

    def eval_step(state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
        source, target, mask = batch["source"], batch["target"], batch["mask"].astype(jnp.float32)
        logits = model.apply({"params": state.params}, source, shift_right(target), train=False)
        weights = (target != PAD).astype(jnp.float32) * mask[:, None]
        predicted = translate(state.params, source)
        correct, positions = output_agreement(predicted, target)
        outputs = {
            "loss_sum": jnp.sum(smoothed_cross_entropy(logits, target, 0.0) * weights),
            "token_weight": jnp.sum(weights),
            "exact": jnp.sum(exact_match(predicted, target) * mask),
            "tokens_correct": jnp.sum(correct.sum(axis=1) * mask),
            "tokens_compared": jnp.sum(positions * mask),
            "count": jnp.sum(mask),
            "shown_source": source[:NUM_EXAMPLES_SHOWN],
            "shown_output": jnp.stack([predicted, target], axis=1)[:NUM_EXAMPLES_SHOWN],
        }
        if config.task.bleu:
            outputs.update(predicted=predicted, reference=target, reference_mask=batch["mask"])
        return outputs

    def summarize(outputs: dict[str, np.ndarray]) -> dict[str, Any]:
        count = float(outputs["count"])
        metrics = {
            "exact_match": float(outputs["exact"]) / count,
            "token_accuracy": float(outputs["tokens_correct"]) / max(float(outputs["tokens_compared"]), 1.0),
            "loss": float(outputs["loss_sum"]) / float(outputs["token_weight"]),
            "num_examples": int(count),
        }
        if "predicted" in outputs:
            metrics["bleu"] = corpus_bleu(outputs["predicted"], outputs["reference"], outputs["reference_mask"])
        return metrics

    def visualize(state: TrainState, outputs: dict[str, np.ndarray], rng: jax.Array) -> dict[str, str]:
        lines = []
        for source, (predicted, target) in zip(np.asarray(outputs["shown_source"]), np.asarray(outputs["shown_output"])):
            predicted, target = seq2seq_data.decode(predicted), seq2seq_data.decode(target)
            mark = "ok" if predicted == target else f"expected {target!r}"
            lines.append(f"{seq2seq_data.decode(source)!r} -> {predicted!r}  ({mark})")
        return {"examples": "\n".join(lines)}

    def sample(state: TrainState, rng: jax.Array, options: SampleOptions) -> list[str]:
        """The decoded output of `options.prompt` as the source."""
        source = seq2seq_data.to_arrays([(options.prompt, "")], source_length, 1)["source"]
        return [seq2seq_data.decode(translate(jax.device_get(state.params), jnp.asarray(source))[0])]

    return Task(init=init, train_step=train_step, eval_step=eval_step, summarize=summarize,
                reductions={"shown_source": "first", "shown_output": "first", "predicted": "concat", "reference": "concat", "reference_mask": "concat"},
                headline="loss", visualize=visualize, sample=sample,
                units_per_step={"examples": config.data.batch_size,
                                "tokens": config.data.batch_size * target_length})


def build_seq2seq_model(config: ml_collections.ConfigDict, dataset_info: dict[str, Any]):
    """The configured encoder-decoder with the data's vocabulary (and enough positions for its lengths)."""
    fields = {"vocab_size": int(dataset_info["vocab_size"])}
    if "max_length" in models.model_config(config.model.name):
        longest = max(int(dataset_info["source_length"]), int(dataset_info["target_length"]))
        fields["max_length"] = max(int(config.model.max_length), longest)
    return models.build_model(config.model, **fields)


def shift_right(target: jax.Array) -> jax.Array:
    """Decoder inputs: BOS, then the target without its last position."""
    return jnp.concatenate([jnp.full_like(target[:, :1], BOS), target[:, :-1]], axis=1)


def smoothed_cross_entropy(logits: jax.Array, targets: jax.Array, smoothing: float) -> jax.Array:
    """Per-token cross-entropy [B, T] against (1 - smoothing) one-hot + smoothing uniform."""
    if not smoothing:
        return token_cross_entropy(logits, targets)
    return cross_entropy(logits.astype(jnp.float32), targets, logits.shape[-1], smoothing)


def decode_sources(model, params: Any, source: jax.Array, *, target_length: int, beam_size: int,
                   length_penalty: float) -> jax.Array:
    """Free-running decoding of sources [B, S] -> output tokens [B, target_length] (best beam)."""
    decode_fn = source_decoder(model, params, source)
    if beam_size == 1:
        return greedy_decode(decode_fn, source.shape[0], target_length)[0]
    return beam_search(decode_fn, source.shape[0], target_length, beam_size, length_penalty)[0][:, 0]


def source_decoder(model, params: Any, source: jax.Array) -> DecodeFn:
    """The decoder with `source` [B, S] encoded once: target_in [B x r, T] -> logits (jaxai.models.decoding)."""
    memory = model.apply({"params": params}, source, train=False, method="encode")
    batch = source.shape[0]

    def decode_fn(target_in: jax.Array) -> jax.Array:
        repeats = target_in.shape[0] // batch  # Each source repeated for its beams.
        tiled = jax.tree.map(lambda leaf: jnp.repeat(leaf, repeats, axis=0), (memory, source))
        return model.apply({"params": params}, *tiled, target_in, train=False, method="decode")

    return decode_fn


def exact_match(predicted: jax.Array, target: jax.Array) -> jax.Array:
    """1.0 where the output equals the target up to and including EOS, [B]."""
    return jnp.all(jnp.where(target == PAD, predicted == PAD, predicted == target), axis=1).astype(jnp.float32)


def output_agreement(predicted: jax.Array, target: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(positions where output and target agree [B, T] bool, positions compared [B]: the longer of the two)."""
    real = (target != PAD) | (predicted != PAD)
    return (predicted == target) & real, jnp.sum(real, axis=1).astype(jnp.float32)


def corpus_bleu(predicted: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    """sacrebleu's corpus BLEU of decoded token rows (padding rows dropped)."""
    import sacrebleu

    keep = np.asarray(mask, bool)
    hypotheses = [seq2seq_data.decode(row) for row in np.asarray(predicted)[keep]]
    references = [seq2seq_data.decode(row) for row in np.asarray(reference)[keep]]
    return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)
