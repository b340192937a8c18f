"""The training loop: learning, determinism, exact resume, sharding parity, NaN guard, workdir safety."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai import tasks
from jaxai.checkpoint import Checkpointer
from jaxai.config import load_config
from jaxai.errors import MeshError, NonFiniteLossError, WorkdirError
from jaxai.train.build import build_run, mesh_context, restore_latest, restore_or_init
from jaxai.train.evaluation import evaluate
from jaxai.train.loop import train
from run_helpers import interrupted_copy, read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(ROOT, "experiments", "mnist_cnn.py:smoke")


def smoke_config(*overrides: str):
    return load_config(SMOKE, ["train.progress_bar=False", *overrides])


def final_state(config, workdir: str):
    return jax.device_get(restore_latest(build_run(config), workdir)[0])


def assert_trees_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_train_step_lowers_the_loss_on_a_fixed_batch():
    run = build_run(smoke_config("optimizer.learning_rate=0.01", "optimizer.schedule.name=constant", "optimizer.schedule.warmup_steps=0"))
    batch = run.put_batch(next(iter(run.dataset.train)))
    with mesh_context(run.mesh):
        state = run.init(jax.random.key(0), batch)
        losses = []
        for _ in range(40):
            state, metrics = run.train_step(state, batch)
            losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.5 * losses[0], losses


def test_same_seed_gives_bitwise_identical_runs(tmp_path):
    config = smoke_config("train.num_steps=10", "train.log_every=1")
    train(config, str(tmp_path / "a"))
    train(config, str(tmp_path / "b"))
    losses_a = [record["loss"] for record in read_metrics(str(tmp_path / "a"), "train")]
    losses_b = [record["loss"] for record in read_metrics(str(tmp_path / "b"), "train")]
    assert losses_a == losses_b and len(losses_a) == 10
    for record in read_metrics(str(tmp_path / "a"), "train"):  # Throughput and data time per window.
        assert 0 < record["data_ms"] < record["step_ms"] and record["steps_per_s"] > 0
    assert_trees_equal(final_state(config, str(tmp_path / "a")), final_state(config, str(tmp_path / "b")))


def test_resume_is_exact(tmp_path):
    """20 steps uninterrupted == 10 steps, stop, resume from the checkpoint to 20."""
    config = smoke_config("train.num_steps=20", "train.log_every=1", "train.checkpoint_every=10", "train.max_to_keep=5")
    whole, resumed = str(tmp_path / "whole"), str(tmp_path / "resumed")
    train(config, whole)
    interrupted_copy(whole, resumed, checkpoint_step=10)
    train(config, resumed)
    resume_events = [record for record in read_metrics(resumed, "run") if record.get("event") == "resume"]
    assert resume_events and resume_events[0]["step"] == 10
    # Same batches in the same order: identical per-step losses after the resume point.
    whole_losses = {r["step"]: r["loss"] for r in read_metrics(whole, "train")}
    resumed_losses = {r["step"]: r["loss"] for r in read_metrics(resumed, "train")}
    assert resumed_losses == whole_losses
    # Identical parameters and optimizer state.
    assert_trees_equal(final_state(config, whole), final_state(config, resumed))


def test_data_iterator_position_is_restored(tmp_path):
    run = build_run(smoke_config())
    iterator = iter(run.dataset.train)
    for _ in range(3):
        next(iterator)
    checkpointer = Checkpointer(str(tmp_path / "ckpt"), async_save=False)
    with mesh_context(run.mesh):
        state, _ = restore_or_init(run, checkpointer, None)
    checkpointer.save(3, state, iterator)
    checkpointer.wait()
    expected = [next(iterator)["label"] for _ in range(2)]
    fresh = iter(run.dataset.train)
    checkpointer.restore(3, run.abstract_state, fresh)
    checkpointer.close()
    for labels in expected:
        np.testing.assert_array_equal(next(fresh)["label"], labels)


def test_one_and_eight_devices_agree(tmp_path):
    # SGD with momentum: Adam would turn float-rounding noise in near-zero gradients into lr-sized steps.
    results = {}
    for devices in (1, 8):
        config = smoke_config(
            "train.num_steps=5", "train.log_every=1", f"mesh.num_devices={devices}",
            "optimizer.name='momentum'", "optimizer.learning_rate=0.05",
        )
        train(config, str(tmp_path / str(devices)))
        results[devices] = (read_metrics(str(tmp_path / str(devices)), "train"), final_state(config, str(tmp_path / str(devices))))
    np.testing.assert_allclose([r["loss"] for r in results[1][0]], [r["loss"] for r in results[8][0]], atol=1e-5)
    for one, eight in zip(jax.tree.leaves(results[1][1].params), jax.tree.leaves(results[8][1].params), strict=True):
        np.testing.assert_allclose(one, eight, atol=1e-5)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    classification = tasks.task_module("classification")
    original_build = classification.build

    def build_with_nan_after_step_7(config, info, total_steps):
        task = original_build(config, info, total_steps)

        def train_step(state, batch, rng):
            new_state, metrics = task.train_step(state, batch, rng)
            metrics["loss"] = jnp.where(state.step >= 7, jnp.nan, metrics["loss"])
            return new_state, metrics

        return task._replace(train_step=train_step)

    monkeypatch.setattr(classification, "build", build_with_nan_after_step_7)
    config = smoke_config("train.num_steps=20", "train.checkpoint_every=5", "train.log_every=5")
    with pytest.raises(NonFiniteLossError, match=r"non-finite between steps 5 and 10.*last good checkpoint \(step 5\)"):
        train(config, str(tmp_path))
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["5"]


def test_a_workdir_of_another_config_is_refused_unless_overwritten(tmp_path):
    train(smoke_config("train.num_steps=2"), str(tmp_path))
    other = smoke_config("train.num_steps=2", "optimizer.learning_rate=0.01")
    with pytest.raises(WorkdirError, match=r"(?s)different config:\n  optimizer.learning_rate: 0.004 -> 0.01.*--overwrite"):
        train(other, str(tmp_path))
    train(other, str(tmp_path), overwrite=True)
    assert [r["event"] for r in read_metrics(str(tmp_path), "run")] == ["start", "end"]


def test_a_non_run_directory_is_refused(tmp_path):
    (tmp_path / "precious.txt").write_text("not a run")
    with pytest.raises(WorkdirError, match="not empty and holds no jaxai run"):
        train(smoke_config("train.num_steps=2"), str(tmp_path))


def test_early_stopping_ends_the_run(tmp_path):
    config = smoke_config(
        "train.num_steps=20", "train.eval_every=2", "optimizer.name='sgd'", "optimizer.learning_rate=1e-9",
        "train.early_stopping_metric=accuracy", "train.early_stopping_patience=2",
    )
    train(config, str(tmp_path))
    assert [r["step"] for r in read_metrics(str(tmp_path), "eval")] == [2, 4, 6]


def test_eval_restores_the_checkpoint_and_writes_test_metrics(tmp_path):
    config = smoke_config("train.num_steps=4")
    last_eval = train(config, str(tmp_path))
    metrics = evaluate(config, str(tmp_path))
    assert metrics["accuracy"] == pytest.approx(last_eval["accuracy"])
    test_records = read_metrics(str(tmp_path), "test")
    assert test_records[-1]["step"] == 4
    assert np.sum(test_records[-1]["confusion_matrix"]) == test_records[-1]["num_examples"] == 512
    assert len(test_records[-1]["f1"]) == 10


def test_a_batch_that_does_not_split_over_devices_is_refused():
    with pytest.raises(MeshError, match="data.batch_size=60 does not split over 8 data-parallel devices"):
        build_run(smoke_config("data.batch_size=60"))
