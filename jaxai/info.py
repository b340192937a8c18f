"""Device facts (peak FLOP/s for MFU) and `jaxai info`: what this machine runs jaxai with."""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp

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


def print_info() -> None:
    """Devices, versions and the process settings in effect."""
    import flax
    import optax

    from jaxai import runtime

    print(f"jax {jax.__version__}, flax {flax.__version__}, optax {optax.__version__}")
    print(f"devices: {jax.device_count()} x {jax.devices()[0].device_kind} ({jax.default_backend()}), processes: {jax.process_count()}")
    for key, value in runtime.describe().items():
        print(f"{key}: {value or '(none)'}")
    print(f"peak FLOP/s used for MFU: {peak_flops():.3g}")
