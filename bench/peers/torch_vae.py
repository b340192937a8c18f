"""Peer benchmark: the MLP VAE of PyTorch's examples (vae/main.py) in PyTorch eager on the CPU; one JSON line.

    pip install -e '.[peers]'          # torch==2.13.0, CPU build; never a dependency of jaxai itself
    python bench/peers/torch_vae.py --seconds 30      # or --epochs N

Model (github.com/pytorch/examples vae/main.py): fc1 784->400 ReLU; fc21, fc22 400->20 (mean, log
variance); z = mean + exp(logvar / 2) * eps; fc3 20->400 ReLU; fc4 400->784 Bernoulli logits
(652,824 parameters), PyTorch's default initialisation. Loss: the negative ELBO, binary cross-entropy
summed over the 784 pixels plus the closed-form KL(q(z|x) || N(0, I)), summed over the batch as the
example does (Adam is all but invariant to that scale). The cross-entropy is taken with
F.binary_cross_entropy_with_logits on fc4's output instead of sigmoid then F.binary_cross_entropy:
the same objective, computed stably (no log clamp at -100). Recipe: Adam lr 1e-3, batch 128, the
training set shuffled every epoch by a seeded torch.Generator, the last partial batch dropped (468
steps an epoch). Data: the real MNIST in [0, 1] from the raw IDX .gz files in $JAXAI_DATA_DIR/mnist
(default ../shared/data/mnist beside the repository); with --binarize (default; --no-binarize for the
grey levels) every batch is drawn afresh as Bernoulli(pixel) from a second seeded generator
(dynamically binarised MNIST, jaxai's recipe). The reparameterisation noise comes from torch's global
generator, seeded by --seed.

Timing: WARMUP_STEPS steps first (not timed, still trained), then training in windows of ~2 s of
step time (batch gather and binarisation included); --seconds stops at the first window end past that
many training seconds, --epochs after that many epochs (a last window under 1 s joins the one before).
Reported: images_per_s (median over windows of images / seconds) and images_per_s_best, windows,
loss_per_image (mean negative ELBO per image over the last window, in nats), train_s, wall_s (the
whole process, torch import included), num_parameters, torch version and threads.
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


class VAE(nn.Module):
    def __init__(self, hidden: int = 400, latent: int = 20) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, 784)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h1 = F.relu(self.fc1(x))
        mean, logvar = self.fc21(h1), self.fc22(h1)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        return self.fc4(F.relu(self.fc3(z))), mean, logvar  # Logits of the 784 Bernoulli pixels.


def negative_elbo(logits: torch.Tensor, x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Summed over pixels and over the batch, as pytorch/examples' loss_function."""
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mean.pow(2) - logvar.exp())
    return bce + kl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="Training seconds, after the warm-up.")
    parser.add_argument("--epochs", type=int, default=0, help="Train this many epochs instead of --seconds.")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--binarize", action=argparse.BooleanOptionalAction, default=True,
                        help="A fresh Bernoulli binarisation of every batch (default on).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 keeps torch's default.")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_x = load_split("train")[0].reshape(-1, 784).contiguous()
    model = VAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    shuffle = torch.Generator().manual_seed(args.seed)
    binarize = torch.Generator().manual_seed(args.seed + 1)
    steps_per_epoch = len(train_x) // args.batch_size
    # Untimed warm-up steps; an --epochs run keeps at least one timed step.
    warmup = min(WARMUP_STEPS, args.epochs * steps_per_epoch - 1) if args.epochs else WARMUP_STEPS

    def train_step(index: torch.Tensor) -> float:
        x = train_x[index]
        if args.binarize:
            x = torch.bernoulli(x, generator=binarize)
        logits, mean, logvar = model(x)
        loss = negative_elbo(logits, x, mean, logvar)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    windows = []  # [images, seconds, summed loss]
    current = [0, 0.0, 0.0]
    train_s, step, epoch, done = 0.0, 0, 0, False
    while not done:
        order = torch.randperm(len(train_x), generator=shuffle)
        for i in range(steps_per_epoch):
            start = time.perf_counter()
            loss = train_step(order[i * args.batch_size:(i + 1) * args.batch_size])
            seconds = time.perf_counter() - start
            step += 1
            if step <= warmup:
                continue
            current = [current[0] + args.batch_size, current[1] + seconds, current[2] + loss]
            train_s += seconds
            if current[1] >= WINDOW_S:
                windows.append(current)
                current = [0, 0.0, 0.0]
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

    speeds = [images / seconds for images, seconds, _ in windows]
    print(json.dumps({
        "bench": "torch_vae",
        "recipe": (f"adam {args.learning_rate:g} constant, batch {args.batch_size}, "
                   f"{'dynamically binarised' if args.binarize else 'grey-level'} MNIST, "
                   + (f"{args.epochs} epochs" if args.epochs else f"{args.seconds:g} s")),
        "images_per_s": round(statistics.median(speeds)),
        "images_per_s_best": round(max(speeds)),
        "windows": len(windows),
        "loss_per_image": round(windows[-1][2] / windows[-1][0], 3),
        "steps": step,
        "epochs": round(step / steps_per_epoch, 3),
        "train_s": round(train_s, 2),
        "wall_s": round(time.perf_counter() - _PROCESS_START, 2),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "ld_preload": os.environ.get("LD_PRELOAD", ""),
    }))


if __name__ == "__main__":
    main()
