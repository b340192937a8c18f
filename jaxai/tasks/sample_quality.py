"""Sample quality of generative image models on MNIST, judged by jaxai's own MNIST CNN (nothing downloaded).

The judge is the classic Keras MNIST CNN trained by `jaxai train` (experiments/mnist_cnn.py's recipe without
label smoothing, 99.3% test accuracy), trained on the fly into a cache directory the first time it is needed
(`ensure_quality_classifier`, a minute or two on a CPU) and restored by `load_quality_classifier`. Its outputs:

- class probabilities -> how many samples it calls confidently (max probability > 0.9) and how evenly
  they spread over the 10 digits (`class_outputs` / `class_metrics`);
- the penultimate layer (Dense-ReLU, 64 wide) -> an "MNIST FID": the Frechet distance between the
  Gaussians fitted to generated and real features (`moment_outputs` / `frechet_distance_from_sums`);
  (Inception features are not made for 28x28 digits; these are.) `real_data_fid` gives the floor: the same
  distance between real test and real train images;
- on Stacked MNIST (jaxai.data.stacked_mnist), one class per channel -> which of the 1000 digit
  triples are generated (`mode_outputs` / `mode_metrics`: modes covered, KL to uniform).

The `*_outputs` functions are pure jnp for a task's jitted eval_step; their outputs are summed over eval
batches (the loop's default 'sum' reduction, in float64 on the host); `mask` [B] marks real rows of a
padded batch. The `*_metrics` / `frechet_distance_from_sums` functions turn the sums into numbers on the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from jaxai import config as config_lib
from jaxai import models, sharding
from jaxai.checkpoint import Checkpointer
from jaxai.errors import ConfigError, DatasetError, WorkdirError

NUM_CLASSES = 10
NUM_MODES = 1000  # Stacked MNIST: 10^3 digit triples.
CONFIDENCE = 0.9  # A sample counts as confidently classified when its top class probability exceeds this.
CACHE_DIR_ENV = "JAXAI_CACHE_DIR"
_LOCK_FILE = ".quality-classifier.lock"
_LOG_FILE = "quality-classifier-train.log"

Features = Callable[[jax.Array], tuple[jax.Array, jax.Array]]


class QualityClassifier(NamedTuple):
    """A restored MNIST classifier. `features(images01)` is pure and jittable (the weights are constants):
    images float in [0, 1] [B, 28, 28, 1] -> (class probabilities [B, 10], penultimate activations [B, D])."""

    path: str  # The checkpoint directory restored (WORKDIR/checkpoints/STEP): record it with the metrics.
    features: Features


# ------------------------------------------------------------------------------------------------
# The classifier: where it lives, training it once, restoring it.


def default_classifier_dir() -> str:
    """$JAXAI_CACHE_DIR/mnist_classifier, else ~/.cache/jaxai/mnist_classifier."""
    cache = os.environ.get(CACHE_DIR_ENV) or os.path.join("~", ".cache", "jaxai")
    return os.path.join(os.path.expanduser(cache), "mnist_classifier")


def classifier_config(data_dir: str = "", tfds_dir: str = "") -> ml_collections.ConfigDict:
    """experiments/mnist_cnn.py's recipe (real MNIST, 2 epochs), built in code, WITHOUT label smoothing.

    Label smoothing 0.1 caps the probabilities near 0.91: with it only 65% of the real test digits pass the
    0.9 confidence threshold (test accuracy 99.42%). Without it (seed 0, measured): 99.28% test accuracy,
    98.0% of real test digits confident, class fractions within 0.014 of 0.1; FID of real test vs train
    images 0.41 (10k each), 0.30 (10k vs 60k); train half vs half (30k each) 0.07.
    """
    config = config_lib.base_config("classification", "cnn")
    config.data.name = "mnist"
    config.data.data_dir = data_dir
    config.data.tfds_dir = tfds_dir
    config.data.batch_size = 64
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 4e-3
    config.optimizer.schedule.name = "cosine"
    config.optimizer.schedule.warmup_steps = 100
    config.task.augment_shift = 2
    config.task.label_smoothing = 0.0  # Not the recipe's 0.1: confidences must mean something (see above).
    config.train.num_epochs = 2
    config.train.progress_bar = False
    return config


def ensure_quality_classifier(
    workdir: str, data_dir: str = "", tfds_dir: str = "", config_overrides: Sequence[str] = ()
) -> str:
    """Returns `workdir`, first training the MNIST classifier into it unless it holds a finished run.

    Training runs `python -m jaxai train --workdir WORKDIR` in a subprocess on the CPU (so it never
    competes with the caller for an accelerator it holds), with `classifier_config(data_dir, tfds_dir)`
    plus `config_overrides` ('KEY=VALUE', as after --config.) saved as WORKDIR/config.json; its output
    goes to WORKDIR/quality-classifier-train.log. An interrupted training resumes; concurrent callers
    wait for one another (a lock file in the workdir). Raises DatasetError (e.g. MNIST missing: set
    data_dir or $JAXAI_DATA_DIR), ConfigError (bad overrides) or WorkdirError, each saying the fix.
    """
    workdir = os.path.abspath(os.path.expanduser(workdir))
    if _finished(workdir):
        return workdir
    config = classifier_config(data_dir, tfds_dir)
    config.lock()
    config_lib.apply_overrides(config, config_overrides)  # Bad keys or values fail here, before any training.
    os.makedirs(workdir, exist_ok=True)
    config_path = os.path.join(workdir, config_lib.CONFIG_FILE)
    if not os.path.exists(config_path):
        stray = sorted(set(os.listdir(workdir)) - {_LOCK_FILE})
        if stray:
            raise WorkdirError(
                f"{workdir} is not empty ({', '.join(stray[:3])}) and holds no jaxai run: point the quality "
                f"classifier elsewhere (e.g. --config.task.quality_classifier=DIR, or ${CACHE_DIR_ENV}) or empty that directory."
            )
        _write_atomically(config_path, config_lib.to_json(config))  # Before the lock: see the check above.
    with _locked(os.path.join(workdir, _LOCK_FILE)):
        if _finished(workdir):  # Another process trained it while this one waited.
            return workdir
        _train(workdir, data_dir, tfds_dir, config_overrides)
    if not _finished(workdir):
        raise WorkdirError(f"Training the quality classifier in {workdir} ended without a final checkpoint; "
                           f"see {os.path.join(workdir, _LOG_FILE)}.")
    return workdir


def _train(workdir: str, data_dir: str, tfds_dir: str, overrides: Sequence[str]) -> None:
    command = [sys.executable, "-m", "jaxai", "train", "--workdir", workdir, "--config.train.progress_bar=False",
               f"--config.data.data_dir={data_dir}", f"--config.data.tfds_dir={tfds_dir}",
               *(f"--config.{override}" for override in overrides)]
    env = dict(os.environ, JAX_PLATFORMS="cpu")  # The caller may hold the accelerator (a TPU cannot be shared).
    env.pop("JAXAI_DISTRIBUTED", None)  # A single-process run, even inside a multi-host job.
    log_path = os.path.join(workdir, _LOG_FILE)
    logging.warning("Training the MNIST sample-quality classifier (once: a minute or two on a CPU) into %s; log: %s",
                    workdir, log_path)
    with open(log_path, "a") as log:
        completed = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if completed.returncode == 0:
        return
    with open(log_path) as log:
        lines = [line.strip() for line in log if line.strip()]
    starts = [i for i, line in enumerate(lines) if line.startswith("jaxai: error: ")]
    if starts:  # One of jaxai's user errors (printed last, maybe over several lines): its message says the fix.
        message = " ".join(lines[starts[-1]:])[len("jaxai: error: "):]
        error = WorkdirError if message.startswith("Workdir ") else DatasetError
        raise error(f"Training the MNIST sample-quality classifier into {workdir} failed: {message}")
    last = lines[-1] if lines else "no output"
    raise DatasetError(
        f"Training the MNIST sample-quality classifier into {workdir} failed (exit {completed.returncode}: {last}); "
        f"see {log_path}, fix the cause and rerun (training resumes), or train it by hand with "
        f"`python -m jaxai train --workdir {workdir}`."
    )


def _finished(workdir: str) -> bool:
    """Whether `workdir` holds a checkpoint and its last training session ended (no resume needed)."""
    if _checkpoint_steps(workdir) == []:
        return False
    metrics = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(metrics):
        return True  # Checkpoints copied without their log: take them as they are.
    last_run = None
    with open(metrics) as file:
        for line in file:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # A line cut short by a kill.
            if record.get("split") == "run":
                last_run = record
    return last_run is not None and last_run.get("event") == "end"


def _checkpoint_steps(workdir: str) -> list[int]:
    """Steps of the committed checkpoints (Orbax writes each under a temporary name, then renames it)."""
    directory = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(directory):
        return []
    return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


@contextlib.contextmanager
def _locked(path: str):
    import fcntl

    with open(path, "a") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logging.warning("Waiting for another process training the quality classifier in %s", os.path.dirname(path))
            fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def _write_atomically(path: str, text: str) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as file:
        file.write(text)
    os.replace(temporary, path)


def load_quality_classifier(workdir: str) -> QualityClassifier:
    """The classifier of `workdir`'s latest checkpoint (a classification run on 28x28x1 images, 10 classes).

    The weights are restored as host numpy arrays and closed over by `features`, so the function jits on
    any device or mesh (they become constants). Call it in every process of a multi-host job.
    """
    from jaxai.tasks import classification

    workdir = os.path.abspath(os.path.expanduser(workdir))
    config = config_lib.saved_config(workdir)
    if config.task.name != "classification":
        raise ConfigError(f"{workdir} holds a {config.task.name!r} run, not an MNIST classifier; "
                          "point the quality classifier at a `jaxai train` classification run (or an empty dir).")
    if not _checkpoint_steps(workdir):
        raise WorkdirError(f"No checkpoint in {workdir}/checkpoints; call ensure_quality_classifier first.")
    # The state's structure (step, params, opt_state, model_state) from the saved config, as `jaxai train` built it.
    # Any step count past the warm-up gives the optimizer state's structure; its values come from the checkpoint.
    task = classification.build(config, {"num_classes": NUM_CLASSES}, total_steps=1 << 30)
    example = {"image": jax.ShapeDtypeStruct((1, 28, 28, 1), jnp.uint8), "label": jax.ShapeDtypeStruct((1,), jnp.int32)}
    abstract = sharding.strip_axis_names(jax.eval_shape(task.init, jax.random.key(0), example))
    target = jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype), abstract)  # numpy leaves: restore to host.
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"))
    try:
        step = checkpointer.latest_step()
        state = checkpointer.restore(step, target)
    finally:
        checkpointer.close()
    variables = {"params": state.params, **state.model_state}
    model = models.build_model(config.model, num_classes=NUM_CLASSES)
    return QualityClassifier(os.path.join(checkpointer.directory, str(step)), _features_fn(model, variables))


def _features_fn(model: nn.Module, variables: Any) -> Features:
    def features(images01: jax.Array) -> tuple[jax.Array, jax.Array]:
        # The penultimate activations are what the last Dense layer (the logits) receives: the Dense64
        # after its ReLU (dropout is off in inference).
        dense_inputs: list[jax.Array] = []

        def record_dense_inputs(next_fun, args, kwargs, context):
            if isinstance(context.module, nn.Dense) and context.method_name == "__call__":
                dense_inputs.append(args[0])
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(record_dense_inputs):
            logits = model.apply(variables, jnp.asarray(images01, jnp.float32), train=False)
        probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
        return probs, dense_inputs[-1].astype(jnp.float32)

    return features


# ------------------------------------------------------------------------------------------------
# Eval outputs (jnp, summed over batches) and metrics from their sums (host numpy).


def moment_outputs(prefix: str, features: jax.Array, mask: jax.Array) -> dict[str, jax.Array]:
    """Sufficient statistics of the masked rows of `features` [B, D]: count, sum [D], sum of outer products [D, D]."""
    mask = mask.astype(jnp.float32)
    features = features.astype(jnp.float32)
    weighted = features * mask[:, None]
    return {
        f"{prefix}_count": jnp.sum(mask),
        f"{prefix}_sum": jnp.sum(weighted, axis=0),
        # HIGHEST: a TPU's default f32 matmul rounds its inputs to bfloat16, too coarse for covariances.
        f"{prefix}_outer": jnp.einsum("bi,bj->ij", weighted, features, precision=jax.lax.Precision.HIGHEST),
    }


def gaussian_from_sums(sums: dict[str, Any], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """(mean [D], unbiased covariance [D, D]) in float64 from `moment_outputs`' summed outputs."""
    count = float(np.asarray(sums[f"{prefix}_count"]))
    if count < 2:
        raise ValueError(f"{prefix!r}: {count:g} samples; a covariance needs at least 2.")
    total = np.asarray(sums[f"{prefix}_sum"], np.float64)
    outer = np.asarray(sums[f"{prefix}_outer"], np.float64)
    mean = total / count
    covariance = (outer - count * np.outer(mean, mean)) / (count - 1)
    return mean, (covariance + covariance.T) / 2


def frechet_distance(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between two Gaussians, in float64.

    Tr((S_a S_b)^(1/2)) = Tr((S_a^(1/2) S_b S_a^(1/2))^(1/2)), the square root of a symmetric PSD matrix:
    computed from eigendecompositions (negative round-off eigenvalues clipped), never a non-symmetric sqrtm.
    """
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
    values, vectors = np.linalg.eigh(cov_a)
    sqrt_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = sqrt_a @ cov_b @ sqrt_a
    trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)))
    distance = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt
    return float(max(distance, 0.0))  # Only round-off makes it negative.


def frechet_distance_from_sums(sums: dict[str, Any], prefix_a: str, prefix_b: str) -> float:
    """The Frechet distance (FID on the classifier's features) between two feature sets' `moment_outputs` sums."""
    return frechet_distance(*gaussian_from_sums(sums, prefix_a), *gaussian_from_sums(sums, prefix_b))


def class_outputs(probs: jax.Array, mask: jax.Array) -> dict[str, jax.Array]:
    """Of the masked rows of `probs` [B, C]: predicted-class histogram [C], confident rows (max > 0.9), rows."""
    mask = mask.astype(jnp.float32)
    predicted = jax.nn.one_hot(jnp.argmax(probs, axis=-1), probs.shape[-1], dtype=jnp.float32)
    return {
        "class_histogram": jnp.sum(predicted * mask[:, None], axis=0),
        "confident_count": jnp.sum((jnp.max(probs, axis=-1) > CONFIDENCE) * mask),
        "count": jnp.sum(mask),
    }


def class_metrics(sums: dict[str, Any]) -> dict[str, Any]:
    """confident_fraction, class_fractions (of the predicted classes) and max_class_deviation (max |fraction - 1/C|)."""
    histogram = np.asarray(sums["class_histogram"], np.float64)
    count = float(np.asarray(sums["count"]))
    fractions = histogram / max(histogram.sum(), 1.0)
    return {
        "confident_fraction": float(np.asarray(sums["confident_count"])) / max(count, 1.0),
        "class_fractions": fractions.round(6).tolist(),
        "max_class_deviation": float(np.max(np.abs(fractions - 1.0 / len(histogram)))),
    }


def mode_outputs(probs_per_channel: jax.Array, mask: jax.Array) -> dict[str, jax.Array]:
    """Stacked MNIST: histogram [1000] of the masked rows' modes 100*c0 + 10*c1 + c2 (argmax class per channel).

    probs_per_channel: [B, 3, 10], the classifier's probabilities for each channel (as a 1-channel image).
    """
    classes = jnp.argmax(probs_per_channel, axis=-1)  # [B, 3]
    modes = classes[:, 0] * 100 + classes[:, 1] * 10 + classes[:, 2]
    return {"mode_histogram": jnp.zeros(NUM_MODES, jnp.float32).at[modes].add(mask.astype(jnp.float32))}


def mode_metrics(sums: dict[str, Any]) -> dict[str, Any]:
    """modes_covered (modes generated at least once) and mode_kl = KL(p_modes || uniform over 1000), in nats."""
    histogram = np.asarray(sums["mode_histogram"], np.float64)
    total = histogram.sum()
    if total <= 0:
        return {"modes_covered": 0, "mode_kl": float("nan")}
    p = histogram / total
    present = p > 0  # 0 log 0 = 0
    return {
        "modes_covered": int(np.count_nonzero(present)),
        "mode_kl": float(np.sum(p[present] * np.log(p[present] * len(histogram)))),
    }


# ------------------------------------------------------------------------------------------------
# Host-side helpers for benchmarks.


def image_features(classifier: QualityClassifier, images01: jax.Array) -> jax.Array:
    """Classifier features of images [B, 28, 28, C]: [B, D] for MNIST; for C > 1 (Stacked MNIST) each
    channel classified as a digit of its own, the channels' features side by side: [B, C*D]."""
    channels = images01.shape[-1]
    return jnp.concatenate([classifier.features(images01[..., c:c + 1])[1] for c in range(channels)], axis=-1)


def feature_sums(classifier: QualityClassifier, images01: np.ndarray, prefix: str, batch: int = 1000,
                 classes: bool = False) -> dict[str, np.ndarray]:
    """`moment_outputs` of `image_features` of all `images01` [N, 28, 28, C] (floats in [0, 1], or uint8
    pixels), summed in float64 over batches of `batch`; with `classes` (1 channel), `class_outputs` too."""
    images01 = np.asarray(images01)
    scale = 1 / 255 if images01.dtype == np.uint8 else 1.0

    @jax.jit
    def step(images: jax.Array, mask: jax.Array) -> dict[str, jax.Array]:
        images = images.astype(jnp.float32) * scale
        outputs = moment_outputs(prefix, image_features(classifier, images), mask)
        if classes:
            outputs.update(class_outputs(classifier.features(images)[0], mask))
        return outputs

    sums: dict[str, np.ndarray] = {}
    for start in range(0, len(images01), batch):
        chunk = images01[start:start + batch]
        mask = np.zeros(batch, np.float32)
        mask[: len(chunk)] = 1
        if len(chunk) < batch:  # Pad to one shape: one compilation.
            chunk = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]), chunk.dtype)])
        outputs = jax.device_get(step(chunk, mask))
        for name, value in outputs.items():
            sums[name] = sums.get(name, 0) + np.asarray(value, np.float64)
    return sums


def real_data_fid(classifier: QualityClassifier, train_images01: np.ndarray, test_images01: np.ndarray,
                  batch: int = 1000) -> float:
    """The FID floor: the classifier-feature Frechet distance between real test and real train images.

    Images [N, 28, 28, C] as floats in [0, 1] (uint8 pixels are accepted and scaled); C = 3 (Stacked MNIST)
    uses the per-channel features of `image_features`, as the GAN task does. FID is biased by sample size:
    compare a model's FID with the floor of sets as large as the model's (e.g. its eval samples).
    """
    sums = {**feature_sums(classifier, test_images01, "test", batch), **feature_sums(classifier, train_images01, "train", batch)}
    return frechet_distance_from_sums(sums, "test", "train")
