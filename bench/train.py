"""Training throughput (tokens/s) of a preset on this machine.

Usage: python bench/train.py [--preset jazz] [--data data/jazz.json.gz] [--batches 20] [--threads N]
Without --data (or when the file is missing) it uses random tokens of the same shape, which gives
the same speed: the LSTM's cost does not depend on the token values.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from engine.models.lstm import ChorusLSTM
from engine.music import grammar as g
from training.fit.dataset import Dataset
from training.fit.train import PRESETS, Split, sample_windows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", default="jazz")
    ap.add_argument("--data", type=Path, default=Path("data/jazz.json.gz"))
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = PRESETS[args.preset]
    gen = torch.Generator().manual_seed(0)
    if args.data.is_file():
        split = Split.of(Dataset.load(args.data).split("train"))
        toks, feats, _ = sample_windows(split, cfg, gen)
        source = str(args.data)
    else:
        n = cfg.batch_size * args.batches
        toks = torch.randint(3, len(g.VOCAB), (n, cfg.seq_len + 1), generator=gen)
        feats = torch.stack([torch.randint(0, 190, (n, cfg.seq_len + 1)), torch.randint(0, 48, (n, cfg.seq_len + 1)),
                             torch.randint(0, 48, (n, cfg.seq_len + 1))], dim=-1)
        source = "random tokens"
    model = ChorusLSTM(cfg.model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    times = []
    for b in range(args.batches + 2):
        i = (b * cfg.batch_size) % max(1, toks.shape[0] - cfg.batch_size)
        x, f = toks[i:i + cfg.batch_size], feats[i:i + cfg.batch_size]
        t = time.perf_counter()
        logits, _ = model(x[:, :-1], f[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        if b >= 2:  # warm-up steps excluded
            times.append(time.perf_counter() - t)
    per_batch = cfg.batch_size * cfg.seq_len
    med = statistics.median(times)
    print(f"preset {args.preset}: {model.num_parameters():,} parameters, batch {cfg.batch_size} x {cfg.seq_len} tokens, "
          f"{args.threads} threads, data: {source}")
    print(f"median step {med * 1000:.0f} ms -> {per_batch / med:,.0f} tokens/s (training)")
    print(f"one epoch of 300k tokens ~ {300_000 / (per_batch / med) / 60:.1f} min")


if __name__ == "__main__":
    main()
