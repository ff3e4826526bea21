"""Chord charts: a tune's changes by section and bar, in a known key, for the harmony model.

A `Chart` is what a lead sheet's chord line says: sections (``A``, ``B``…) of bars, each bar
holding one to four chords that share it equally. Readers here turn the corpora's charts into
that one shape:

* WJazzD: ``solos_metadata.csv`` ``chord_changes`` (the tune's form, e.g. ``A1: ||Bb6 G7 |C-7 F7 ||``)
  with the key from ``index.csv`` (``Bb-maj``).
* Lead sheets (`LeadSheet`, e.g. Nottingham or the Metheny MIDI): the sounding chord at each
  half bar, cut into 8-bar strains; a strain equal to an earlier one gets its label.

A chart that can't be read is skipped with its reason (the caller counts it).
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import ChordError
from engine.music.chords import PITCH_NAMES, Chord, parse_chord
from engine.music.leadsheet import LeadSheet

Bar = tuple[Chord, ...]
_KEY_RE = re.compile(r"^([A-G][#b]?)-?(maj|min|dor|mix|blues|chrom)?$")
_SPLIT_RE = re.compile(r"(?<=[^/\s])(?=[A-G]|NC)")
_PC = {n: i for i, n in enumerate(PITCH_NAMES)} | {"C#": 1, "D#": 3, "Gb": 6, "G#": 8, "A#": 10, "Cb": 11, "Fb": 4}


@dataclass(frozen=True)
class Section:
    label: str  # the section's letter: "A", "B", "I" (intro)
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class Chart:
    """A tune's chord chart.

    Attributes:
        title: the tune's title.
        tonic: the key's tonic pitch class (0 = C).
        mode: "major" or "minor".
        sections: the form, in order.
        source: where it came from (file or corpus name).
        meta: extra labels (performer, style...).
    """

    title: str
    tonic: int
    mode: str
    sections: tuple[Section, ...]
    source: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def bars(self) -> list[Bar]:
        return [b for s in self.sections for b in s.bars]


def parse_key(text: str) -> tuple[int, str] | None:
    """``Bb-maj`` -> (10, "major"); ``C-min`` -> (0, "minor"); None when not a key."""
    m = _KEY_RE.match(text.strip())
    if not m or m.group(1) not in _PC:
        return None
    return _PC[m.group(1)], "minor" if m.group(2) in ("min", "dor") else "major"


def split_chords(text: str) -> list[str]:
    """Chord symbols of one bar, also where they were written without spaces (``G-7C7``)."""
    out: list[str] = []
    for word in text.split():
        out += [w for w in _SPLIT_RE.split(word) if w]
    return out


def parse_sections(text: str) -> tuple[Section, ...]:
    """WJazzD ``chord_changes``: one ``A1: ||Bb6 G7 |C-7 F7 ||`` line per section.

    Raises:
        ChordError: an unreadable chord (named).
    """
    sections = []
    for line in text.splitlines():
        label, _, body = line.partition(":")
        if not body.strip():
            continue
        bars = []
        for cell in body.split("|"):
            symbols = split_chords(cell)
            if symbols:
                bars.append(tuple(parse_chord(s) for s in symbols[:4]))
        letter = re.sub(r"[^A-Z]", "", label.strip().upper())[:1] or "A"
        if bars:
            sections.append(Section(letter, tuple(bars)))
    return tuple(sections)


def read_wjazzd_charts(root: Path) -> tuple[list[Chart], list[str]]:
    """The tune charts of the WJazzD solos in ``root`` (its ``solos_metadata.csv`` and ``index.csv``).

    Returns:
        (charts, skipped reasons). A solo in 3/4 or without a key is skipped.
    """
    index = {r["melid"]: r for r in csv.DictReader((root / "index.csv").open(newline=""))}
    charts, skipped = [], []
    for row in csv.DictReader((root / "solos_metadata.csv").open(newline="")):
        info = index.get(row.get("melid", ""), {})
        name = row.get("base_name") or row.get("melid", "?")
        key = parse_key(info.get("key") or row.get("key") or "")
        if key is None:
            skipped.append(f"{name}: no key")
            continue
        if (info.get("signature") or row.get("signature")) not in ("4/4", ""):
            skipped.append(f"{name}: not in 4/4")
            continue
        try:
            sections = parse_sections(row.get("chord_changes", ""))
        except ChordError as exc:
            skipped.append(f"{name}: {exc}")
            continue
        if not sections:
            skipped.append(f"{name}: no chord changes")
            continue
        meta = {"performer": info.get("performer", ""), "style": info.get("style", ""),
                "recording": f"wjazzd:{row.get('melid', '')}"}
        charts.append(Chart(row.get("title", name), key[0], key[1], sections, f"wjazzd:{name}", meta))
    return charts, skipped


def chart_from_sheet(sheet: LeadSheet, tonic: int, mode: str, strain: int = 8) -> Chart:
    """A lead sheet's changes as a chart: the chord sounding at each half bar, in strains of
    ``strain`` bars; a strain whose chords equal an earlier one's takes its label."""
    bars: list[Bar] = []
    previous: Chord | None = None
    for m in sheet.measures:
        half = m.beats / 2
        slots = []
        for beat in (0.0, half):
            chord = m.chord_at(beat) or previous
            if chord is None or chord.is_nc:
                chord = previous
            if chord is not None:
                slots.append(chord.reduced)
                previous = chord
        if not slots:
            continue
        bars.append((slots[0],) if len(slots) == 1 or slots[0] == slots[1] else tuple(slots))
    sections: list[Section] = []
    seen: dict[tuple[Bar, ...], str] = {}
    for i in range(0, len(bars), strain):
        chunk = tuple(bars[i:i + strain])
        label = seen.get(chunk) or chr(ord("A") + min(len(seen), 25))
        seen.setdefault(chunk, label)
        sections.append(Section(label, chunk))
    return Chart(sheet.title, tonic, mode, tuple(sections), sheet.source, {"recording": sheet.recording})
