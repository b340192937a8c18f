"""ResNets (He et al. 2015; pre-activation: He et al. 2016) as presets of one module.

`depth` picks the published layout: 18 and 34 use basic blocks (two 3x3 convolutions), 50, 101 and
152 bottleneck blocks (1x1 reduce, 3x3, 1x1 expand x4). Stages double the width and halve the map
(stride 2 in the first block of every stage but the first); a shortcut that changes shape is a 1x1
strided convolution with BN (post-activation) or without (pre-activation).
Stems: 'imagenet' (7x7/2 conv, BN-ReLU, 3x3/2 max-pool) for large images, 'cifar' (3x3/1 conv,
BN-ReLU, no pool) for 32x32 and smaller, 'patchify' (2x2/2 conv, BN-ReLU: each pixel seen once, the
map halved at once, as ConvNeXt's stem) where a wider network at half the resolution is the better
use of a small compute budget (28x28 grayscale on a CPU). The head is global average pooling and one Dense layer.
Parameters for 1,000 classes, ImageNet stem (as torchvision): ResNet-18 11,689,512; ResNet-50 25,557,032.

BatchNorm statistics live in 'batch_stats' (momentum 0.9, i.e. PyTorch's 0.1). Under `jax.jit` with a
batch sharded over the mesh the mean and variance are over the global batch: XLA reduces across
devices, so 1 and 8 devices normalise alike. `zero_init_last_bn` starts each residual branch's last BN
scale at 0 (Goyal et al. 2017), so every block begins as the identity.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxai.errors import ConfigError
from jaxai.models.convolution import conv
from jaxai.models.mlp import dense, logits_dtype

# depth -> (block, blocks per stage)
PRESETS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
BLOCKS = ("basic", "bottleneck")
STEMS = ("cifar", "imagenet", "patchify")
_CONV_INIT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")  # He init, as torchvision.


class ResNet(nn.Module):
    """A ResNet of `depth` (or of `stage_sizes` and `block`, when given) with `width` stem features."""

    num_classes: int = 10
    depth: int = 18
    stage_sizes: Sequence[int] = ()  # Blocks per stage; () = the depth's preset.
    block: str = ""  # 'basic' | 'bottleneck'; '' = the depth's preset.
    width: int = 64  # Features of the stem and the first stage; each stage doubles it.
    stem: str = "cifar"
    preactivation: bool = False
    zero_init_last_bn: bool = True
    dtype: str = "float32"

    def layout(self) -> tuple[str, tuple[int, ...]]:
        """(block kind, blocks per stage), checked."""
        if self.stem not in STEMS:
            raise ConfigError(f"model.stem={self.stem!r}; choose one of {STEMS}.")
        if self.stage_sizes:
            block = self.block or "basic"
            stages = tuple(int(n) for n in self.stage_sizes)
        elif self.depth in PRESETS:
            block, stages = PRESETS[self.depth]
            block = self.block or block
        else:
            raise ConfigError(
                f"model.depth={self.depth} has no preset; choose one of {sorted(PRESETS)} "
                "or give model.stage_sizes (blocks per stage) and model.block."
            )
        if block not in BLOCKS:
            raise ConfigError(f"model.block={block!r}; choose one of {BLOCKS}.")
        if not stages or min(stages) < 1:
            raise ConfigError(f"model.stage_sizes={stages} needs at least one stage of at least one block.")
        return block, stages

    @nn.compact
    def __call__(self, images: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        block, stages = self.layout()
        norm = _norm_factory(train, self.dtype)
        x = images.astype(self.dtype)  # [B, H, W, C]
        if self.stem == "imagenet":
            x = conv(self.width, 2, self.dtype, kernel_size=7, use_bias=False, kernel_init=_CONV_INIT)(x)
        elif self.stem == "patchify":
            x = conv(self.width, 2, self.dtype, kernel_size=2, use_bias=False, kernel_init=_CONV_INIT)(x)
        else:
            x = conv(self.width, 1, self.dtype, kernel_size=3, use_bias=False, kernel_init=_CONV_INIT)(x)
        if not self.preactivation:
            x = nn.relu(norm()(x))
        if self.stem == "imagenet":
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        block_cls = BasicBlock if block == "basic" else Bottleneck
        for stage, num_blocks in enumerate(stages):
            for index in range(num_blocks):
                strides = 2 if stage > 0 and index == 0 else 1
                x = block_cls(self.width * 2**stage, strides, self.preactivation, self.zero_init_last_bn,
                              self.dtype)(x, train=train)
        if self.preactivation:  # The last block's output has not been normalised yet.
            x = nn.relu(norm()(x))
        x = jnp.mean(x, axis=(1, 2))  # [B, C]
        return dense(self.num_classes, self.dtype)(x).astype(logits_dtype(self.dtype))


class BasicBlock(nn.Module):
    """3x3 conv (stride s) - BN - ReLU - 3x3 conv - BN, plus the shortcut, then ReLU (or pre-activation)."""

    features: int
    strides: int
    preactivation: bool
    zero_init_last_bn: bool
    dtype: str
    expansion = 1

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        convs = [(self.features, 3, self.strides), (self.features, 3, 1)]
        return _residual(self, x, convs, train)


class Bottleneck(nn.Module):
    """1x1 conv - 3x3 conv (stride s) - 1x1 conv to 4x features, BN after each, plus the shortcut."""

    features: int
    strides: int
    preactivation: bool
    zero_init_last_bn: bool
    dtype: str
    expansion = 4

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        convs = [(self.features, 1, 1), (self.features, 3, self.strides), (self.features * 4, 1, 1)]
        return _residual(self, x, convs, train)


def _residual(block: nn.Module, x: jnp.ndarray, convs: list[tuple[int, int, int]], train: bool) -> jnp.ndarray:
    """The residual branch of `convs` (features, kernel, stride) plus the shortcut; called inside a compact block."""
    norm = _norm_factory(train, block.dtype)
    out_features = convs[-1][0]
    needs_projection = block.strides != 1 or x.shape[-1] != out_features
    last_scale_init = nn.initializers.zeros_init() if block.zero_init_last_bn else nn.initializers.ones_init()
    if block.preactivation:  # BN-ReLU-conv, shared by the branch and a projecting shortcut.
        y = nn.relu(norm()(x))
        shortcut = _projection(block, y, out_features, norm=None) if needs_projection else x
        for index, (features, kernel, strides) in enumerate(convs):
            if index:
                y = nn.relu(norm()(y))
            y = conv(features, strides, block.dtype, kernel_size=kernel, use_bias=False, kernel_init=_CONV_INIT)(y)
        return y + shortcut
    y = x
    for index, (features, kernel, strides) in enumerate(convs):
        last = index == len(convs) - 1
        y = conv(features, strides, block.dtype, kernel_size=kernel, use_bias=False, kernel_init=_CONV_INIT)(y)
        y = norm(scale_init=last_scale_init if last else nn.initializers.ones_init())(y)
        if not last:
            y = nn.relu(y)
    shortcut = _projection(block, x, out_features, norm=norm) if needs_projection else x
    return nn.relu(y + shortcut)


def _projection(block: nn.Module, x: jnp.ndarray, features: int, norm) -> jnp.ndarray:
    """The shortcut that changes shape: 1x1 conv with the block's stride (then BN, post-activation)."""
    y = conv(features, block.strides, block.dtype, kernel_size=1, use_bias=False, kernel_init=_CONV_INIT)(x)
    return norm()(y) if norm is not None else y


def _norm_factory(train: bool, dtype: str):
    """BatchNorm layers of one kind: running averages in eval, batch statistics in training."""

    def make(scale_init=nn.initializers.ones_init()) -> nn.BatchNorm:
        return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype,
                            scale_init=scale_init)

    return make
