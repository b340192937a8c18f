"""MNIST through TFDS: offline preparation from IDX files, reading without TensorFlow, and the error messages.

Every test passes a data_dir (or stubs the network probe): nothing here touches the network or real MNIST.
The raw files are tiny IDX files written here; `verify_checksums=False` lets TFDS's builder accept them.
"""

from __future__ import annotations

import builtins
import gzip
import glob
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from jaxai.data import mnist
from jaxai.errors import DatasetError
from jaxai.data.mnist import RAW_FILES, load_mnist, prepare_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_TRAIN, NUM_TEST = 40, 24


def write_idx(directory, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Writes gzipped IDX files `{prefix}-images-idx3-ubyte.gz` and `{prefix}-labels-idx1-ubyte.gz`."""
    os.makedirs(directory, exist_ok=True)
    with gzip.open(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">4I", 2051, len(images), 28, 28) + images.astype(np.uint8).tobytes())
    with gzip.open(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">2I", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def make_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random images whose pixel (0, 0) is the example's index (TFDS reorders examples), and labels 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n)
    return images, rng.integers(0, 10, n).astype(np.uint8)


def write_raw(directory) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    written = {"train": make_split(NUM_TRAIN, 0), "test": make_split(NUM_TEST, 1)}
    write_idx(directory, "train", *written["train"])
    write_idx(directory, "t10k", *written["test"])
    return written


def assert_matches(loaded: dict[str, np.ndarray], images: np.ndarray, labels: np.ndarray) -> None:
    assert loaded["image"].dtype == np.uint8 and loaded["image"].shape == (len(images), 28, 28, 1)
    assert loaded["label"].dtype == np.int32 and loaded["label"].shape == (len(labels),)
    index = loaded["image"][:, 0, 0, 0].astype(np.int64)
    assert sorted(index) == list(range(len(images)))  # Each written example exactly once.
    np.testing.assert_array_equal(loaded["image"][..., 0], images[index])
    np.testing.assert_array_equal(loaded["label"], labels[index])


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    monkeypatch.delenv(mnist.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(mnist.TFDS_DIR_ENV, raising=False)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """(tfds_dir, written arrays): tiny IDX files in data_dir/mnist/, prepared once for the module."""
    data_dir = tmp_path_factory.mktemp("raw")
    written = write_raw(data_dir / "mnist")  # The mnist/ subfolder is found too.
    tfds_dir = str(tmp_path_factory.mktemp("tfds"))
    assert prepare_mnist(data_dir=str(data_dir), tfds_dir=tfds_dir, verify_checksums=False) == tfds_dir
    return tfds_dir, written


def test_offline_preparation_from_idx_files(prepared):
    tfds_dir, written = prepared
    train = load_mnist("train", data_dir=None, tfds_dir=tfds_dir)
    assert_matches(train, *written["train"])
    assert_matches(load_mnist("test", data_dir=None, tfds_dir=tfds_dir), *written["test"])
    head = load_mnist("train[:10]", data_dir=None, tfds_dir=tfds_dir)
    np.testing.assert_array_equal(head["image"], train["image"][:10])
    np.testing.assert_array_equal(head["label"], train["label"][:10])


def test_decoded_arrays_are_cached_until_the_prepared_files_change(prepared, monkeypatch):
    tfds_dir, written = prepared
    import tensorflow_datasets as tfds

    first = load_mnist("test[:7]", data_dir=None, tfds_dir=tfds_dir)  # Decodes, and keeps the arrays.
    version_dir = tfds.builder("mnist", data_dir=tfds_dir).data_dir
    assert glob.glob(os.path.join(version_dir, "jaxai-decoded-*.npz"))
    source_type = type(tfds.data_source("mnist", split="test", data_dir=tfds_dir, download=False))
    decoded = []
    original = source_type.__getitems__
    monkeypatch.setattr(source_type, "__getitems__", lambda self, keys: decoded.append(len(keys)) or original(self, keys))
    cached = load_mnist("test[:7]", data_dir=None, tfds_dir=tfds_dir)
    assert decoded == []  # Read from the cache...
    for key in ("image", "label"):
        np.testing.assert_array_equal(cached[key], first[key])
        assert cached[key].dtype == first[key].dtype
    assert_matches(load_mnist("test", data_dir=None, tfds_dir=tfds_dir), *written["test"])  # A split: its own cache.
    record = sorted(glob.glob(os.path.join(version_dir, "*.array_record*")))[0]
    os.utime(record, ns=(0, 0))  # ...until the prepared files are not the ones it was made from.
    load_mnist("test[:7]", data_dir=None, tfds_dir=tfds_dir)
    assert decoded[-1] == 7


def test_tfds_dir_from_environment(prepared, monkeypatch):
    tfds_dir, written = prepared
    monkeypatch.setenv(mnist.TFDS_DIR_ENV, tfds_dir)
    assert_matches(load_mnist("test", data_dir=None, tfds_dir=None), *written["test"])


def run_python(code: str) -> None:
    """Runs `code` in a fresh interpreter (nothing imported yet) and asserts it succeeds."""
    env = {k: v for k, v in os.environ.items() if k not in (mnist.DATA_DIR_ENV, mnist.TFDS_DIR_ENV)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_reading_does_not_import_tensorflow(prepared):
    tfds_dir, _ = prepared
    run_python(f"""
        import sys
        from jaxai.data.mnist import load_mnist
        data = load_mnist("train", data_dir=None, tfds_dir={tfds_dir!r})
        assert data["image"].shape == ({NUM_TRAIN}, 28, 28, 1), data["image"].shape
        assert "tensorflow" not in sys.modules, "reading a prepared dataset imported tensorflow"
    """)


def test_without_tensorflow_installed(prepared, tmp_path):
    """With TensorFlow made unimportable from the start: reading works, preparing says how to install it."""
    tfds_dir, _ = prepared
    write_raw(tmp_path / "raw")
    run_python(f"""
        import sys

        class NoTensorFlow:  # Wraps the import finders so that `tensorflow` looks uninstalled (no spec).
            def __init__(self, finders):
                self.finders = finders

            def find_spec(self, name, path=None, target=None):
                if name == "tensorflow" or name.startswith("tensorflow."):
                    return None
                for finder in self.finders:
                    spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
                    if spec is not None:
                        return spec
                return None

        sys.meta_path[:] = [NoTensorFlow(list(sys.meta_path))]
        from jaxai.errors import DatasetError
        from jaxai.data.mnist import load_mnist

        assert load_mnist("test", data_dir=None, tfds_dir={tfds_dir!r})["label"].shape == ({NUM_TEST},)
        try:
            load_mnist("test", data_dir={str(tmp_path / "raw")!r}, tfds_dir={str(tmp_path / "tfds")!r})
        except DatasetError as e:
            assert "pip install 'jaxai[prepare]'" in str(e) and "does not need TensorFlow" in str(e), e
        else:
            raise AssertionError("preparing without TensorFlow did not raise DatasetError")
    """)


def test_missing_files_name_both_remedies(tmp_path):
    write_idx(tmp_path, "train", *make_split(4, 0))  # Only the two train files.
    with pytest.raises(DatasetError) as error:
        load_mnist("train", data_dir=str(tmp_path), tfds_dir=str(tmp_path / "tfds"))
    message = str(error.value)
    assert "lacks t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz" in message
    assert str(tmp_path) in message
    assert "connect to the network" in message
    assert "--config.data.data_dir" in message and "$JAXAI_DATA_DIR" in message
    assert all(name in message for name in RAW_FILES)


def test_missing_data_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(mnist.DATA_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match=r"\$JAXAI_DATA_DIR\) does not exist.*connect to the network"):
        load_mnist("train", data_dir=None, tfds_dir=str(tmp_path / "tfds"))


def test_data_dir_resolution(tmp_path, monkeypatch):
    write_raw(tmp_path / "mnist")
    assert mnist.resolve_raw_dir(str(tmp_path))[0] == str(tmp_path / "mnist")
    assert mnist.resolve_raw_dir(str(tmp_path / "mnist"))[0] == str(tmp_path / "mnist")
    assert mnist.resolve_raw_dir(None) == (None, "download")
    monkeypatch.setenv(mnist.DATA_DIR_ENV, str(tmp_path))
    assert mnist.resolve_raw_dir(None) == (str(tmp_path / "mnist"), "$JAXAI_DATA_DIR")
    assert mnist.resolve_tfds_dir(None) == os.path.expanduser("~/tensorflow_datasets")
    monkeypatch.setenv(mnist.TFDS_DIR_ENV, str(tmp_path))
    assert mnist.resolve_tfds_dir(None) == str(tmp_path)
    assert mnist.resolve_tfds_dir("/elsewhere") == "/elsewhere"


def test_offline_without_data_dir_names_both_remedies(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "_network_reachable", lambda host: False)  # No real network attempt.
    with pytest.raises(DatasetError) as error:
        load_mnist("train", data_dir=None, tfds_dir=str(tmp_path))
    message = str(error.value)
    assert "cannot be reached" in message and "connect to the network" in message
    assert "--config.data.data_dir" in message and all(name in message for name in RAW_FILES)


def test_preparing_without_tensorflow_says_how_to_install(tmp_path, monkeypatch):
    write_raw(tmp_path / "raw")
    real_import = builtins.__import__

    def import_without_tensorflow(name, *args, **kwargs):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", import_without_tensorflow)
    with pytest.raises(DatasetError) as error:
        load_mnist("train", data_dir=str(tmp_path / "raw"), tfds_dir=str(tmp_path / "tfds"))
    message = str(error.value)
    assert "pip install 'jaxai[prepare]'" in message and "tensorflow-cpu" in message
    assert "does not need TensorFlow" in message


def test_checksums_of_non_original_files_are_refused(tmp_path):
    write_raw(tmp_path / "raw")
    with pytest.raises(DatasetError) as error:
        prepare_mnist(data_dir=str(tmp_path / "raw"), tfds_dir=str(tmp_path / "tfds"))  # verify_checksums=True
    message = str(error.value)
    assert str(tmp_path / "raw") in message and "byte-exact original" in message
    assert not os.path.exists(tmp_path / "tfds" / "mnist" / "3.0.1")


def test_malformed_idx_files_are_refused(tmp_path):
    write_raw(tmp_path / "raw")
    write_idx(tmp_path / "raw", "t10k", *make_split(5, 2)[:1], np.zeros(3, np.uint8))  # 5 images, 3 labels.
    with pytest.raises(DatasetError, match="not a matching pair of 28x28 IDX files"):
        prepare_mnist(data_dir=str(tmp_path / "raw"), tfds_dir=str(tmp_path / "tfds"), verify_checksums=False)


def test_unknown_split_is_a_dataset_error(prepared):
    tfds_dir, _ = prepared
    with pytest.raises(DatasetError, match="Cannot read MNIST split 'validation'"):
        load_mnist("validation", data_dir=None, tfds_dir=tfds_dir)


def test_dataset_prepared_as_tfrecord_is_refused(tmp_path):
    import tensorflow_datasets as tfds

    write_raw(tmp_path / "raw")
    builder = mnist._unverified_builder_cls()(data_dir=str(tmp_path / "tfds"), file_format="tfrecord")
    config = tfds.download.DownloadConfig(manual_dir=str(tmp_path / "raw"), try_download_gcs=False)
    builder.download_and_prepare(download_config=config)
    with pytest.raises(DatasetError, match="prepared as tfrecord, but jaxai reads array_record"):
        load_mnist("train", data_dir=None, tfds_dir=str(tmp_path / "tfds"))
