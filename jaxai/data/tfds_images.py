"""CIFAR-10 and ImageNet (ILSVRC 2012) through TFDS: prepared once from the original archives, then read
without TensorFlow, as jaxai.data.mnist does for MNIST.

CIFAR-10: `cifar-10-binary.tar.gz` (the binary version: records of 1 label byte and 3072 pixel bytes,
channel-major), from the data dir or downloaded by TFDS. ImageNet: `ILSVRC2012_img_train.tar` and
`ILSVRC2012_img_val.tar`, which only image-net.org gives out (after registering), so a data dir is
required; TFDS ships the validation labels. Preparing imports TensorFlow (`pip install 'jaxai[prepare]'`).
"""

from __future__ import annotations

import concurrent.futures
import functools
import io
import os
from typing import Any

import numpy as np

from jaxai.data.mnist import (
    DATA_DIR_ENV, _network_reachable, _require_tensorflow, decoded_arrays, is_prepared, resolve_raw_dir,
    resolve_tfds_dir, run_preparation, tfds_source,
)
from jaxai.errors import DatasetError

CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
IMAGENET_ARCHIVES = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
# TFDS name -> (the name users know, the raw files, the host TFDS downloads them from; '' = none does).
DATASETS = {
    "cifar10": ("CIFAR-10", (CIFAR10_ARCHIVE,), "www.cs.toronto.edu"),
    "imagenet2012": ("ImageNet", IMAGENET_ARCHIVES, ""),
}
CIFAR10_SHAPE = (32, 32, 3)


def load_cifar10(
    split: str, *, data_dir: str | None = None, tfds_dir: str | None = None, verify_checksums: bool = True
) -> dict[str, np.ndarray]:
    """Returns {'image': uint8 [N,32,32,3], 'label': int32 [N]} for a TFDS split string ('test', 'train[:45000]').

    Prepares CIFAR-10 first if `tfds_dir` lacks it (see `prepare`); reading needs no TensorFlow. The decoded
    arrays are kept beside the prepared files, so later runs skip decoding.
    """
    tfds_dir = prepare("cifar10", data_dir=data_dir, tfds_dir=tfds_dir, verify_checksums=verify_checksums)
    source = tfds_source("cifar10", DATASETS["cifar10"][0], split, tfds_dir)
    return decoded_arrays(source, split, lambda records: np.stack([r["image"] for r in records]))


def load_imagenet(
    split: str, *, data_dir: str | None = None, tfds_dir: str | None = None, image_size: int = 224
) -> dict[str, np.ndarray]:
    """Returns {'image': uint8 [N,S,S,3], 'label': int32 [N]} (S = image_size) for a TFDS split string.

    Each image is resized (bicubic) so that its shorter side is S, then center-cropped to S x S. The split is held
    in memory (the full training set at 224 would take ~180 GiB), so this is practical only for small splits such
    as 'validation[:1000]' or 'train[:1%]'; a split over half the machine's memory raises DatasetError.
    Prepares ImageNet first if `tfds_dir` lacks it (hours for the real 150 GB of archives; see `prepare`).
    """
    if image_size < 1:
        raise DatasetError(f"data.image_size={image_size}: ImageNet images need a positive side in pixels.")
    tfds_dir = prepare("imagenet2012", data_dir=data_dir, tfds_dir=tfds_dir)
    import tensorflow_datasets as tfds

    source = tfds_source("imagenet2012", DATASETS["imagenet2012"][0], split, tfds_dir,
                         decoders={"image": tfds.decode.SkipDecoding()})
    needed, available = len(source) * image_size**2 * 3, _memory_bytes()
    if needed > available // 2:
        raise DatasetError(
            f"ImageNet split {split!r} has {len(source)} examples, {needed / 2**30:.1f} GiB as {image_size}x"
            f"{image_size} images, over half of this machine's {available / 2**30:.1f} GiB memory: jaxai holds a "
            "split in memory, so ImageNet is practical only for small splits such as 'validation[:1000]' or "
            "'train[:1%]' (--config.data.train_split / eval_split), or a smaller --config.data.image_size."
        )

    def images(records: list[dict[str, Any]]) -> np.ndarray:
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:  # PIL decodes without the GIL.
            return np.stack(list(pool.map(lambda r: center_crop(r["image"], image_size), records)))

    return decoded_arrays(source, f"{split}@{image_size}", images)


def center_crop(encoded: bytes, size: int) -> np.ndarray:
    """An encoded image (JPEG, PNG) as RGB uint8 [size,size,3]: shorter side resized to `size`, center cropped."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(encoded)) as image:
        # Cropping the centred square (or the aspect ratio's box) first, then resizing, equals resizing first.
        return np.asarray(ImageOps.fit(image.convert("RGB"), (size, size), Image.Resampling.BICUBIC), np.uint8)


def _memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def prepare(
    name: str, *, data_dir: str | None = None, tfds_dir: str | None = None, verify_checksums: bool = True
) -> str:
    """Prepares dataset `name` ('cifar10' or 'imagenet2012', array_record) unless already there; returns the TFDS dir.

    data_dir: the raw files (directly or in a `<name>/` subfolder); else $JAXAI_DATA_DIR; else TFDS downloads
    (CIFAR-10 only). tfds_dir: prepared datasets; else $TFDS_DATA_DIR; else ~/tensorflow_datasets.
    verify_checksums: False (for tests only) accepts a CIFAR-10 archive that is not the original (TFDS has no
    checksums of ImageNet's manual archives, and reads them as they are).
    """
    if name not in DATASETS:
        raise DatasetError(f"No archive-format image dataset {name!r}; known: {sorted(DATASETS)}.")
    tfds_dir = resolve_tfds_dir(tfds_dir)
    import tensorflow_datasets as tfds

    title, files, host = DATASETS[name]
    existing = tfds.builder(name, data_dir=tfds_dir)  # No file_format: it would clash with a prepared one's.
    if is_prepared(existing, title):
        return tfds_dir
    raw_dir, source = resolve_raw_dir(data_dir, name, files, _missing_data_error)
    if raw_dir is None and not host:
        raise _missing_data_error("no data_dir is set", name)
    _require_tensorflow(tfds_dir, title)
    if raw_dir is None and not _network_reachable(host):
        raise _missing_data_error(f"no data_dir is set and {host} cannot be reached (offline?)", name)
    unverified = name == "cifar10" and raw_dir is not None and not verify_checksums
    builder = (_unverified_cifar10() if unverified else type(existing))(data_dir=tfds_dir, file_format="array_record")
    run_preparation(builder, name, title, files, raw_dir, source, tfds_dir, _missing_data_error)
    return tfds_dir


def _missing_data_error(reason: str, name: str) -> DatasetError:
    title, files, host = DATASETS[name]
    where = (
        f"the original {title} file{'s' if len(files) > 1 else ''}, directly or in the subfolder {name}/: "
        f"{', '.join(files)}"
    )
    if host:
        remedy = "Either connect to the network so TFDS can download it (with no data_dir set), or set"
    else:  # ImageNet's archives are only given out to registered users.
        where += " (from https://image-net.org/download-images, after registering)"
        remedy = "Set"
    return DatasetError(
        f"{title} is not prepared yet and cannot be: {reason}. {remedy} --config.data.data_dir or ${DATA_DIR_ENV} "
        f"to a directory holding {where}."
    )


@functools.cache
def _unverified_cifar10() -> type:
    """TFDS's CIFAR-10 builder reading manual_dir's archive without checksum checks (any number of records)."""
    import tensorflow_datasets as tfds

    class _Unverified(tfds.image_classification.Cifar10, skip_registration=True):
        name = "cifar10"  # Same name, version and features: the result is read as TFDS's cifar10.
        MANUAL_DOWNLOAD_INSTRUCTIONS = f"Place {CIFAR10_ARCHIVE} in the manual dir."

        def _split_generators(self, dl_manager: Any) -> Any:
            extracted = dl_manager.extract(dl_manager.manual_dir / CIFAR10_ARCHIVE)

            class Local:  # The parent's code, with its one download served by the extracted manual archive.
                @staticmethod
                def download_and_extract(url: str) -> Any:
                    return extracted

            return super()._split_generators(Local())

    return _Unverified
