"""VGG (Simonyan & Zisserman 2014): stacks of 3x3 convolutions and 2x2 max-pools, with or without BN.

`depth` 11 or 16 (configurations A and D). Head 'imagenet': average-pool to 7x7 (adaptive, as
torchvision), Dense 4096-ReLU-Dropout twice, then the classes: VGG-16 for 1,000 classes has
138,357,544 parameters. Head 'small' for 32x32 and smaller images: global average pooling and one
Dense layer. A pool is skipped where the map is already 1 pixel tall (small images, deep stacks).
With BN the convolutions have no bias, which BN would cancel (VGG-16-BN: 4,224 parameters fewer
than torchvision's vgg16_bn).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxai.errors import ConfigError
from jaxai.models.cnn import max_pool_2x2
from jaxai.models.convolution import conv
from jaxai.models.mlp import dense, logits_dtype

# depth -> convolution widths per stage (each stage ends in a 2x2 max-pool).
PRESETS = {
    11: ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    16: ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
}
HEADS = ("imagenet", "small")
_CONV_INIT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


class VGG(nn.Module):
    """VGG-`depth`, its widths scaled by `width_multiplier`."""

    num_classes: int = 10
    depth: int = 16
    batch_norm: bool = True
    head: str = "small"
    width_multiplier: float = 1.0
    dropout_rate: float = 0.5  # In the 'imagenet' head.
    dtype: str = "float32"

    @nn.compact
    def __call__(self, images: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        if self.depth not in PRESETS:
            raise ConfigError(f"model.depth={self.depth} is not a VGG; choose one of {sorted(PRESETS)}.")
        if self.head not in HEADS:
            raise ConfigError(f"model.head={self.head!r}; choose one of {HEADS}.")
        x = images.astype(self.dtype)  # [B, H, W, C]
        for stage in PRESETS[self.depth]:
            for width in stage:
                features = max(1, int(round(width * self.width_multiplier)))
                x = conv(features, 1, self.dtype, use_bias=not self.batch_norm, kernel_init=_CONV_INIT)(x)
                if self.batch_norm:
                    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=self.dtype)(x)
                x = nn.relu(x)
            if x.shape[1] > 1 and x.shape[2] > 1:
                x = max_pool_2x2(x)
        if self.head == "small":
            x = jnp.mean(x, axis=(1, 2))  # [B, C]
        else:
            x = adaptive_average_pool(x, 7).reshape((x.shape[0], -1))  # [B, 7*7*C]
            for _ in range(2):
                x = nn.relu(dense(4096, self.dtype)(x))
                x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return dense(self.num_classes, self.dtype)(x).astype(logits_dtype(self.dtype))


def adaptive_average_pool(x: jnp.ndarray, size: int) -> jnp.ndarray:
    """[B, H, W, C] -> [B, size, size, C]: cell i averages rows floor(i*H/size) .. ceil((i+1)*H/size) - 1
    (PyTorch's AdaptiveAvgPool2d; a smaller map is repeated)."""

    def cells(length: int) -> list[tuple[int, int]]:
        return [(i * length // size, -(-(i + 1) * length // size)) for i in range(size)]

    rows = [jnp.stack([x[:, r0:r1, c0:c1].mean(axis=(1, 2)) for c0, c1 in cells(x.shape[2])], axis=1)
            for r0, r1 in cells(x.shape[1])]
    return jnp.stack(rows, axis=1)
