"""Objective music metrics, as defined in ../shared/METRICS.md.

Pieces are `engine.music.grammar.QPiece` (grid units, 12 per beat): reference pieces are quantised,
generated ones decoded, so both sides are measured the same way.

* Jazz Transformer (Wu & Yang 2020): H1, H4 (pitch-class entropy over 1- and 4-bar windows, bits),
  GS (grooving pattern similarity), CPI (chord progression irregularity).
* Chord-tone ratio: share of melody onsets on a chord tone of the sounding chord (NC excluded).
* Yang & Lerch (2020): per-piece features, intra-set and inter-set distances, and the overlapping
  area (OA) of their Gaussian-KDE densities on one shared grid.
"""
from __future__ import annotations

import math
import random

import numpy as np
from scipy.stats import gaussian_kde

from engine.music.grammar import GRID, QPiece, bar_units

# mgeval's note-length classes, in quarter-note beats:
# whole, half, quarter, 8th, 16th, dotted half, dotted quarter, dotted 8th, dotted 16th,
# half triplet, quarter triplet, 8th triplet
NOTE_LENGTHS = np.array([4, 2, 1, 0.5, 0.25, 3, 1.5, 0.75, 0.375, 4 / 3, 2 / 3, 1 / 3])
OA_FEATURES = ("pitch_count", "pitch_class_histogram", "pitch_range", "avg_pitch_interval",
               "note_count", "avg_ioi", "note_length_histogram")


def _bars(piece: QPiece) -> list[tuple[int, int]]:
    return [(s, s + bar_units(m)) for s, m in piece.bars]


def _entropy(counts: np.ndarray) -> float:
    total = counts.sum()
    if total == 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


def pitch_class_entropy(piece: QPiece, window: int) -> float | None:
    """Mean pitch-class entropy (bits) over windows of ``window`` bars, sliding one bar."""
    bars = _bars(piece)
    values = []
    for i in range(0, max(1, len(bars) - window + 1)):
        span = bars[i:i + window]
        if not span:
            break
        lo, hi = span[0][0], span[-1][1]
        counts = np.bincount([n.pitch % 12 for n in piece.notes if lo <= n.onset < hi], minlength=12)
        if counts.sum():
            values.append(_entropy(counts))
    return float(np.mean(values)) if values else None


def grooving_similarity(piece: QPiece, max_pairs: int = 1000, seed: int = 0) -> float | None:
    """Mean similarity of bar-level onset patterns over 64 positions (GS)."""
    patterns = []
    onsets = sorted(n.onset for n in piece.notes)
    for lo, hi in _bars(piece):
        v = np.zeros(64, dtype=bool)
        for t in onsets:
            if lo <= t < hi:
                v[min(63, (t - lo) * 64 // (hi - lo))] = True
        patterns.append(v)
    n = len(patterns)
    if n < 2:
        return None
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    if len(pairs) > max_pairs:
        pairs = random.Random(seed).sample(pairs, max_pairs)
    return float(np.mean([1 - np.count_nonzero(patterns[i] ^ patterns[j]) / 64 for i, j in pairs]))


def chord_irregularity(piece: QPiece) -> float:
    """CPI: unique chord trigrams / (chords - 3), chords with repeats collapsed; 1 for <= 3 chords."""
    seq = []
    for _, chord in piece.changes:
        if not seq or seq[-1] != chord.token:
            seq.append(chord.token)
    if len(seq) <= 3:
        return 1.0
    trigrams = {tuple(seq[i:i + 3]) for i in range(len(seq) - 2)}
    return len(trigrams) / (len(seq) - 3)


def chord_tone_ratio(piece: QPiece) -> tuple[int, int]:
    """(onsets on a chord tone, onsets under a chord) for one piece."""
    hits = total = 0
    ci = 0
    changes = piece.changes
    for note in sorted(piece.notes, key=lambda n: n.onset):
        while ci + 1 < len(changes) and changes[ci + 1][0] <= note.onset:
            ci += 1
        chord = changes[ci][1] if changes else None
        if chord is None or chord.is_nc:
            continue
        total += 1
        hits += note.pitch % 12 in chord.chord_pcs
    return hits, total


def style_metrics(pieces: list[QPiece]) -> dict[str, float]:
    """H1, H4, GS, CPI (means over pieces) and the chord-tone ratio (over all onsets)."""
    def mean(values: list[float | None]) -> float:
        vals = [v for v in values if v is not None]
        return float(np.mean(vals)) if vals else float("nan")

    hits = sum(chord_tone_ratio(p)[0] for p in pieces)
    total = sum(chord_tone_ratio(p)[1] for p in pieces)
    return {
        "H1": mean([pitch_class_entropy(p, 1) for p in pieces]),
        "H4": mean([pitch_class_entropy(p, 4) for p in pieces]),
        "GS": mean([grooving_similarity(p) for p in pieces]),
        "CPI": mean([chord_irregularity(p) for p in pieces]),
        "chord_tone_ratio": hits / total if total else float("nan"),
    }


# -- Yang & Lerch features and overlapping area ------------------------------------------------


def piece_features(piece: QPiece) -> dict[str, np.ndarray]:
    notes = sorted(piece.notes, key=lambda n: n.onset)
    pitches = np.array([n.pitch for n in notes]) if notes else np.zeros(0)
    pch = np.zeros(12)
    for n in notes:
        pch[n.pitch % 12] += n.dur
    lengths = np.zeros(12)
    for n in notes:
        lengths[int(np.argmin(np.abs(NOTE_LENGTHS - n.dur / GRID)))] += 1
    onsets = np.array([n.onset for n in notes], dtype=float) / GRID
    return {
        "pitch_count": np.array([len(set(pitches.tolist()))], dtype=float),
        "pitch_class_histogram": pch / pch.sum() if pch.sum() else pch,
        "pitch_range": np.array([float(pitches.max() - pitches.min()) if len(pitches) else 0.0]),
        "avg_pitch_interval": np.array([float(np.abs(np.diff(pitches)).mean()) if len(pitches) > 1 else 0.0]),
        "note_count": np.array([float(len(notes))]),
        "avg_ioi": np.array([float(np.diff(onsets).mean()) if len(onsets) > 1 else 0.0]),
        "note_length_histogram": lengths / lengths.sum() if lengths.sum() else lengths,
    }


def _kde(values: np.ndarray):
    if len(values) < 2 or np.allclose(values, values[0]):
        center = float(values[0]) if len(values) else 0.0
        return lambda x: np.exp(-0.5 * ((x - center) / 1e-3) ** 2) / (1e-3 * math.sqrt(2 * math.pi))
    return gaussian_kde(values)


def overlap_area(a: np.ndarray, b: np.ndarray, points: int = 1000) -> float:
    """Overlapping area of the Gaussian-KDE densities of two samples, on one shared grid."""
    lo = min(a.min(), b.min())
    hi = max(a.max(), b.max())
    pad = 0.1 * (hi - lo) + 1e-6
    grid = np.linspace(lo - pad, hi + pad, points)
    pa, pb = _kde(a)(grid), _kde(b)(grid)
    return float(np.trapezoid(np.minimum(pa, pb), grid))


def overlapping_areas(generated: list[QPiece], reference: list[QPiece]) -> dict[str, float]:
    """OA per feature between reference intra-set and generated-vs-reference inter-set distances."""
    gen = [piece_features(p) for p in generated]
    ref = [piece_features(p) for p in reference]
    out = {}
    for name in OA_FEATURES:
        r = np.array([f[name] for f in ref])
        g_ = np.array([f[name] for f in gen])
        intra = np.array([np.linalg.norm(r[i] - r[j]) for i in range(len(r)) for j in range(len(r)) if i != j])
        inter = np.array([np.linalg.norm(x - y) for x in g_ for y in r])
        out[name] = overlap_area(intra, inter) if len(intra) and len(inter) else float("nan")
    return out


def within(generated: float, reference: float, tolerance: float = 0.15) -> bool:
    """Whether a generated value lies within ``tolerance`` (relative) of the reference value."""
    return abs(generated - reference) <= tolerance * abs(reference)

