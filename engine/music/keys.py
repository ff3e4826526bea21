"""The key of a passage: estimated from its chords and melody (Krumhansl-Schmuckler), and its
name as a MIDI key signature spells it."""
from __future__ import annotations

import numpy as np

from engine.music.chords import Chord
from engine.music.leadsheet import Note

# Krumhansl-Kessler key profiles
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# the tonic of a major key as a MIDI key signature names it (a minor key adds "m")
MIDI_KEYS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def estimate_key(melody: list[Note], changes: list[tuple[float, Chord]], end: float) -> tuple[int, str]:
    """(tonic pitch class, "major"|"minor") by the Krumhansl-Schmuckler method on chords and melody."""
    hist = np.zeros(12)
    for i, (t, chord) in enumerate(changes):
        span = (changes[i + 1][0] if i + 1 < len(changes) else end) - t
        for pc in chord.chord_pcs:
            hist[pc] += span
        if not chord.is_nc:
            hist[chord.root] += span  # roots weigh more
    for n in melody:
        hist[n.pitch % 12] += n.duration * 0.5
    best = (-2.0, 0, "major")
    for tonic in range(12):
        for mode, prof in (("major", _MAJOR), ("minor", _MINOR)):
            r = float(np.corrcoef(hist, np.roll(prof, tonic))[0, 1]) if hist.any() else 0.0
            if r > best[0]:
                best = (r, tonic, mode)
    return best[1], best[2]
