"""Arrangement: a melody over chords becomes a small band, one MIDI track and channel per part.

What the band plays comes from the style's `engine.styles.Band`; the arranger never looks at a
style's name. Comping is either ``book`` (voicings moved by the smallest step, a rhythm per bar
from a small book of patterns, every chord change struck) or ``strum`` (steady strummed chords);
the bass either ``walking`` (the root on each chord's first beat, chord tones on strong beats, the
next root approached by a semitone or a scale step) or ``root_fifth`` (root and fifth on the strong
beats). Drums, where the band has them, are a swing kit: ride pattern, pedal hi-hat on 2 and 4,
light kick on 1, ghosted snare comping. A swinging band moves offbeat eighths to the triplet;
timing and velocity are humanised (seeded). The registered bands are described in `engine.styles`.
"""
from __future__ import annotations

import random

from engine.chords import Chord, chord_tones, scale_tones
from engine.leadsheet import Note
from engine.score import Part, Score, ScoreNote
from engine.styles import VOICINGS, Style

PARTS = ("lead", "comping", "bass", "drums")
RIDE, PEDAL_HAT, KICK, SNARE, CRASH = 51, 44, 36, 38, 49
LEGATO_GAP = 0.5  # beats: a lead note is held over a gap this short to the next note


# Comping rhythms within a 4-beat bar: (onset beat, length beats)
COMP_PATTERNS = [
    [(0.0, 1.5), (1.5, 0.5)],  # Charleston
    [(0.0, 0.5), (1.5, 1.0), (3.0, 0.5)],
    [(1.0, 0.5), (2.5, 1.0)],
    [(0.0, 2.0), (2.5, 0.5), (3.5, 0.5)],
    [(1.5, 0.5), (3.0, 1.0)],
    [(0.0, 0.75), (2.0, 0.75)],
]


def _chord_at(changes: list[tuple[float, Chord]], beat: float) -> Chord | None:
    current = None
    for t, c in changes:
        if t <= beat + 1e-9:
            current = c
        else:
            break
    return current


def _segments(changes: list[tuple[float, Chord]], end: float) -> list[tuple[float, float, Chord]]:
    """(start, end, chord) for every chord span up to ``end``."""
    out = []
    for i, (t, c) in enumerate(changes):
        stop = changes[i + 1][0] if i + 1 < len(changes) else end
        if stop > t and t < end:
            out.append((t, min(stop, end), c))
    return out


def swing(beat: float, ratio: float = 2 / 3) -> float:
    """Move an offbeat eighth (x.5) to the swung position (x + ratio); other onsets stay."""
    whole = int(beat)
    frac = beat - whole
    if abs(frac - 0.5) < 1e-6:
        return whole + ratio
    if 0 < frac < 0.5:
        return whole + frac * ratio / 0.5
    if 0.5 < frac < 1:
        return whole + ratio + (frac - 0.5) * (1 - ratio) / 0.5
    return beat


class Arranger:
    """Builds the band parts of a clip. Deterministic for a given seed."""

    def __init__(self, style: Style, seed: int, parts: frozenset[str] = frozenset(PARTS)) -> None:
        self.band = style.band
        self.rng = random.Random(seed)
        self.parts = parts

    def _human(self, beat: float, spread: float = 0.015) -> float:
        return max(0.0, beat + self.rng.uniform(-spread, spread))

    def _vel(self, base: int, spread: int = 8) -> int:
        return max(1, min(127, base + self.rng.randint(-spread, spread)))

    def _time(self, beat: float) -> float:
        return swing(beat) if self.band.swing else beat

    def arrange(self, melody: list[Note], changes: list[tuple[float, Chord]], bars: list[tuple[float, float]],
                tempo: float, meter: tuple[int, int], key: str, title: str = "Chorus",
                ending: bool = True) -> Score:
        """Arrange a melody (absolute beats) over chord changes into a `Score`."""
        end = bars[-1][0] + bars[-1][1] if bars else 0.0
        parts: list[Part] = []
        last_bar = bars[-1] if ending and bars else None
        if "lead" in self.parts:
            parts.append(self._lead(melody, end))
        if "comping" in self.parts:
            parts.append(self._comping(changes, bars, last_bar))
        if "bass" in self.parts:
            parts.append(self._bass(changes, bars, last_bar))
        if "drums" in self.parts and self.band.drums:
            parts.append(self._drums(bars, last_bar))
        return Score(tempo=tempo, meter=meter, key=key, bars=bars, chords=changes, parts=parts, title=title)

    def _lead(self, melody: list[Note], end: float) -> Part:
        part = Part("lead", self.band.lead_program, 0)
        notes = sorted(melody, key=lambda n: n.onset)
        for i, n in enumerate(notes):
            start = self._human(self._time(n.onset), 0.01)
            end = n.onset + n.duration
            if i + 1 < len(notes) and notes[i + 1].onset - end <= LEGATO_GAP:
                end = notes[i + 1].onset  # a short gap is phrased legato: lines sing, not tick
            stop = self._time(end)
            if i + 1 < len(notes):
                stop = min(stop, self._time(notes[i + 1].onset))
            accent = 8 if abs(n.onset - round(n.onset)) < 1e-6 else 0
            part.notes.append(ScoreNote(start, max(0.05, min(stop, end) - start - 0.02), n.pitch,
                                        self._vel(n.velocity if n.velocity != 90 else 86 + accent, 6)))
        return part

    def _voicing(self, chord: Chord, previous: list[int] | None) -> list[int]:
        options = self.band.voicings.get(chord.family) or VOICINGS.get(chord.family) or [(0, 4, 7)]
        lo, hi = self.band.comp_range
        best, best_cost = None, None
        center = (lo + hi) / 2
        for shape in options:
            for octave in range(2, 7):
                notes = [chord.root + 12 * octave + i for i in shape]
                if min(notes) < lo or max(notes) > hi:
                    continue
                if previous:
                    cost = sum(min(abs(a - b) for b in previous) for a in notes)
                else:
                    cost = abs(sum(notes) / len(notes) - center)
                if best_cost is None or cost < best_cost:
                    best, best_cost = notes, cost
        return best or [chord.root + 48 + i for i in options[0]]

    def _comping(self, changes: list[tuple[float, Chord]], bars: list[tuple[float, float]],
                 last_bar: tuple[float, float] | None) -> Part:
        part = Part("comping", self.band.comp_program, 1)
        previous: list[int] | None = None
        for start, length in bars:
            if last_bar and start == last_bar[0]:
                continue
            hits = self._strum_hits(length) if self.band.comping == "strum" else self._book_hits(changes, start, length)
            for b, d in sorted(hits):
                chord = _chord_at(changes, start + b + 1e-6)
                if chord is None or chord.is_nc:
                    continue
                voicing = self._voicing(chord, previous)
                previous = voicing
                onset = self._human(self._time(start + b))
                for k, p in enumerate(voicing):
                    part.notes.append(ScoreNote(onset + self.band.strum_beats * k, d, p, self._vel(self.band.comp_velocity)))
        if last_bar:
            chord = _chord_at(changes, last_bar[0] + 1e-6)
            if chord and not chord.is_nc:
                for p in self._voicing(chord, previous):
                    part.notes.append(ScoreNote(last_bar[0], last_bar[1], p, 60))
        return part

    @staticmethod
    def _strum_hits(length: float) -> list[tuple[float, float]]:
        """Steady strokes (onset, length in beats): dotted quarters in a compound meter, else quarters."""
        step = 1.5 if length % 1.5 == 0 and length % 2 else 1.0
        return [(k * step, step * 0.9) for k in range(int(length / step))]

    def _book_hits(self, changes: list[tuple[float, Chord]], start: float, length: float) -> list[tuple[float, float]]:
        """A rhythm from the comping book (onset, length in beats), plus a stroke on every chord change."""
        hits = [(b, d) for b, d in self.rng.choice(COMP_PATTERNS) if b < length]
        for t, _ in changes:  # make sure every chord change is struck
            rel = t - start
            if 0 < rel < length and all(abs(b - rel) > 0.6 for b, _ in hits):
                hits.append((rel, 0.75))
        return hits

    def _bass_step(self, length: float) -> float:
        """Beats between bass notes in a bar of ``length`` beats."""
        if self.band.bass == "walking":
            return 1.0
        return 1.5 if length % 1.5 == 0 and length % 2 else 2.0 if length >= 4 else 1.0

    def _bass(self, changes: list[tuple[float, Chord]], bars: list[tuple[float, float]],
              last_bar: tuple[float, float] | None) -> Part:
        part = Part("bass", self.band.bass_program, 2)
        lo, hi = 28, 55
        prev = 40
        beats: list[tuple[float, Chord | None, Chord | None, bool]] = []  # beat, chord, next beat's chord, downbeat
        for start, length in bars:
            if last_bar and start == last_bar[0]:
                continue
            step = self._bass_step(length)
            b = 0.0
            while b < length - 1e-6:
                beats.append((start + b, _chord_at(changes, start + b + 1e-6),
                              _chord_at(changes, start + b + step + 1e-6), b == 0))
                b += step
        for i, (beat, chord, nxt, downbeat) in enumerate(beats):
            if chord is None or chord.is_nc:
                continue
            new_chord = i == 0 or beats[i - 1][1] != chord
            tones = sorted(chord_tones(chord.root, chord.family))
            if new_chord or self.band.bass == "root_fifth":
                pcs = [chord.root] if new_chord or i % 2 == 0 else [(chord.root + 7) % 12]
            elif downbeat:
                pcs = tones  # a chord tone on every bar's first beat
            elif nxt is not None and not nxt.is_nc and nxt != chord:
                target = nxt.root
                pcs = [(target + 1) % 12, (target - 1) % 12]  # chromatic approach
            elif int(beat) % 2 == 0:
                pcs = tones
            else:
                pcs = sorted(scale_tones(chord.root, chord.family) | set(tones))
            cands = [p for p in range(lo, hi + 1) if p % 12 in pcs]
            pitch = min(cands, key=lambda p: (abs(p - prev) if abs(p - prev) > 0 else 3) + abs(p - 40) * 0.15
                        + self.rng.random() * 0.5)
            prev = pitch
            part.notes.append(ScoreNote(self._human(beat, 0.008), self.band.bass_beats, pitch, self._vel(84 if new_chord else 76, 5)))
        if last_bar:
            chord = _chord_at(changes, last_bar[0] + 1e-6)
            if chord and not chord.is_nc:
                root = min((p for p in range(lo, hi + 1) if p % 12 == chord.root), key=lambda p: abs(p - prev))
                part.notes.append(ScoreNote(last_bar[0], last_bar[1], root, 84))
        return part

    def _drums(self, bars: list[tuple[float, float]], last_bar: tuple[float, float] | None) -> Part:
        part = Part("drums", 0, 9)
        for start, length in bars:
            if last_bar and start == last_bar[0]:
                part.notes += [ScoreNote(start, 1.0, CRASH, 80), ScoreNote(start, 1.0, KICK, 70),
                               ScoreNote(start, 1.0, RIDE, 60)]
                continue
            for beat in range(int(length)):
                t = start + beat
                part.notes.append(ScoreNote(self._human(t, 0.008), 0.3, RIDE, self._vel(72 if beat % 2 else 64, 6)))
                if beat % 2 == 1:
                    part.notes.append(ScoreNote(self._human(t, 0.006), 0.2, PEDAL_HAT, self._vel(70, 5)))
                    part.notes.append(ScoreNote(self._human(t + 2 / 3, 0.008), 0.2, RIDE, self._vel(52, 6)))
                if beat == 0 and self.rng.random() < 0.6:
                    part.notes.append(ScoreNote(self._human(t, 0.006), 0.2, KICK, self._vel(46, 6)))
                if self.rng.random() < 0.22:
                    part.notes.append(ScoreNote(self._human(t + 2 / 3, 0.01), 0.15, SNARE, self._vel(38, 8)))
        return part
