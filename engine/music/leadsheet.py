"""The in-memory lead sheet every corpus reader produces: measures of melody over chords.

Times are in quarter-note beats. Onsets are relative to the start of their measure.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.errors import EngineError
from engine.music.chords import Chord


@dataclass(frozen=True)
class Note:
    """One melody note. ``onset`` and ``duration`` in beats; ``pitch`` a MIDI number."""

    onset: float
    duration: float
    pitch: int
    velocity: int = 90

    def __post_init__(self) -> None:
        if not 0 <= self.pitch <= 127:
            raise EngineError(f"note pitch must be 0..127, got {self.pitch!r}")
        if self.duration <= 0:
            raise EngineError(f"note duration must be positive, got {self.duration!r}")
        if not 1 <= self.velocity <= 127:
            raise EngineError(f"note velocity must be 1..127, got {self.velocity!r}")


@dataclass(frozen=True)
class ChordSpan:
    """A chord sounding from ``onset`` for ``duration`` beats within its measure."""

    onset: float
    duration: float
    chord: Chord


@dataclass(frozen=True)
class Measure:
    """One bar: its time signature, melody notes and chord spans (sorted by onset).

    The chord spans cover the bar from beat 0; the first span holds the chord sounding at the
    downbeat even when it was struck in an earlier bar.
    """

    time_signature: tuple[int, int]
    notes: tuple[Note, ...]
    chords: tuple[ChordSpan, ...]

    @property
    def beats(self) -> float:
        """Length of the bar in quarter-note beats (6/8 -> 3.0)."""
        num, den = self.time_signature
        return num * 4.0 / den

    def chord_at(self, beat: float) -> Chord | None:
        current = None
        for span in self.chords:
            if span.onset <= beat + 1e-9:
                current = span.chord
            else:
                break
        return current


@dataclass
class LeadSheet:
    """A piece: title, tempo (quarter-note bpm), its measures, and where it came from."""

    title: str
    tempo: float
    measures: list[Measure]
    source: str = ""
    recording: str = ""
    key: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def time_signature(self) -> tuple[int, int]:
        return self.measures[0].time_signature if self.measures else (4, 4)

    @property
    def note_count(self) -> int:
        return sum(len(m.notes) for m in self.measures)

    def chord_labels(self, bars: int = 8) -> list[str]:
        """Chord names of the first ``bars`` measures, bar lines as ``|``."""
        out: list[str] = []
        for measure in self.measures[:bars]:
            out.append(" ".join(span.chord.name for span in measure.chords) or "NC")
        return out


def spans_from_changes(
    changes: list[tuple[float, Chord]], bar_starts: list[float], bar_beats: list[float]
) -> list[tuple[ChordSpan, ...]]:
    """Cut a piece-level list of chord changes (absolute beat, chord) into per-bar spans.

    Args:
        changes: chord changes sorted by absolute onset in beats.
        bar_starts: absolute start beat of each bar.
        bar_beats: length of each bar in beats.
    Returns:
        one tuple of spans per bar, each starting at beat 0 with the chord sounding there.
    """
    from engine.music.chords import NO_CHORD

    out: list[tuple[ChordSpan, ...]] = []
    idx = 0
    current = Chord(None, NO_CHORD)
    for start, length in zip(bar_starts, bar_beats, strict=True):
        end = start + length
        while idx < len(changes) and changes[idx][0] <= start + 1e-6:
            current = changes[idx][1]
            idx += 1
        points: list[tuple[float, Chord]] = [(0.0, current)]
        while idx < len(changes) and changes[idx][0] < end - 1e-6:
            onset, chord = changes[idx]
            current = chord
            rel = onset - start
            if abs(rel - points[-1][0]) < 1e-6:
                points[-1] = (rel, chord)
            elif chord != points[-1][1]:
                points.append((rel, chord))
            idx += 1
        spans = []
        for i, (onset, chord) in enumerate(points):
            nxt = points[i + 1][0] if i + 1 < len(points) else length
            spans.append(ChordSpan(onset, nxt - onset, chord))
        out.append(tuple(spans))
    return out
