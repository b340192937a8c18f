"""Peer benchmark: char-rnn's 2x512 LSTM, the twin of `experiments/shakespeare_char_lstm.py`, in PyTorch eager; one JSON line.

    pip install -e '.[peers]'          # torch==2.13.0, CPU build; never a dependency of jaxai itself
    python bench/peers/torch_char_rnn.py --seconds 20

Model: nn.Embedding(65, 512) -> nn.LSTM(512, 512, num_layers=2, batch_first=True) -> nn.Linear(512, 65),
no dropout, float32, PyTorch's default init: 4,269,121 parameters, jaxai's RNNLM 4,265,025 (one
bias per gate where PyTorch has two, b_ih and b_hh: 2 layers x 2,048 fewer; the same matmuls).
Recipe (char-rnn's sizes, jaxai's optimizer): batch 50, sequences of 50 characters, Adam lr 2e-3,
gradient clipping at norm 5, a zero carry for every batch, cross-entropy over every position.
(jaxai's experiment decays the rate on a cosine schedule; the rate does not change the step's cost.)
Data: the characters of Tiny Shakespeare shipped in jaxai (first 90%: training), blocks at random
offsets drawn from a seeded torch.Generator, inside the timed step.

Timing (bench/timed_windows.py, as jaxai's benchmarks): WARMUP_STEPS untimed steps, then training in
windows of ~2 s of step time; --seconds stops at the first window end past that many training
seconds. Reported: ms_per_iter (from the median window's tokens per second), ms_per_iter_best (the
fastest window), tokens_per_s, windows, loss (the last window's mean), steps, train_s, wall_s (the whole
process, torch import included), num_parameters, torch version and threads.
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

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, BENCH)  # bench/: the shared timing.
from timed_windows import timed_windows  # noqa: E402

CORPUS = os.path.join(os.path.dirname(BENCH), "jaxai", "data", "corpora", "tiny_shakespeare.txt")


class CharRNN(nn.Module):
    """Tokens [B, T] -> logits [B, T, vocab], from a zero carry."""

    def __init__(self, vocab: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.lstm(self.embed(ids))  # [B, T, hidden]
        return self.head(outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="Training seconds, after warm-up.")
    parser.add_argument("--batch_size", type=int, default=50)
    parser.add_argument("--block_size", type=int, default=50)
    parser.add_argument("--hidden_size", type=int, default=512)
    parser.add_argument("--num_layers", type=int, default=2)
    parser.add_argument("--learning_rate", type=float, default=2e-3)
    parser.add_argument("--grad_clip", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    with open(CORPUS, encoding="utf-8") as file:
        text = file.read()
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([lookup[c] for c in text], dtype=torch.long)
    train_data = data[: int(len(data) * 0.9)]
    batch, block = args.batch_size, args.block_size

    model = CharRNN(len(chars), args.hidden_size, args.num_layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    offsets_rng = torch.Generator().manual_seed(args.seed)
    window = torch.arange(block)

    def train_step(step: int) -> float:
        offsets = torch.randint(len(train_data) - block, (batch,), generator=offsets_rng)
        rows = offsets[:, None] + window  # [B, T]
        x, y = train_data[rows], train_data[rows + 1]
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        return loss.item()

    tokens_per_step = batch * block
    timing = timed_windows(train_step, tokens_per_step, args.seconds)  # Its "images" are tokens here.
    print(json.dumps({
        "bench": "torch_char_rnn",
        "recipe": f"{args.num_layers}x{args.hidden_size} LSTM, batch {batch}, seq {block}, adam {args.learning_rate:g}, "
                  f"clip {args.grad_clip:g}, {args.seconds:g} s",
        "ms_per_iter": round(1000 * tokens_per_step / timing["images_per_s"], 2),
        "ms_per_iter_best": round(1000 * tokens_per_step / timing["images_per_s_best"], 2),
        "tokens_per_s": timing["images_per_s"],
        **{key: timing[key] for key in ("windows", "loss", "steps", "train_s")},
        "wall_s": round(time.perf_counter() - _PROCESS_START, 2),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "ld_preload": os.environ.get("LD_PRELOAD", ""),
    }))


if __name__ == "__main__":
    main()
