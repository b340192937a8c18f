"""Sample-quality metrics (MNIST-feature FID, class balance, Stacked MNIST modes) and their classifier."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai.config import base_config
from jaxai.data import build_dataset
from jaxai.data.stacked_mnist import mode_digits, stack_digits
from jaxai.data.synthetic import synthetic_images
from jaxai.tasks import sample_quality as sq
from run_helpers import read_metrics


def gaussian_sums(prefix, mean, covariance, count):
    """The sums moment_outputs would give for `count` samples with this mean and unbiased covariance."""
    mean, covariance = np.asarray(mean, np.float64), np.asarray(covariance, np.float64)
    return {
        f"{prefix}_count": np.float64(count),
        f"{prefix}_sum": count * mean,
        f"{prefix}_outer": (count - 1) * covariance + count * np.outer(mean, mean),
    }


def test_frechet_distance_of_identical_sums_is_zero():
    features = np.random.default_rng(0).normal(size=(500, 16)).astype(np.float32) ** 2
    mask = np.ones(500, np.float32)
    sums = {**jax.device_get(sq.moment_outputs("a", features, mask)), **jax.device_get(sq.moment_outputs("b", features, mask))}
    assert sq.frechet_distance_from_sums(sums, "a", "b") == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_matches_the_closed_form():
    # Diagonal covariances: ||mu_a - mu_b||^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2 = (1 + 4) + (1 + 1) = 7.
    sums = {**gaussian_sums("a", [0, 0], np.diag([1.0, 4.0]), 100), **gaussian_sums("b", [1, 2], np.diag([4.0, 9.0]), 50)}
    assert sq.frechet_distance_from_sums(sums, "a", "b") == pytest.approx(7.0, rel=1e-10)
    assert sq.frechet_distance_from_sums(sums, "b", "a") == pytest.approx(7.0, rel=1e-10)
    # Full covariances that do not commute: against scipy's sqrtm of the product.
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    cov_a, cov_b = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mean_a, mean_b = rng.normal(size=6), rng.normal(size=6)
    expected = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * scipy_linalg.sqrtm(cov_a @ cov_b).real)
    sums = {**gaussian_sums("a", mean_a, cov_a, 1000), **gaussian_sums("b", mean_b, cov_b, 1000)}
    assert sq.frechet_distance_from_sums(sums, "a", "b") == pytest.approx(expected, rel=1e-8)


def test_gaussian_from_sums_is_the_sample_mean_and_unbiased_covariance():
    features = np.random.default_rng(2).normal(3.0, 2.0, size=(300, 5))
    sums = jax.device_get(sq.moment_outputs("x", jnp.asarray(features, jnp.float32), jnp.ones(300)))
    mean, covariance = sq.gaussian_from_sums(sums, "x")
    np.testing.assert_allclose(mean, features.mean(0), rtol=1e-5)
    np.testing.assert_allclose(covariance, np.cov(features, rowvar=False), rtol=1e-4, atol=1e-4)


def test_moment_sums_over_two_batches_equal_those_over_one():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(10, 4)).astype(np.float32)
    whole = sq.moment_outputs("f", features, np.ones(10))
    # The second batch is padded with garbage rows that the mask drops.
    padded = np.concatenate([features[6:], rng.normal(100, 1, size=(2, 4)).astype(np.float32)])
    first = sq.moment_outputs("f", features[:6], np.ones(6))
    second = sq.moment_outputs("f", padded, np.array([1, 1, 1, 1, 0, 0]))
    assert set(whole) == {"f_count", "f_sum", "f_outer"}
    assert whole["f_sum"].shape == (4,) and whole["f_outer"].shape == (4, 4)
    for name in whole:
        np.testing.assert_allclose(np.asarray(first[name]) + np.asarray(second[name]), whole[name], rtol=1e-5, atol=1e-5)


def test_class_outputs_and_metrics():
    probs = np.full((4, 10), 0.01, np.float32)
    probs[0, 3] = 0.91  # confident 3
    probs[1, 3] = 0.5  # unsure 3
    probs[2, 7] = 0.95  # confident 7
    probs[3, 1] = 0.99  # a padding row
    outputs = jax.device_get(sq.class_outputs(jnp.asarray(probs), jnp.array([1, 1, 1, 0])))
    np.testing.assert_array_equal(outputs["class_histogram"], np.eye(10)[3] * 2 + np.eye(10)[7])
    assert outputs["confident_count"] == 2 and outputs["count"] == 3

    histogram = np.array([50, 10, 10, 10, 10, 10, 0, 0, 0, 0], np.float64)  # 100 samples.
    metrics = sq.class_metrics({"class_histogram": histogram, "confident_count": 80.0, "count": 100.0})
    assert metrics["confident_fraction"] == pytest.approx(0.8)
    assert metrics["class_fractions"] == pytest.approx([0.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0, 0, 0, 0])
    assert metrics["max_class_deviation"] == pytest.approx(0.4)


def one_hot_channels(modes):
    """Per-channel probabilities [B, 3, 10] whose argmax classes spell each mode id."""
    return jax.nn.one_hot(mode_digits(np.asarray(modes)), 10)


def test_mode_counting_uniform_and_collapsed():
    modes = np.arange(1000)
    uniform = jax.device_get(sq.mode_outputs(one_hot_channels(modes), np.ones(1000)))
    np.testing.assert_array_equal(uniform["mode_histogram"], np.ones(1000))
    metrics = sq.mode_metrics(uniform)
    assert metrics["modes_covered"] == 1000 and metrics["mode_kl"] == pytest.approx(0.0, abs=1e-12)

    collapsed = jax.device_get(sq.mode_outputs(one_hot_channels(np.full(64, 472)), np.ones(64)))
    assert collapsed["mode_histogram"][472] == 64
    metrics = sq.mode_metrics(collapsed)
    assert metrics["modes_covered"] == 1 and metrics["mode_kl"] == pytest.approx(np.log(1000), rel=1e-12)

    # Summed over two batches, padding rows dropped: two modes, half each -> KL = log(1000 / 2).
    first = sq.mode_outputs(one_hot_channels([5, 5, 999]), np.array([1, 1, 0]))
    second = sq.mode_outputs(one_hot_channels([7, 7]), np.ones(2))
    summed = {"mode_histogram": np.asarray(first["mode_histogram"]) + np.asarray(second["mode_histogram"])}
    metrics = sq.mode_metrics(summed)
    assert metrics["modes_covered"] == 2 and metrics["mode_kl"] == pytest.approx(np.log(500), rel=1e-12)


def test_stacked_digits_are_three_source_digits_with_the_mode_label():
    digits = synthetic_images("test")
    stacked = stack_digits(digits, 300, seed=4, split="test")
    assert stacked["image"].shape == (300, 28, 28, 3) and stacked["image"].dtype == np.uint8
    np.testing.assert_array_equal(stacked["label"], stacked["digits"] @ np.array([100, 10, 1]))
    np.testing.assert_array_equal(mode_digits(stacked["label"]), stacked["digits"])
    label_of_image = {image.tobytes(): label for image, label in zip(digits["image"][..., 0], digits["label"])}
    for image, digit_triple in zip(stacked["image"], stacked["digits"]):
        for channel in range(3):
            assert label_of_image[np.ascontiguousarray(image[..., channel]).tobytes()] == digit_triple[channel]
    again = stack_digits(digits, 300, seed=4, split="test")
    np.testing.assert_array_equal(again["image"], stacked["image"])
    assert not np.array_equal(stack_digits(digits, 300, seed=5, split="test")["label"], stacked["label"])


def test_synthetic_stacked_mnist_dataset():
    config = base_config("classification", "cnn").data
    config.name = "synthetic_stacked_mnist"
    config.batch_size = 32
    config.eval_batch_size = 200
    dataset = build_dataset(config, seed=0)
    assert dataset.info["num_classes"] == 1000 and dataset.info["image_shape"] == (28, 28, 3)
    assert dataset.info["num_train_examples"] == 2048
    batch = next(iter(dataset.train))
    assert batch["image"].shape == (32, 28, 28, 3) and batch["image"].dtype == np.uint8
    assert batch["label"].min() >= 0 and batch["label"].max() < 1000
    eval_batches = list(dataset.eval_batches("test", 0))
    assert sum(int(b["mask"].sum()) for b in eval_batches) == 512
    # Labels are the digits of the channels: each channel is a synthetic image of its digit.
    source = synthetic_images("test")
    label_of_image = {image.tobytes(): label for image, label in zip(source["image"][..., 0], source["label"])}
    first = eval_batches[0]
    for image, label in zip(first["image"][:50], first["label"][:50]):
        found = [label_of_image[np.ascontiguousarray(image[..., c]).tobytes()] for c in range(3)]
        assert 100 * found[0] + 10 * found[1] + found[2] == label


def test_default_classifier_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXAI_CACHE_DIR", str(tmp_path))
    assert sq.default_classifier_dir() == os.path.join(str(tmp_path), "mnist_classifier")
    monkeypatch.delenv("JAXAI_CACHE_DIR")
    assert sq.default_classifier_dir() == os.path.expanduser("~/.cache/jaxai/mnist_classifier")


def test_classifier_config_is_the_mnist_cnn_recipe():
    config = sq.classifier_config(data_dir="/raw", tfds_dir="/prepared")
    assert (config.task.name, config.model.name, config.data.name) == ("classification", "cnn", "mnist")
    assert (config.data.data_dir, config.data.tfds_dir) == ("/raw", "/prepared")
    assert config.train.num_epochs == 2 and config.optimizer.learning_rate == 4e-3
    assert config.task.label_smoothing == 0.0  # Else confidences cap near 0.91 and confident_fraction means little.


def test_bad_override_fails_before_training(tmp_path):
    with pytest.raises(Exception, match="Unknown config key"):
        sq.ensure_quality_classifier(str(tmp_path / "clf"), config_overrides=["train.num_stepz=3"])
    assert not (tmp_path / "clf").exists()


TINY = [
    "data.name=synthetic_mnist", "data.eval_batch_size=256", "train.num_steps=20",
    "optimizer.schedule.warmup_steps=2", "model.features=(8,16)", "model.pool_after=(True,True)",
    "model.dense_features=(32,)",
]


def test_classifier_trains_once_and_restores(tmp_path, caplog):
    workdir = str(tmp_path / "mnist_classifier")
    assert sq.ensure_quality_classifier(workdir, config_overrides=TINY) == workdir
    assert "Training the MNIST sample-quality classifier" in caplog.text
    caplog.clear()
    checkpoints = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
    assert "20" in checkpoints
    log = os.path.join(workdir, "quality-classifier-train.log")
    stamp = os.stat(log).st_mtime_ns

    assert sq.ensure_quality_classifier(workdir, config_overrides=TINY) == workdir  # No retraining.
    assert "Training" not in caplog.text
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == checkpoints
    assert os.stat(log).st_mtime_ns == stamp

    classifier = sq.load_quality_classifier(workdir)
    assert classifier.path == os.path.join(workdir, "checkpoints", "20")
    test_digits = synthetic_images("test")
    probs, features = jax.jit(classifier.features)(test_digits["image"].astype(np.float32) / 255)
    assert probs.shape == (512, 10) and features.shape == (512, 32)
    np.testing.assert_allclose(np.asarray(probs).sum(-1), 1.0, rtol=1e-5)
    assert float(features.min()) >= 0  # After the ReLU.
    # The restored weights are the trained ones: the same test accuracy as the run's last evaluation.
    accuracy = float(np.mean(np.argmax(probs, -1) == test_digits["label"]))
    assert accuracy == pytest.approx(read_metrics(workdir, "eval")[-1]["accuracy"], abs=1e-6)
    stacked = stack_digits(test_digits, 8, seed=0, split="test")["image"].astype(np.float32) / 255
    assert sq.image_features(classifier, jnp.asarray(stacked)).shape == (8, 3 * 32)

    # The floor helper: two sets of synthetic digits are close, a set and itself identical.
    train, test = synthetic_images("train")["image"], synthetic_images("test")["image"]
    assert sq.real_data_fid(classifier, test, test, batch=200) == pytest.approx(0.0, abs=1e-6)
    assert 0 <= sq.real_data_fid(classifier, train.astype(np.float32) / 255, test.astype(np.float32) / 255, batch=200) < 1e6
