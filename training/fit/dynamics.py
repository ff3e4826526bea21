"""Learning how loud soloists play each note, from WJazzD's note velocities.

WJazzD's melody-only MIDI files (``midi/``, one per solo) give every note a velocity that varies
note by note (78-127 in one solo, a standard deviation of about 10 within a solo). They are the
corpus's only loudness information: the CSV export has no loudness column, and PROVENANCE.md does
not say how the velocities were made, so they are read as relative loudness, each solo against
its own median. A MIDI file whose notes do not match the solo's CSV note for note (count and
pitch) is left out.

From those, per note (phrases as written: a rest of over a beat ends one):

- **phrase arc**: the mean velocity by the note's place in its phrase, in five bins from the
  first note to the last but one, and the phrase's last note on its own (soloists start a phrase
  loud and let it fall, the last note softest);
- **contour**: velocity per semitone above the phrase's mean pitch (higher notes are louder);
- **accents**: the mean by the kind of written place (`engine.band.perform.place_class`);
- **phrase level**: how far a phrase's mean sits from the solo's (its standard deviation) and how
  alike two neighbouring phrases are (lag-1 correlation): the swells and falls from phrase to phrase;
- **note spread**: the standard deviation of what is left, note by note.

`learn_dynamics` returns them as `engine.band.perform.Performance` fields (``vel_*``).
"""
from __future__ import annotations

import csv
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ARC_BINS = 5
KINDS = ("on", "2:2", "3:2", "3:3", "4:2", "4:3", "4:4")


def velocities(melody_csv: Path, midi: Path) -> np.ndarray | None:
    """The MIDI file's note velocities, if its notes are the CSV's, one for one (else None)."""
    import mido

    try:
        ons = [m for t in mido.MidiFile(midi).tracks for m in t if m.type == "note_on" and m.velocity]
    except (OSError, ValueError, EOFError) as exc:
        log.warning("skipping %s: %s", midi, exc)
        return None
    rows = list(csv.DictReader(melody_csv.open()))
    if len(ons) != len(rows) or any(abs(float(r["pitch"]) - m.note) >= 1 for r, m in zip(rows, ons, strict=True)):
        return None
    return np.array([m.velocity for m in ons], dtype=float)


def _notes(melody_csv: Path, vel: np.ndarray) -> list[list[tuple[float, float, float, str]]]:
    """The solo's phrases, each a list of (velocity - solo median, place in phrase 0..1, pitch -
    phrase mean pitch, place kind); the phrase's last note has place 1."""
    rows = list(csv.DictReader(melody_csv.open()))
    num = int(rows[0]["period"] or 4)
    start = np.array([int(r["bar"]) * num + int(r["beat"]) - 1 + (int(r["tatum"]) - 1) / max(1, int(r["division"]))
                      for r in rows])
    end = start + np.array([float(r["duration"]) / max(1e-3, float(r["beatdur"])) for r in rows])
    gaps = np.r_[start[1:] - end[:-1], 99.0]
    pitch = np.array([float(r["pitch"]) for r in rows])
    rel = vel - np.median(vel)
    phrases, first = [], 0
    for i in np.flatnonzero(gaps > 1.0):
        idx = np.arange(first, i + 1)
        first = i + 1
        if len(idx) < 2:
            continue
        mean = pitch[idx].mean()
        phrases.append([(rel[k], j / (len(idx) - 1), pitch[k] - mean, _kind(rows[k])) for j, k in enumerate(idx)])
    return phrases


def _kind(row: dict[str, str]) -> str:
    division, tatum = int(row["division"]), int(row["tatum"])
    return "on" if tatum == 1 else f"{division}:{tatum}" if division in (2, 3, 4) else "other"


def learn_dynamics(solos: Iterable[tuple[Path, Path]]) -> dict:
    """The ``vel_*`` fields of `engine.band.perform.Performance` from (melody CSV, MIDI) pairs;
    {} when no MIDI file matches its solo."""
    phrases, solo_of, count = [], [], 0  # solo_of: which solo each phrase is of
    for melody_csv, midi in solos:
        vel = velocities(melody_csv, midi)
        if vel is not None:
            got = _notes(melody_csv, vel)
            phrases += got
            solo_of += [count] * len(got)
            count += 1
    if len(phrases) < 20:
        return {}
    notes = np.array([(v, p, c) for ph in phrases for v, p, c, _ in ph])
    kinds = np.array([k for ph in phrases for *_, k in ph])
    last = notes[:, 1] == 1.0
    bins = np.minimum((notes[:, 1] * ARC_BINS).astype(int), ARC_BINS - 1)
    arc = [float(notes[~last & (bins == b), 0].mean()) for b in range(ARC_BINS)]
    fitted = np.where(last, notes[last, 0].mean(), np.array(arc)[bins])
    contour = float(np.polyfit(notes[:, 2], notes[:, 0] - fitted, 1)[0])
    left = notes[:, 0] - fitted - contour * notes[:, 2]
    accents = {k: float(left[kinds == k].mean()) for k in KINDS if (kinds == k).sum() >= 200}
    left = left - np.array([accents.get(k, 0.0) for k in kinds])
    sizes = np.cumsum([0] + [len(ph) for ph in phrases])
    level = np.array([left[a:b].mean() for a, b in zip(sizes[:-1], sizes[1:], strict=True)])
    within = np.concatenate([left[a:b] - m for a, b, m in zip(sizes[:-1], sizes[1:], level, strict=True)])
    same = np.array(solo_of[1:]) == np.array(solo_of[:-1])
    rho = float(np.corrcoef(level[:-1][same], level[1:][same])[0, 1]) if same.sum() > 10 else 0.0
    r = 3
    return {"vel_arc": tuple(round(x, r) for x in arc), "vel_last": round(float(notes[last, 0].mean()), r),
            "vel_contour": round(contour, r), "vel_accents": tuple((k, round(v, r)) for k, v in accents.items()),
            "vel_phrase_sd": round(float(level.std()), r), "vel_phrase_rho": round(rho, r),
            "vel_note_sd": round(float(within.std()), r), "vel_solos": count}
