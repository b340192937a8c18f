"""Benchmark: jaxai's ResNet-18 (CIFAR stem) training step on synthetic 32x32x3 images; one JSON line.

    python bench/resnet.py --seconds 30 [--xla_cpu_flags=...]

The twin of bench/peers/torch_resnet.py (issue "Vision": ResNet-18 training images/s, jaxai against
PyTorch eager). The step is the library's own: `base_config(task='classification', model='resnet')`
with model.depth=18, model.stem='cifar', optimizer momentum 0.9 (not Nesterov) at lr 0.1, constant
schedule, batch 128; `jaxai.tasks.classification.build` makes the task (BN in training mode, uint8
pixels scaled to [0, 1] inside the step, no augmentation) and its train_step is jitted as
`jaxai train` jits it (jaxai/train/build.py: mesh, state shardings, donated state, the step's rng
folded from the step number). No dataset is read: a fixed random uint8 set of --num_images images
and labels is placed on the device once and its batches are taken in order, so the figure is the
step alone (the real loop's host-side batch fetch overlaps the dispatched steps).

The process runs as `jaxai train` does: it re-executes itself once with jaxai's allocator preloaded
(`runtime.ensure_allocator`), and XLA gets the experiment's flags, `config.runtime.xla_cpu_flags`
(the resnet family's measured default, `runtime.FAMILY_XLA_CPU_FLAGS`), unless --xla_cpu_flags
names others ('' for XLA's defaults).

Timing (bench/timed_windows.py, as the peer): the step is compiled ahead of time (compile_s),
WARMUP_STEPS steps run untimed, then
training runs in windows of ~2 s of step time, each step waited for (as the PyTorch peer's
loss.item() does); --seconds stops at the first window end past that many training seconds.
Reported: images_per_s (median over windows), images_per_s_best, loss (the last window's mean),
num_parameters (the PyTorch peer's is equal: 11,173,962), compile_s, train_s, wall_s (the process
after its re-execution, imports included), allocator, XLA flags, device.
"""

from __future__ import annotations

import time

_PROCESS_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from jaxai import runtime  # noqa: E402  (no JAX import: safe before the re-execution)
from timed_windows import timed_windows  # noqa: E402  (bench/, this script's directory)

FAMILY = "family"  # --xla_cpu_flags default: the experiment's own flags.


def make_config(args):
    from jaxai.config import base_config

    config = base_config(task="classification", model="resnet")
    config.model.depth = 18
    config.model.stem = "cifar"
    config.optimizer.name = "momentum"
    config.optimizer.momentum = 0.9
    config.optimizer.learning_rate = args.learning_rate
    config.data.batch_size = args.batch_size
    config.mesh.num_devices = 1
    if args.xla_cpu_flags != FAMILY:
        config.runtime.xla_cpu_flags = args.xla_cpu_flags
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="Training seconds, after compilation and warm-up.")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--num_images", type=int, default=2560, help="Size of the fixed synthetic dataset.")
    parser.add_argument("--learning_rate", type=float, default=0.1)
    parser.add_argument("--xla_cpu_flags", default=FAMILY,
                        help="XLA:CPU flags for this run; default: the resnet family's (config.runtime.xla_cpu_flags).")
    args = parser.parse_args()
    runtime.ensure_allocator(sys.argv, script=os.path.abspath(__file__))  # May re-execute this script.

    config = make_config(args)
    runtime.initialize(config)  # XLA_FLAGS, before the backend starts.

    import jax
    import numpy as np

    from jaxai import sharding, tasks
    from jaxai.tasks.base import parameter_counts
    from jaxai.train.build import TRAIN_STREAM, mesh_context

    mesh = sharding.make_mesh(config.mesh)
    total_steps = 1_000_000  # Only schedules read it; this one is constant.
    task = tasks.task_module("classification").build(config, {"num_classes": 10, "image_shape": (32, 32, 3)}, total_steps)

    rng = np.random.default_rng(0)
    steps_per_epoch = args.num_images // args.batch_size
    images = rng.integers(0, 256, (steps_per_epoch, args.batch_size, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, (steps_per_epoch, args.batch_size), dtype=np.int32)
    batches = [sharding.to_global_batch({"image": images[i], "label": labels[i]}, mesh) for i in range(steps_per_epoch)]

    batch_sharding, replicated = sharding.batch_sharding(mesh), sharding.replicated(mesh)
    train_rng = jax.random.fold_in(jax.random.key(config.seed), TRAIN_STREAM)

    def init(key, batch):
        return sharding.strip_axis_names(task.init(key, batch))

    def train_step(state, batch):
        return task.train_step(state, batch, jax.random.fold_in(train_rng, state.step))

    with mesh_context(mesh):
        boxed = jax.eval_shape(task.init, jax.random.key(0), batches[0])
        state_sharding = sharding.state_shardings(boxed, mesh)
        state = jax.jit(init, in_shardings=(replicated, batch_sharding), out_shardings=state_sharding)(
            jax.random.key(config.seed), batches[0])
        num_parameters = parameter_counts(task, state)["model"]
        start = time.perf_counter()
        step_fn = jax.jit(train_step, in_shardings=(state_sharding, batch_sharding),
                          out_shardings=(state_sharding, replicated), donate_argnums=0).lower(state, batches[0]).compile()
        compile_s = time.perf_counter() - start

    def timed_step(step: int) -> float:
        nonlocal state
        state, metrics = step_fn(state, batches[step % steps_per_epoch])
        return float(metrics["loss"])  # Waits for the step.

    timing = timed_windows(timed_step, args.batch_size, args.seconds)
    print(json.dumps({
        "bench": "jaxai_resnet18",
        "recipe": (f"resnet18 cifar stem, momentum 0.9 lr {args.learning_rate:g}, batch {args.batch_size}, "
                   f"synthetic 32x32x3, {args.seconds:g} s"),
        **{key: timing[key] for key in ("images_per_s", "images_per_s_best", "windows", "loss", "steps")},
        "compile_s": round(compile_s, 2),
        "train_s": timing["train_s"],
        "wall_s": round(time.perf_counter() - _PROCESS_START, 2),
        "num_parameters": num_parameters,
        "device": str(jax.devices()[0]),
        **runtime.describe(),
    }))


if __name__ == "__main__":
    main()
