"""Harmony and form metrics: what a musician hears first (``../shared/METRICS.md``, "Harmony and form").

Chord metrics take a piece as a list of bars, each a tuple of `Chord` sharing the bar equally (what a
`Chart`'s ``bars`` give, or `parse_changes` of a clip's summary ``changes``); only its first 32 bars
count. Chords reduce to (root pitch class, class) with the classes

====== ==================================================
class  engine families
====== ==================================================
M      maj, 6, maj7
m      min, min6, min7, minmaj7
7      7, 7alt, aug7
s      sus, 7sus
h      m7b5
o      dim, dim7
\\+     aug
====== ==================================================

(NC is dropped) and consecutive equal chords count once.

Definitional choices where METRICS.md leaves room:

* Per-8-bar and per-32-bar rates are per piece (count x 8 / bars), then averaged over pieces.
* Key windows: 4 bars sliding by one (one window when a piece is shorter); a window with no chord
  time is skipped. When several keys tie for best and none is in the previous window's collection,
  the first in the order C..B major, then C..B minor wins.
* rep5: a window "occurs again" when another window at least 4 notes away (before or after it) has
  the same key; a lead with fewer than 5 notes scores 0. Notes sharing an onset keep the highest.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from engine.errors import ChordError
from engine.music.chords import Chord, parse_chord

Bar = tuple[Chord, ...]
RChord = tuple[int, str]  # (root pitch class, class)
Motion = tuple[int, str, str]  # (root interval mod 12, class before, class after)
BARS = 32  # only a piece's first 32 bars count
CLASSES = ("M", "m", "7", "s", "h", "o", "+")
CLASS_OF = {"maj": "M", "6": "M", "maj7": "M", "min": "m", "min6": "m", "min7": "m", "minmaj7": "m",
            "7": "7", "7alt": "7", "aug7": "7", "sus": "s", "7sus": "s", "m7b5": "h", "dim": "o",
            "dim7": "o", "aug": "+"}
CLASS_TONES = {"M": (0, 4, 7), "m": (0, 3, 7), "7": (0, 4, 7, 10), "s": (0, 5, 7), "h": (0, 3, 6, 10),
               "o": (0, 3, 6), "+": (0, 4, 8)}
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10, 11)  # natural minor plus the raised 7th
# the 24 keys as (collection, pitch classes): a major key and its relative minor share a collection
KEYS: tuple[tuple[int, frozenset[int]], ...] = tuple(
    [(t, frozenset((t + i) % 12 for i in _MAJOR)) for t in range(12)]
    + [((t + 3) % 12, frozenset((t + i) % 12 for i in _MINOR)) for t in range(12)])
OUTCOMES = 12 * len(CLASSES)  # 84: (root interval, next class)
SMOOTHING = 0.1
GRID = 12  # inter-onset grid steps per beat
MAX_IOI = 4 * GRID  # IOIs capped at 4 beats


def reduce_chord(chord: Chord) -> RChord | None:
    """(root pc, class) of a chord; None for NC."""
    if chord.is_nc:
        return None
    return chord.root, CLASS_OF[chord.family]


def chord_sequence(bars: Sequence[Bar], n_bars: int = BARS) -> list[RChord]:
    """The reduced chords of the first ``n_bars`` bars, NC dropped, consecutive equal ones once."""
    out: list[RChord] = []
    for bar in bars[:n_bars]:
        for chord in bar:
            r = reduce_chord(chord)
            if r is not None and (not out or out[-1] != r):
                out.append(r)
    return out


def motions(seq: Sequence[RChord]) -> list[Motion]:
    """(root interval mod 12, class before, class after) of each transition."""
    return [((b[0] - a[0]) % 12, a[1], b[1]) for a, b in zip(seq, seq[1:], strict=False)]


@dataclass
class ChordBigram:
    """Key-independent bigram P(root interval mod 12, next class | class), add-0.1 smoothed over 84 outcomes."""

    counts: dict[str, Counter[tuple[int, str]]] = field(default_factory=dict)

    @classmethod
    def fit(cls, sequences: Iterable[Sequence[RChord]]) -> ChordBigram:
        model = cls({c: Counter() for c in CLASSES})
        for seq in sequences:
            for interval, before, after in motions(seq):
                model.counts[before][(interval, after)] += 1
        return model

    def logprob(self, motion: Motion) -> float:
        """ln P(interval, after | before)."""
        interval, before, after = motion
        row = self.counts.get(before, Counter())
        return math.log((row[(interval, after)] + SMOOTHING) / (sum(row.values()) + SMOOTHING * OUTCOMES))

    def loglik(self, sequences: Iterable[Sequence[RChord]]) -> float:
        """Mean ln-probability over all transitions of all sequences (nats per chord); nan if none."""
        logps = [self.logprob(m) for seq in sequences for m in motions(seq)]
        return sum(logps) / len(logps) if logps else math.nan


def cadences_per_8(bars: Sequence[Bar], n_bars: int = BARS) -> tuple[float, float]:
    """(ii–V, V–I) per 8 bars: (m or h) -> 7 a fourth up, and 7 -> (M or m) a fourth up."""
    used = len(bars[:n_bars])
    if not used:
        return 0.0, 0.0
    ii_v = v_i = 0
    for interval, before, after in motions(chord_sequence(bars, n_bars)):
        if interval == 5 and before in "mh" and after == "7":
            ii_v += 1
        elif interval == 5 and before == "7" and after in "Mm":
            v_i += 1
    return ii_v * 8 / used, v_i * 8 / used


def _window_times(bars: Sequence[Bar]) -> Counter[RChord]:
    """Chord time (bars) of each reduced chord in ``bars``; NC excluded."""
    times: Counter[RChord] = Counter()
    for bar in bars:
        for chord in bar:
            r = reduce_chord(chord)
            if r is not None:
                times[r] += 1.0 / len(bar)
    return times


def _best_key(times: Counter[RChord], previous: int | None) -> tuple[int, float]:
    """(collection, score) of the best of the 24 keys for one window's chord times."""
    total = sum(times.values())
    scores = []
    for collection, pcs in KEYS:
        inside = sum(t for (root, cls), t in times.items()
                     if all((root + i) % 12 in pcs for i in CLASS_TONES[cls]))
        scores.append((collection, inside / total))
    best = max(s for _, s in scores)
    tied = [c for c, s in scores if s == best]
    return (previous if previous in tied else tied[0]), best


def key_windows(bars: Sequence[Bar], n_bars: int = BARS, width: int = 4) -> list[tuple[int, float]]:
    """(collection, best score) of each ``width``-bar window sliding by one bar; empty windows skipped."""
    bars = list(bars[:n_bars])
    out: list[tuple[int, float]] = []
    previous = None
    for start in range(max(1, len(bars) - width + 1)):
        times = _window_times(bars[start:start + width])
        if not times:
            continue
        previous, score = _best_key(times, previous)
        out.append((previous, score))
    return out


def key_changes_and_fit(bars: Sequence[Bar], n_bars: int = BARS) -> tuple[float, float]:
    """(key changes per 32 bars, key fit) of one piece; (0, nan) when it has no chords."""
    windows = key_windows(bars, n_bars)
    used = len(bars[:n_bars])
    if not windows:
        return 0.0, math.nan
    changes = sum(a[0] != b[0] for a, b in zip(windows, windows[1:], strict=False))
    return changes * 32 / used, sum(s for _, s in windows) / len(windows)


def rep5(notes: Iterable[tuple[float, int]]) -> float:
    """Motif recurrence of a lead: the share of 5-note windows whose key (4 pitch intervals, 4 IOIs on a
    12-per-beat grid capped at 4 beats) occurs again at least 4 notes away.

    Args:
        notes: (onset_beats, pitch) of the lead's notes in the bars to score (the caller cuts 32 bars).
    """
    by_onset: dict[int, int] = {}
    for onset, pitch in notes:
        step = round(onset * GRID)
        by_onset[step] = max(pitch, by_onset.get(step, pitch))
    onsets = sorted(by_onset)
    pitches = [by_onset[o] for o in onsets]
    keys = [tuple(pitches[i + j + 1] - pitches[i + j] for j in range(4))
            + tuple(min(onsets[i + j + 1] - onsets[i + j], MAX_IOI) for j in range(4))
            for i in range(len(onsets) - 4)]
    if not keys:
        return 0.0
    where: dict[tuple[int, ...], list[int]] = {}
    for i, k in enumerate(keys):
        where.setdefault(k, []).append(i)
    recurring = sum(any(abs(j - i) >= 4 for j in where[k]) for i, k in enumerate(keys))
    return recurring / len(keys)


def div4(pieces: Iterable[Sequence[Bar]], n_bars: int = BARS) -> float:
    """Distinct windows of 4 consecutive chord motions over a set of pieces ÷ the number of windows."""
    windows = []
    for bars in pieces:
        ms = motions(chord_sequence(bars, n_bars))
        windows += [tuple(ms[i:i + 4]) for i in range(len(ms) - 3)]
    return len(set(windows)) / len(windows) if windows else math.nan


def parse_changes(text: str) -> list[Bar]:
    """A clip summary's ``changes`` (``"Dm7 G7 | Cmaj7 | % | …"``) as bars; ``%`` continues the previous chord.

    Raises:
        ChordError: an unreadable chord, or ``%`` before any chord.
    """
    bars: list[Bar] = []
    for cell in text.split("|"):
        words = cell.split()
        if words == ["%"]:
            if not bars:
                raise ChordError("changes start with '%': no chord to continue")
            bars.append((bars[-1][-1],))
        elif words:
            bars.append(tuple(parse_chord(w) for w in words))
    return bars


@lru_cache(maxsize=4)
def reference_bigram(corpus_dir: Path) -> ChordBigram:
    """The bigram fitted on the train split (80% of titles) of the reference charts in ``corpus_dir``."""
    from training.corpus.reference_charts import read_reference_charts, split_charts

    charts, _skipped = read_reference_charts(Path(corpus_dir))
    train, _test = split_charts(charts)
    return ChordBigram.fit(chord_sequence(c.bars) for c in train)


def _mean(values: Iterable[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan


def harmony_report(bars_per_piece: Sequence[Sequence[Bar]], leads_per_piece: Sequence[Sequence[tuple[float, int]]]
                   | None, bigram: ChordBigram) -> dict[str, float]:
    """All harmony and form metrics of a set of pieces (first 32 bars each).

    Args:
        bars_per_piece: each piece's bars.
        leads_per_piece: each piece's lead notes (onset_beats, pitch) in its first 32 bars, or None.
        bigram: the reference bigram (`reference_bigram`).

    Returns:
        bigram_ll (nats/chord, over all transitions), ii_v and v_i (per 8 bars), key_changes (per 32
        bars), key_fit, div4, and rep5 when leads are given: means over pieces.
    """
    cad = [cadences_per_8(b) for b in bars_per_piece]
    keys = [key_changes_and_fit(b) for b in bars_per_piece]
    report = {
        "pieces": float(len(bars_per_piece)),
        "bigram_ll": bigram.loglik(chord_sequence(b) for b in bars_per_piece),
        "ii_v": _mean(c[0] for c in cad),
        "v_i": _mean(c[1] for c in cad),
        "key_changes": _mean(k[0] for k in keys),
        "key_fit": _mean(k[1] for k in keys),
        "div4": div4(bars_per_piece),
    }
    if leads_per_piece is not None:
        report["rep5"] = _mean(rep5(notes) for notes in leads_per_piece)
    return report
