"""Training the harmony model (`engine.models.harmony`) on chord charts, and its teacher-forced check.

``chorus train-harmony --style jazz --into checkpoints/jazz`` reads the style's charts (jazz: the
WJazzD tune charts and the Metheny file's inferred chords; folk: the Nottingham chords), holds out
one tune in ten by a hash of its title, trains, and writes the harmony model into the style's
checkpoint folder beside its melody model (one ``model.safetensors``, ``meta.json["harmony"]``).

The check: on the held-out tunes, the model's NLL of each chord change at its place (renormalised
over "a new chord comes here", so it is comparable with a bigram that predicts the next distinct
chord) against a transposition-invariant chord bigram P(root interval, family | family) fitted on
the training tunes with add-0.1 smoothing.
"""
from __future__ import annotations

import hashlib
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.errors import EngineError
from engine.models.harmony import (
    BOS,
    HOLD,
    N_FAM,
    N_OUT,
    HarmonyConfig,
    chord_token,
    degree_index,
    key_weights_table,
    position,
    steps_per_bar,
)
from engine.models.harmony_net import HarmonyLSTM
from engine.music.chords import FAMILY_NAMES
from training.corpus.charts import Chart, chart_from_sheet, read_wjazzd_charts

Say = Callable[[str], None]


@dataclass(frozen=True)
class HarmonyTrainConfig:
    epochs: int = 40
    batch: int = 16
    lr: float = 2e-3
    patience: int = 6
    era_dropout: float = 0.3
    seed: int = 1234
    time_budget_s: float = 1200.0
    config: HarmonyConfig = HarmonyConfig()


def held_out_title(title: str) -> bool:
    """One tune in ten is held out, by the sha1 of its normalised title."""
    norm = re.sub(r"[^a-z0-9]", "", re.sub(r"\bthe\b", "", title.lower()))
    return int(hashlib.sha1(norm.encode()).hexdigest(), 16) % 10 == 0


def encode_chart(chart: Chart, slots: int = 2) -> tuple[list[int], list[list[int]]]:
    """(target tokens, input features per step) of one chart, one step per half bar (``slots`` 2)
    or per beat (`engine.models.harmony.steps_per_bar`, the bar's beats from ``chart.meta["beats"]``,
    default 4); the input token at step t is the target at t-1 (BOS first). No-chord spans keep
    the previous chord."""
    era = chart.meta.get("style", "")
    n = steps_per_bar(slots, int(chart.meta.get("beats", 4)))
    targets, feats, chord, seen = [], [], None, set()
    for si, section in enumerate(chart.sections):
        repeat = section.label in seen
        seen.add(section.label)
        for bar, cells in enumerate(section.bars):
            for slot, c in enumerate(cells[k * len(cells) // n] for k in range(n)):
                feats.append([degree_index(chart.tonic, chord), *position(
                    slot, bar, len(section.bars), section.label, si, len(chart.sections), repeat, chart.mode, era)])
                if c.is_nc or (chord is not None and c.reduced == chord):
                    targets.append(HOLD if chord is not None else chord_token(chart.tonic, _tonic_chord(chart)))
                else:
                    targets.append(chord_token(chord.root if chord else chart.tonic, c))
                if targets[-1] != HOLD:
                    chord = c.reduced if not c.is_nc else _tonic_chord(chart)
    return targets, feats


def _tonic_chord(chart: Chart):
    from engine.music.chords import Chord

    return Chord(chart.tonic, "maj" if chart.mode == "major" else "min")


def _wjazzd_charts(root: Path, kind: str, even_meters: bool, say: Say) -> list[Chart]:
    charts, skipped = read_wjazzd_charts(root)
    say(f"WJazzD charts: {len(charts)} read, {len(skipped)} skipped")
    return charts


def _bach_charts(root: Path, kind: str, even_meters: bool, say: Say) -> list[Chart]:
    """The chorales' charts (`training.corpus.bach`): from ``root``, else music21's own corpus."""
    from training.corpus import Source, read_sources
    from training.corpus.bach import chart_from_chorale, music21_bach_dir

    report = read_sources([Source.parse(f"bach={root if root.is_dir() else music21_bach_dir()}")])
    say(f"Bach chorales: {len(report.sheets)} read, {len(report.skipped)} skipped")
    return [chart for chart in map(chart_from_chorale, report.sheets) if chart.sections]


def _sheet_charts(root: Path, kind: str, even_meters: bool, say: Say) -> list[Chart]:
    """Charts of lead sheets read by a corpus reader (``midi``, ``nottingham``), each in the key
    estimated from its chords and melody; ``even_meters`` leaves out pieces in 3/4 and the like."""
    from engine.music.keys import estimate_key
    from training.corpus import Source, read_sources

    charts = []
    for sheet in read_sources([Source.parse(f"{kind}={root}")]).sheets:
        if even_meters and sheet.time_signature[0] % 2:
            continue
        melody, changes, t = [], [], 0.0
        for m in sheet.measures:
            melody += [type(n)(t + n.onset, n.duration, n.pitch) for n in m.notes]
            changes += [(t + span.onset, span.chord) for span in m.chords]
            t += m.beats
        tonic, mode = estimate_key(melody, changes, t)
        chart = chart_from_sheet(sheet, tonic, mode)
        if chart.sections:
            charts.append(chart)
    return charts


# chart corpus kind -> reader(folder, kind, even_meters, say), for a style's ``harmony.charts``
CHART_KINDS = {"wjazzd-charts": _wjazzd_charts, "bach": _bach_charts, "midi": _sheet_charts,
               "nottingham": _sheet_charts}


def read_charts(style: str, corpus_dir: Path, say: Say) -> list[Chart]:
    """The style's training charts, deduplicated by their chords: the corpora its training preset
    names (``Style.training["harmony"]["charts"]``, ``KIND=FOLDER`` under ``corpus_dir``).

    Raises:
        EngineError: the style names no harmony corpora, or one of an unknown kind.
    """
    from engine.band.styles import get_style

    spec = get_style(style).training.get("harmony") or {}
    if not spec.get("charts"):
        raise EngineError(f"style {style} names no harmony corpora (its training preset's 'harmony')")
    charts: list[Chart] = []
    for source in spec["charts"]:
        kind, _, folder = source.partition("=")
        if kind not in CHART_KINDS:
            raise EngineError(f"unknown chart corpus kind {kind!r}: choose from {', '.join(sorted(CHART_KINDS))}")
        charts += CHART_KINDS[kind](corpus_dir / folder, kind, bool(spec.get("even_meters")), say)
    seen, out = set(), []
    for c in charts:
        key = (c.title, tuple(ch.token for b in c.bars for ch in b))
        if key not in seen:
            seen.add(key)
            out.append(c)
    say(f"{style}: {len(out)} distinct charts")
    return out


def _batches(data: list[tuple[list[int], list[list[int]]]], size: int, rnd: random.Random, shuffle: bool):
    order = list(range(len(data)))
    if shuffle:
        rnd.shuffle(order)
    for i in range(0, len(order), size):
        chunk = [data[j] for j in order[i:i + size]]
        t = max(len(x[0]) for x in chunk)
        tokens = torch.full((len(chunk), t), BOS, dtype=torch.long)
        targets = torch.full((len(chunk), t), -100, dtype=torch.long)
        feats = torch.zeros((len(chunk), t, len(chunk[0][1][0])), dtype=torch.long)
        for b, (tg, ft) in enumerate(chunk):
            n = len(tg)
            targets[b, :n] = torch.tensor(tg)
            tokens[b, 1:n] = torch.tensor(tg[:-1])
            feats[b, :n] = torch.tensor(ft)
        yield tokens, feats, targets


def _nll(model: HarmonyLSTM, data, batch: int) -> float:
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for tokens, feats, targets in _batches(data, batch, random.Random(0), False):
            logits, _ = model(tokens, feats)
            total += float(nn.functional.cross_entropy(logits.reshape(-1, N_OUT), targets.reshape(-1),
                                                       ignore_index=-100, reduction="sum"))
            n += int((targets != -100).sum())
    return total / max(n, 1)


def train_harmony(charts: list[Chart], cfg: HarmonyTrainConfig, say: Say) -> tuple[HarmonyLSTM, dict[str, Any]]:
    """Train on the charts not held out; early stopping on the held-out ones."""
    torch.manual_seed(cfg.seed)
    rnd = random.Random(cfg.seed)
    train_c = [c for c in charts if not held_out_title(c.title)]
    valid_c = [c for c in charts if held_out_title(c.title)]
    slots = cfg.config.slots
    train, valid = [encode_chart(c, slots) for c in train_c], [encode_chart(c, slots) for c in valid_c]
    model = HarmonyLSTM(cfg.config)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    best, best_state, bad, started = math.inf, None, 0, time.monotonic()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        for tokens, feats, targets in _batches(train, cfg.batch, rnd, True):
            feats = feats.clone()
            drop = torch.rand(feats.shape[0]) < cfg.era_dropout
            feats[drop, :, -1] = 0
            logits, _ = model(tokens, feats)
            loss = nn.functional.cross_entropy(logits.reshape(-1, N_OUT), targets.reshape(-1), ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        v = _nll(model, valid, cfg.batch)
        say(f"harmony epoch {epoch}: validation NLL {v:.4f} nats/step")
        if v < best - 1e-4:
            best, bad = v, 0
            best_state = {k: t.clone() for k, t in model.state_dict().items()}
        else:
            bad += 1
        if bad >= cfg.patience or time.monotonic() - started > cfg.time_budget_s:
            break
    model.load_state_dict(best_state)
    model.eval()
    report = {"train_charts": len(train_c), "valid_charts": len(valid_c), "valid_nll_per_step": best,
              "epochs": epoch, "minutes": round((time.monotonic() - started) / 60, 2),
              **teacher_forced(model, train_c, valid_c)}
    report["key_weights"] = key_weights_table([(c.tonic, c.mode) for c in train_c])
    return model, report


def _changes(chart: Chart) -> list[tuple[int, int]]:
    """(family index, root) of each distinct chord in order (NC left out)."""
    out: list[tuple[int, int]] = []
    for bar in chart.bars:
        for c in bar:
            if not c.is_nc and (not out or out[-1] != (FAMILY_NAMES.index(c.family), c.root)):
                out.append((FAMILY_NAMES.index(c.family), c.root))
    return out


def teacher_forced(model: HarmonyLSTM, train: list[Chart], valid: list[Chart]) -> dict[str, float]:
    """Mean NLL per chord change on the held-out charts: the model vs a chord bigram."""
    counts = np.full((N_FAM, 12 * N_FAM), 0.1)
    for c in train:
        ch = _changes(c)
        for (f0, r0), (f1, r1) in zip(ch, ch[1:], strict=False):
            counts[f0, ((r1 - r0) % 12) * N_FAM + f1] += 1
    bigram = np.log(counts / counts.sum(axis=1, keepdims=True))
    m_total, b_total, n = 0.0, 0.0, 0
    with torch.no_grad():
        for chart in valid:
            targets, feats = encode_chart(chart, model.config.slots)
            tokens = torch.tensor([[BOS, *targets[:-1]]])
            logits, _ = model(tokens, torch.tensor([feats]))
            logp = torch.log_softmax(logits[0, :, 1:], dim=-1).numpy()  # renormalised without HOLD
            prev_fam = None
            for t, tok in enumerate(targets):
                if tok == HOLD:
                    continue
                if prev_fam is not None:
                    m_total -= float(logp[t, tok - 1])
                    b_total -= float(bigram[prev_fam, tok - 1])
                    n += 1
                prev_fam = (tok - 1) % N_FAM
    return {"chord_nll_model": m_total / max(n, 1), "chord_nll_bigram": b_total / max(n, 1), "chord_changes": n}


# Licences of the chord sources, recorded in meta.json["harmony"]["corpus"].
SOURCES = {
    "jazz": {"wjazzd": "Weimar Jazz Database tune charts (solos_metadata.csv chord_changes), ODbL 1.0",
             "deepjazz_metheny": "chords inferred from Pat Metheny 'And Then I Knew' (fan sequence, no licence stated)"},
    "folk": {"nottingham": "Nottingham folk tunes (Jukedeck cleaned) chord tracks, GPL-3.0"},
    "bach": {"music21": "J. S. Bach's chorales (public domain) from the music21 corpus (BSD); chords inferred "
                        "per beat from the four voices, phrases at the fermatas"},
}


def install_harmony(checkpoint: Path, style: str, model: HarmonyLSTM, report: dict[str, Any],
                    temperature: float = 1.0, top_p: float = 0.95) -> dict[str, Any]:
    """Write the harmony model into the style's checkpoint folder beside its melody model (the
    melody weights are kept as they are; the content hash covers both)."""
    from engine.band.styles import get_style
    from engine.models.checkpoint import load_checkpoint, save_checkpoint

    ck = load_checkpoint(checkpoint)
    meta = {k: v for k, v in ck.meta.items() if k not in ("content_hash", "size_bytes", "model_config", "vocab")}
    meta["harmony"] = {
        "key_weights": report["key_weights"],
        "forms": list(get_style(style).sampling.song_forms),  # the registry's, drawn by the seed
        "temperature": temperature,
        "top_p": top_p,
        "corpus": SOURCES.get(style, {}),
        "training": {k: v for k, v in report.items() if k != "key_weights"},
    }
    return save_checkpoint(checkpoint, ck.model, meta, ck.extra, harmony=model)


def train_into(style: str, into: Path, corpus_dir: Path, epochs: int, time_budget_s: float, seed: int,
               temperature: float, top_p: float, say: Say) -> dict[str, Any]:
    """``chorus train-harmony``: train the style's harmony model and write it into its checkpoint."""
    charts = read_charts(style, Path(corpus_dir), say)
    from engine.band.styles import get_style
    from engine.models.harmony import HarmonyConfig

    config = HarmonyConfig(slots=get_style(style).sampling.harmony_slots)
    model, report = train_harmony(charts, HarmonyTrainConfig(epochs=epochs, time_budget_s=time_budget_s, seed=seed,
                                                              config=config), say)
    say(f"teacher-forced chord NLL on {report['valid_charts']} held-out tunes: model "
        f"{report['chord_nll_model']:.4f}, chord bigram {report['chord_nll_bigram']:.4f} nats/chord")
    meta = install_harmony(Path(into), style, model, report, temperature, top_p)
    say(f"harmony model written into {into} (content hash {meta['content_hash'][:12]})")
    return meta
