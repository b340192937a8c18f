"""Peak FLOP/s of a device, the denominator of a run's FLOP utilisation."""

from __future__ import annotations

import functools
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp


class Peak(NamedTuple):
    """A device's peak FLOP/s and where the figure comes from."""

    flops: float  # 0.0 where unknown: no utilisation is reported.
    source: str  # 'data sheet' or 'timed matmul'.

    @property
    def metric(self) -> str:
        """The name of FLOP/s over this peak: MFU against a data sheet, else a ratio to a timed matmul."""
        return "mfu" if self.source == "data sheet" else "flops_vs_matmul"


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


def peak_flops(device: jax.Device | None = None) -> Peak:
    """Peak FLOP/s of a device: its data-sheet figure, or for CPUs (no data sheet) a timed matmul.

    A CPU's ratio to a timed float32 matmul is not model-FLOPs utilisation, hence the other name.
    """
    device = device or jax.devices()[0]
    if device.platform == "cpu":
        return Peak(measured_matmul_flops(), "timed matmul")
    for kind, flops in PEAK_FLOPS_BY_KIND.items():
        if kind.lower() in device.device_kind.lower():
            return Peak(flops, "data sheet")
    return Peak(0.0, "data sheet")  # Unknown accelerator: no utilisation is reported.


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
