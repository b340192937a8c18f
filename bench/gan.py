"""Benchmark: train a GAN experiment with the real `jaxai train` command; print one JSON line.

    python bench/gan.py --config experiments/mnist_dcgan.py [--classifier DIR] [--config.train.num_epochs=5 ...]
    python bench/gan.py --config experiments/stacked_mnist_dcgan.py
    python bench/gan.py --score samples.npy    # judge another program's MNIST samples (uint8 [N, 28, 28, 1])

Sample quality comes from the run's eval records, judged by the MNIST sample-quality classifier
(jaxai.tasks.sample_quality; DIR defaults to its cache dir, $JAXAI_CACHE_DIR/mnist_classifier). The
classifier is trained there first if missing (~1 min, not counted in wall_s). Prints, from the last
evaluation: fid (Frechet distance of the classifier's features, generated vs real eval images),
confident_fraction, max_class_deviation and class_fractions (MNIST), or modes_covered and mode_kl
(Stacked MNIST); fid per evaluation; fid_floor: the same distance between real test and real train
images, as many of each as the run's eval samples (FID depends on the sample size), i.e. the best a
generator can be expected to reach; the classifier checkpoint; and wall_s (the whole command),
train_s (the loop), steps/s and images/s (median over logged windows after the first), date and device.
Uses $JAXAI_DATA_DIR (default ../shared/data when it exists) for the raw MNIST files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import bench_env, run_training, summary  # noqa: E402

QUALITY_KEYS = ("fid", "confident_fraction", "max_class_deviation", "modes_covered", "mode_kl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="experiments/mnist_dcgan.py")
    parser.add_argument("--classifier", default="", help="Workdir of the MNIST classifier (default: its cache dir).")
    parser.add_argument("--keep_workdir", default="", help="Train into this directory and keep it.")
    parser.add_argument("--score", default="", help="Train nothing: judge the MNIST samples in this .npy file "
                        "(uint8 [N, 28, 28, 1], e.g. from bench/peers/torch_dcgan.py --samples_out) as a run's are.")
    args, overrides = parser.parse_known_args()
    if args.score:
        print(json.dumps(score_file(args.score, args.classifier)))
        return

    from jaxai.config import load_config
    from jaxai.tasks import sample_quality

    config = load_config(args.config, [o[len("--config."):] for o in overrides if o.startswith("--config.")])
    data_dir = config.data.data_dir or bench_env().get("JAXAI_DATA_DIR", "")
    classifier_dir = sample_quality.ensure_quality_classifier(
        args.classifier or sample_quality.default_classifier_dir(), data_dir=data_dir)
    records, wall_s = run_training(
        args.config, [f"--config.task.quality_classifier={classifier_dir}", *overrides], args.keep_workdir)
    result = report(args.config, overrides, records, wall_s)
    classifier = sample_quality.load_quality_classifier(classifier_dir)
    floor, floor_samples = real_floor(classifier, stacked="stacked" in config.data.name, seed=config.seed,
                                      num_samples=result.pop("eval_samples"), data_dir=data_dir,
                                      tfds_dir=config.data.tfds_dir)
    result.update(fid_floor=round(floor, 4), fid_floor_samples=floor_samples, classifier=classifier.path)
    print(json.dumps(result))


def report(config: str, overrides: list[str], records: list[dict], wall_s: float) -> dict:
    """This benchmark's JSON fields from a GAN run's metrics records."""
    evals = [r for r in records if r["split"] == "eval"]
    if not evals:
        sys.exit("The run logged no evaluation; nothing to report.")
    last = evals[-1]
    for name in ("fid", "frechet_distance"):  # The task's name for the MNIST-feature FID.
        if name in last:
            fid_name = name
            break
    else:
        fid_name = None
    result = {"bench": "gan", "config": config, "overrides": overrides, "step": last["step"]}
    if fid_name is not None:
        result["fid"] = round(last[fid_name], 4)
        result["fid_by_eval"] = [round(r[fid_name], 3) for r in evals if fid_name in r]
    for name in QUALITY_KEYS[1:]:
        if name in last:
            result[name] = round(last[name], 4) if isinstance(last[name], float) else last[name]
    if "class_fractions" in last:
        result["class_fractions"] = [round(f, 4) for f in last["class_fractions"]]
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):
        if name in last:
            result[f"eval_{name}"] = round(last[name], 4)
    result.update(summary(records, wall_s))
    # The samples per evaluation: one per real eval image (the eval split, or its first eval_batches batches).
    result["eval_samples"] = int(last.get("num_examples") or last.get("count") or 10_000)
    return result


def score_file(path: str, classifier_dir: str = "") -> dict:
    """Sample quality of the MNIST samples in a .npy file, against the real test set; the FID floor beside it."""
    import numpy as np

    from jaxai.data.mnist import load_mnist
    from jaxai.tasks import sample_quality

    data_dir = bench_env().get("JAXAI_DATA_DIR", "")
    classifier_dir = sample_quality.ensure_quality_classifier(
        classifier_dir or sample_quality.default_classifier_dir(), data_dir=data_dir)
    classifier = sample_quality.load_quality_classifier(classifier_dir)
    fakes = np.load(path)
    test = load_mnist("test", data_dir=data_dir or None)["image"][: len(fakes)]
    sums = {**sample_quality.feature_sums(classifier, fakes, "fake", classes=True),
            **sample_quality.feature_sums(classifier, test, "real")}
    result = {"bench": "gan_score", "samples": path, "num_samples": len(fakes),
              "fid": round(sample_quality.frechet_distance_from_sums(sums, "real", "fake"), 4)}
    result.update(sample_quality.class_metrics(sums))
    floor, floor_samples = real_floor(classifier, stacked=False, seed=0, num_samples=len(fakes), data_dir=data_dir)
    result.update(fid_floor=round(floor, 4), fid_floor_samples=floor_samples, classifier=classifier.path)
    return result


def real_floor(classifier, stacked: bool, seed: int, num_samples: int, data_dir: str = "",
               tfds_dir: str = "") -> tuple[float, int]:
    """(FID of real test vs real train images, samples per side): the floor of the run's FID figure.

    Stacked MNIST: the stacked test and train images of the run's seed, features per channel (as the task).
    """
    from jaxai.data.mnist import load_mnist
    from jaxai.tasks.sample_quality import real_data_fid

    train = load_mnist("train", data_dir=data_dir or None, tfds_dir=tfds_dir or None)
    test = load_mnist("test", data_dir=data_dir or None, tfds_dir=tfds_dir or None)
    if stacked:
        from jaxai.data.stacked_mnist import SPLIT_SIZES, stack_digits

        train = stack_digits(train, SPLIT_SIZES["train"], seed=seed, split="train")
        test = stack_digits(test, SPLIT_SIZES["test"], seed=seed, split="test")
    num = min(num_samples, len(test["image"]))
    return real_data_fid(classifier, train["image"][:num], test["image"][:num]), num


if __name__ == "__main__":
    main()
