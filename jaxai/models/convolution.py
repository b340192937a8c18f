"""Convolutions for the image families: 'SAME' convolutions with logical axis names, and a transposed
convolution that XLA:CPU runs on its fast path.

`ConvTranspose` has nn.ConvTranspose's parameters and values ('SAME' padding, kernel not flipped),
but computes a stride-s transposed convolution as s x s stride-1 convolutions, one per output phase,
interleaved (sub-pixel). XLA:CPU runs the usual form, a convolution over the zero-dilated input, on a
slow path, worst in the kernel gradient: the DCGAN generator's 7->14 layer's took ~350 ms of a
~490 ms step; its phases take ~30 ms, and their gradients are plain convolutions too. (The same
trick in reverse for strided convolutions, space-to-depth, was slower here: bench/RESULTS.md.)
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def same_transpose_padding(kernel_size: int, stride: int) -> int:
    """Left padding of lax.conv_transpose's 'SAME' mode (jax's `_conv_transpose_padding`)."""
    if stride > kernel_size - 1:
        return kernel_size - 1
    return -(-(kernel_size + stride - 2) // 2)


def phase_taps(kernel_size: int, stride: int, phase: int) -> tuple[list[int], tuple[int, int]]:
    """The kernel taps feeding output positions stride*m + phase, and the (low, high) input padding.

    Output y[stride*m + phase] = sum over those taps t of kernel[t] * x[m + (phase + t - pad) / stride].
    """
    pad = same_transpose_padding(kernel_size, stride)
    taps = [t for t in range(kernel_size) if (phase + t - pad) % stride == 0]
    offsets = [(phase + t - pad) // stride for t in taps]
    return taps, (-offsets[0], offsets[-1])


def conv_transpose_by_phases(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """lax.conv_transpose(x, kernel, (stride, stride), 'SAME') for [B, H, W, Ci] x and [K, K, Ci, Co] kernel."""
    kernel_size = kernel.shape[0]
    rows = []
    for row_phase in range(stride):
        row_taps, row_padding = phase_taps(kernel_size, stride, row_phase)
        columns = []
        for column_phase in range(stride):
            column_taps, column_padding = phase_taps(kernel_size, stride, column_phase)
            sub_kernel = kernel[jnp.asarray(row_taps)][:, jnp.asarray(column_taps)]  # [kr, kc, Ci, Co]
            columns.append(jax.lax.conv_general_dilated(
                x, sub_kernel, (1, 1), (row_padding, column_padding), dimension_numbers=_DIMENSIONS))
        rows.append(jnp.stack(columns, axis=3))  # [B, H, W, stride(column phase), Co]
    y = jnp.stack(rows, axis=2)  # [B, H, stride(row phase), W, stride(column phase), Co]
    batch, height, _, width, _, channels = y.shape
    return y.reshape(batch, height * stride, width * stride, channels)  # [B, stride*H, stride*W, Co]


class ConvTranspose(nn.Module):
    """nn.ConvTranspose with 'SAME' padding and square kernels, by sub-pixel phases (same params, same values)."""

    features: int
    kernel_size: int
    strides: int = 1
    use_bias: bool = True
    dtype: Any = "float32"
    kernel_init: Any = nn.initializers.lecun_normal()
    bias_init: Any = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", self.kernel_init, (self.kernel_size, self.kernel_size, x.shape[-1], self.features))
        x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
        y = conv_transpose_by_phases(x, kernel, self.strides)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,)).astype(self.dtype)
        return y


def conv(
    features: int,
    strides: int,
    dtype: str,
    *,
    kernel_size: int = 3,
    transpose: bool = False,
    use_bias: bool = True,
    kernel_init=nn.initializers.lecun_normal(),
    logical_axes: bool = True,
) -> nn.Module:
    """A square 'SAME' (transposed) convolution whose kernel carries logical axis names.

    `logical_axes=False` leaves the kernel unnamed (replicated), for `nn.SpectralNorm`, which
    cannot read boxed parameters.
    """
    if logical_axes:
        kernel_init = nn.with_logical_partitioning(kernel_init, (None, None, "conv_in", "conv_out"))
    if transpose:
        return ConvTranspose(features, kernel_size, strides, use_bias=use_bias, dtype=dtype, kernel_init=kernel_init)
    return nn.Conv(
        features, (kernel_size, kernel_size), strides=(strides, strides), padding="SAME",
        use_bias=use_bias, dtype=dtype, kernel_init=kernel_init,
    )
