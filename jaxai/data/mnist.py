"""MNIST and Fashion-MNIST through TFDS: prepared once (from the four raw IDX files or a download), then
read without TensorFlow. Both come as the same four gzipped IDX files, under the same names; `name` (the
TFDS builder's: 'mnist' or 'fashion_mnist') says which.

Preparing (TFDS's GZIP extraction) imports TensorFlow, the optional extra `pip install 'jaxai[prepare]'`.
Reading a prepared dataset (`tfds.data_source` over array_record files) does not.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import re
import socket
import struct
import tempfile
import threading
import urllib.error
from typing import Any, Callable

import numpy as np

from jaxai.errors import DatasetError

RAW_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
DATA_DIR_ENV = "JAXAI_DATA_DIR"  # Raw files, when no data_dir is passed.
TFDS_DIR_ENV = "TFDS_DATA_DIR"  # Prepared datasets, when no tfds_dir is passed.
IMAGE_SHAPE = (28, 28, 1)
# TFDS name -> (the name users know, TFDS's builder class, the host TFDS downloads the raw files from).
DATASETS = {
    "mnist": ("MNIST", "MNIST", "storage.googleapis.com"),
    "fashion_mnist": ("Fashion-MNIST", "FashionMNIST", "fashion-mnist.s3-website.eu-central-1.amazonaws.com"),
}
_PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
_IDX_IMAGES_MAGIC, _IDX_LABELS_MAGIC = 2051, 2049


def load_mnist(
    split: str, *, data_dir: str | None = None, tfds_dir: str | None = None, verify_checksums: bool = True,
    name: str = "mnist",
) -> dict[str, np.ndarray]:
    """Returns {'image': uint8 [N,28,28,1], 'label': int32 [N]} for a TFDS split string ('test', 'train[:55000]').

    Prepares the dataset first if `tfds_dir` lacks it (see `prepare_mnist`); reading needs no TensorFlow.
    Examples come in TFDS's fixed order (a deterministic shuffle of the raw files' order). The decoded
    arrays are kept beside the prepared files (`jaxai-decoded-*.npz`), so later runs skip decoding.
    """
    tfds_dir = prepare_mnist(data_dir=data_dir, tfds_dir=tfds_dir, verify_checksums=verify_checksums, name=name)
    source = tfds_source(name, DATASETS[name][0], split, tfds_dir)
    return decoded_arrays(source, split, lambda records: np.stack([r["image"] for r in records]))  # 60k PNGs: ~5 s.


def tfds_source(name: str, title: str, split: str, tfds_dir: str, **kwargs: Any) -> Any:
    """TFDS's random-access source over a prepared split (no TensorFlow); DatasetError for a bad or empty split."""
    import tensorflow_datasets as tfds

    try:
        source = tfds.data_source(name, split=split, data_dir=tfds_dir, download=False, **kwargs)
        num_examples = len(source)
    except (ValueError, KeyError) as e:  # A malformed or unknown split, or an empty slice.
        raise DatasetError(f"Cannot read {title} split {split!r} from {tfds_dir}: {e}") from e
    if num_examples == 0:
        raise DatasetError(f"{title} split {split!r} in {tfds_dir} has no examples.")
    return source


def decoded_arrays(
    source: Any, cache_key: str, images: Callable[[list[dict[str, Any]]], np.ndarray]
) -> dict[str, np.ndarray]:
    """{'image': uint8, 'label': int32} of every record of `source`, the images made by `images(records)`;
    kept beside the prepared files under `cache_key`, so later runs skip decoding."""
    cache_path = _decoded_cache_path(source.dataset_info.data_dir, cache_key)
    if os.path.exists(cache_path):
        with np.load(cache_path) as cached:
            return {"image": cached["image"], "label": cached["label"]}
    records = source.__getitems__(list(range(len(source))))
    arrays = {
        "image": images(records).astype(np.uint8, copy=False),
        "label": np.asarray([r["label"] for r in records], dtype=np.int32),
    }
    _write_atomically(cache_path, arrays)
    return arrays


def _decoded_cache_path(version_dir: str, split: str) -> str:
    """Where the decoded arrays of `split` are kept, named by the split and the prepared files' identity.

    Re-preparing the dataset (new record files: other sizes or times) leaves old caches unused.
    """
    identity = [split]
    for name in sorted(os.listdir(version_dir)):
        if ".array_record" in name:
            stat = os.stat(os.path.join(version_dir, name))
            identity.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    digest = hashlib.sha256("\n".join(identity).encode()).hexdigest()[:16]
    return os.path.join(version_dir, f"jaxai-decoded-{digest}.npz")


def _write_atomically(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Writes an .npz via a temporary file and a rename; a read-only directory just means no cache."""
    temporary = None
    try:
        with tempfile.NamedTemporaryFile(dir=os.path.dirname(path), suffix=".npz.tmp", delete=False) as file:
            temporary = file.name
            np.savez(file, **arrays)
        os.replace(temporary, path)
    except OSError:
        if temporary is not None and os.path.exists(temporary):
            os.remove(temporary)


def prepare_mnist(
    *, data_dir: str | None = None, tfds_dir: str | None = None, verify_checksums: bool = True, name: str = "mnist"
) -> str:
    """Prepares dataset `name` (array_record) in the TFDS dir unless already there; returns the TFDS dir used.

    data_dir: the four raw files (directly or in a `<name>/` subfolder); else $JAXAI_DATA_DIR; else TFDS downloads.
    tfds_dir: prepared datasets; else $TFDS_DATA_DIR; else ~/tensorflow_datasets.
    verify_checksums: False (for tests only) accepts raw files that are not the originals, of any example count.
    """
    tfds_dir = resolve_tfds_dir(tfds_dir)
    import tensorflow_datasets as tfds

    if name not in DATASETS:
        raise DatasetError(f"No IDX-format dataset {name!r}; known: {sorted(DATASETS)}.")
    title, _, host = DATASETS[name]
    existing = tfds.builder(name, data_dir=tfds_dir)  # No file_format: it would clash with a prepared one's.
    if is_prepared(existing, title):
        return tfds_dir

    raw_dir, source = resolve_raw_dir(data_dir, name)
    _require_tensorflow(tfds_dir, title)
    if raw_dir is None and not _network_reachable(host):
        raise _missing_data_error(f"no raw-file directory is set and {host} cannot be reached (offline?)", name)
    builder_cls = _unverified_builder_cls(name) if raw_dir is not None and not verify_checksums else type(existing)
    builder = builder_cls(data_dir=tfds_dir, file_format="array_record")
    run_preparation(builder, name, title, RAW_FILES, raw_dir, source, tfds_dir, _missing_data_error)
    return tfds_dir


def run_preparation(
    builder: Any, name: str, title: str, files: tuple[str, ...], raw_dir: str | None, source: str, tfds_dir: str,
    missing_error: Callable[[str, str], DatasetError],
) -> None:
    """`builder.download_and_prepare` from the raw files in `raw_dir` (None: download), TFDS's failures as
    one-line DatasetErrors: files that are not the originals, an unwritable TFDS dir, a failed download."""
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError

    try:
        os.makedirs(tfds_dir, exist_ok=True)
        # A fresh extraction dir: TFDS keys extractions of manual files by file name alone, so a kept one could
        # serve stale contents for different raw files; the extracted files are not needed afterwards anyway.
        with tempfile.TemporaryDirectory(prefix=f".{name}-extract-", dir=tfds_dir) as extract_dir:
            config = tfds.download.DownloadConfig(manual_dir=raw_dir, extract_dir=extract_dir, try_download_gcs=False)
            builder.download_and_prepare(download_config=config)
    except NonMatchingChecksumError as e:
        where = f"{raw_dir} (set by {source})" if raw_dir is not None else "the download"
        bad = re.search(r"downloaded to (\S+), has wrong checksum", str(e))
        what = f"{os.path.basename(bad.group(1))} in {where} does" if bad else f"The {title} files in {where} do"
        raise DatasetError(
            f"{what} not match the original's checksum: the files must be the byte-exact originals "
            f"{', '.join(files)} (still compressed, not re-compressed, decompressed, re-packed or edited)."
        ) from e
    except PermissionError as e:
        raise DatasetError(
            f"Cannot write the prepared dataset under {tfds_dir} ({e}): set --config.data.tfds_dir or "
            f"${TFDS_DIR_ENV} to a writable directory."
        ) from e
    except _download_errors() as e:
        if raw_dir is not None:
            raise
        reason = f"no raw-file directory is set and the download failed ({type(e).__name__}: {e})"
        raise missing_error(reason, name) from e


def is_prepared(builder: Any, title: str) -> bool:
    """Whether `builder`'s dataset is prepared; raises DatasetError when it is, but not as array_record."""
    if not builder.is_prepared():
        return False
    file_format = builder.info.file_format.value if builder.info.file_format else "tfrecord"
    if file_format != "array_record":
        raise DatasetError(
            f"{title} in {builder.data_dir} was prepared as {file_format}, but jaxai reads array_record "
            "files: delete that directory (it is re-prepared on the next run) or set --config.data.tfds_dir "
            f"or ${TFDS_DIR_ENV} to another directory."
        )
    return True


def resolve_tfds_dir(tfds_dir: str | None) -> str:
    """The argument, else $TFDS_DATA_DIR, else ~/tensorflow_datasets; user-expanded."""
    return os.path.expanduser(tfds_dir or os.environ.get(TFDS_DIR_ENV) or "~/tensorflow_datasets")


def resolve_raw_dir(
    data_dir: str | None, name: str = "mnist", files: tuple[str, ...] = RAW_FILES,
    missing_error: Callable[[str, str], DatasetError] | None = None,
) -> tuple[str | None, str]:
    """(directory holding all raw `files`, where it was set), or (None, ...) when none is set (download).
    The files may be in the directory itself or in its `<name>/` subfolder.

    Raises `missing_error(reason, name)` (default: MNIST's) naming the missing files when the directory set lacks
    some of them.
    """
    missing_error = missing_error or _missing_data_error
    if data_dir:
        source = "--config.data.data_dir"
    elif os.environ.get(DATA_DIR_ENV):
        data_dir, source = os.environ[DATA_DIR_ENV], f"${DATA_DIR_ENV}"
    else:
        return None, "download"
    root = os.path.expanduser(data_dir)
    candidates = [root, os.path.join(root, name)]
    missing = {d: [f for f in files if not os.path.isfile(os.path.join(d, f))] for d in candidates}
    for d in candidates:
        if not missing[d]:
            return d, source
    if not os.path.isdir(root):
        raise missing_error(f"data_dir {root!r} (set by {source}) does not exist", name)
    best = min(candidates, key=lambda d: len(missing[d]))
    raise missing_error(
        f"data_dir {root!r} (set by {source}) lacks {', '.join(missing[best])}"
        + (f" in {best!r}" if best != root else f" (also looked in {candidates[1]!r})"),
        name,
    )


def _missing_data_error(reason: str, name: str) -> DatasetError:
    title = DATASETS[name][0]
    return DatasetError(
        f"{title} is not prepared yet and cannot be: {reason}. Either connect to the network so TFDS can download it "
        f"(with no data_dir set), or set --config.data.data_dir or ${DATA_DIR_ENV} to a directory holding the four "
        f"original {title} files, directly or in a {name}/ subfolder: {', '.join(RAW_FILES)}."
    )


def _require_tensorflow(tfds_dir: str, title: str) -> None:
    try:
        import tensorflow  # noqa: F401  (TFDS's GZIP extraction needs it)
    except ImportError as e:
        raise DatasetError(
            f"Preparing {title} (once, into {tfds_dir}) needs TensorFlow, which is not installed: "
            "pip install 'jaxai[prepare]' (or pip install tensorflow-cpu). Reading the prepared dataset afterwards "
            "(training, eval) does not need TensorFlow; you may also prepare on another machine and copy the "
            f"TFDS dir (--config.data.tfds_dir / ${TFDS_DIR_ENV})."
        ) from e


def _network_reachable(host: str, port: int = 443, timeout_s: float = 5.0) -> bool:
    """Whether `host` accepts a TCP connection within timeout_s (True behind a proxy: let TFDS try).

    TFDS retries a failed download for minutes; this makes the offline case fail at once.
    """
    if any(os.environ.get(v) for v in _PROXY_ENV):
        return True
    reached: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                reached.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)  # Bounds DNS resolution too, which ignores the timeout.
    thread.start()
    thread.join(2 * timeout_s)
    return bool(reached)


def _download_errors() -> tuple[type[BaseException], ...]:
    import requests
    import tensorflow_datasets as tfds

    return (
        tfds.download.DownloadError,
        requests.RequestException,
        urllib.error.URLError,
        ConnectionError,
        TimeoutError,
        socket.gaierror,
    )


def _idx_count(images_path: Any, labels_path: Any) -> int:
    """Number of examples in a gzipped IDX image/label file pair, after checking their headers."""
    try:
        with gzip.open(images_path, "rb") as f:
            magic, count, rows, cols = struct.unpack(">4I", f.read(16))
        with gzip.open(labels_path, "rb") as f:
            label_magic, label_count = struct.unpack(">2I", f.read(8))
    except (OSError, EOFError, struct.error) as e:
        raise DatasetError(f"{images_path} / {labels_path} are not gzipped IDX files: {e}") from e
    if (magic, rows, cols, label_magic) != (_IDX_IMAGES_MAGIC, 28, 28, _IDX_LABELS_MAGIC) or count != label_count:
        raise DatasetError(
            f"{images_path} / {labels_path} are not a matching pair of 28x28 IDX files (header: magic {magic}, "
            f"{count} images of {rows}x{cols}; labels magic {label_magic}, {label_count} labels)."
        )
    return count


@functools.cache
def _unverified_builder_cls(dataset: str = "mnist") -> type:
    """TFDS's builder of `dataset` reading manual_dir's raw files without checksum checks, counts from the IDX headers."""
    import tensorflow_datasets as tfds

    class _Unverified(getattr(tfds.image_classification, DATASETS[dataset][1]), skip_registration=True):
        name = dataset  # Same name, version and features: the result is read as TFDS's dataset of that name.
        MANUAL_DOWNLOAD_INSTRUCTIONS = f"Place {', '.join(RAW_FILES)} in the manual dir."

        def _split_generators(self, dl_manager: Any) -> list[Any]:
            generators = []
            for split, prefix in ((tfds.Split.TRAIN, "train"), (tfds.Split.TEST, "t10k")):
                images = dl_manager.manual_dir / f"{prefix}-images-idx3-ubyte.gz"
                labels = dl_manager.manual_dir / f"{prefix}-labels-idx1-ubyte.gz"
                num_examples = _idx_count(images, labels)
                paths = dl_manager.extract({"data_path": images, "label_path": labels})
                gen_kwargs = dict(num_examples=num_examples, **paths)
                generators.append(tfds.core.SplitGenerator(name=split, gen_kwargs=gen_kwargs))
            return generators

    return _Unverified
