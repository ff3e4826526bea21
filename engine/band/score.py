"""A finished arrangement: the band's parts as notes in beats, with tempo, meter, key and chords.

`engine.band.arrange` builds it, `engine.formats.midi` writes it as MIDI, `engine.media.picture` draws it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.music.chords import Chord
from engine.music.leadsheet import Note


class ScoreNote(Note):
    """A `Note` of a part, validated the same way; its onset, ``start``, is in quarter-note beats
    from the top of the piece (not of its measure)."""

    @property
    def start(self) -> float:
        return self.onset


@dataclass
class Part:
    """One instrument: its own MIDI track and channel (channel 9 = drums), and its place in the mix
    (MIDI controller values 0-127: CC7 volume, CC10 pan, CC91 reverb send, CC93 chorus send),
    where its sustain pedal goes down, if it does, and any controller changes on the way (an
    expression fade)."""

    name: str
    program: int
    channel: int
    notes: list[ScoreNote] = field(default_factory=list)
    volume: int = 100
    pan: int = 64
    reverb: int = 40
    chorus: int = 0
    controls: list[tuple[float, int, int]] = field(default_factory=list)  # (beat, CC number, value): a fade, the pedal

    @property
    def sustain_from(self) -> float | None:
        """The beat where the sustain pedal (CC64) goes down, held to the end; None if it never does."""
        return next((beat for beat, number, value in self.controls if number == 64 and value >= 64), None)

    def pedal_from(self, beat: float) -> None:
        """Put the sustain pedal down at ``beat``, held to the end."""
        self.controls.append((beat, 64, 127))

    @property
    def is_drums(self) -> bool:
        return self.channel == 9


@dataclass
class Score:
    """The whole clip.

    Attributes:
        tempo: quarter-note beats per minute.
        meter: time signature (num, den).
        key: key signature name as mido spells it (``"C"``, ``"Bbm"``).
        bars: bar start times in beats and their lengths in beats.
        chords: chord changes as (beat, chord).
        parts: the band, lead first.
        title: a name for the clip (MIDI track 0).
        fermatas: beats where a chorale's phrase ends are held (empty for other styles).
    """

    tempo: float
    meter: tuple[int, int]
    key: str
    bars: list[tuple[float, float]]
    chords: list[tuple[float, Chord]]
    parts: list[Part]
    title: str = "Chorus"
    fermatas: list[float] = field(default_factory=list)

    @property
    def beats(self) -> float:
        if not self.bars:
            return 0.0
        start, length = self.bars[-1]
        return start + length

    @property
    def seconds(self) -> float:
        return self.beats * 60.0 / self.tempo

    def part(self, name: str) -> Part | None:
        return next((p for p in self.parts if p.name == name), None)


def chord_at(changes: Sequence[tuple[float, Chord]], beat: float, tolerance: float = 1e-9) -> Chord | None:
    """The chord sounding at ``beat``: the last change at or before it (within ``tolerance`` beats)."""
    current = None
    for t, c in changes:
        if t <= beat + tolerance:
            current = c
        else:
            break
    return current
