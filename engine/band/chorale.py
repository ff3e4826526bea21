"""Four-part chorale writing: the voices, their ranges and the rules a chorale is checked against.

A `Chorale` is a list of `ChoraleBeat`: the four pitches (soprano, alto, tenor, bass; MIDI
numbers) sounding at each beat's onset, the chord of that beat and whether a fermata ends a
phrase there. `check` counts what the rules forbid; the same code measures Bach's own chorales
(``training/evaluation/chorale.py``) and the generated ones, so the rates compare like with like.

The rules, beat to beat:

* **range**: each voice within `RANGES` (a voice-beat outside counts once).
* **crossing**: a lower voice above the voice over it (A > S, T > A or B > T); a beat counts once.
* **parallels**: two voices a perfect fifth (or a unison/octave) apart on two successive beats,
  both moving in the same direction, the same interval class both times; every pair of voices
  counts. Fifths and octaves by contrary motion are counted apart (``contrary``): strict
  counterpoint forbids them too, Bach writes them now and then (e.g. at cadences).
* **spacing**: more than an octave between soprano and alto or between alto and tenor; a beat
  counts once.
* **leading tone**: a voice on the key's leading tone over a dominant (V, V7, vii°) that moves to
  a tonic chord must rise a semitone to the tonic.
* **cadence**: a phrase end (fermata) lands on a major or minor triad approached by root motion of
  a fifth (V–I, IV–I, I–V, ii–V) or from a diminished chord a semitone below, or lands on the home
  key's V (a half cadence however approached).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import combinations

from engine.band.score import Score
from engine.errors import EngineError
from engine.music.chords import Chord

VOICES = ("soprano", "alto", "tenor", "bass")
# MIDI pitch limits per voice (inclusive), the usual SATB choir ranges a little widened at the
# edges Bach himself uses: soprano C4-A5, alto F3-D5, tenor C3-A4, bass C2-D4.
RANGES: dict[str, tuple[int, int]] = {"soprano": (60, 81), "alto": (53, 74), "tenor": (48, 69), "bass": (36, 62)}
PAIRS: tuple[tuple[int, int], ...] = tuple(combinations(range(4), 2))
SPACED = ((0, 1), (1, 2))  # pairs that must stay within an octave: S-A, A-T
MAX_SPACING = 12  # semitones
TRIADS = frozenset({"maj", "min"})
DOMINANT_FAMILIES = frozenset({"maj", "7"})


class ChoraleError(EngineError, ValueError):
    """A chorale beat is malformed (a pitch out of MIDI range, a wrong number of voices)."""


@dataclass(frozen=True)
class ChoraleBeat:
    """One beat of a four-part texture.

    Attributes:
        pitches: (soprano, alto, tenor, bass) MIDI pitches sounding at the beat's onset; None for a
            voice that rests.
        chord: the chord of the beat, or None where it is not known.
        fermata: a phrase ends on this beat.
    """

    pitches: tuple[int | None, int | None, int | None, int | None]
    chord: Chord | None = None
    fermata: bool = False

    def __post_init__(self) -> None:
        if len(self.pitches) != 4:
            raise ChoraleError(f"a chorale beat has 4 voices, got {len(self.pitches)}: {self.pitches!r}")
        for p in self.pitches:
            if p is not None and not 0 <= p <= 127:
                raise ChoraleError(f"voice pitch must be 0..127, got {p!r}")


@dataclass(frozen=True)
class Chorale:
    """Beats of a four-part chorale in a key (tonic pitch class, ``"major"`` or ``"minor"``)."""

    beats: tuple[ChoraleBeat, ...]
    tonic: int
    mode: str = "major"
    title: str = ""


@dataclass
class RuleCounts:
    """What `check` counted in one chorale or, added up, in many.

    Attributes:
        beats: beats with all four voices sounding.
        transitions: pairs of successive such beats.
        chord_changes: transitions where the chord (root and family) changes; transitions where
            any voice moves when the chords are unknown.
        parallels: parallel fifths and octaves (every pair of voices).
        parallel_fifths, parallel_octaves: the two kinds of ``parallels``.
        contrary: consecutive fifths and octaves by contrary motion (not in ``parallels``).
        crossings: beats with a crossing.
        range_violations: voice-beats outside `RANGES`.
        spacing: beats with more than an octave between S-A or A-T.
        leading_tones: leading tones over a dominant that moves to the tonic chord.
        unresolved_leading_tones: those that do not rise to the tonic.
        phrase_ends: fermatas.
        cadences: phrase ends that are cadences.
    """

    beats: int = 0
    transitions: int = 0
    chord_changes: int = 0
    parallels: int = 0
    parallel_fifths: int = 0
    parallel_octaves: int = 0
    contrary: int = 0
    crossings: int = 0
    range_violations: int = 0
    spacing: int = 0
    leading_tones: int = 0
    unresolved_leading_tones: int = 0
    phrase_ends: int = 0
    cadences: int = 0

    def __add__(self, other: RuleCounts) -> RuleCounts:
        return RuleCounts(**{k: v + getattr(other, k) for k, v in asdict(self).items()})

    def rates(self) -> dict[str, float]:
        """The rates the acceptance compares: per 100 chord changes, per 100 beats, shares."""
        per = lambda n, d: round(100.0 * n / d, 3) if d else 0.0  # noqa: E731
        return {
            "parallels_per_100_changes": per(self.parallels, self.chord_changes),
            "crossings_per_100_beats": per(self.crossings, self.beats),
            "range_violations_per_100_beats": per(self.range_violations, self.beats),
            "spacing_per_100_beats": per(self.spacing, self.beats),
            "unresolved_leading_tone_share": round(self.unresolved_leading_tones / self.leading_tones, 4)
            if self.leading_tones else 0.0,
            "cadence_share": round(self.cadences / self.phrase_ends, 4) if self.phrase_ends else 1.0,
        }

    def to_dict(self) -> dict[str, float | int]:
        return {**asdict(self), **self.rates()}


def parallel(prev: tuple[int, int], cur: tuple[int, int]) -> str | None:
    """``"fifth"`` or ``"octave"`` when two voices (upper, lower) move in parallel perfect
    intervals from ``prev`` to ``cur`` (both in the same direction), ``"contrary"`` for the same
    by contrary motion, else None."""
    (u0, l0), (u1, l1) = prev, cur
    if u0 == u1 or l0 == l1:
        return None
    i0, i1 = abs(u0 - l0) % 12, abs(u1 - l1) % 12
    if i0 != i1 or i0 not in (0, 7):
        return None
    if (u1 - u0) * (l1 - l0) < 0:
        return "contrary"
    return "fifth" if i0 == 7 else "octave"


def crossed(pitches: Sequence[int]) -> bool:
    """A lower voice above the one over it (S, A, T, B order)."""
    return any(pitches[i + 1] > pitches[i] for i in range(3))


def out_of_range(pitches: Sequence[int]) -> int:
    """How many voices are outside their `RANGES`."""
    return sum(not RANGES[v][0] <= p <= RANGES[v][1] for v, p in zip(VOICES, pitches, strict=True))


def too_wide(pitches: Sequence[int]) -> bool:
    """More than an octave between soprano and alto or alto and tenor."""
    return any(pitches[a] - pitches[b] > MAX_SPACING for a, b in SPACED)


def is_dominant(chord: Chord | None, tonic: int) -> bool:
    """V or V7 (root a fifth above the tonic, major third) or vii° (diminished on the leading tone)."""
    if chord is None or chord.root is None:
        return False
    if chord.root == (tonic + 7) % 12 and chord.family in DOMINANT_FAMILIES:
        return True
    return chord.root == (tonic + 11) % 12 and chord.family in ("dim", "dim7", "m7b5")


def is_tonic(chord: Chord | None, tonic: int) -> bool:
    return chord is not None and chord.root == tonic and chord.family in ("maj", "min", "maj7", "min7", "6", "min6")


def is_cadence(prev: Chord | None, cur: Chord | None, tonic: int) -> bool:
    """Whether a phrase ending ``prev`` -> ``cur`` is a cadence (see the module doc)."""
    if cur is None or cur.root is None or cur.family not in TRIADS:
        return False
    if cur.root == (tonic + 7) % 12 and cur.family == "maj":
        return True  # half cadence on the home V
    if prev is None or prev.root is None:
        return False
    motion = (cur.root - prev.root) % 12
    if motion in (5, 7):
        return True  # V-I / ii-V (up a fourth), IV-I / I-V (up a fifth)
    return motion == 1 and prev.family in ("dim", "dim7", "m7b5")


def _sounding(beat: ChoraleBeat) -> tuple[int, int, int, int] | None:
    return None if any(p is None for p in beat.pitches) else beat.pitches  # type: ignore[return-value]


def check(chorale: Chorale) -> RuleCounts:
    """Count every rule's violations in ``chorale`` (see the module doc)."""
    c = RuleCounts()
    tonic, lt = chorale.tonic, (chorale.tonic + 11) % 12
    beats = chorale.beats
    prev_chord: Chord | None = None  # the last chord different from the current one
    for i, beat in enumerate(beats):
        if i and beats[i - 1].chord != beat.chord:
            prev_chord = beats[i - 1].chord
        if beat.fermata:
            c.phrase_ends += 1
            c.cadences += is_cadence(prev_chord, beat.chord, tonic)
        cur = _sounding(beat)
        if cur is None:
            continue
        c.beats += 1
        c.crossings += crossed(cur)
        c.range_violations += out_of_range(cur)
        c.spacing += too_wide(cur)
        before = _sounding(beats[i - 1]) if i else None
        if before is None:
            continue
        c.transitions += 1
        known = beat.chord is not None and beats[i - 1].chord is not None
        if (beat.chord != beats[i - 1].chord) if known else before != cur:
            c.chord_changes += 1
        for a, b in PAIRS:
            kind = parallel((before[a], before[b]), (cur[a], cur[b]))
            if kind == "contrary":
                c.contrary += 1
            elif kind:
                c.parallels += 1
                c.parallel_fifths += kind == "fifth"
                c.parallel_octaves += kind == "octave"
        if is_dominant(beats[i - 1].chord, tonic) and is_tonic(beat.chord, tonic):
            for v in range(4):
                if before[v] % 12 == lt:
                    c.leading_tones += 1
                    c.unresolved_leading_tones += cur[v] != before[v] + 1
    return c


def check_all(chorales: Sequence[Chorale]) -> RuleCounts:
    """`check` summed over many chorales."""
    total = RuleCounts()
    for ch in chorales:
        total = total + check(ch)
    return total


def chorale_of_score(score: Score, tonic: int, mode: str, fermatas: frozenset[float] = frozenset()) -> Chorale:
    """The four voices of an arranged chorale (parts ``lead``, ``alto``, ``tenor``, ``bass``) at
    each beat, with the score's chords and the given fermata beats (in the score's own time)."""
    names = ("lead", "alto", "tenor", "bass")
    parts = [score.part(n) for n in names]
    if any(p is None for p in parts):
        raise ChoraleError(f"a chorale score has parts {', '.join(names)}; this one has "
                          f"{', '.join(p.name for p in score.parts)}")
    beats = []
    for b in range(int(score.beats)):
        pitches = tuple(_at(p.notes, b) for p in parts)  # type: ignore[union-attr]
        chord: Chord | None = None
        for t, c in score.chords:
            if t <= b + 1e-6:
                chord = None if c.is_nc else c
        beats.append(ChoraleBeat(pitches, chord, fermata=float(b) in fermatas))  # type: ignore[arg-type]
    return Chorale(tuple(beats), tonic, mode, score.title)


def _at(notes: list, beat: float) -> int | None:
    """The pitch sounding at ``beat``: the latest note struck at or before it and still held
    (onsets humanised by a few hundredths of a beat count as on the beat)."""
    sounding = [n for n in notes if n.onset - 0.05 <= beat < n.onset + n.duration - 0.05]
    return max(sounding, key=lambda n: n.onset).pitch if sounding else None
