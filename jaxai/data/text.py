"""Character/byte-level text corpora: Tiny Shakespeare (shipped) or any text file, nanoGPT-style batches."""

from __future__ import annotations

import os
from importlib import resources

import ml_collections
import numpy as np

from jaxai.data.dataset import Dataset
from jaxai.errors import DatasetError
from jaxai.data.pipeline import generated_batches, padded_batches, process_slice
from jaxai.data.tokenizers import make_tokenizer

TRAIN_FRACTION = 0.9  # nanoGPT: first 90% train, last 10% val.


def read_corpus(config: ml_collections.ConfigDict) -> str:
    """The text of `data.path`, or the shipped Tiny Shakespeare for data.name='tiny_shakespeare'."""
    if config.name == "tiny_shakespeare" and not config.path:
        return resources.files("jaxai.data").joinpath("corpora/tiny_shakespeare.txt").read_text(encoding="utf-8")
    if config.name == "python_docs" and not config.path:
        return python_docs_text()
    if not config.path:
        raise DatasetError("data.name='text' reads a corpus file: pass --config.data.path=/path/to/corpus.txt.")
    if not os.path.isfile(config.path):
        raise DatasetError(f"data.path={config.path!r} does not exist; give the path of a UTF-8 text file.")
    with open(config.path, encoding="utf-8") as file:
        return file.read()


def python_docs_text() -> str:
    """Python's own documentation topics (the text behind `help('topic')`, shipped with Python as
    pydoc_data): ~465,000 characters of public-domain English prose and code, sorted by topic."""
    try:
        from pydoc_data.topics import topics
    except ImportError as error:  # Some distributions package it apart (e.g. Debian's python3-doc split).
        raise DatasetError("data.name='python_docs' needs Python's pydoc_data module, missing here; "
                           "use data.name='text' with --config.data.path=/path/to/corpus.txt.") from error
    return "\n\n".join(topics[name] for name in sorted(topics))


def text_dataset(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    """Random-offset training blocks drawn from (seed, step); eval over all non-overlapping val blocks."""
    if config.block_size <= 0:
        raise DatasetError("Text datasets need --config.data.block_size > 0 (tokens per training sequence).")
    text = read_corpus(config)
    tokenizer = make_tokenizer(config.tokenizer, text)
    tokens = tokenizer.encode(text)
    split_at = int(len(tokens) * TRAIN_FRACTION)
    splits = {"train": tokens[:split_at], "val": tokens[split_at:]}
    block_size, batch_size = config.block_size, config.batch_size
    for name, split_tokens in splits.items():
        if len(split_tokens) <= block_size + 1:
            raise DatasetError(
                f"The {name} split has {len(split_tokens)} tokens, too few for data.block_size={block_size}; "
                "use a longer corpus or a smaller block size."
            )
    train_tokens = splits["train"]
    rows = process_slice(batch_size)

    def train_batch(step: int) -> dict[str, np.ndarray]:
        # Offsets depend only on (seed, step): a resumed run draws exactly the batches it would have.
        offsets = np.random.default_rng([seed, step]).integers(0, len(train_tokens) - block_size - 1, batch_size)[rows]
        windows = np.stack([train_tokens[start:start + block_size + 1] for start in offsets])  # [B, T+1]
        return {"inputs": windows[:, :-1], "targets": windows[:, 1:]}

    def eval_batches(split: str, max_batches: int = 0):
        if split not in splits:
            raise DatasetError(f"Text datasets have splits {sorted(splits)}, not {split!r}; set data.eval_split.")
        split_tokens = splits[split]
        num_blocks = (len(split_tokens) - 1) // block_size
        starts = np.arange(num_blocks) * block_size
        windows = np.stack([split_tokens[start:start + block_size + 1] for start in starts])  # [N, T+1]
        return padded_batches({"inputs": windows[:, :-1], "targets": windows[:, 1:]}, config.eval_batch_size, max_batches)

    return Dataset(
        info={"vocab_size": tokenizer.vocab_size, "block_size": block_size, "num_train_tokens": len(train_tokens),
              "tokenizer": tokenizer},
        train=generated_batches(train_batch),
        steps_per_epoch=max(1, len(train_tokens) // (batch_size * block_size)),
        eval_batches=eval_batches,
        artifacts={"tokenizer.json": tokenizer},
    )
