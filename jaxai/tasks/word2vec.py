"""Word2vec: skip-gram with negative sampling; eval reports nearest neighbours and analogies.

Loss per (center, context) pair: -log sigma(u.v) - sum_k log sigma(-u.v_k), with K noise words drawn
on-device from unigram^0.75 (the data's `noise_probs`). Eval ranks every word by cosine similarity to
each query word (the data's `queries`) and to each analogy vector b - a + c.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxai import models, optim
from jaxai.tasks.base import Batch, Metrics, Task, TrainState, split_variables


def default_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.num_negatives = 5  # Noise words per (center, context) pair, drawn from unigram^0.75.
    config.num_neighbours = 8  # Nearest neighbours reported per query word and per analogy at eval.
    # 'a:b::c:d' asks b - a + c ~ d; with d = '?' it is only reported, else counted in analogy_accuracy.
    config.analogies = ("man:king::woman:queen", "king:queen::lord:lady", "he:him::she:her")
    return config


def parse_analogy(text: str) -> tuple[str, str, str, str]:
    """'a:b::c:d' -> (a, b, c, d); d may be '?'."""
    left, sep, right = text.partition("::")
    parts = left.split(":") + right.split(":")
    if not sep or len(parts) != 4 or not all(parts):
        raise ValueError(f"task.analogies entry {text!r} is not of the form 'a:b::c:d' (d may be '?').")
    return tuple(part.strip().lower() for part in parts)  # type: ignore[return-value]


def build(config: ml_collections.ConfigDict, dataset_info: dict[str, Any], total_steps: int) -> Task:
    """The word2vec task; `dataset_info` supplies `vocab_size`, `vocab`, `noise_probs` and `queries`."""
    vocab: list[str] = list(dataset_info["vocab"])
    vocab_size = int(dataset_info["vocab_size"])
    model = models.build_model(config.model, vocab_size=vocab_size)
    tx = optim.make_optimizer(config.optimizer, total_steps)
    num_negatives = int(config.task.num_negatives)
    k = min(int(config.task.num_neighbours), vocab_size - 1)
    noise_probs = jnp.asarray(dataset_info["noise_probs"], jnp.float32)
    queries: list[str] = list(dataset_info["queries"])
    index = {word: i for i, word in enumerate(vocab)}
    analogies = [parse_analogy(text) for text in config.task.analogies]
    usable = [a for a in analogies if all(word in index for word in a[:3])]
    # Analogy rows b - a + c as (word ids, signs): [A, 3] each.
    analogy_words = jnp.asarray([[index[b], index[a], index[c]] for a, b, c, _ in usable] or np.zeros((0, 3)), jnp.int32)
    analogy_signs = jnp.tile(jnp.asarray([[1.0, -1.0, 1.0]]), (len(usable), 1))

    def init(rng: jax.Array, batch: Batch) -> TrainState:
        negatives = jnp.zeros(batch["center"].shape + (num_negatives,), jnp.int32)
        params, model_state = split_variables(model.init(rng, batch["center"], batch["context"], negatives))
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), model_state=model_state)

    def train_step(state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
        center, context = batch["center"], batch["context"]  # [B], [B]
        # Inverse-CDF sampling from unigram^0.75: O(B K log V), unlike a [B, K, V] Gumbel draw.
        negatives = jax.random.choice(rng, vocab_size, (center.shape[0], num_negatives), p=noise_probs)  # [B, K]
        real = (negatives != context[:, None]).astype(jnp.float32)  # word2vec skips noise equal to the context.

        def loss_fn(params):
            positive, negative = model.apply({"params": params}, center, context, negatives)
            losses = -jax.nn.log_sigmoid(positive) - jnp.sum(jax.nn.log_sigmoid(-negative) * real, axis=-1)
            return jnp.mean(losses)

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads, tx), {"loss": loss}

    def eval_step(state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
        vectors = model.apply({"params": state.params}, method="normalized_embeddings")  # [V, D]
        query = batch["query"][:, None]  # [B, 1]
        ids, sims = nearest(vectors, query, jnp.ones(query.shape), k)  # [B, k]
        mask = batch["mask"][:, None]
        rows = batch["index"]  # Global query row: outputs of all eval batches add up to [Q, k].
        out = {
            "neighbours": jnp.zeros((len(queries), k), jnp.int32).at[rows].add(jnp.where(mask, ids, 0)),
            "similarity": jnp.zeros((len(queries), k), jnp.float32).at[rows].add(jnp.where(mask, sims, 0.0)),
        }
        if usable:  # Computed in every batch, kept from the one holding query row 0, so the sum counts it once.
            first = jnp.any((rows == 0) & batch["mask"])
            analogy_ids, analogy_sims = nearest(vectors, analogy_words, analogy_signs, k)  # [A, k]
            out["analogies"] = jnp.where(first, analogy_ids, 0)
            out["analogy_similarity"] = jnp.where(first, analogy_sims, 0.0)
        return out

    def summarize(sums: dict[str, Any]) -> dict[str, Any]:
        neighbours = np.asarray(sums["neighbours"]).round().astype(np.int64)
        similarity = np.asarray(sums["similarity"])
        nearest_words = {word: [vocab[i] for i in row] for word, row in zip(queries, neighbours)}
        metrics: dict[str, Any] = {"top1_similarity": float(similarity[:, 0].mean()) if len(queries) else 0.0}
        answers = dict(zip(usable, np.asarray(sums.get("analogies", np.zeros((0, k)))).round().astype(np.int64)))
        correct, graded = 0, 0
        analogy_words_out: dict[str, Any] = {}
        for a, b, c, d in analogies:
            key = f"{a}:{b}::{c}:{d}"
            if (a, b, c, d) not in answers:
                missing = ", ".join(word for word in (a, b, c) if word not in index)
                analogy_words_out[key] = f"skipped: {missing} not in the vocabulary"
                continue
            guesses = [vocab[i] for i in answers[(a, b, c, d)]]
            analogy_words_out[key] = guesses
            if d != "?":
                graded += 1
                correct += int(guesses[0] == d)
        if graded:
            metrics["analogy_accuracy"] = correct / graded
        metrics["nearest"] = nearest_words
        metrics["analogies"] = analogy_words_out
        return metrics

    def visualize(state: TrainState, outputs: dict[str, Any], rng: jax.Array) -> dict[str, str]:
        """Each query word's nearest neighbours, a line each."""
        neighbours = np.asarray(outputs["neighbours"]).round().astype(np.int64)
        lines = [f"{word}: {' '.join(vocab[i] for i in row)}" for word, row in zip(queries, neighbours)]
        return {"nearest_neighbours": "\n".join(lines)}

    def export(state: TrainState, workdir: str) -> dict[str, str]:
        """vectors.tsv + metadata.tsv (TensorBoard projector), vectors.npy + vocab.txt (one word a line)."""
        vectors = np.asarray(jax.device_get(state.params["embed"]), np.float32)  # [V, D]
        files = {name: os.path.join(workdir, name) for name in ("vectors.npy", "vectors.tsv", "metadata.tsv", "vocab.txt")}
        np.save(files["vectors.npy"], vectors)
        np.savetxt(files["vectors.tsv"], vectors, delimiter="\t", fmt="%.6g")
        for name in ("metadata.tsv", "vocab.txt"):
            with open(files[name], "w", encoding="utf-8") as file:
                file.writelines(word + "\n" for word in vocab)
        return files

    return Task(init=init, train_step=train_step, eval_step=eval_step, summarize=summarize, export=export,
                visualize=visualize if queries else None, units_per_step={"pairs": config.data.batch_size})


def nearest(vectors: jax.Array, words: jax.Array, signs: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """Top-k words by cosine to sum_j signs[:, j] * vectors[words[:, j]], excluding the words themselves.

    vectors [V, D] unit rows; words [N, J] int; signs [N, J] -> ids [N, k], cosine similarities [N, k].
    """
    query = jnp.einsum("nj,njd->nd", signs, vectors[words])  # [N, D]
    query = query / jnp.maximum(jnp.linalg.norm(query, axis=-1, keepdims=True), 1e-12)
    scores = query @ vectors.T  # [N, V]
    used = jnp.zeros(scores.shape, bool).at[jnp.arange(words.shape[0])[:, None], words].set(signs != 0)
    sims, ids = jax.lax.top_k(jnp.where(used, -jnp.inf, scores), k)
    return ids, sims
