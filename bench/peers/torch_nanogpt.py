"""Peer benchmark: a GPT of nanoGPT's CPU "baby" shape and recipe in PyTorch; prints one JSON line.

    pip install -e '.[peers]'          # torch==2.13.0, CPU build; never a dependency of jaxai itself
    python bench/peers/torch_nanogpt.py [--max_iters 2000]

Model: 4 layers, 4 heads, 128 dims, context 64, pre-LayerNorm blocks without biases, GELU MLP of
4x width, causal attention through F.scaled_dot_product_attention, learned positions, the output
projection tied to the token embedding; weights N(0, 0.02), residual projections N(0, 0.02/sqrt(2L)).
Recipe (nanoGPT's shakespeare_char on CPU): batch 12, 2,000 iterations, AdamW lr 1e-3, betas
(0.9, 0.99), weight decay 0.1 on the 2-D parameters only, linear warm-up over 100 iterations then
cosine decay to 1e-4 at iteration 2,000, gradient clipping at norm 1.0, no dropout, float32.
Data: the characters of Tiny Shakespeare shipped in jaxai (first 90% train, last 10% val), training
blocks at random offsets drawn from a seeded torch.Generator.

Validation loss is the mean over every non-overlapping 64-token block of the val split (as
jaxai's text datasets evaluate it), at iteration 1,000 (every --eval_every) and at the end.
Reported: ms_per_iter (median per-iteration time, batch sampling included, the first 10 excluded),
tokens_per_s (from that median), val_loss, val_loss_by_step, train_s (the training iterations,
evaluations excluded), wall_s (the whole process, torch import included).
"""

from __future__ import annotations

import time

_PROCESS_START = time.perf_counter()  # Before importing torch: wall_s counts the import too.

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "jaxai", "data", "corpora", "tiny_shakespeare.txt")
SKIP_ITERS = 10  # Warm-up iterations left out of the median.


class Block(nn.Module):
    """x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, bias=False)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_out = nn.Linear(dim, dim, bias=False)
        self.norm2 = nn.LayerNorm(dim, bias=False)
        self.mlp_in = nn.Linear(dim, 4 * dim, bias=False)
        self.mlp_out = nn.Linear(4 * dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(dim, dim=2)
        q, k, v = (t.view(batch, length, self.heads, dim // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [B, H, T, D/H]
        x = x + self.attn_out(y.transpose(1, 2).reshape(batch, length, dim))
        return x + self.mlp_out(F.gelu(self.mlp_in(self.norm2(x))))


class GPT(nn.Module):
    def __init__(self, vocab: int, block: int, layers: int, heads: int, dim: int) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(block, dim)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim, bias=False)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.tokens.weight  # Tied input and output embeddings.
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, 0.02)
        for block_ in self.blocks:  # Residual projections scaled down by depth.
            for projection in (block_.attn_out, block_.mlp_out):
                nn.init.normal_(projection.weight, 0.0, 0.02 / math.sqrt(2 * layers))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tokens(ids) + self.positions(torch.arange(ids.shape[1]))
        for block_ in self.blocks:
            x = block_(x)
        return self.head(self.norm(x))


def learning_rate(it: int, peak: float, floor: float, warmup: int, decay_iters: int) -> float:
    if it < warmup:
        return peak * (it + 1) / (warmup + 1)
    if it >= decay_iters:
        return floor
    progress = (it - warmup) / (decay_iters - warmup)
    return floor + 0.5 * (1.0 + math.cos(math.pi * progress)) * (peak - floor)


@torch.no_grad()
def val_loss(model: nn.Module, tokens: torch.Tensor, block: int, batch_size: int = 256) -> float:
    """Mean next-token loss over every non-overlapping block of `tokens`."""
    model.eval()
    count = (len(tokens) - 1) // block
    inputs = tokens[:count * block].view(count, block)
    targets = tokens[1:count * block + 1].view(count, block)
    total = 0.0
    for start in range(0, count, batch_size):
        logits = model(inputs[start:start + batch_size])
        total += float(F.cross_entropy(logits.flatten(0, 1), targets[start:start + batch_size].flatten(), reduction="sum"))
    model.train()
    return total / (count * block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max_iters", type=int, default=2000)
    parser.add_argument("--eval_every", type=int, default=1000)
    parser.add_argument("--batch_size", type=int, default=12)
    parser.add_argument("--block_size", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--min_lr", type=float, default=1e-4)
    parser.add_argument("--warmup_iters", type=int, default=100)
    parser.add_argument("--lr_decay_iters", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    with open(CORPUS, encoding="utf-8") as file:
        text = file.read()
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([lookup[c] for c in text], dtype=torch.long)
    split_at = int(len(data) * 0.9)
    train_data, val_data = data[:split_at], data[split_at:]
    block, batch = args.block_size, args.batch_size

    model = GPT(len(chars), block, layers=4, heads=4, dim=128)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
         {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
        lr=args.learning_rate, betas=(0.9, 0.99),
    )
    offsets_rng = torch.Generator().manual_seed(args.seed)
    window = torch.arange(block)

    iter_s, losses_by_step = [], {}
    train_s = 0.0
    for it in range(args.max_iters):
        start = time.perf_counter()
        offsets = torch.randint(len(train_data) - block, (batch,), generator=offsets_rng)
        rows = offsets[:, None] + window  # [B, T]
        x, y = train_data[rows], train_data[rows + 1]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(it, args.learning_rate, args.min_lr, args.warmup_iters, args.lr_decay_iters)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        seconds = time.perf_counter() - start
        iter_s.append(seconds)
        train_s += seconds
        step = it + 1
        if step == args.max_iters or (args.eval_every and step % args.eval_every == 0):
            losses_by_step[step] = round(val_loss(model, val_data, block), 4)

    ms_per_iter = 1000 * statistics.median(iter_s[SKIP_ITERS:] or iter_s)
    print(json.dumps({
        "bench": "torch_nanogpt",
        "ms_per_iter": round(ms_per_iter, 2),
        # jaxai's figure is a median of 100-step window means; the plain mean here is its closest twin.
        "ms_per_iter_mean": round(1000 * statistics.fmean(iter_s[SKIP_ITERS:] or iter_s), 2),
        "val_loss": losses_by_step[args.max_iters],
        "val_loss_by_step": losses_by_step,
        "steps": args.max_iters,
        "num_parameters": sum(p.numel() for p in params),
        "train_s": round(train_s, 2),
        "wall_s": round(time.perf_counter() - _PROCESS_START, 2),
        "tokens_per_s": round(batch * block * 1000 / ms_per_iter),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "ld_preload": os.environ.get("LD_PRELOAD", ""),
    }))


if __name__ == "__main__":
    main()
