"""Peer benchmark: ResNet-18 with the CIFAR stem, the twin of jaxai's, trained in PyTorch eager on the CPU; one JSON line.

    pip install -e '.[peers]'          # torch==2.13.0, CPU build; never a dependency of jaxai itself
    python bench/peers/torch_resnet.py --seconds 30

Model: `jaxai.models.resnet.ResNet(num_classes=10, depth=18, stem='cifar')` layer for layer. Stem:
Conv2d(3 -> 64, 3x3, stride 1, padding 1, no bias) -> BatchNorm2d -> ReLU, no max-pool. Four stages of
two basic blocks, 64/128/256/512 features, the first block of stages 2-4 with stride 2 (32 -> 16 -> 8
-> 4 pixels); a block is conv3x3(stride s) -> BN -> ReLU -> conv3x3 -> BN, plus the shortcut (identity,
or a 1x1 stride-s conv + BN where the shape changes), then ReLU. Global average pool, Linear(512 -> 10)
(PyTorch's default init).
11,173,962 parameters, as jaxai's (bench/resnet.py reports its count). Convolutions He-normal
(fan_out, as torchvision and jaxai), the last BN scale of every block zero at init (jaxai's
zero_init_last_bn), BN momentum 0.1 (flax's 0.9) and eps 1e-5, in training mode throughout.
(Stride-2 3x3 convolutions pad 1 pixel each side here and (0, 1) under jaxai's 'SAME': same shapes
and FLOPs.)
Recipe: SGD momentum 0.9 (not Nesterov), lr 0.1, no weight decay, cross-entropy, batch 128.
Data: a fixed random uint8 tensor of --num_images (2,560) images 3x32x32 and labels from a seeded
generator, batches taken in order and cycled, scaled to [0, 1] floats inside the timed step (as
jaxai's preprocessing is inside its jitted step).
Memory format: --memory_format channels_last (the default) or contiguous (NCHW). On the 2-core
x86 VM, shared with another training, two short runs each gave channels_last 9.9 and 14.9 images/s,
contiguous 12.5 and 13.8: a tie within the noise. channels_last is the default, as the format
oneDNN's CPU convolutions are laid out for (and the NHWC layout jaxai's step uses).

Timing (bench/timed_windows.py, as jaxai's side): WARMUP_STEPS steps first (not timed, still
trained; the first step is several times slower),
then training in windows of ~2 s of step time (a window holds whole steps: on 2 cores one step of
~7-13 s is already a window); --seconds stops at the first window end past that many training
seconds. Reported: images_per_s (median over windows) and images_per_s_best, loss (mean over the last
window), train_s, wall_s (the whole process, torch import included), num_parameters, memory format,
torch version and threads.
"""

from __future__ import annotations

import time

_PROCESS_START = time.perf_counter()  # Before importing torch: wall_s counts the import too.

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # bench/: the shared timing.
from timed_windows import timed_windows  # noqa: E402



def batch_norm(channels: int, zero_scale: bool = False) -> nn.BatchNorm2d:
    norm = nn.BatchNorm2d(channels, momentum=0.1, eps=1e-5)
    if zero_scale:  # jaxai's zero_init_last_bn: every block starts as the identity.
        nn.init.zeros_(norm.weight)
    return norm


def conv3x3(in_features: int, out_features: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(in_features, out_features, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, in_features: int, features: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_features, features, stride)
        self.bn1 = batch_norm(features)
        self.conv2 = conv3x3(features, features, 1)
        self.bn2 = batch_norm(features, zero_scale=True)
        self.shortcut = nn.Identity()
        if stride != 1 or in_features != features:
            self.shortcut = nn.Sequential(nn.Conv2d(in_features, features, 1, stride=stride, bias=False),
                                          batch_norm(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 10, width: int = 64, stages: tuple[int, ...] = (2, 2, 2, 2)) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv3x3(3, width, 1), batch_norm(width), nn.ReLU())  # CIFAR stem: no pool.
        blocks, in_features = [], width
        for stage, num_blocks in enumerate(stages):
            features = width * 2**stage
            for index in range(num_blocks):
                blocks.append(BasicBlock(in_features, features, 2 if stage > 0 and index == 0 else 1))
                in_features = features
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(in_features, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(x.mean(dim=(2, 3)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="Training seconds, after the warm-up.")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--num_images", type=int, default=2560, help="Size of the fixed synthetic dataset.")
    parser.add_argument("--learning_rate", type=float, default=0.1)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--memory_format", choices=("channels_last", "contiguous"), default="channels_last")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 keeps torch's default.")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    memory_format = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    data = torch.Generator().manual_seed(args.seed)
    images = torch.randint(0, 256, (args.num_images, 3, 32, 32), dtype=torch.uint8, generator=data)
    labels = torch.randint(0, 10, (args.num_images,), generator=data)
    model = ResNet18().to(memory_format=memory_format)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.learning_rate, momentum=args.momentum, nesterov=False)
    steps_per_epoch = args.num_images // args.batch_size

    def train_step(step: int) -> float:
        start = (step % steps_per_epoch) * args.batch_size
        x = images[start:start + args.batch_size].float().div_(255.0).contiguous(memory_format=memory_format)
        loss = F.cross_entropy(model(x), labels[start:start + args.batch_size])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    timing = timed_windows(train_step, args.batch_size, args.seconds)
    print(json.dumps({
        "bench": "torch_resnet18",
        "recipe": (f"resnet18 cifar stem, sgd momentum {args.momentum:g} lr {args.learning_rate:g}, "
                   f"batch {args.batch_size}, synthetic 32x32x3, {args.seconds:g} s"),
        **{key: timing[key] for key in ("images_per_s", "images_per_s_best", "windows", "loss", "steps")},
        "train_s": timing["train_s"],
        "wall_s": round(time.perf_counter() - _PROCESS_START, 2),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "memory_format": args.memory_format,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "ld_preload": os.environ.get("LD_PRELOAD", ""),
    }))


if __name__ == "__main__":
    main()
