"""`jaxai info`: what this machine runs jaxai with, and a micro-benchmark to compare machines."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections

from jaxai.flops import peak_flops

def _steps_per_second(config: ml_collections.ConfigDict, info: dict, batch: dict, seconds: float) -> float:
    """Training steps per second of a task's real jitted step on a fixed batch (after compiling)."""
    from jaxai import sharding, tasks

    task = tasks.task_module(config.task.name).build(config, info, total_steps=10_000)
    rng = jax.random.key(0)
    state = jax.jit(lambda batch: sharding.strip_axis_names(task.init(rng, batch)))(batch)
    step = jax.jit(task.train_step, donate_argnums=0)
    state, metrics = step(state, batch, rng)  # Compiles.
    jax.block_until_ready(metrics)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        state, metrics = step(state, batch, rng)
        count += 1
        if count % 10 == 0:
            jax.block_until_ready(metrics)
    jax.block_until_ready(metrics)
    return count / (time.perf_counter() - start)


def _family_steps_per_second(family: str, seconds: float) -> float:
    """Steps/s of the reference model of `family` ('cnn' or 'gpt'), in this process."""
    from jaxai.config import base_config

    if family == "cnn":  # The Keras MNIST CNN and recipe: batch 64, adam.
        config = base_config(task="classification", model="cnn")
        batch = {"image": jnp.zeros((64, 28, 28, 1), jnp.uint8), "label": jnp.zeros((64,), jnp.int32)}
        return _steps_per_second(config, {"num_classes": 10}, batch, seconds)
    # nanoGPT's baby GPT as experiments/shakespeare_char_gpt_cpu.py runs it: batch 12, bf16, AdamW.
    config = base_config(task="language_model", model="gpt")
    config.model.update(block_size=64, num_layers=4, num_heads=4, embed_dim=128, use_bias=False, dtype="bfloat16")
    config.optimizer.update(name="adamw", weight_decay=0.1, grad_clip_norm=1.0, flatten=True)
    batch = {"inputs": jnp.zeros((12, 64), jnp.int32), "targets": jnp.zeros((12, 64), jnp.int32)}
    return _steps_per_second(config, {"vocab_size": 65, "block_size": 64}, batch, seconds)


def micro_benchmark(seconds: float = 10.0) -> dict[str, float]:
    """Images/s of the Keras MNIST CNN and ms/iter of the baby GPT, each with its family's XLA flags.

    XLA reads its flags once per process, so each model runs in a child process whose XLA_FLAGS
    add the flags its experiments get (`jaxai.runtime.FAMILY_XLA_CPU_FLAGS`); the allocator
    preloaded in this process is inherited.
    """
    from jaxai import runtime

    results = {}
    for family in ("cnn", "gpt"):
        flags = runtime.family_xla_cpu_flags(family).split()
        env = dict(os.environ, XLA_FLAGS=runtime.merge_xla_flags(os.environ.get("XLA_FLAGS", ""), flags))
        command = [sys.executable, "-m", "jaxai.info", family, str(seconds / 2)]
        completed = subprocess.run(command, env=env, capture_output=True, text=True)
        if completed.returncode:
            raise RuntimeError(f"The {family} micro-benchmark failed:\n{completed.stderr[-2000:]}")
        results[family] = float(completed.stdout.split()[-1])
    return {"cnn_images_per_s": 64 * results["cnn"], "gpt_ms_per_iter": 1000 / results["gpt"]}


def print_info(benchmark_seconds: float = 10.0) -> None:
    """Devices, versions, the process settings in effect and (unless 0 s) a micro-benchmark."""
    import flax
    import optax

    from jaxai import runtime

    print(f"jax {jax.__version__}, flax {flax.__version__}, optax {optax.__version__}")
    print(f"devices: {jax.device_count()} x {jax.devices()[0].device_kind} ({jax.default_backend()}), processes: {jax.process_count()}")
    for key, value in runtime.describe().items():
        print(f"{key}: {value or '(none)'}")
    peak = peak_flops()
    print(f"peak FLOP/s for utilisation: {peak.flops:.3g} ({peak.source})")
    if benchmark_seconds > 0:
        result = micro_benchmark(benchmark_seconds)
        print(f"micro-benchmark ({benchmark_seconds:g} s, each model with its family's XLA flags): Keras MNIST CNN "
              f"{result['cnn_images_per_s']:,.0f} images/s, baby GPT {result['gpt_ms_per_iter']:.1f} ms/iter "
              "(jaxai's 2-core reference CPU, AMD EPYC Zen 4: ~4,500-5,700 images/s, ~22-27 ms/iter)")


if __name__ == "__main__":  # The micro-benchmark's child process: `python -m jaxai.info cnn|gpt SECONDS`.
    print(_family_steps_per_second(sys.argv[1], float(sys.argv[2])))
