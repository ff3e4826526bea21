"""Sampling speed of a checkpoint: tokens/s at batch 1 and batch 16 (CPU, or CUDA when present).

Usage: python bench/sample.py [--checkpoint checkpoints/jazz] [--bars 32] [--repeats 3] [--threads 1] [--device auto|cpu|cuda]
(--device cuda where torch sees no GPU stops with one line saying so)
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from engine.errors import EngineError
from engine.models.checkpoint import load_checkpoint
from engine.models.sample import SampleRequest, pick_device, sample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints/jazz"))
    ap.add_argument("--bars", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        device = pick_device(args.device)
    except EngineError as exc:
        raise SystemExit(f"bench: {exc}") from exc
    ck = load_checkpoint(args.checkpoint, device=device)
    print(f"checkpoint {args.checkpoint} on {device}, {args.threads} thread(s), {args.bars} bars per request")
    for batch in (1, 16):
        rates = []
        for r in range(args.repeats):
            reqs = [SampleRequest(bars=args.bars, seed=r * 100 + i, form=16) for i in range(batch)]
            t = time.perf_counter()
            out = sample(ck.model, reqs)
            dt = time.perf_counter() - t
            rates.append(sum(len(o) for o in out) / dt)
        print(f"batch {batch:>2}: median {statistics.median(rates):8.0f} tokens/s  (runs: {', '.join(f'{x:.0f}' for x in rates)})")


if __name__ == "__main__":
    main()
