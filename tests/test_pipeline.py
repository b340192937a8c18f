"""Training batches: every example once per epoch, seeded orders, resumable position; padded eval batches."""

import numpy as np

from jaxai.data.pipeline import padded_batches, shuffled_batches

NUM_EXAMPLES = 10


def arrays():
    return {"x": np.arange(NUM_EXAMPLES) * 10, "y": np.arange(NUM_EXAMPLES)}


def take(iterator, count):
    return [next(iterator) for _ in range(count)]


def stream(seed, batch_size=4, num_batches=10, shuffle=True):
    batches = take(iter(shuffled_batches(arrays(), seed=seed, batch_size=batch_size, shuffle=shuffle)), num_batches)
    return np.concatenate([batch["y"] for batch in batches])


def test_each_epoch_holds_every_example_once_and_batches_straddle_epochs():
    order = stream(seed=0)  # 40 examples = 4 epochs of 10 in batches of 4 (2 of every 5 straddle).
    epochs = order.reshape(4, NUM_EXAMPLES)
    for epoch in epochs:
        assert sorted(epoch) == list(range(NUM_EXAMPLES))
    assert len({tuple(epoch) for epoch in epochs}) == 4  # A new order every epoch.


def test_rows_stay_aligned_across_arrays():
    batch = next(iter(shuffled_batches(arrays(), seed=3, batch_size=4)))
    np.testing.assert_array_equal(batch["x"], batch["y"] * 10)


def test_same_seed_same_order_other_seed_other_order():
    np.testing.assert_array_equal(stream(seed=5), stream(seed=5))
    assert not np.array_equal(stream(seed=5), stream(seed=6))


def test_without_shuffle_the_order_is_the_dataset_order():
    np.testing.assert_array_equal(stream(seed=0, shuffle=False), np.tile(np.arange(NUM_EXAMPLES), 4))


def test_restored_iterator_continues_the_same_sequence():
    dataset = shuffled_batches(arrays(), seed=1, batch_size=4)
    iterator = iter(dataset)
    take(iterator, 3)
    state = iterator.get_state()
    expected = take(iterator, 5)
    resumed = iter(dataset)
    resumed.set_state(state)
    for want, got in zip(expected, take(resumed, 5)):
        np.testing.assert_array_equal(want["y"], got["y"])


def test_padded_batches_mask_the_padding():
    batches = list(padded_batches(arrays(), batch_size=4))
    assert len(batches) == 3
    assert batches[-1]["mask"].tolist() == [True, True, False, False]
    assert np.concatenate([b["y"][b["mask"]] for b in batches]).tolist() == list(range(NUM_EXAMPLES))
