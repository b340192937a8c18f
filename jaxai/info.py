"""Device facts (peak FLOP/s for MFU) and `jaxai info`: what this machine runs jaxai with."""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import ml_collections

# Dense bf16 peak FLOP/s per device, from the vendors' data sheets (no sparsity).
PEAK_FLOPS_BY_KIND = {
    "H200": 989e12,
    "H100": 989e12,  # SXM; PCIe: 756e12.
    "A100": 312e12,
    "L4": 121e12,
    "A10": 125e12,
    "V100": 125e12,
    "TPU v4": 275e12,
    "TPU v5 lite": 197e12,
    "TPU v5e": 197e12,
    "TPU v5p": 459e12,
    "TPU v6 lite": 918e12,
    "TPU v6e": 918e12,
}


def peak_flops(device: jax.Device | None = None) -> float:
    """Peak FLOP/s of a device: its data-sheet figure, or for CPUs a measured matmul rate."""
    device = device or jax.devices()[0]
    if device.platform == "cpu":
        return measured_matmul_flops()
    for kind, flops in PEAK_FLOPS_BY_KIND.items():
        if kind.lower() in device.device_kind.lower():
            return flops
    return 0.0  # Unknown accelerator: MFU is not reported.


@functools.cache
def measured_matmul_flops(size: int = 1024, seconds: float = 0.3) -> float:
    """FLOP/s of a float32 [size x size] matmul on the default device (all its cores)."""
    matmul = jax.jit(lambda a, b: a @ b)
    a = jnp.ones((size, size), jnp.float32)
    matmul(a, a).block_until_ready()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        matmul(a, a).block_until_ready()
        count += 1
    return 2.0 * size**3 * count / (time.perf_counter() - start)


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


def micro_benchmark(seconds: float = 10.0) -> dict[str, float]:
    """Images/s of the seeds' MNIST CNN (batch 64, adam) and ms/iter of the baby GPT (batch 12, bf16)."""
    from jaxai.config import base_config

    cnn = base_config(task="classification", model="cnn")
    images = {"image": jnp.zeros((64, 28, 28, 1), jnp.uint8), "label": jnp.zeros((64,), jnp.int32)}
    cnn_steps = _steps_per_second(cnn, {"num_classes": 10}, images, seconds / 2)

    gpt = base_config(task="language_model", model="gpt")
    gpt.model.update(block_size=64, num_layers=4, num_heads=4, embed_dim=128, use_bias=False, dtype="bfloat16")
    gpt.optimizer.name = "adamw"
    tokens = {"inputs": jnp.zeros((12, 64), jnp.int32), "targets": jnp.zeros((12, 64), jnp.int32)}
    gpt_steps = _steps_per_second(gpt, {"vocab_size": 65, "block_size": 64}, tokens, seconds / 2)
    return {"cnn_images_per_s": 64 * cnn_steps, "gpt_ms_per_iter": 1000 / gpt_steps}


def print_info(benchmark_seconds: float = 10.0) -> None:
    """Devices, versions, the process settings in effect and (unless 0 s) a micro-benchmark."""
    import flax
    import optax

    from jaxai import runtime

    print(f"jax {jax.__version__}, flax {flax.__version__}, optax {optax.__version__}")
    print(f"devices: {jax.device_count()} x {jax.devices()[0].device_kind} ({jax.default_backend()}), processes: {jax.process_count()}")
    for key, value in runtime.describe().items():
        print(f"{key}: {value or '(none)'}")
    print(f"peak FLOP/s used for MFU: {peak_flops():.3g}")
    if benchmark_seconds > 0:
        result = micro_benchmark(benchmark_seconds)
        print(f"micro-benchmark ({benchmark_seconds:g} s, this process's XLA flags): seeds' MNIST CNN "
              f"{result['cnn_images_per_s']:,.0f} images/s, baby GPT {result['gpt_ms_per_iter']:.1f} ms/iter "
              "(this 2-core reference CPU: ~2,300 / ~45 with the allocator; experiments add per-model flags)")
