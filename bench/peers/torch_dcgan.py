"""Peer benchmark: a DCGAN for 28x28x1 MNIST, the twin of jaxai's, in PyTorch eager on the CPU; one JSON line.

    pip install -e '.[peers]'          # torch==2.13.0, CPU build; never a dependency of jaxai itself
    python bench/peers/torch_dcgan.py --seconds 30    # or --epochs N

Generator (latent 100, F=64): Linear(100 -> 7*7*2F, no bias) -> reshape [B, 2F, 7, 7] ->
BatchNorm2d(2F) -> ReLU -> ConvTranspose2d(2F -> F, 4, stride 2, padding 1, no bias) -> BatchNorm2d(F)
-> ReLU -> ConvTranspose2d(F -> 1, 4, stride 2, padding 1) -> tanh (7 -> 14 -> 28).
Discriminator: Conv2d(1 -> F, 4, stride 2, padding 1) -> LeakyReLU(0.2) -> Conv2d(F -> 2F, 4, stride 2,
padding 1, no bias) -> BatchNorm2d(2F) -> LeakyReLU(0.2) -> flatten -> Linear(2F*7*7 -> 1) (a logit).
BatchNorm: momentum 0.1 (flax's 0.9), eps 1e-5, scale 1 and bias 0 at init; conv and linear weights
N(0, 0.02), their biases 0. Parameters: generator 759,681, discriminator 138,689.
Recipe (pytorch/examples dcgan/main.py's step): per batch, z ~ N(0, I) and fake = G(z) once; the
discriminator step on BCE-with-logits(D(real), 1) + BCE-with-logits(D(fake.detach()), 0) (two
separate D calls, so BatchNorm normalises real and fake apart); then the generator step on the
non-saturating loss BCE-with-logits(D(fake), 1) through the updated discriminator. Both Adam(lr 2e-4,
betas (0.5, 0.999)), batch 64, training mode throughout. Data: the real MNIST training images scaled
to [-1, 1], read from the raw IDX .gz files in $JAXAI_DATA_DIR/mnist (default ../shared/data/mnist
beside the repository), shuffled every epoch by a seeded torch.Generator, the last partial batch
dropped (937 steps an epoch).

Timing: WARMUP_STEPS steps first (not timed, still trained), then training in windows of ~2 s of
step time (batch gather included); --seconds stops at the first window end past that many training
seconds, --epochs after that many epochs (a last window under 1 s joins the one before).
Reported: images_per_s (real images consumed per second, batch size per D+G step; median over
windows) and images_per_s_best, d_loss and g_loss (means over the last window), train_s, wall_s (the
whole process, torch import included), the two parameter counts, torch version and threads.
"""

from __future__ import annotations

import time

_PROCESS_START = time.perf_counter()  # Before importing torch: wall_s counts the import too.

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_mnist_cnn import load_split  # noqa: E402

WARMUP_STEPS = 5
WINDOW_S = 2.0


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, momentum=0.1, eps=1e-5)  # Default affine init: scale 1, bias 0.


def dcgan_init(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


class Generator(nn.Module):
    def __init__(self, latent: int = 100, features: int = 64) -> None:
        super().__init__()
        self.project = nn.Linear(latent, 7 * 7 * 2 * features, bias=False)
        self.net = nn.Sequential(
            batch_norm(2 * features), nn.ReLU(),
            nn.ConvTranspose2d(2 * features, features, 4, stride=2, padding=1, bias=False),  # 7 -> 14
            batch_norm(features), nn.ReLU(),
            nn.ConvTranspose2d(features, 1, 4, stride=2, padding=1),  # 14 -> 28
            nn.Tanh(),
        )
        self.features = features
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(z).view(-1, 2 * self.features, 7, 7))


class Discriminator(nn.Module):
    def __init__(self, features: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, features, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 28 -> 14
            nn.Conv2d(features, 2 * features, 4, stride=2, padding=1, bias=False),  # 14 -> 7
            batch_norm(2 * features), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * features * 7 * 7, 1),
        )
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def write_samples(generator: Generator, path: str, latent: int, seed: int, num: int = 10_000) -> None:
    """`num` samples of the eval-mode generator as uint8 pixels [num, 28, 28, 1] in a .npy file."""
    import numpy as np

    generator.eval()
    noise = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        images = torch.cat([generator(torch.randn(1000, latent, generator=noise)) for _ in range(num // 1000)])
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
    np.save(path, pixels.numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="Training seconds, after the warm-up.")
    parser.add_argument("--epochs", type=int, default=0, help="Train this many epochs instead of --seconds.")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=2e-4)
    parser.add_argument("--latent", type=int, default=100)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 keeps torch's default.")
    parser.add_argument("--samples_out", default="", help="After training, write 10,000 samples (eval-mode generator, "
                        "uint8 [N, 28, 28, 1]) to this .npy file, for jaxai's sample-quality classifier to judge.")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_x = load_split("train")[0] * 2.0 - 1.0  # [N, 1, 28, 28] in [-1, 1]
    generator, discriminator = Generator(args.latent, args.features), Discriminator(args.features)
    g_opt = torch.optim.Adam(generator.parameters(), lr=args.learning_rate, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=args.learning_rate, betas=(0.5, 0.999))
    shuffle = torch.Generator().manual_seed(args.seed)
    steps_per_epoch = len(train_x) // args.batch_size
    # Untimed warm-up steps; an --epochs run keeps at least one timed step.
    warmup = min(WARMUP_STEPS, args.epochs * steps_per_epoch - 1) if args.epochs else WARMUP_STEPS
    ones, zeros = torch.ones(args.batch_size), torch.zeros(args.batch_size)

    def train_step(index: torch.Tensor) -> tuple[float, float]:
        real = train_x[index]
        fake = generator(torch.randn(args.batch_size, args.latent))
        d_loss = (F.binary_cross_entropy_with_logits(discriminator(real), ones)
                  + F.binary_cross_entropy_with_logits(discriminator(fake.detach()), zeros))
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        g_loss = F.binary_cross_entropy_with_logits(discriminator(fake), ones)  # Non-saturating.
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        return d_loss.item(), g_loss.item()

    windows = []  # [images, seconds, summed d_loss, summed g_loss, steps]
    current = [0, 0.0, 0.0, 0.0, 0]
    train_s, step, epoch, done = 0.0, 0, 0, False
    while not done:
        order = torch.randperm(len(train_x), generator=shuffle)
        for i in range(steps_per_epoch):
            start = time.perf_counter()
            d_loss, g_loss = train_step(order[i * args.batch_size:(i + 1) * args.batch_size])
            seconds = time.perf_counter() - start
            step += 1
            if step <= warmup:
                continue
            current = [current[0] + args.batch_size, current[1] + seconds, current[2] + d_loss,
                       current[3] + g_loss, current[4] + 1]
            train_s += seconds
            if current[1] >= WINDOW_S:
                windows.append(current)
                current = [0, 0.0, 0.0, 0.0, 0]
                if not args.epochs and train_s >= args.seconds:
                    done = True
                    break
        epoch += 1
        done = done or (args.epochs and epoch >= args.epochs)
    if current[0]:  # The tail of an --epochs run.
        if current[1] < 1.0 and windows:
            windows[-1] = [a + b for a, b in zip(windows[-1], current)]
        else:
            windows.append(current)

    if args.samples_out:
        write_samples(generator, args.samples_out, args.latent, args.seed)
    speeds = [w[0] / w[1] for w in windows]
    last = windows[-1]
    print(json.dumps({
        "bench": "torch_dcgan",
        "recipe": (f"adam {args.learning_rate:g} betas (0.5, 0.999), batch {args.batch_size}, 1 D + 1 G step, "
                   + (f"{args.epochs} epochs" if args.epochs else f"{args.seconds:g} s")),
        "images_per_s": round(statistics.median(speeds)),
        "images_per_s_best": round(max(speeds)),
        "windows": len(windows),
        "d_loss": round(last[2] / last[4], 4),
        "g_loss": round(last[3] / last[4], 4),
        "steps": step,
        "epochs": round(step / steps_per_epoch, 3),
        "train_s": round(train_s, 2),
        "wall_s": round(time.perf_counter() - _PROCESS_START, 2),
        "num_parameters": {"generator": sum(p.numel() for p in generator.parameters()),
                           "discriminator": sum(p.numel() for p in discriminator.parameters())},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "ld_preload": os.environ.get("LD_PRELOAD", ""),
    }))


if __name__ == "__main__":
    main()
