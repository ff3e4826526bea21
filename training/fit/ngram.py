"""The classic baseline: an n-gram (Markov chain) model over the grammar tokens.

Interpolated absolute discounting (Ney, Essen & Kneser 1994): each order's counts, less a discount
D, plus the freed mass times the next lower order, down to a uniform distribution over the
vocabulary. It never gives a token probability 0, so its NLL is finite on any held-out piece.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

import torch


class NGram:
    """An n-gram model over token ids. Train with `fit`, score with `nll`."""

    def __init__(self, order: int, vocab_size: int, discount: float = 0.75) -> None:
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        self.order = order
        self.vocab_size = vocab_size
        self.discount = discount
        # per order k (context length k-1): counts[(context, token)], context totals, distinct followers
        self.counts: list[Counter] = [Counter() for _ in range(order)]
        self.totals: list[Counter] = [Counter() for _ in range(order)]
        self.followers: list[Counter] = [Counter() for _ in range(order)]

    def fit(self, sequences: Iterable[list[int]]) -> NGram:
        for seq in sequences:
            for i, tok in enumerate(seq[1:], start=1):
                for k in range(self.order):
                    if i - k < 0:
                        break
                    ctx = tuple(seq[i - k:i])
                    key = (ctx, tok)
                    if self.counts[k][key] == 0:
                        self.followers[k][ctx] += 1
                    self.counts[k][key] += 1
                    self.totals[k][ctx] += 1
        return self

    def prob(self, context: tuple[int, ...], token: int) -> float:
        p = 1.0 / self.vocab_size
        for k in range(self.order):
            if k > len(context):
                break
            ctx = context[len(context) - k:] if k else ()
            total = self.totals[k].get(ctx, 0)
            if total == 0:
                continue
            c = self.counts[k].get((ctx, token), 0)
            lam = self.discount * self.followers[k][ctx] / total
            p = max(c - self.discount, 0.0) / total + lam * p
        return p

    def nll(self, sequences: Iterable[list[int]]) -> tuple[float, int]:
        """Total negative log-likelihood (nats) of every token after the first, and the count."""
        total, n = 0.0, 0
        for seq in sequences:
            for i in range(1, len(seq)):
                ctx = tuple(seq[max(0, i - self.order + 1):i])
                total -= math.log(self.prob(ctx, seq[i]))
                n += 1
        return total, n

    # -- storage as tensors (inside a checkpoint's safetensors file) ---------------------------

    def to_tensors(self) -> dict[str, torch.Tensor]:
        out = {"meta": torch.tensor([self.order, self.vocab_size, int(self.discount * 1e6)], dtype=torch.int64)}
        for k in range(self.order):
            rows = [(*ctx, tok, c) for (ctx, tok), c in self.counts[k].items()]
            out[f"counts{k}"] = torch.tensor(rows, dtype=torch.int32).reshape(-1, k + 2)
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> NGram:
        order, vocab, disc = (int(x) for x in tensors["meta"])
        model = cls(order, vocab, disc / 1e6)
        for k in range(order):
            table = tensors[f"counts{k}"].tolist()
            followers: defaultdict[tuple, int] = defaultdict(int)
            for row in table:
                ctx, tok, c = tuple(row[:k]), row[k], row[k + 1]
                model.counts[k][(ctx, tok)] = c
                model.totals[k][ctx] += c
                followers[ctx] += 1
            model.followers[k] = Counter(followers)
        return model
