"""Realism: can a simple classifier tell Chorus's lead lines from real solos?

A two-sample test by classifier: logistic regression on tempo-free features of 32-bar lines
(standardised, classes balanced, stratified 5-fold cross-validation). An accuracy near 0.5 means
the classifier cannot tell the two sets apart; the same test between two random halves of the
real solos gives the floor for the sample size. Two views:

- **composition**: the notes as written. Real solos: WJazzD's metrical places (bar, beat, tatum
  of the division); clips: their lead exactly as composed (``feel`` grid).
  Features: onset place within the beat (sixths), inter-onset times, density, empty bars, rests
  of over a beat, phrase lengths, pitch spread, intervals, pitch against the sounding chord's root.
- **performance**: the notes as they sound. Real solos: the performed onsets and durations in
  seconds, read through the solo's beat track into beats; clips: the lead as rendered (swing,
  lengths). Features: articulation (length ÷ spacing to the next onset), onset place within the
  beat, inter-onset times, empty bars, rests of over a beat.

`features` names every feature (`COMPOSITION`, `PERFORMANCE`); `two_sample` runs the test and
names the features whose means differ most (Cohen's d, pooled standard deviations).
"""
from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.errors import EngineError
from training.corpus.performed import Line, held_out_solos, real_line

BARS = 32
_ART = ((0.0, 0.5), (0.5, 0.8), (0.8, 0.95), (0.95, 1.05), (1.05, 99.0))
_IOI = ((0.0, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.2), (1.2, 2.2), (2.2, 999.0))
_PLACE = tuple((i / 6, (i + 1) / 6) for i in range(6))


def _bins(values: Sequence[float], edges: Sequence[tuple[float, float]], prefix: str) -> dict[str, float]:
    n = max(1, len(values))
    return {f"{prefix} {lo:g}-{hi:g}": sum(lo <= v < hi for v in values) / n for lo, hi in edges}


def _space(line: Line, onsets: np.ndarray, ends: np.ndarray) -> dict[str, float]:
    bars = max(1, int(np.ceil((onsets[-1] + 1e-9) / line.bar_beats)))
    filled = {int(t // line.bar_beats) for t in onsets}
    rests = onsets[1:] - ends[:-1]
    phrases, size = [], 1
    for gap in rests:
        if gap > 1.0:
            phrases.append(size)
            size = 0
        size += 1
    phrases.append(size)
    return {"bars without a note": 1 - len(filled) / bars, "notes before a rest over a beat": float(np.mean(rests > 1.0)),
            "notes per bar": len(onsets) / bars, "sd of notes per phrase": float(np.std(phrases))}


def _roots_at(line: Line, onsets: np.ndarray) -> list[int | None]:
    out, j, root = [], 0, None
    for t in onsets:
        while j < len(line.roots) and line.roots[j][0] <= t + 1e-6:
            root = line.roots[j][1]
            j += 1
        out.append(root)
    return out


def features(line: Line, view: str) -> dict[str, float]:
    """The named features of one line in ``view`` ("composition" or "performance")."""
    notes = line.first_bars().notes
    if len(notes) < 3:
        raise ValueError("a line needs at least 3 notes")
    onsets = np.array([n[0] for n in notes])
    if view == "composition":  # the written place, on the 12-per-beat grid (a clip's lead is humanised a little)
        onsets = np.round(onsets * 12) / 12
    lengths = np.array([n[1] for n in notes])
    pitches = np.array([n[2] for n in notes])
    ioi = np.diff(onsets)
    place = onsets % 1.0
    out = {**_bins(place, _PLACE, "onset place"), **_bins(ioi, _IOI, "inter-onset beats"),
           **_space(line, onsets, onsets + (lengths if view == "performance" else np.minimum(lengths, 99)))}
    if view == "performance":
        spacing = np.maximum(ioi, 1e-3)
        out.update(_bins(lengths[:-1] / spacing, _ART, "length / spacing"))
        return out
    steps = np.abs(np.diff(pitches))
    out.update({"pitch sd": float(np.std(pitches)), "mean interval": float(np.mean(steps)),
                "steps (1-2)": float(np.mean((steps >= 1) & (steps <= 2))), "leaps (5+)": float(np.mean(steps >= 5)),
                "repeated pitch": float(np.mean(steps == 0))})
    rel = [(p - r) % 12 for p, r in zip(pitches, _roots_at(line, onsets), strict=True) if r is not None]
    out.update({f"pitch over root +{i}": (rel.count(i) / len(rel) if rel else 0.0) for i in range(12)})
    return out


def two_sample(a: Sequence[dict[str, float]], b: Sequence[dict[str, float]], seed: int = 0,
               top: int = 6) -> dict:
    """Cross-validated accuracy of a logistic regression telling ``a`` from ``b`` (as many of each:
    the larger set is cut to the smaller's size, at random), and the features that differ most."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rnd = random.Random(seed)
    n = min(len(a), len(b))
    a, b = rnd.sample(list(a), n), rnd.sample(list(b), n)
    names = sorted(a[0])
    x = np.array([[f[k] for k in names] for f in [*a, *b]])
    y = np.array([0] * n + [1] * n)
    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000, C=1.0))
    folds = StratifiedKFold(n_splits=min(5, n), shuffle=True, random_state=seed)
    accuracy = float(np.mean(cross_val_score(model, x, y, cv=folds, scoring="accuracy")))
    xa, xb = x[:n], x[n:]
    pooled = np.sqrt((xa.var(axis=0, ddof=1) + xb.var(axis=0, ddof=1)) / 2) + 1e-9
    d = (xb.mean(axis=0) - xa.mean(axis=0)) / pooled
    order = np.argsort(-np.abs(d))[:top]
    return {"accuracy": round(accuracy, 3), "n": n, "differ_most": [
        {"feature": names[i], "first": round(float(xa[:, i].mean()), 3), "second": round(float(xb[:, i].mean()), 3),
         "d": round(float(d[i]), 2)} for i in order]}


# --- composed clips ----------------------------------------------------------------------------


def composed_lines(checkpoint: Path, tempos: Sequence[float], view: str, seed: int = 0) -> list[Line]:
    """The lead of one clip per tempo, 32 bars and the ending, sampled and arranged as a clip is
    (no audio): on the grid as composed (``feel`` grid) for the composition view, as performed for
    the performance view."""
    from engine.compose.composer import Composer
    from engine.compose.request import ComposeRequest
    from engine.models.checkpoint import read_meta
    from engine.settings import Settings

    settings = Settings.from_env()
    composer = Composer(settings, numpy=True)
    style = str(read_meta(checkpoint)["style"])
    jobs = []
    for i, tempo in enumerate(tempos):
        tempo = min(max(tempo, settings.min_tempo), settings.max_tempo)
        seconds = min(settings.max_seconds, (BARS + 1.4) * 4 * 60 / tempo)
        req = ComposeRequest(style, seconds, tempo=round(tempo, 1), seed=seed + i,
                             feel="grid" if view == "composition" else None)
        jobs.append((req, checkpoint, None))
    lines = []
    for _, plan in composer.sampled(jobs):
        if isinstance(plan, EngineError):
            continue
        score, *_ = composer.realise(plan, plan.req)
        bar = score.meter[0] * 4 / score.meter[1]
        lead = tuple(sorted((n.start, n.duration, n.pitch) for n in score.part("lead").notes))
        lines.append(Line(lead, bar, tuple((t, c.root) for t, c in score.chords if c.root is not None)))
    return lines


def realism_report(checkpoint: Path, train_recordings: set[str], corpus_dir: Path, clips: int,
                   seed: int = 0) -> dict:
    """The ``realism`` block of ``chorus eval``: per view, real against composed and real against
    real (two random halves), on up to ``clips`` held-out solos and as many clips at their tempos."""
    solos = held_out_solos(corpus_dir, train_recordings, 2 * clips)
    report: dict = {"solos": 0, "clips": 0}
    for view in ("composition", "performance"):
        real = []
        for melody, beats, _tempo in solos:
            try:
                real.append(features(real_line(melody, beats, view), view))
            except (ValueError, KeyError, IndexError, OSError):
                continue
        ours = []
        for line in composed_lines(checkpoint, [t for _, _, t in solos[:clips]], view, seed):
            try:
                ours.append(features(line, view))
            except ValueError:
                continue
        rnd = random.Random(seed)
        shuffled = rnd.sample(real, len(real))
        half = len(shuffled) // 2
        report[view] = {"real_vs_clips": two_sample(real[:clips], ours, seed),
                        "real_vs_real": two_sample(shuffled[:half], shuffled[half:], seed)}
        report["solos"], report["clips"] = min(len(real), clips), len(ours)
    return report


def format_realism(report: dict) -> list[str]:
    """The realism block as lines for ``chorus eval``'s text output."""
    lines = [f"realism ({report['solos']} held-out solos, {report['clips']} clips; 0.5 = cannot tell apart):"]
    for view in ("composition", "performance"):
        block = report[view]
        lines.append(f"  {view:12s} real vs clips {block['real_vs_clips']['accuracy']:.3f}"
                     f"   real vs real {block['real_vs_real']['accuracy']:.3f}")
        for d in block["real_vs_clips"]["differ_most"][:4]:
            lines.append(f"    {d['feature']:34s} real {d['first']:7.3f}  clips {d['second']:7.3f}  d {d['d']:+.2f}")
    return lines


def comping_above_share(score) -> float:
    """Share of a score's lead notes during which some comping note above the lead's pitch sounds
    (a pianist comps under the soloist; `bench/comping.py`)."""
    lead = score.part("lead").notes
    comp = sorted(score.part("comping").notes, key=lambda n: n.start)
    starts = [n.start for n in comp]
    longest = max((n.duration for n in comp), default=0.0)
    covered = 0
    for n in lead:
        lo = bisect.bisect_left(starts, n.start - longest)
        hi = bisect.bisect_right(starts, n.start + n.duration)
        if any(c.pitch > n.pitch and c.start < n.start + n.duration and c.start + c.duration > n.start
               for c in comp[lo:hi]):
            covered += 1
    return covered / max(1, len(lead))
