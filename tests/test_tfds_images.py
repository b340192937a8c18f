"""CIFAR-10 and ImageNet through TFDS: offline preparation from archives in the official layouts, reading
without TensorFlow, resizing, the registry entries and the error messages.

Neither dataset is on these machines, so every test writes tiny archives in the original formats: CIFAR-10's
`cifar-10-binary.tar.gz` (prepared with `verify_checksums=False`, since TFDS checks that archive's checksum),
and ImageNet's two tars of JPEGs (TFDS checks no checksums of those). TFDS assigns validation labels by
zipping the sorted file names of the val tar with its bundled validation_labels.txt, so the tiny val JPEGs
carry the real first file names and get the real first labels. Nothing here touches the network.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import textwrap

import numpy as np
import pytest
from PIL import Image

from jaxai.data import mnist, tfds_images
from jaxai.data.tfds_images import CIFAR10_ARCHIVE, IMAGENET_ARCHIVES, center_crop, load_cifar10, load_imagenet
from jaxai.errors import DatasetError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PER_BATCH, NUM_TEST = 3, 4  # CIFAR-10 records per training batch file (five files) and in test_batch.bin.
SYNSETS = ("n01440764", "n01443537")  # ImageNet's first two classes (ids 0 and 1).
VAL_SIZES = ((48, 32), (32, 64), (40, 40))  # (width, height) of the val JPEGs: wide, tall, square.


def add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def cifar_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random [n,32,32,3] images whose red pixel (0, 0) is the example's index (TFDS reorders), labels 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n)
    return images, rng.integers(0, 10, n).astype(np.uint8)


def write_cifar(directory) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """cifar-10-binary.tar.gz as the original: cifar-10-batches-bin/ with five data batches, the test batch and
    batches.meta.txt; each record is a label byte and the 3072 pixel bytes, channel-major (R plane, G, B)."""
    written = {"train": cifar_split(5 * PER_BATCH, 0), "test": cifar_split(NUM_TEST, 1)}

    def records(images: np.ndarray, labels: np.ndarray) -> bytes:
        planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
        return np.concatenate([labels[:, None], planes], axis=1).tobytes()

    os.makedirs(directory, exist_ok=True)
    with tarfile.open(os.path.join(directory, CIFAR10_ARCHIVE), "w:gz") as tar:
        images, labels = written["train"]
        for b in range(5):
            part = slice(b * PER_BATCH, (b + 1) * PER_BATCH)
            add_file(tar, f"cifar-10-batches-bin/data_batch_{b + 1}.bin", records(images[part], labels[part]))
        add_file(tar, "cifar-10-batches-bin/test_batch.bin", records(*written["test"]))
        add_file(tar, "cifar-10-batches-bin/batches.meta.txt", ("\n".join(CIFAR_NAMES) + "\n\n").encode())
    return written


def assert_cifar_matches(loaded: dict[str, np.ndarray], images: np.ndarray, labels: np.ndarray) -> None:
    assert loaded["image"].dtype == np.uint8 and loaded["image"].shape == (len(images), 32, 32, 3)
    assert loaded["label"].dtype == np.int32 and loaded["label"].shape == (len(labels),)
    index = loaded["image"][:, 0, 0, 0].astype(np.int64)
    assert sorted(index) == list(range(len(images)))  # Each written example exactly once.
    np.testing.assert_array_equal(loaded["image"], images[index])  # Exact: TFDS stores PNGs.
    np.testing.assert_array_equal(loaded["label"], labels[index])


def jpeg(color: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG", quality=95)
    return out.getvalue()


def write_imagenet(directory) -> dict[str, dict[tuple[int, int, int], int]]:
    """ILSVRC2012_img_train.tar (one tar per synset of <synset>_<n>.JPEG) and ILSVRC2012_img_val.tar (flat
    ILSVRC2012_val_<8 digits>.JPEG), solid-colour JPEGs; returns split -> {colour: expected label id}."""
    import tensorflow_datasets as tfds

    label_dir = tfds.core.tfds_path("datasets/imagenet2012")
    class_ids = {name: i for i, name in enumerate((label_dir / "labels.txt").read_text().split())}
    val_labels = (label_dir / "validation_labels.txt").read_text().split()
    expected: dict[str, dict[tuple[int, int, int], int]] = {"train": {}, "validation": {}}
    os.makedirs(directory, exist_ok=True)
    with tarfile.open(os.path.join(directory, IMAGENET_ARCHIVES[0]), "w") as train:
        for s, synset in enumerate(SYNSETS):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as images:
                for n in range(2):
                    color = (200, 40 + 100 * s, 40 + 150 * n)
                    add_file(images, f"{synset}_{n + 1}.JPEG", jpeg(color, (36 + 8 * n, 28)))
                    expected["train"][color] = class_ids[synset]
            add_file(train, f"{synset}.tar", inner.getvalue())
    with tarfile.open(os.path.join(directory, IMAGENET_ARCHIVES[1]), "w") as val:
        for i, size in enumerate(VAL_SIZES):
            color = (30 + 80 * i, 220 - 80 * i, 120)
            add_file(val, f"ILSVRC2012_val_{i + 1:08d}.JPEG", jpeg(color, size))
            expected["validation"][color] = class_ids[val_labels[i]]
    return expected


def assert_imagenet_matches(loaded: dict[str, np.ndarray], expected: dict[tuple[int, int, int], int], size: int):
    assert loaded["image"].dtype == np.uint8 and loaded["image"].shape == (len(expected), size, size, 3)
    assert loaded["label"].dtype == np.int32
    found = {}
    for image, label in zip(loaded["image"], loaded["label"]):
        color = min(expected, key=lambda c: np.abs(image.astype(int) - c).max())
        assert np.abs(image.astype(int) - color).max() <= 4  # A solid colour survives JPEG, resizing, cropping.
        found[color] = int(label)
    assert found == expected


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    monkeypatch.delenv(mnist.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(mnist.TFDS_DIR_ENV, raising=False)


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """(tfds_dir, written arrays): a tiny archive in data_dir/cifar10/, prepared once for the module."""
    data_dir = tmp_path_factory.mktemp("raw")
    written = write_cifar(data_dir / "cifar10")  # The cifar10/ subfolder is found too.
    tfds_dir = str(tmp_path_factory.mktemp("tfds"))
    assert tfds_images.prepare("cifar10", data_dir=str(data_dir), tfds_dir=tfds_dir, verify_checksums=False) == tfds_dir
    return tfds_dir, written


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    """(tfds_dir, expected labels by colour): tiny tars directly in data_dir, prepared once for the module."""
    data_dir = tmp_path_factory.mktemp("raw")
    expected = write_imagenet(data_dir)
    tfds_dir = str(tmp_path_factory.mktemp("tfds"))
    assert tfds_images.prepare("imagenet2012", data_dir=str(data_dir), tfds_dir=tfds_dir) == tfds_dir
    return tfds_dir, expected


def test_cifar10_offline_preparation_round_trips_exactly(cifar):
    tfds_dir, written = cifar
    train = load_cifar10("train", tfds_dir=tfds_dir)
    assert_cifar_matches(train, *written["train"])
    assert_cifar_matches(load_cifar10("test", tfds_dir=tfds_dir), *written["test"])
    head = load_cifar10("train[:5]", tfds_dir=tfds_dir)
    np.testing.assert_array_equal(head["image"], train["image"][:5])
    np.testing.assert_array_equal(head["label"], train["label"][:5])


def test_cifar10_missing_archive_names_it_and_both_remedies(tmp_path):
    (tmp_path / "cifar10").mkdir()
    with pytest.raises(DatasetError) as error:
        load_cifar10("train", data_dir=str(tmp_path), tfds_dir=str(tmp_path / "tfds"))
    message = str(error.value)
    assert f"lacks {CIFAR10_ARCHIVE}" in message and str(tmp_path) in message
    assert "connect to the network" in message and "--config.data.data_dir" in message and "cifar10/" in message
    assert "\n" not in message


def test_cifar10_offline_without_data_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_images, "_network_reachable", lambda host: False)
    with pytest.raises(DatasetError, match=r"www\.cs\.toronto\.edu cannot be reached.*cifar-10-binary\.tar\.gz"):
        load_cifar10("train", tfds_dir=str(tmp_path))


def test_cifar10_archive_that_is_not_the_original_is_refused(tmp_path):
    write_cifar(tmp_path / "raw")
    with pytest.raises(DatasetError, match="does not match the original's checksum") as error:
        tfds_images.prepare("cifar10", data_dir=str(tmp_path / "raw"), tfds_dir=str(tmp_path / "tfds"))
    assert str(tmp_path / "raw") in str(error.value) and CIFAR10_ARCHIVE in str(error.value)


def test_imagenet_offline_preparation_resizes_and_labels(imagenet):
    tfds_dir, expected = imagenet
    for size in (16, 24):  # Each size decodes anew (its own cache).
        assert_imagenet_matches(load_imagenet("validation", tfds_dir=tfds_dir, image_size=size),
                                expected["validation"], size)
    assert_imagenet_matches(load_imagenet("train", tfds_dir=tfds_dir, image_size=16), expected["train"], 16)
    assert load_imagenet("validation[:2]", tfds_dir=tfds_dir, image_size=16)["image"].shape == (2, 16, 16, 3)


def test_imagenet_split_too_large_for_memory_says_to_take_a_small_one(imagenet, monkeypatch):
    tfds_dir, _ = imagenet
    monkeypatch.setattr(tfds_images, "_memory_bytes", lambda: 2 * 3 * 32 * 32 * 3)  # Room for 3 32x32 images.
    assert load_imagenet("validation", tfds_dir=tfds_dir, image_size=32)["image"].shape == (3, 32, 32, 3)
    with pytest.raises(DatasetError, match=r"'train' has 4 examples.*practical only for small splits"):
        load_imagenet("train", tfds_dir=tfds_dir, image_size=32)


def test_imagenet_missing_archives(tmp_path):
    with tarfile.open(tmp_path / IMAGENET_ARCHIVES[1], "w"):
        pass
    with pytest.raises(DatasetError) as error:
        load_imagenet("validation", data_dir=str(tmp_path), tfds_dir=str(tmp_path / "tfds"))
    message = str(error.value)
    assert f"lacks {IMAGENET_ARCHIVES[0]}" in message and str(tmp_path) in message
    assert "image-net.org" in message and "imagenet2012/" in message and "connect to the network" not in message
    with pytest.raises(DatasetError, match=r"no data_dir is set\. Set --config\.data\.data_dir or \$JAXAI_DATA_DIR"):
        load_imagenet("validation", tfds_dir=str(tmp_path / "tfds"))


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def test_center_crop_keeps_the_middle_of_the_longer_side():
    wide = np.zeros((10, 30, 3), np.uint8)
    wide[:, :10], wide[:, 10:20], wide[:, 20:] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    np.testing.assert_array_equal(center_crop(png(wide), 10), wide[:, 10:20])
    np.testing.assert_array_equal(center_crop(png(wide.transpose(1, 0, 2)), 10), wide[:, 10:20].transpose(1, 0, 2))
    gray = png(np.full((40, 20), 77, np.uint8))  # Grayscale in, RGB out; the shorter side scaled to the size.
    np.testing.assert_array_equal(center_crop(gray, 8), np.full((8, 8, 3), 77, np.uint8))


def test_registry_builds_both_datasets(cifar, imagenet):
    from jaxai.config import base_config
    from jaxai.data import build_dataset

    config = base_config(task="classification", model="resnet").data
    config.name, config.tfds_dir, config.batch_size, config.eval_batch_size = "cifar10", cifar[0], 4, 8
    dataset = build_dataset(config, seed=0)
    assert dataset.info["num_classes"] == 10 and dataset.info["image_shape"] == (32, 32, 3)
    assert dataset.info["num_train_examples"] == 5 * PER_BATCH
    assert next(iter(dataset.train))["image"].shape == (4, 32, 32, 3)
    config.name, config.tfds_dir, config.image_size, config.batch_size = "imagenet2012", imagenet[0], 20, 2
    config.eval_split = "validation"
    dataset = build_dataset(config, seed=0)
    assert dataset.info["num_classes"] == 1000 and dataset.info["image_shape"] == (20, 20, 3)
    assert next(dataset.eval_batches("validation", 1))["image"].shape[1:] == (20, 20, 3)


def test_reading_does_not_import_tensorflow(cifar, imagenet):
    env = {k: v for k, v in os.environ.items() if k not in (mnist.DATA_DIR_ENV, mnist.TFDS_DIR_ENV)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    code = f"""
        import sys
        from jaxai.data.tfds_images import load_cifar10, load_imagenet
        assert load_cifar10("test", tfds_dir={cifar[0]!r})["image"].shape == ({NUM_TEST}, 32, 32, 3)
        assert load_imagenet("validation", tfds_dir={imagenet[0]!r}, image_size=12)["image"].shape == (3, 12, 12, 3)
        assert "tensorflow" not in sys.modules, "reading a prepared dataset imported tensorflow"
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("experiment", ["cifar10_resnet18.py", "imagenet_resnet50.py"])
def test_the_experiment_configs_read_the_prepared_files_and_augment_them(experiment, cifar, imagenet):
    """The real experiments (not their synthetic smoke variants) up to the first augmented batch."""
    import jax

    from jaxai.config import load_config
    from jaxai.data import build_dataset
    from jaxai.tasks.classification import augment_images, preprocess

    tfds_dir = cifar[0] if experiment.startswith("cifar") else imagenet[0]
    config = load_config(os.path.join(ROOT, "experiments", experiment),
                         [f"data.tfds_dir={tfds_dir}", "data.batch_size=2", "data.eval_batch_size=2"])
    dataset = build_dataset(config.data, seed=0)
    size = 32 if experiment.startswith("cifar") else int(config.data.image_size)
    assert dataset.info["image_shape"] == (size, size, 3)
    images = next(iter(dataset.train))["image"]
    augmented = augment_images(jax.random.key(0), preprocess(images), shift=int(config.task.augment_shift),
                               flip=bool(config.task.augment_flip), cutout=int(config.task.get("cutout", 0)))
    assert augmented.shape == (2, size, size, 3) and np.isfinite(np.asarray(augmented)).all()
    assert next(dataset.eval_batches(config.data.eval_split, 1))["image"].shape == (2, size, size, 3)
