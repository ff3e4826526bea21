"""A clip as written: the notes as composed (on the grid, before the band's feel), the changes,
the bars, the form's sections and the key, ready to be set as a lead sheet.

`engine.compose.composer.Composer.realise` builds one for every clip (a few milliseconds: it is
data, not notation); `engine.formats.musicxml` writes it as MusicXML. It travels as JSON
(`Written.to_json` / `Written.from_json`) beside the clip, so a worker can set the sheet later,
on demand, on another machine or after a restart.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from engine.errors import EngineError
from engine.music.chords import Chord

FORMAT = 1  # the JSON's version


class WrittenError(EngineError):
    """A written clip that cannot be read (another version, a missing or bad field)."""


@dataclass(frozen=True)
class Voice:
    """One written line: ``notes`` are (onset beats from the top, length beats, MIDI pitch), no
    two sounding at once; ``staff`` 0 is the upper staff (treble), 1 the lower (bass clef)."""

    name: str
    notes: tuple[tuple[float, float, int], ...]
    staff: int = 0


@dataclass(frozen=True)
class Section:
    """A section of the form in the clip: its label (A, B, ...), first bar (0-based) and bars."""

    label: str
    first_bar: int
    bars: int


@dataclass(frozen=True)
class Written:
    """The clip as written.

    Attributes:
        title: the header's title; style: the style's name (jazz, folk, bach).
        tempo: quarter-note beats per minute; meter: the time signature.
        tonic: the key's tonic pitch class; mode: "major" or "minor".
        bars: how many bars (all of ``bar_beats`` quarter-note beats), the final bar included.
        changes: (beat, chord) in time order, as the clip's embed lists them.
        voices: the lead alone, or soprano, alto, tenor and bass.
        sections: the form's sections unrolled over the clip (empty: no form).
        swing: the eighths are played swung (written straight, "Swing" in the header).
        fermatas: written beats held under a fermata (a chorale's phrase ends).
    """

    title: str
    style: str
    tempo: float
    meter: tuple[int, int]
    tonic: int
    mode: str
    bars: int
    changes: tuple[tuple[float, Chord], ...]
    voices: tuple[Voice, ...]
    sections: tuple[Section, ...] = ()
    swing: bool = False
    fermatas: tuple[float, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.bars < 1 or not self.voices or self.mode not in ("major", "minor") or not 0 <= self.tonic < 12:
            raise WrittenError(f"a written clip needs bars, voices and a key; got {self.bars} bars, "
                               f"{len(self.voices)} voices, tonic {self.tonic!r} {self.mode!r}")

    @property
    def bar_beats(self) -> float:
        """Quarter-note beats in a bar (6/8 -> 3.0)."""
        return self.meter[0] * 4.0 / self.meter[1]

    def to_json(self) -> bytes:
        """The clip as JSON bytes (chords as root, family, tensions, bass)."""
        data = {
            "v": FORMAT, "title": self.title, "style": self.style, "tempo": self.tempo, "meter": list(self.meter),
            "tonic": self.tonic, "mode": self.mode, "bars": self.bars, "swing": self.swing,
            "changes": [[t, c.root, c.family, sorted(c.tensions), c.bass] for t, c in self.changes],
            "voices": [{"name": v.name, "staff": v.staff, "notes": [list(n) for n in v.notes]} for v in self.voices],
            "sections": [[s.label, s.first_bar, s.bars] for s in self.sections],
            "fermatas": list(self.fermatas),
        }
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, blob: bytes | str) -> Written:
        """The clip `to_json` wrote.

        Raises:
            WrittenError: not JSON, another version, or a missing or bad field (named).
        """
        try:
            d = json.loads(blob)
            if not isinstance(d, dict) or d.get("v") != FORMAT:
                raise WrittenError(f"a written clip must be version {FORMAT}")
            return cls(
                title=str(d["title"]), style=str(d["style"]), tempo=float(d["tempo"]),
                meter=(int(d["meter"][0]), int(d["meter"][1])), tonic=int(d["tonic"]), mode=str(d["mode"]),
                bars=int(d["bars"]), swing=bool(d["swing"]),
                changes=tuple((float(t), Chord(root, fam, frozenset(int(x) for x in ten), bass))
                              for t, root, fam, ten, bass in d["changes"]),
                voices=tuple(Voice(str(v["name"]), tuple((float(a), float(b), int(p)) for a, b, p in v["notes"]),
                                   int(v["staff"])) for v in d["voices"]),
                sections=tuple(Section(str(label), int(a), int(b)) for label, a, b in d["sections"]),
                fermatas=tuple(float(f) for f in d["fermatas"]))
        except WrittenError:
            raise
        except (ValueError, KeyError, TypeError, IndexError, EngineError) as exc:
            raise WrittenError(f"a written clip that cannot be read: {exc}") from exc


def unrolled_sections(sections: tuple[tuple[str, int, int, int], ...], chorus_bars: int, body_bars: int
                      ) -> tuple[Section, ...]:
    """A song plan's sections (label, occurrence, first bar, bars) of one chorus, repeated over
    the ``body_bars`` bars of a clip (the final bar is not part of any), the last one cut short."""
    if not sections or chorus_bars < 1:
        return ()
    out = []
    for k in range(-(-body_bars // chorus_bars)):
        for label, _occ, start, bars in sections:
            first = k * chorus_bars + start
            if first >= body_bars:
                break
            out.append(Section(label, first, min(bars, body_bars - first)))
    return tuple(out)
