"""The era bias: each era's own token frequencies, fitted on top of a trained, frozen jazz model.

``chorus era-bias --checkpoint checkpoints/jazz --data data/jazz.json.gz`` measured why the era
inputs alone barely moved the melody model (validation NLL 3.478 with the labels, 3.479
without): the LSTM infers the style from its own context, so an era embedding at the input adds
almost nothing it cannot already see. A per-era bias on the output logits is the era's unigram
prior over the grammar's tokens (durations, intervals, chord relations). It is fitted here with
the rest of the network frozen:

1. the training pieces run through the model once (eval mode, each piece's era id, player 0 as an
   era request has), keeping the last layer's output at every token;
2. a random ``sample_tokens`` of those positions (with their era and next token) are kept;
3. the bias (eras x vocabulary, row 0 "no era" fixed at zero) minimises the cross-entropy of the
   frozen head's logits plus the bias, with an L2 penalty, by Adam on the whole sample.

The checkpoint gets ``model_config.era_bias`` and the bias weights, ``training.fit.era_bias`` (the
figures below) and ``sampling.guidance``: with guidance ``w`` an era request samples from
``plain + w * (era - plain)``, which scales the bias (and the era input) by ``w``. A request with
no era is unchanged, bit for bit.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from engine.models.lstm import ChorusLSTM
from training.fit.dataset import Dataset
from training.fit.train import Split, Vocab


@dataclass(frozen=True)
class EraBiasConfig:
    """What decides the fit (stored in ``training.fit.era_bias``)."""

    sample_tokens: int = 80_000  # training positions the bias is fitted on
    steps: int = 150
    lr: float = 0.05
    l2: float = 1e-4  # penalty on the squared bias, summed over eras and tokens
    guidance: float = 3.5  # stored as the checkpoint's sampling.guidance (`chorus era-bias`: the style's)
    seed: int = 0


@torch.no_grad()
def last_layer(model: ChorusLSTM, split: Split, era_only: bool = True) -> tuple[torch.Tensor, ...]:
    """Per predicted token: the LSTM's output (N, H), the next token (N,) and the piece's era (N,)."""
    model.eval()
    outs, targets, eras = [], [], []
    for i, toks in enumerate(split.tokens):
        era, player = split.cond_of(i)
        t = torch.from_numpy(toks)[None]
        f = torch.from_numpy(split.feats[i])[None]
        cond = torch.tensor([(era, 0 if era_only else player)])
        out, _ = model.lstm(model._inputs(t[:, :-1], f[:, :-1], cond))
        outs.append(out[0])
        targets.append(t[0, 1:])
        eras.append(torch.full((t.shape[1] - 1,), era))
    return torch.cat(outs), torch.cat(targets), torch.cat(eras)


def fit_bias(head: nn.Linear, h: torch.Tensor, y: torch.Tensor, era: torch.Tensor, n_eras: int,
             cfg: EraBiasConfig) -> torch.Tensor:
    """The (n_eras, V) bias minimising CE(head(h) + bias[era], y) + l2 * |bias|^2; row 0 stays 0."""
    with torch.no_grad():
        z = head(h)  # (N, V)
    bias = torch.zeros(n_eras, z.shape[1], requires_grad=True)
    opt = torch.optim.Adam([bias], lr=cfg.lr)
    for _ in range(cfg.steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(z + bias[era], y) + cfg.l2 * (bias[1:] ** 2).sum()
        loss.backward()
        bias.grad[0] = 0
        opt.step()
    return bias.detach()


def nll(head: nn.Linear, h: torch.Tensor, y: torch.Tensor, era: torch.Tensor, bias: torch.Tensor) -> float:
    with torch.no_grad():
        return float(nn.functional.cross_entropy(head(h) + bias[era], y))


def with_bias(ck: Checkpoint, bias: torch.Tensor) -> ChorusLSTM:
    """A copy of the checkpoint's model with ``era_bias`` on and set to ``bias``."""
    model = ChorusLSTM(replace(ck.model.config, era_bias=True))
    state = {k: v for k, v in ck.model.state_dict().items() if not k.startswith("era_bias.")}
    model.load_state_dict({**state, "era_bias.weight": bias}, strict=True)
    return model.eval()


def fit_into(checkpoint: Path, data: Path, cfg: EraBiasConfig = EraBiasConfig(),
             say: Callable[[str], None] = print) -> dict[str, Any]:
    """``chorus era-bias``: fit the bias on the dataset's training pieces and write it into the checkpoint.

    Raises:
        ValueError: the checkpoint has no era conditioning.
    """
    ck = load_checkpoint(checkpoint)
    eras = tuple((ck.meta.get("conditioning") or {}).get("eras", ()))
    if not ck.model.config.n_eras or not eras:
        raise ValueError(f"checkpoint {checkpoint} has no era conditioning")
    vocab = Vocab(eras, tuple(ck.meta["conditioning"].get("players", ())))
    ds = Dataset.load(data)
    started = time.perf_counter()
    h, y, era = last_layer(ck.model, Split.of(ds.split("train"), vocab))
    vh, vy, vera = last_layer(ck.model, Split.of(ds.split("valid"), vocab))
    say(f"{len(y):,} training and {len(vy):,} validation positions through the frozen model "
        f"({time.perf_counter() - started:.0f} s)")
    keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(cfg.seed))[:cfg.sample_tokens]
    h, y, era = h[keep], y[keep], era[keep]
    bias = fit_bias(ck.model.head, h, y, era, len(eras), cfg)
    zero = torch.zeros_like(bias)
    report = {"config": asdict(cfg), "seconds": round(time.perf_counter() - started, 1),
              "train_nll": nll(ck.model.head, h, y, era, bias), "train_nll_without": nll(ck.model.head, h, y, era, zero),
              "valid_nll": nll(ck.model.head, vh, vy, vera, bias), "valid_nll_without": nll(ck.model.head, vh, vy, vera, zero),
              "mean_abs_bias": float(bias[1:].abs().mean())}
    say(f"validation NLL with each piece's era: {report['valid_nll']:.4f} with the bias, "
        f"{report['valid_nll_without']:.4f} without (nats/token)")
    meta = {k: v for k, v in ck.meta.items() if k not in ("content_hash", "size_bytes", "model_config", "vocab", "harmony")}
    meta["training"] = {**meta.get("training", {}), "era_bias": report}
    meta["sampling"] = {**meta.get("sampling", {}), "guidance": cfg.guidance}
    if ck.harmony is not None:
        meta["harmony"] = {k: v for k, v in ck.meta.get("harmony", {}).items() if k != "config"}
    written = save_checkpoint(checkpoint, with_bias(ck, bias), meta, ck.extra, harmony=ck.harmony)
    say(f"era bias written into {checkpoint} (content hash {written['content_hash'][:12]})")
    return report
