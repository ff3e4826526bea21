"""WJazzD solos as lines of notes, as written or as performed.

WJazzD gives each note its metrical place (bar, beat, tatum of the beat's division) and its
performed onset and duration in seconds, with the solo's beat track (and the chords on it).
`real_line` reads one solo either way into beats; `held_out_solos` picks the solos a checkpoint
did not train on. The realism test (`training.evaluation.realism`) and the performance model
(`training.fit.performance`) both read the solos here.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import EngineError

BARS = 32


@dataclass(frozen=True)
class Line:
    """A lead line: notes (onset in beats, length in beats, MIDI pitch), sorted; bar length in
    beats; the chord roots sounding (beat, root pitch class), for the composition view."""

    notes: tuple[tuple[float, float, int], ...]
    bar_beats: float = 4.0
    roots: tuple[tuple[float, int], ...] = ()

    def first_bars(self, bars: int = BARS) -> Line:
        end = bars * self.bar_beats
        return Line(tuple(n for n in self.notes if n[0] < end), self.bar_beats, tuple(r for r in self.roots if r[0] < end))


def beats_of(times: np.ndarray, beat_times: np.ndarray) -> np.ndarray:
    """Seconds to beats through a beat track (linear between beats, the nearest beat's length outside)."""
    idx = np.arange(len(beat_times), dtype=float)
    inside = np.interp(times, beat_times, idx)
    first = (beat_times[1] - beat_times[0]) if len(beat_times) > 1 else 0.5
    last = (beat_times[-1] - beat_times[-2]) if len(beat_times) > 1 else 0.5
    inside = np.where(times < beat_times[0], (times - beat_times[0]) / first, inside)
    return np.where(times > beat_times[-1], len(beat_times) - 1 + (times - beat_times[-1]) / last, inside)


def real_line(melody_csv: Path, beats_csv: Path, view: str) -> Line:
    """One WJazzD solo as a line: written places (composition) or performed times (performance),
    with the chord roots of its beat track; beats counted from the first note's bar."""
    from engine.music.chords import parse_chord

    beats = list(csv.DictReader(beats_csv.open()))
    melody = list(csv.DictReader(melody_csv.open()))
    num = int(melody[0]["period"] or 4)
    first_bar = min(int(r["bar"]) for r in melody)
    beat_rows = [r for r in beats if int(r["bar"]) >= first_bar]
    beat_times = np.array([float(r["onset"]) for r in beat_rows])
    roots = []
    for i, r in enumerate(beat_rows):
        if r["chord"] and r["chord"] not in ("NC", "N.C."):
            try:
                roots.append((float(i), parse_chord(r["chord"]).root))
            except EngineError:  # a label the chord parser does not know: no root there
                continue
    roots = [(t, root) for t, root in roots if root is not None]
    if view == "performance":
        on = np.array([float(r["onset"]) for r in melody])
        off = on + np.array([float(r["duration"]) for r in melody])
        starts, ends = beats_of(on, beat_times), beats_of(off, beat_times)
    else:
        starts = np.array([(int(r["bar"]) - first_bar) * num + int(r["beat"]) - 1
                           + (int(r["tatum"]) - 1) / max(1, int(r["division"])) for r in melody], dtype=float)
        ends = starts + np.array([float(r["duration"]) / max(1e-3, float(r["beatdur"])) for r in melody])
    notes = sorted((float(s), float(max(e - s, 1e-3)), int(round(float(r["pitch"]))))
                   for s, e, r in zip(starts, ends, melody, strict=True))
    t0 = (int(min(n[0] for n in notes)) // num) * num  # from the first note's bar
    return Line(tuple((s - t0, d, p) for s, d, p in notes), float(num), tuple((t - t0, r) for t, r in roots if t >= t0))


def solos(corpus_dir: Path, recordings: set[str], trained: bool) -> list[tuple[Path, Path, float]]:
    """(melody CSV, beats CSV, tempo) of the 4/4 WJazzD solos among ``recordings`` (a checkpoint's
    training recordings, ``wjazzd:MELID``) when ``trained``, else of those not among them."""
    root = corpus_dir / "wjazzd"
    out = []
    for row in csv.DictReader((root / "index.csv").open()):
        if (f"wjazzd:{row['melid']}" in recordings) != trained or row["signature"] != "4/4":
            continue
        melody, beats = root / row["melody_csv"], root / row["beats_csv"]
        if melody.is_file() and beats.is_file():
            out.append((melody, beats, float(row["avgtempo"] or 160)))
    return out


def midi_of(corpus_dir: Path) -> dict[Path, Path]:
    """Each WJazzD solo's melody CSV and its melody-only MIDI file (``midi/``), where it has one."""
    root = corpus_dir / "wjazzd"
    return {root / row["melody_csv"]: root / row["midi"] for row in csv.DictReader((root / "index.csv").open())
            if row.get("midi") and (root / row["midi"]).is_file()}


def held_out_solos(corpus_dir: Path, train_recordings: set[str], limit: int) -> list[tuple[Path, Path, float]]:
    """Up to ``limit`` 4/4 WJazzD solos the checkpoint did not train on (see `solos`)."""
    return solos(corpus_dir, train_recordings, trained=False)[:limit]
