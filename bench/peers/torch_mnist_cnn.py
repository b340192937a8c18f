"""Peer benchmark: the classic Keras MNIST CNN trained in PyTorch eager on the CPU; prints one JSON line.

    pip install -e '.[peers]'          # torch==2.13.0, CPU build; never a dependency of jaxai itself
    python bench/peers/torch_mnist_cnn.py --epochs 3

Model: Conv32 3x3 (valid) - ReLU - MaxPool2 - Conv64 - ReLU - MaxPool2 - Conv64 - ReLU - Flatten -
Dense64 - ReLU - Dense10 (93,322 parameters), Keras's initialisation (Glorot-uniform weights, zero
biases). Recipe: the Keras example's (constant Adam 1e-3, batch 64, cross-entropy), the training set shuffled
every epoch by a seeded torch.Generator; the last partial batch is dropped, so an epoch is 937 steps
of 64, as jaxai counts one. Data: the real MNIST, read from the four raw IDX .gz files in
$JAXAI_DATA_DIR/mnist (default: ../shared/data/mnist beside the repository) with gzip and numpy.

The test set (10k) is evaluated `--evals_per_epoch` times per epoch (default 1; the side-by-side
runner asks for 4, as often as jaxai's experiment evaluates, so both times to 99% have the same
granularity). Reported: images_per_s (median over epochs of training images / training seconds,
evaluation excluded), epoch_s (training seconds per epoch), test_accuracy_by_epoch, test_accuracy_evals
(epoch, accuracy) at every evaluation, time_to_99_s (when test accuracy first reached >= 99.0%:
training seconds, evaluation excluded, and wall seconds since the process started; null if it never
did), wall_s.
"""

from __future__ import annotations

import time

_PROCESS_START = time.perf_counter()  # Before importing torch: wall_s counts the import too.

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET_ACCURACY = 0.99


def mnist_dir() -> str:
    base = os.environ.get("JAXAI_DATA_DIR") or os.path.join(os.path.dirname(ROOT), "shared", "data")
    return os.path.join(base, "mnist")


def read_idx(path: str, magic: int) -> np.ndarray:
    """An IDX file's array: big-endian int32 header (magic, then one size per dimension), then uint8 data."""
    with gzip.open(path, "rb") as file:
        raw = file.read()
    found = int.from_bytes(raw[0:4], "big")
    if found != magic:
        raise ValueError(f"{path}: IDX magic {found}, expected {magic}.")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_split(prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as float32 [N, 1, 28, 28] in [0, 1], labels as int64 [N]."""
    directory = mnist_dir()
    images = read_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"), 2051)
    labels = read_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"), 2049)
    pixels = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return pixels.contiguous(), torch.from_numpy(labels.astype(np.int64))


class KerasCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.fc1 = nn.Linear(3 * 3 * 64, 64)
        self.fc2 = nn.Linear(64, 10)
        for layer in (self.conv1, self.conv2, self.conv3, self.fc1, self.fc2):
            nn.init.xavier_uniform_(layer.weight)  # Keras's default kernel initialiser.
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # 26x26 -> 13x13
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # 11x11 -> 5x5
        x = F.relu(self.conv3(x))  # 3x3x64
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(x)


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start:start + batch_size])
        correct += int((logits.argmax(1) == labels[start:start + batch_size]).sum())
    model.train()
    return correct / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--evals_per_epoch", type=int, default=1, help="Test-set evaluations per epoch.")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    train_x, train_y = load_split("train")
    test_x, test_y = load_split("t10k")
    model = KerasCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    shuffle = torch.Generator().manual_seed(args.seed)
    steps_per_epoch = len(train_x) // args.batch_size

    eval_after = {round(steps_per_epoch * i / args.evals_per_epoch) for i in range(1, args.evals_per_epoch + 1)}
    epoch_s, accuracies, evals = [], [], []
    train_total_s = 0.0
    time_to_99 = None
    for epoch in range(args.epochs):
        epoch_train_s = 0.0
        start = time.perf_counter()
        order = torch.randperm(len(train_x), generator=shuffle)
        for step in range(steps_per_epoch):
            index = order[step * args.batch_size:(step + 1) * args.batch_size]
            loss = F.cross_entropy(model(train_x[index]), train_y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step + 1 in eval_after:  # Training time stops while the test set is evaluated.
                epoch_train_s += time.perf_counter() - start
                evals.append((round(epoch + (step + 1) / steps_per_epoch, 3), accuracy(model, test_x, test_y)))
                if time_to_99 is None and evals[-1][1] >= TARGET_ACCURACY:
                    time_to_99 = {"epoch": evals[-1][0], "train_s": round(train_total_s + epoch_train_s, 2),
                                  "wall_s": round(time.perf_counter() - _PROCESS_START, 2)}
                start = time.perf_counter()
        epoch_s.append(epoch_train_s)
        train_total_s += epoch_train_s
        accuracies.append(evals[-1][1])

    images_per_epoch = steps_per_epoch * args.batch_size
    print(json.dumps({
        "bench": "torch_mnist_cnn",
        "recipe": f"adam {args.learning_rate:g} constant, batch {args.batch_size}, {args.epochs} epochs",
        "images_per_s": round(statistics.median(images_per_epoch / s for s in epoch_s)),
        "epoch_s": [round(s, 2) for s in epoch_s],
        "test_accuracy": accuracies[-1],
        "test_accuracy_by_epoch": [round(a, 4) for a in accuracies],
        "test_accuracy_evals": [(epoch, round(a, 4)) for epoch, a in evals],
        "time_to_99_s": time_to_99,
        "train_s": round(train_total_s, 2),
        "wall_s": round(time.perf_counter() - _PROCESS_START, 2),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "ld_preload": os.environ.get("LD_PRELOAD", ""),
    }))


if __name__ == "__main__":
    main()
