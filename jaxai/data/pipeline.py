"""Grain pipelines over in-memory arrays: seeded shuffled training batches, padded eval batches."""

from __future__ import annotations

import functools
from typing import Callable, Iterator

import grain
import jax
import numpy as np

Arrays = dict[str, np.ndarray]


def process_slice(global_batch_size: int) -> slice:
    """This process's rows of a global batch."""
    local = global_batch_size // jax.process_count()
    start = jax.process_index() * local
    return slice(start, start + local)


def shuffled_batches(arrays: Arrays, *, seed: int, batch_size: int, shuffle: bool = True) -> grain.IterDataset:
    """Endless host-local training batches; a new seeded order every epoch; checkpointable position.

    Epochs follow one another as one stream (a batch may straddle two epochs; none is dropped). Each
    epoch's order is one NumPy permutation and a batch one gather: Grain's per-element shuffle and
    batching (with its default read-ahead) cost ~1.9 ms per batch of 64 here, 15% of the MNIST CNN's
    step; this costs ~0.05 ms.
    The global batch sequence depends only on the seed, not on the number of processes: each process
    takes its rows of the same global index batch.
    """
    num_examples = len(next(iter(arrays.values())))
    if num_examples < batch_size:
        raise ValueError(f"The training split has {num_examples} examples, fewer than data.batch_size={batch_size}.")
    rows = process_slice(batch_size)

    @functools.lru_cache(maxsize=2)
    def epoch_order(epoch: int) -> np.ndarray:
        if not shuffle:
            return np.arange(num_examples)
        return np.random.default_rng([seed, epoch]).permutation(num_examples)

    def make_batch(step: int) -> Arrays:
        epoch, offset = divmod(step * batch_size, num_examples)
        index = epoch_order(epoch)[offset : offset + batch_size]
        if len(index) < batch_size:  # The batch runs into the next epoch.
            index = np.concatenate([index, epoch_order(epoch + 1)[: batch_size - len(index)]])
        index = index[rows]
        return {key: value[index] for key, value in arrays.items()}

    return generated_batches(make_batch)


def generated_batches(make_batch: Callable[[int], Arrays]) -> grain.IterDataset:
    """Endless batches produced from the step index alone (e.g. random text offsets).

    Made on the training thread, when asked for: a batch is one cheap gather, and the step runs
    while the next is made (asynchronous dispatch). Grain's default read-ahead (16 threads, 500
    elements) cost 0.4-1.2 ms per batch in bookkeeping here and competed with XLA for the cores.
    """
    no_read_ahead = grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)
    return grain.MapDataset.range(2**62).map(make_batch).to_iter_dataset(no_read_ahead)


def padded_batches(arrays: Arrays, batch_size: int, max_batches: int = 0) -> Iterator[Arrays]:
    """The split in order, in host-local batches; the last is zero-padded and `mask` marks real rows.

    `example_index` (int32) is each row's position in the split (padding rows: past its end), for
    per-example randomness that does not depend on the batch size.
    """
    num_examples = len(next(iter(arrays.values())))
    rows = process_slice(batch_size)
    num_batches = -(-num_examples // batch_size)
    if max_batches:
        num_batches = min(num_batches, max_batches)
    for start in range(0, num_batches * batch_size, batch_size):
        index = np.arange(start, start + batch_size)[rows]
        mask = index < num_examples
        batch = {key: value[np.where(mask, index, 0)] for key, value in arrays.items()}
        batch["mask"] = mask
        batch["example_index"] = index.astype(np.int32)
        yield batch
