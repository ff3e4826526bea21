"""Reader for the Weimar Jazz Database CSV export (``csv_melody`` + ``csv_beats``).

Layout (see the corpus PROVENANCE.md): ``index.csv`` maps each solo (melid, trackid, title,
tempo, signature) to its melody and beats CSVs. A note's position is (bar, beat, tatum/division);
its duration in seconds is divided by the local beat duration. The chord of the beats track holds
from its beat until the next label. Bars before the first melody note are dropped.
"""
from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.errors import ChordError
from engine.music.chords import parse_chord
from engine.music.leadsheet import LeadSheet, Measure, Note, spans_from_changes
from training.corpus.base import CorpusError

MELODY_COLUMNS = ("bar", "beat", "beatdur", "division", "duration", "pitch", "tatum")
BEATS_COLUMNS = ("bar", "beat", "chord", "signature")


def _rows(path: Path, needed: tuple[str, ...]) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in needed if c not in (reader.fieldnames or [])]
        if missing:
            raise CorpusError(f"{path.name}: missing column(s) {', '.join(missing)}")
        return list(reader)


def _meter(text: str) -> tuple[int, int]:
    num, _, den = (text or "4/4").partition("/")
    try:
        return int(num), int(den)
    except ValueError as exc:
        raise CorpusError(f"bad time signature {text!r}") from exc


def read_solo(melody_csv: Path, beats_csv: Path, title: str = "", tempo: float = 120.0,
              recording: str = "", meta: dict[str, str] | None = None) -> LeadSheet:
    """Read one solo into a lead sheet.

    Raises:
        CorpusError: a file is missing, a column is missing or a value cannot be read.
        ChordError: a chord label cannot be parsed.
    """
    if not melody_csv.is_file() or not beats_csv.is_file():
        raise CorpusError(f"missing file {melody_csv.name if not melody_csv.is_file() else beats_csv.name}")
    beats = _rows(beats_csv, BEATS_COLUMNS)
    melody = _rows(melody_csv, MELODY_COLUMNS)
    if not melody:
        raise CorpusError("no melody notes")
    meter = next((_meter(r["signature"]) for r in beats if r["signature"]), (4, 4))
    num, den = meter
    beat_len = 4.0 / den  # quarter beats per counted beat
    try:
        first_bar = min(int(r["bar"]) for r in melody)
        last_bar = max(max(int(r["bar"]) for r in melody), max(int(r["bar"]) for r in beats))
        changes = []
        for r in beats:
            if r["chord"]:
                bar, beat = int(r["bar"]), int(r["beat"])
                changes.append((((bar - first_bar) * num + beat - 1) * beat_len, parse_chord(r["chord"])))
        bars: dict[int, list[Note]] = {}
        for r in melody:
            bar = int(r["bar"])
            pos = (int(r["beat"]) - 1 + (int(r["tatum"]) - 1) / max(1, int(r["division"]))) * beat_len
            dur = float(r["duration"]) / max(1e-3, float(r["beatdur"])) * beat_len
            pitch = int(round(float(r["pitch"])))
            bars.setdefault(bar, []).append(Note(pos, max(dur, 1e-3), pitch))
    except ChordError:
        raise
    except (ValueError, KeyError) as exc:
        raise CorpusError(f"{melody_csv.name}: bad value ({exc})") from exc
    changes.sort(key=lambda c: c[0])
    changes = [c for c in changes if c[0] >= 0] or changes[-1:]
    n_bars = last_bar - first_bar + 1
    length = num * beat_len
    spans = spans_from_changes(changes, [i * length for i in range(n_bars)], [length] * n_bars)
    measures = [
        Measure(meter, tuple(sorted(bars.get(first_bar + i, []), key=lambda n: n.onset)), spans[i])
        for i in range(n_bars)
    ]
    while measures and not measures[-1].notes:
        measures.pop()
    return LeadSheet(title=title or melody_csv.stem, tempo=tempo, measures=measures,
                     source=str(melody_csv), recording=recording, meta=dict(meta or {}))


def iter_wjazzd(root: Path) -> Iterator[tuple[str, Callable[[], LeadSheet]]]:
    """Yield one loader per solo listed in ``index.csv`` (or per melody CSV without an index)."""
    index = root / "index.csv"
    if index.is_file():
        rows = _rows(index, ("melody_csv", "beats_csv"))
    else:
        rows = [{"melody_csv": f"csv_melody/{p.name}", "beats_csv": f"csv_beats/{p.name}"}
                for p in sorted((root / "csv_melody").glob("*.csv"))]
        if not rows:
            raise CorpusError(f"{root}: no index.csv and no csv_melody/*.csv")
    for row in rows:
        melody, beats = root / row["melody_csv"], root / row["beats_csv"]
        tempo = float(row.get("avgtempo") or 120.0)
        title = f"{row.get('performer', '')} - {row.get('title', '')}".strip(" -") or melody.stem
        recording = f"wjazzd:{row.get('trackid') or melody.stem}"
        # the labels that condition the jazz model: performer and WJazzD style (the era)
        labels = {k: row[k].strip() for k in ("performer", "style") if row.get(k, "").strip()}

        def load(melody=melody, beats=beats, title=title, tempo=tempo, recording=recording, labels=labels) -> LeadSheet:
            return read_solo(melody, beats, title, tempo, recording, labels)

        yield str(melody), load
