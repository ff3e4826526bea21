"""Fine-tuning a conditioned checkpoint on one player: ``chorus finetune``.

The `metheny` checkpoint is the jazz model trained a little further on the Pat Metheny pieces
(four WJazzD solos and the deepjazz MIDI) with the player and era ids set, mixed with windows of
the whole jazz corpus (with their own labels) so that the rest is not forgotten. The harmony model
of the base checkpoint is carried over unchanged. ``leave_out`` keeps recordings out of the
fine-tune, for the leave-one-out measurement in ``bench/metheny.py``.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.band.styles import STYLES
from engine.errors import EngineError
from engine.models.checkpoint import Checkpoint, save_checkpoint
from engine.music import grammar as g
from training.fit.dataset import Dataset
from training.fit.train import Split, Vocab, preset, sample_windows


@dataclass(frozen=True)
class FinetuneConfig:
    """What decides a fine-tune (stored in the checkpoint's ``training``)."""

    player: str = "Pat Metheny"
    era: str = "POSTBOP"  # the era id the player's windows carry
    steps: int = 40
    batch_size: int = 8
    seq_len: int = 192
    lr: float = 1e-3
    player_share: float = 0.75  # share of each batch from the player's pieces; the rest from the whole corpus
    only_embeddings: bool = False  # train only the era and player embeddings (nothing else can be forgotten)
    seed: int = 4321


def player_pieces(ds: Dataset, player: str, leave_out: tuple[str, ...] = ()) -> list:
    return [p for p in ds.pieces if p.player == player and p.recording not in leave_out]


def finetune(base: Checkpoint, ds: Dataset, cfg: FinetuneConfig, leave_out: tuple[str, ...] = (),
             say: Callable[[str], None] = print) -> tuple[nn.Module, dict[str, Any]]:
    """Fine-tune a copy of ``base.model``. Returns the model (eval mode) and a report.

    Raises:
        EngineError: the base model is not conditioned on players, or the player has no pieces.
    """
    cond = base.meta.get("conditioning") or {}
    vocab = Vocab(tuple(cond.get("eras", ())), tuple(cond.get("players", ())))
    if cfg.player not in vocab.players or cfg.era not in vocab.eras:
        raise EngineError(f"checkpoint {base.name} has no player id for {cfg.player!r} or no era {cfg.era!r}")
    mine = [replace(p, era=cfg.era) for p in player_pieces(ds, cfg.player, leave_out)]
    if not mine:
        raise EngineError(f"no pieces of {cfg.player!r} in the dataset")
    others = [p for p in ds.split("train") if p.player != cfg.player]
    model = type(base.model)(base.model.config)
    model.load_state_dict(base.model.state_dict())
    model.train()
    params = [p for n, p in model.named_parameters()
              if not cfg.only_embeddings or n.startswith(("era_emb.", "player_emb."))]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-5)
    gen = torch.Generator().manual_seed(cfg.seed)
    tcfg = replace(preset("tiny"), seq_len=cfg.seq_len, condition=True, label_dropout=0.0)
    n_mine = max(1, round(cfg.batch_size * cfg.player_share))
    split_mine, split_rest = Split.of(mine, vocab), Split.of(others, vocab)
    pad = g.TOKEN_ID["PAD"]
    started, losses = time.perf_counter(), []
    for step in range(cfg.steps):
        a = sample_windows(split_mine, replace(tcfg, windows_per_epoch=n_mine), gen)
        b = sample_windows(split_rest, replace(tcfg, windows_per_epoch=cfg.batch_size - n_mine), gen) \
            if cfg.batch_size > n_mine else a
        toks, feats, conds = (torch.cat([x, y]) if y is not x else x for x, y in zip(a, b, strict=True))
        logits, _ = model(toks[:, :-1], feats[:, :-1], cond=conds[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), toks[:, 1:].reshape(-1), ignore_index=pad)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if (step + 1) % 20 == 0:
            say(f"step {step + 1}/{cfg.steps}: loss {sum(losses[-20:]) / 20:.4f}")
    model.eval()
    report = {"base": base.name, "base_hash": base.content_hash, "config": cfg.__dict__,
              "pieces": sorted(p.recording for p in mine), "left_out": list(leave_out),
              "seconds": round(time.perf_counter() - started, 1), "final_loss": sum(losses[-20:]) / max(1, len(losses[-20:]))}
    return model, report


@torch.no_grad()
def piece_nll(model: nn.Module, pieces: list, vocab: Vocab, labelled: bool = True) -> float:
    """Mean teacher-forced NLL (nats/token) over whole pieces, with their era and player ids or unconditioned."""
    from training.fit.train import evaluate_nll

    nll, _ = evaluate_nll(model, Split.of(pieces, vocab), torch.device("cpu"), labelled=labelled)
    return nll if not math.isnan(nll) else math.inf


def write_finetuned(out: Path, base: Checkpoint, model: nn.Module, report: dict[str, Any], style: str) -> dict[str, Any]:
    """A checkpoint of the fine-tuned model for ``style``, with the base's harmony model and n-gram."""
    meta = {k: v for k, v in base.meta.items()
            if k not in ("format", "version", "chorus_version", "created", "model_config", "vocab", "content_hash",
                         "size_bytes", "harmony")}
    meta["style"] = style
    meta["training"] = {**meta.get("training", {}), "finetune": report}
    meta["sampling"] = {**meta.get("sampling", {}), **STYLES[style].sampling.to_meta()}
    if base.harmony is not None:
        meta["harmony"] = {k: v for k, v in base.meta.get("harmony", {}).items() if k != "config"}
    return save_checkpoint(out, model, meta, extra=base.extra, harmony=base.harmony)
