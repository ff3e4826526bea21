"""Training: ``chorus train --preset NAME --data FILE --out DIR [--resume DIR] [--device ...]``.

Random windows of the training pieces, each transposed to a random key, teacher-forced through the
LSTM with cross-entropy. Validation NLL (nats/token, whole held-out pieces) after every epoch; the
best model is saved as a checkpoint; early stopping, gradient clipping and a fixed seed. The whole
training state is saved after every epoch in ``DIR/train_state`` so a run resumes exactly.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from engine.band.styles import STYLES, Style
from engine.errors import EngineError
from engine.models.checkpoint import save_checkpoint
from engine.models.conditioning import ERAS
from engine.models.lstm import ChorusLSTM, ModelConfig
from engine.music import grammar as g
from engine.music import state as st
from training.fit.dataset import Dataset
from training.fit.ngram import NGram

log = logging.getLogger(__name__)
STATE_DIR = "train_state"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (stored in the checkpoint)."""

    name: str
    style: str
    model: ModelConfig = field(default_factory=ModelConfig)
    batch_size: int = 32
    seq_len: int = 192
    lr: float = 2e-3
    weight_decay: float = 1e-5
    max_epochs: int = 40
    patience: int = 4
    clip: float = 1.0
    seed: int = 1234
    transpose: bool = True
    windows_per_epoch: int | None = None  # default: one pass worth of tokens
    max_minutes: float | None = None  # stop (as if early) after this much training time
    ngram_orders: tuple[int, ...] = (2, 3, 4)
    condition: bool = False  # era and player embeddings (engine.models.conditioning), labels from the dataset
    min_player_pieces: int = 4  # a performer gets a player id with at least this many training pieces
    label_dropout: float = 0.3  # per window, the chance that the era (and, separately, the player) id is 0
    init_from: str | None = None  # warm start: a checkpoint folder whose weights seed the model (see warm_start)
    keep_players: tuple[str, ...] = ()  # given a player id even with no training pieces (a leave-out base, bench/metheny.py)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d


def style_preset(style: Style) -> TrainConfig:
    """The training preset a registered style carries (`engine.band.styles.Style.training`)."""
    fields = dict(style.training)
    fields.pop("harmony", None)  # the harmony model's corpora (`training.fit.harmony.read_charts`)
    model = ModelConfig(**dict(fields.pop("model", {})))
    return TrainConfig(name=style.name, style=style.name, model=model, **fields)


# The tiny CPU preset for tests; every other preset is a registered style's (engine/band/styles.py).
TINY = TrainConfig(name="tiny", style="test", model=ModelConfig(token_dim=16, chord_dim=8, pos_dim=8, hidden=32, layers=1,
                                                                dropout=0.0),
                   batch_size=8, seq_len=48, lr=5e-3, max_epochs=3, patience=2, ngram_orders=(2, 3))
PRESETS: dict[str, TrainConfig] = {"tiny": TINY, **{name: style_preset(s) for name, s in STYLES.items()
                                                    if "finetune" not in s.training}}
# Sampling defaults of a checkpoint whose style is not registered (the tiny preset's "test").
DEFAULT_SAMPLING: dict[str, Any] = {"temperature": 1.0, "top_p": 0.95, "forms": [16]}


@dataclass(frozen=True)
class Vocab:
    """Era and player vocabularies of a conditioned model (id 0 = unconditioned)."""

    eras: tuple[str, ...] = ()
    players: tuple[str, ...] = ()

    @classmethod
    def of(cls, pieces: list, min_player_pieces: int, keep: tuple[str, ...] = ()) -> Vocab:
        """The eras, and the players with at least ``min_player_pieces`` pieces, plus ``keep``."""
        counts: dict[str, int] = {}
        for p in pieces:
            if getattr(p, "player", ""):
                counts[p.player] = counts.get(p.player, 0) + 1
        return cls(ERAS, ("", *sorted({*(k for k, n in counts.items() if n >= min_player_pieces), *keep})))

    def ids(self, piece: Any) -> tuple[int, int]:
        era, player = getattr(piece, "era", ""), getattr(piece, "player", "")
        return (self.eras.index(era) if era in self.eras else 0,
                self.players.index(player) if player in self.players else 0)

    def to_meta(self) -> dict[str, list[str]]:
        return {"eras": list(self.eras), "players": list(self.players)}


@dataclass
class Split:
    """Pieces of one side as token-id arrays with their state features and (era, player) ids."""

    tokens: list[np.ndarray]
    feats: list[np.ndarray]
    cond: list[tuple[int, int]] = field(default_factory=list)

    @classmethod
    def of(cls, pieces: list, vocab: Vocab | None = None) -> Split:
        toks = [np.asarray(p.tokens, dtype=np.int64) for p in pieces]
        cond = [vocab.ids(p) if vocab else (0, 0) for p in pieces]
        return cls(toks, [st.features_of(list(t)) for t in toks], cond)

    def cond_of(self, i: int) -> tuple[int, int]:
        return self.cond[i] if self.cond else (0, 0)

    @property
    def n_tokens(self) -> int:
        return sum(len(t) for t in self.tokens)


def sample_windows(split: Split, cfg: TrainConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One epoch of random training windows: tokens (N, L+1), feats (N, L+1, 3) and cond (N, L+1, 2),
    transposed. With conditioning, each window's era and player ids are set to 0 with
    ``cfg.label_dropout`` (independently), so the model also learns the unconditioned average."""
    stream_t = np.concatenate(split.tokens)
    stream_f = np.concatenate(split.feats)
    stream_c = np.concatenate([np.tile(np.asarray(split.cond_of(i), dtype=np.int64), (len(t), 1))
                               for i, t in enumerate(split.tokens)])
    length = cfg.seq_len + 1
    n = cfg.windows_per_epoch or max(1, len(stream_t) // cfg.seq_len)
    hi = max(1, len(stream_t) - length)
    starts = torch.randint(0, hi, (n,), generator=gen).numpy()
    idx = starts[:, None] + np.arange(min(length, len(stream_t)))[None, :]
    toks = torch.from_numpy(stream_t[idx])
    feats = torch.from_numpy(stream_f[idx])
    cond = torch.from_numpy(stream_c[idx])
    if cfg.condition and cfg.label_dropout > 0:
        keep = (torch.rand((n, 1, 2), generator=gen) >= cfg.label_dropout).long()
        cond = cond * keep
    if cfg.transpose:
        tok_tab, chd_tab = (torch.from_numpy(t) for t in st.transpose_tables())
        shift = torch.randint(0, 12, (n,), generator=gen)
        toks = tok_tab[shift[:, None], toks]
        feats = feats.clone()
        feats[..., 0] = chd_tab[shift[:, None], feats[..., 0]]
    return toks, feats, cond


@torch.no_grad()
def evaluate_nll(model: ChorusLSTM, split: Split, device: torch.device, batch: int = 16,
                 labelled: bool = True) -> tuple[float, int]:
    """Mean NLL (nats/token) over whole pieces: every token after the first is predicted.

    Args:
        labelled: feed each piece's era and player ids (else all 0, the unconditioned model).
    """
    model.eval()
    total, count = 0.0, 0
    order = sorted(range(len(split.tokens)), key=lambda i: len(split.tokens[i]))
    pad = g.TOKEN_ID["PAD"]
    for b in range(0, len(order), batch):
        ids = order[b:b + batch]
        longest = max(len(split.tokens[i]) for i in ids)
        toks = torch.full((len(ids), longest), pad, dtype=torch.long)
        feats = torch.zeros((len(ids), longest, 3), dtype=torch.long)
        cond = torch.tensor([split.cond_of(i) if labelled else (0, 0) for i in ids], dtype=torch.long)  # (B, 2)
        for r, i in enumerate(ids):
            toks[r, : len(split.tokens[i])] = torch.from_numpy(split.tokens[i])
            feats[r, : len(split.tokens[i])] = torch.from_numpy(split.feats[i])
        logits, _ = model(toks[:, :-1].to(device), feats[:, :-1].to(device), cond=cond.to(device))
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), toks[:, 1:].reshape(-1).to(device),
                                           ignore_index=pad, reduction="sum")
        total += float(loss)
        count += int((toks[:, 1:] != pad).sum())
    return total / max(count, 1), count


def fit_ngram(train: Split, valid: Split, orders: tuple[int, ...], transpose: bool) -> tuple[NGram, float]:
    """Fit the n-gram baseline on the same (transposed) training data; keep the best order on validation."""
    seqs = [list(map(int, t)) for t in train.tokens]
    if transpose:
        tok_tab = st.transpose_tables()[0]
        seqs = [list(map(int, tok_tab[k][np.asarray(s)])) for k in range(12) for s in seqs]
    best: tuple[NGram, float] | None = None
    for order in orders:
        model = NGram(order, len(g.VOCAB)).fit(seqs)
        total, n = model.nll([list(map(int, t)) for t in valid.tokens])
        nll = total / max(n, 1)
        log.info("n-gram order %d: validation NLL %.4f", order, nll)
        if best is None or nll < best[1]:
            best = (model, nll)
    assert best is not None
    return best


def _save_state(out: Path, model: ChorusLSTM, opt: torch.optim.Optimizer, gen: torch.Generator, info: dict) -> None:
    d = out / STATE_DIR
    d.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for i, s in opt.state_dict()["state"].items():
        for k, v in s.items():
            tensors[f"opt.{i}.{k}"] = (v if torch.is_tensor(v) else torch.tensor(v)).detach().cpu().contiguous()
    tensors["rng.data"] = gen.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    save_file(tensors, str(d / "state.safetensors.tmp"))
    (d / "state.safetensors.tmp").replace(d / "state.safetensors")
    (d / "state.json").write_text(json.dumps(info, indent=2))


def _load_state(src: Path, model: ChorusLSTM, opt: torch.optim.Optimizer, gen: torch.Generator) -> dict:
    d = src / STATE_DIR
    if not (d / "state.json").is_file():
        raise EngineError(f"nothing to resume in {src}: no {STATE_DIR}/state.json")
    tensors = load_file(str(d / "state.safetensors"))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    sd = opt.state_dict()
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, i, name = key.split(".", 2)
            sd["state"].setdefault(int(i), {})[name] = v
    opt.load_state_dict(sd)
    gen.set_state(tensors["rng.data"])
    torch.set_rng_state(tensors["rng.torch"])
    return json.loads((d / "state.json").read_text())


def _train_epoch(model: ChorusLSTM, opt: torch.optim.Optimizer, toks: torch.Tensor, feats: torch.Tensor,
                 cfg: TrainConfig, dev: torch.device, progress: Callable[[int, int, float, float], None] | None,
                 cond: torch.Tensor | None = None) -> tuple[int, float]:
    """One pass over an epoch's windows, tokens (N, L+1), feats (N, L+1, 3), cond (N, L+1, 2), in
    batches. Returns the number of predicted tokens and the summed loss (mean per window, times windows)."""
    model.train()
    pad = g.TOKEN_ID["PAD"]
    started = time.perf_counter()
    n = toks.shape[0]
    seen, loss_sum = 0, 0.0
    for b in range(0, n, cfg.batch_size):
        x, f = toks[b:b + cfg.batch_size].to(dev), feats[b:b + cfg.batch_size].to(dev)
        c = cond[b:b + cfg.batch_size, :-1].to(dev) if cond is not None else None
        logits, _ = model(x[:, :-1], f[:, :-1], cond=c)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), ignore_index=pad)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        seen += x.shape[0] * (x.shape[1] - 1)
        loss_sum += loss.item() * x.shape[0]
        if progress:
            progress(min(b + cfg.batch_size, n), n, loss_sum / min(b + cfg.batch_size, n),
                     seen / max(time.perf_counter() - started, 1e-9))
    return seen, loss_sum


def _load_splits(data: Path, vocab_of: Callable[[list], Vocab | None] = lambda _: None,
                 ) -> tuple[Dataset, Split, Split, Vocab | None]:
    """The dataset, its train and validation splits, and the conditioning vocabulary (or None).

    Raises:
        EngineError: another vocabulary, or a side of the split is empty.
    """
    ds = Dataset.load(data)
    if ds.vocab != list(g.VOCAB):
        raise EngineError(f"dataset {data} was built with another vocabulary; rebuild it with chorus corpus build")
    vocab = vocab_of(ds.split("train"))
    train_split, valid_split = Split.of(ds.split("train"), vocab), Split.of(ds.split("valid"), vocab)
    if not train_split.tokens or not valid_split.tokens:
        raise EngineError(f"dataset {data} needs pieces on both sides of the split "
                          f"({len(train_split.tokens)} train, {len(valid_split.tokens)} validation)")
    return ds, train_split, valid_split, vocab


def _epoch(model: ChorusLSTM, opt: torch.optim.Optimizer, gen: torch.Generator, cfg: TrainConfig, ds: Any,
           train_split: Split, valid_split: Split, vocab: Any, info: dict[str, Any], out: Path, dev: torch.device,
           say: Callable[[str], None], progress: Callable | None) -> None:
    """One epoch: train, validate, record it in ``info``, keep the best checkpoint, save the state."""
    epoch_start = time.perf_counter()
    toks, feats, cond = sample_windows(train_split, cfg, gen)
    n, (seen, loss_sum) = toks.shape[0], _train_epoch(model, opt, toks, feats, cfg, dev, progress, cond if vocab else None)
    train_s = time.perf_counter() - epoch_start
    valid_nll, _ = evaluate_nll(model, valid_split, dev)
    plain_nll = evaluate_nll(model, valid_split, dev, labelled=False)[0] if vocab else valid_nll
    info["epoch"] += 1
    info["seconds"] += time.perf_counter() - epoch_start
    info["history"].append({"epoch": info["epoch"], "train_loss": loss_sum / n, "valid_nll": valid_nll,
                            "valid_nll_unconditioned": plain_nll, "tokens_per_s": seen / train_s})
    line = (f"epoch {info['epoch']}: train loss {loss_sum / n:.4f}, validation NLL {valid_nll:.4f}"
            + (f" (unconditioned {plain_nll:.4f})" if vocab else "") + f", {seen / train_s:,.0f} tokens/s")
    if valid_nll < info["best_nll"] - 1e-4:
        info.update(best_nll=valid_nll, best_epoch=info["epoch"], bad_epochs=0, best_nll_unconditioned=plain_nll)
        _write_best(out, model, cfg, ds, info, vocab)
        say(line + " - best validation loss so far, checkpoint saved")
    else:
        info["bad_epochs"] += 1
        say(line)
    _save_state(out, model, opt, gen, info)


def train(
    cfg: TrainConfig,
    data: Path,
    out: Path,
    resume: Path | None = None,
    device: str = "auto",
    say: Callable[[str], None] = print,
    progress: Callable[[int, int, float, float], None] | None = None,
) -> dict[str, Any]:
    """Train a model and write its best checkpoint into ``out``. Returns the checkpoint meta.

    Args:
        progress: called as ``progress(done_windows, total_windows, loss, tokens_per_s)``.
    """
    from engine.models.sample import pick_device

    dev = pick_device(device)
    ds, train_split, valid_split, vocab = _load_splits(
        data, lambda pieces: Vocab.of(pieces, cfg.min_player_pieces, cfg.keep_players) if cfg.condition else None)
    if vocab is not None:
        cfg = replace(cfg, model=replace(cfg.model, n_eras=len(vocab.eras), n_players=len(vocab.players)))
        say(f"conditioned on {len(vocab.eras) - 1} eras and {len(vocab.players) - 1} players "
            f"({', '.join(vocab.players[1:])})")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = ChorusLSTM(cfg.model).to(dev)
    if cfg.init_from and resume is None:
        say(warm_start(model, Path(cfg.init_from)))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    info = {"epoch": 0, "best_nll": math.inf, "best_epoch": 0, "bad_epochs": 0, "seconds": 0.0, "history": []}
    if resume is not None:
        info = _load_state(resume, model, opt, gen)
        say(f"resumed from {resume} after epoch {info['epoch']} (best validation NLL {info['best_nll']:.4f})")
    say(f"training {cfg.style} on {dev}: {model.num_parameters():,} parameters, "
        f"{train_split.n_tokens:,} train / {valid_split.n_tokens:,} validation tokens")
    stop_reason = "max epochs"
    while info["epoch"] < cfg.max_epochs:
        _epoch(model, opt, gen, cfg, ds, train_split, valid_split, vocab, info, out, dev, say, progress)
        if early := _early_stop(cfg, info):
            stop_reason = early
            break
    say(f"stopped ({stop_reason}) after {info['epoch']} epochs, {info['seconds'] / 60:.1f} min")
    ngram, ngram_nll = fit_ngram(train_split, valid_split, cfg.ngram_orders, cfg.transpose)
    meta = _finish(out, cfg, ds, info, ngram, ngram_nll, stop_reason, vocab)
    say(f"validation NLL {info['best_nll']:.4f} nats/token (n-gram order {ngram.order}: {ngram_nll:.4f}); "
        f"checkpoint {out}")
    return meta


def warm_start(model: ChorusLSTM, path: Path) -> str:
    """Copy a checkpoint's weights into ``model``, which may have more inputs (era and player).

    The era and player embeddings are appended at the end of the LSTM's input, so the first layer's
    input weights keep their columns and the new columns start at zero: the warm-started model
    computes exactly what the old one did until training moves it. Returns a line to print.

    Raises:
        EngineError: a weight of another shape than the new model's (another size of network).
    """
    from engine.models.checkpoint import load_checkpoint

    old = load_checkpoint(path).model.state_dict()
    new = model.state_dict()
    for name, value in old.items():
        target = new.get(name)
        if target is None:
            continue
        if name == "lstm.weight_ih_l0" and value.shape[0] == target.shape[0] and value.shape[1] <= target.shape[1]:
            widened = torch.zeros_like(target)
            widened[:, : value.shape[1]] = value
            value = widened
        if value.shape != target.shape:
            raise EngineError(f"cannot warm-start from {path}: {name} is {tuple(value.shape)}, not {tuple(target.shape)}")
        new[name] = value
    model.load_state_dict(new)
    return f"warm start from {path} ({len(old)} tensors; era and player inputs start at zero)"


def _early_stop(cfg: TrainConfig, info: dict) -> str | None:
    """Why training stops after this epoch (no improvement for ``patience`` epochs, or out of time), or None."""
    if info["bad_epochs"] >= cfg.patience:
        return f"early stop: no improvement for {cfg.patience} epochs"
    if cfg.max_minutes and info["seconds"] > cfg.max_minutes * 60:
        return f"time budget of {cfg.max_minutes} min reached"
    return None


def _write_best(out: Path, model: ChorusLSTM, cfg: TrainConfig, ds: Dataset, info: dict, vocab: Vocab | None) -> None:
    best = out / STATE_DIR / "best"
    best.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(best / "model.safetensors"))
    save_checkpoint(out, model, _meta(cfg, ds, info, None, None, "training", vocab))


def _meta(cfg: TrainConfig, ds: Dataset, info: dict, ngram_nll: float | None, ngram_order: int | None, stop: str,
          vocab: Vocab | None = None) -> dict:
    train = ds.split("train")
    meta = {
        "style": cfg.style,
        "metrics": {"valid_nll": info["best_nll"], "ngram_nll": ngram_nll, "ngram_order": ngram_order,
                    "train_tokens": sum(len(p.tokens) for p in train),
                    "valid_tokens": sum(len(p.tokens) for p in ds.split("valid"))},
        "training": {"preset": cfg.name, "config": cfg.to_dict(), "overrides": _overrides(cfg),
                     "epochs": info["epoch"], "best_epoch": info["best_epoch"],
                     "seconds": round(info["seconds"], 1), "stopped": stop, "history": info["history"]},
        "corpus": {"sources": ds.sources, "fingerprint": ds.fingerprint,
                   "train_recordings": sorted({p.recording for p in train}),
                   "valid_recordings": sorted({p.recording for p in ds.split("valid")})},
        "sampling": STYLES[cfg.style].sampling.to_meta() if cfg.style in STYLES else dict(DEFAULT_SAMPLING),
    }
    if vocab is not None:
        meta["conditioning"] = vocab.to_meta()
        meta["metrics"]["valid_nll_unconditioned"] = info.get("best_nll_unconditioned")
    return meta


def _overrides(cfg: TrainConfig) -> dict[str, Any]:
    """The fields (other than the model's) where ``cfg`` differs from its named preset."""
    base = PRESETS.get(cfg.name)
    if base is None:
        return {}
    ref = base.to_dict()
    return {k: v for k, v in cfg.to_dict().items() if k != "model" and ref.get(k) != v}


def _finish(out: Path, cfg: TrainConfig, ds: Dataset, info: dict, ngram: NGram, ngram_nll: float, stop: str,
            vocab: Vocab | None) -> dict:
    model = ChorusLSTM(cfg.model)
    model.load_state_dict(load_file(str(out / STATE_DIR / "best" / "model.safetensors")))
    meta = _meta(cfg, ds, info, ngram_nll, ngram.order, stop, vocab)
    meta = save_checkpoint(out, model, meta, extra=ngram.to_tensors())
    shutil.rmtree(out / STATE_DIR, ignore_errors=True)
    return meta


def preset(name: str, **overrides: Any) -> TrainConfig:
    if name not in PRESETS:
        raise EngineError(f"unknown preset {name!r}: choose from {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})
