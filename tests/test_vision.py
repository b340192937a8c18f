"""ResNet and VGG: shapes and published parameter counts, batch norm in training, eval and sharding,
on-device augmentation, flip test-time augmentation, Fashion-MNIST's data path, and bad settings."""

import gzip
import os
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai.config import load_config
from jaxai.errors import ConfigError
from jaxai.models.resnet import PRESETS, ResNet
from jaxai.models.vgg import VGG, adaptive_average_pool
from jaxai.tasks import classification
from jaxai.train.build import build_run, mesh_context, restore_latest
from jaxai.train.loop import train
from run_helpers import interrupted_copy, read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESNET_SMOKE = os.path.join(ROOT, "experiments", "fashion_mnist_resnet.py:smoke")


def abstract_init(model, shape):
    """(params, batch_stats, logits) shapes, without computing anything."""
    def init():
        variables = model.init(jax.random.key(0), jnp.zeros(shape), train=False)
        return variables, model.apply(variables, jnp.zeros(shape), train=False)

    variables, logits = jax.eval_shape(init)
    return variables["params"], variables.get("batch_stats", {}), logits


def count(tree) -> int:
    return int(sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(tree)))


@pytest.mark.parametrize("depth", sorted(PRESETS))
@pytest.mark.parametrize("size", [32, 64])
def test_every_resnet_depth_gives_logits_on_small_and_larger_images(depth, size):
    for stem in ("cifar", "imagenet", "patchify"):
        _, _, logits = abstract_init(ResNet(num_classes=7, depth=depth, stem=stem), (2, size, size, 3))
        assert logits.shape == (2, 7)


@pytest.mark.parametrize("depth", [11, 16])
@pytest.mark.parametrize("size", [32, 64])
def test_vgg_gives_logits_with_either_head(depth, size):
    for head in ("small", "imagenet"):
        _, _, logits = abstract_init(VGG(num_classes=7, depth=depth, head=head), (2, size, size, 3))
        assert logits.shape == (2, 7)


def test_parameter_counts_equal_the_published_ones():
    imagenet = (1, 224, 224, 3)
    assert count(abstract_init(ResNet(num_classes=1000, depth=18, stem="imagenet"), imagenet)[0]) == 11_689_512
    assert count(abstract_init(ResNet(num_classes=1000, depth=50, stem="imagenet"), imagenet)[0]) == 25_557_032
    vgg16 = VGG(num_classes=1000, depth=16, batch_norm=False, head="imagenet")
    assert count(abstract_init(vgg16, imagenet)[0]) == 138_357_544


def test_adaptive_pooling_averages_cells_and_repeats_small_maps():
    x = jnp.arange(2 * 14 * 14 * 3, dtype=jnp.float32).reshape(2, 14, 14, 3)
    np.testing.assert_allclose(adaptive_average_pool(x, 7), x.reshape(2, 7, 2, 7, 2, 3).mean(axis=(2, 4)))
    one = jnp.ones((1, 1, 1, 4)) * 3.0
    np.testing.assert_array_equal(adaptive_average_pool(one, 7), jnp.full((1, 7, 7, 4), 3.0))


def test_zero_initialised_last_bn_makes_every_block_start_as_the_identity():
    model = ResNet(num_classes=3, stage_sizes=(2,), width=8)  # One stage, no projection: blocks are x -> relu(x + 0).
    images = jax.random.uniform(jax.random.key(1), (4, 8, 8, 3))
    variables = model.init(jax.random.key(0), images, train=False)
    block_scales = [v for path, v in jax.tree_util.tree_leaves_with_path(variables["params"])
                    if "BasicBlock" in jax.tree_util.keystr(path) and "scale" in jax.tree_util.keystr(path)]
    assert len(block_scales) == 4 and sum(float(jnp.abs(s).sum()) for s in block_scales[1::2]) == 0.0


def test_batch_norm_statistics_update_in_training_and_are_used_in_eval():
    model = ResNet(num_classes=5, stage_sizes=(1, 1), width=4)
    images = jax.random.normal(jax.random.key(1), (8, 16, 16, 3)) * 3 + 2
    variables = model.init(jax.random.key(0), images, train=False)
    _, updated = model.apply(variables, images, train=True, mutable=["batch_stats"])
    before, after = jax.tree.leaves(variables["batch_stats"]), jax.tree.leaves(updated["batch_stats"])
    assert any(not np.allclose(a, b) for a, b in zip(before, after))
    eval_before = model.apply(variables, images, train=False)
    eval_after = model.apply({**variables, **updated}, images, train=False)
    assert not np.allclose(eval_before, eval_after)  # Eval reads the running statistics.
    # Eval is per example: one image alone gets the logits it gets in a batch.
    np.testing.assert_allclose(model.apply(variables, images[:1], train=False), eval_before[:1], rtol=1e-5, atol=1e-5)


def test_one_and_eight_devices_give_the_same_batch_statistics(tmp_path):
    states = {}
    for devices in (1, 8):
        config = load_config(RESNET_SMOKE, ["train.progress_bar=False", "train.num_steps=3", f"mesh.num_devices={devices}",
                                            "optimizer.name='momentum'", "optimizer.learning_rate=0.05"])
        train(config, str(tmp_path / str(devices)))
        states[devices] = jax.device_get(restore_latest(build_run(config), str(tmp_path / str(devices)))[0])
    one, eight = states[1].model_state["batch_stats"], states[8].model_state["batch_stats"]
    assert jax.tree.leaves(one)
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(eight), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_resume_restores_batch_statistics_exactly(tmp_path):
    config = load_config(RESNET_SMOKE, ["train.progress_bar=False", "train.num_steps=20", "train.log_every=1",
                                        "train.checkpoint_every=10", "train.max_to_keep=5"])
    whole, resumed = str(tmp_path / "whole"), str(tmp_path / "resumed")
    train(config, whole)
    interrupted_copy(whole, resumed, checkpoint_step=10)
    train(config, resumed)
    assert [r["loss"] for r in read_metrics(whole, "train")][10:] == [r["loss"] for r in read_metrics(resumed, "train")][10:]
    a = jax.device_get(restore_latest(build_run(config), whole)[0])
    b = jax.device_get(restore_latest(build_run(config), resumed)[0])
    for x, y in zip(jax.tree.leaves(a.model_state), jax.tree.leaves(b.model_state), strict=True):
        np.testing.assert_array_equal(x, y)
    evals = read_metrics(whole, "eval")
    assert {"top5_accuracy", "per_class_accuracy", "confusion_matrix"} <= set(evals[-1])
    assert os.path.exists(os.path.join(whole, "images", "eval_confusion_matrix_00000020.png"))


def test_augmentation_is_deterministic_for_a_key_and_differs_across_keys():
    images = jax.random.uniform(jax.random.key(0), (16, 12, 12, 1))
    augment = lambda key: classification.augment_images(key, images, shift=2, flip=True, cutout=4)  # noqa: E731
    np.testing.assert_array_equal(augment(jax.random.key(1)), augment(jax.random.key(1)))
    assert not np.array_equal(augment(jax.random.key(1)), augment(jax.random.key(2)))
    flipped = classification.augment_images(jax.random.key(3), images, shift=0, flip=True, cutout=0)
    for original, out in zip(np.asarray(images), np.asarray(flipped)):
        assert np.array_equal(out, original) or np.array_equal(out, original[:, ::-1])
    holes = classification.random_cutout(jax.random.key(4), jnp.ones((32, 12, 12, 1)), 4)
    zeros = (np.asarray(holes) == 0).reshape(32, -1).sum(axis=1)
    assert zeros.max() == 16 and zeros.min() >= 4  # A full 4x4 square, clipped at the border to at least 2x2.


def test_training_augments_each_step_afresh_and_each_step_the_same_way_again():
    """The loop's key for (seed, step) draws the augmentation: same step, same update; next step, another."""

    def params_after_one_step(step: int, *overrides: str):
        config = load_config(RESNET_SMOKE, ["optimizer.schedule.name=constant", "optimizer.schedule.warmup_steps=0",
                                            "mesh.num_devices=1", *overrides])
        run = build_run(config)
        batch = run.put_batch(next(iter(run.dataset.train)))
        with mesh_context(run.mesh):
            state = run.init(jax.random.key(0), batch)
            state, _ = run.train_step(state.replace(step=jnp.asarray(step, state.step.dtype)), batch)
        return np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(state.params)])

    assert np.array_equal(params_after_one_step(0), params_after_one_step(0))
    assert not np.array_equal(params_after_one_step(0), params_after_one_step(1))
    # Without augmentation the step number changes nothing here (constant learning rate, no dropout).
    plain = ("task.augment_shift=0", "task.augment_flip=False", "task.cutout=0")
    assert np.array_equal(params_after_one_step(0, *plain), params_after_one_step(1, *plain))


def test_flip_test_time_augmentation_averages_the_logits_of_both_views():
    config = load_config(RESNET_SMOKE, ["task.eval_flip=True"])
    run = build_run(config)
    batch = run.put_batch(next(run.dataset.eval_batches(config.data.eval_split, 1)))
    with mesh_context(run.mesh):
        state = run.init(jax.random.key(0), batch)
    task = classification.build(config, run.dataset.info, 10)
    model_apply = classification.models.build_model(config.model, num_classes=10).apply
    images = classification.preprocess(batch["image"])
    variables = {"params": state.params, **state.model_state}
    both = (model_apply(variables, images, train=False) + model_apply(variables, images[:, :, ::-1], train=False)) / 2
    expected = jnp.sum(classification.cross_entropy(both, batch["label"], 10, 0.0) * batch["mask"])
    outputs = jax.jit(task.eval_step)(state, batch, jax.random.key(0))
    np.testing.assert_allclose(outputs["loss_sum"], expected, rtol=1e-5)


def test_bad_vision_settings_are_config_errors():
    images = jnp.zeros((1, 32, 32, 3))
    for model, message in ((ResNet(depth=19), "depth=19 has no preset"), (ResNet(stem="big"), "model.stem"),
                           (ResNet(block="dense", stage_sizes=(1,)), "model.block"), (VGG(depth=13), "not a VGG")):
        with pytest.raises(ConfigError, match=message):
            model.init(jax.random.key(0), images, train=False)


def write_idx(directory, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    with gzip.open(directory / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">4I", 2051, len(images), 28, 28) + images.tobytes())
    with gzip.open(directory / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">2I", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def test_fashion_mnist_is_prepared_offline_from_its_idx_files(tmp_path):
    from jaxai.data.mnist import load_mnist

    raw = tmp_path / "raw" / "fashion_mnist"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for prefix, size in (("train", 30), ("t10k", 12)):
        images, labels = rng.integers(0, 256, (size, 28, 28), dtype=np.uint8), rng.integers(0, 10, size)
        write_idx(raw, prefix, images, labels)
        written[prefix] = (images, labels)
    test = load_mnist("test", data_dir=str(tmp_path / "raw"), tfds_dir=str(tmp_path / "tfds"),
                      verify_checksums=False, name="fashion_mnist")
    assert test["image"].shape == (12, 28, 28, 1)
    assert sorted(map(bytes, test["image"][..., 0])) == sorted(map(bytes, written["t10k"][0]))
    assert os.path.isdir(tmp_path / "tfds" / "fashion_mnist")
