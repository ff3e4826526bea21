"""How the lead plays its notes: swing, placement and articulation learned from real soloists.

A `Performance` is what ``training/fit/performance.py`` learned from WJazzD's performed timing and a
checkpoint carries in ``meta.json["performance"]``: the soloists' eighth-note swing ratio as a
line against the tempo (they swing less than the ride, and less as the tempo rises), how far
their notes land from the beat, and their articulation, as quantiles of a note's length over the
spacing to the next onset (eighth-like and longer spacings apart) and of a phrase's held last
note. `Performance.place` and `Performance.length` draw from it with the arranger's seeded
generator, so a seed still gives the same MIDI.
"""
from __future__ import annotations

import bisect
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from engine.music.leadsheet import Note

QUANTILES = 21  # quantiles kept per distribution (0, 5%, ..., 100%)
SWING_RANGE = (1.0, 2.2)  # the lead's learned swing ratio is kept inside this
MAX_SHIFT = 0.08  # beats: the furthest a note is moved off its place
# Long:short ratio of swung eighths by tempo (bpm), interpolated: hard swing when slow, nearly
# even eighths when very fast (as drummers play it).
SWING_BY_TEMPO = ((0.0, 2.3), (140.0, 2.2), (160.0, 1.95), (200.0, 1.65), (240.0, 1.45), (320.0, 1.25))


@dataclass(frozen=True)
class Performance:
    """A soloist's feel (see the module docstring); beats are quarter-note beats."""

    swing_intercept: float
    swing_slope: float  # ratio per bpm
    onbeat_mean: float  # beats an on-beat note lands after the beat (negative: ahead)
    onbeat_sd: float
    offbeat_mean: float  # beats an off-beat eighth lands after its swung place
    offbeat_sd: float
    short: tuple[float, ...]  # length / spacing quantiles, spacing under 0.8 beat
    long: tuple[float, ...]  # the same, spacing 0.8 to 2.5 beats
    held: tuple[float, ...]  # a phrase's last note, in beats
    solos: int = 0  # solos it was learned from
    swing_by_tempo: tuple[tuple[float, float], ...] = ()  # (tempo, ratio): the curve `swing` follows
    phrase_notes: tuple[float, ...] = ()  # notes per phrase (a rest of over a beat ends one), quantiles
    rest_beats: tuple[float, ...] = ()  # the rests between phrases, in beats, quantiles
    swing_points: tuple[tuple[float, float], ...] = ()  # (tempo, median ratio) per solo, for the figure
    # per written place (`place_class`), per tempo band: (tempo, quantiles of beats played off the
    # written place); a swung off-beat eighth's quantiles hold its swing
    placement: tuple[tuple[str, tuple[tuple[float, tuple[float, ...]], ...]], ...] = ()
    # per band of played spacing (lo, hi beats): quantiles of length / spacing
    articulation: tuple[tuple[float, float, tuple[float, ...]], ...] = ()
    placement_rho: float = 0.0  # how alike two neighbours' placements are (lag-1, in normal scores)
    # dynamics, in MIDI velocity against the solo's median (`training/fit/dynamics.py`)
    vel_arc: tuple[float, ...] = ()  # by place in the phrase, first note to the last but one, in bins
    vel_last: float = 0.0  # the phrase's last note
    vel_contour: float = 0.0  # per semitone above the phrase's mean pitch
    vel_accents: tuple[tuple[str, float], ...] = ()  # by kind of written place (`place_class`)
    vel_phrase_sd: float = 0.0  # a phrase's own level, from phrase to phrase
    vel_phrase_rho: float = 0.0  # how alike two neighbouring phrases' levels are
    vel_note_sd: float = 0.0  # what is left, note by note
    vel_solos: int = 0

    def __post_init__(self) -> None:
        for name in ("short", "long", "held", "phrase_notes", "rest_beats"):
            values = getattr(self, name)
            if name in ("phrase_notes", "rest_beats") and not values:
                continue
            if len(values) != QUANTILES or list(values) != sorted(values):
                raise ValueError(f"performance {name} must be {QUANTILES} rising quantiles, got {values!r}")
        tables = [q for _, bands in self.placement for _, q in bands] + [q for _, _, q in self.articulation]
        for values in tables:
            if len(values) != QUANTILES or list(values) != sorted(values):
                raise ValueError(f"performance placement and articulation need {QUANTILES} rising quantiles, "
                                 f"got {values!r}")

    def swing(self, tempo: float) -> float:
        """The lead's eighth-note swing ratio (long:short) at ``tempo`` bpm."""
        lo, hi = SWING_RANGE
        if self.swing_by_tempo:
            return min(hi, max(lo, _interp(self.swing_by_tempo, tempo)))
        return min(hi, max(lo, self.swing_intercept + self.swing_slope * tempo))

    def place(self, offbeat: bool, rng: random.Random) -> float:
        """Beats to move a note off its (swung) place."""
        mean, sd = (self.offbeat_mean, self.offbeat_sd) if offbeat else (self.onbeat_mean, self.onbeat_sd)
        return min(MAX_SHIFT, max(-MAX_SHIFT, rng.gauss(mean, sd)))

    def spread(self, kind: str, tempo: float) -> list[float] | None:
        """Quantiles of how far soloists play a note of place ``kind`` off it at ``tempo`` (beats)."""
        bands = dict(self.placement).get(kind) or dict(self.placement).get("on")
        return _at_tempo(bands, tempo) if bands else None

    def position(self, onset: float, kind: str, tempo: float, u: float) -> float:
        """Where a note written at ``onset`` (beats) of place ``kind`` (`place_class`) is played at
        ``tempo``: the ``u`` (0..1) quantile of the soloists' own spread around that place there."""
        quantiles = self.spread(kind, tempo)
        return onset if quantiles is None else onset + _draw(quantiles, u)

    def onsets(self, written: Sequence[float], tempo: float, rng: random.Random) -> list[float]:
        """The lead's ``written`` onsets (beats, sorted) as a soloist plays them at ``tempo``: each
        drawn around its place by the kind of place it is (`place_class`), kept in order."""
        by_beat: dict[int, list[float]] = {}
        for t in written:
            by_beat.setdefault(math.floor(t + 1e-9), []).append(t)
        out: list[float] = []
        rho, z = min(0.95, max(0.0, self.placement_rho)), 0.0
        for i, t in enumerate(written):  # neighbours lean the same way as often as the soloists' do
            z = rho * z + math.sqrt(1 - rho * rho) * rng.gauss(0.0, 1.0)
            u = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
            kind = place_class(t, by_beat[math.floor(t + 1e-9)])
            if kind == "2:2" and out and abs(written[i - 1] - (t - 0.5)) < 1e-6 and "pair" in dict(self.placement):
                played = self.position(out[-1] + 0.5, "pair", tempo, u)  # the eighth pair as soloists play it
            else:
                played = self.position(t, kind, tempo, u)
            if out and t > written[i - 1] + 1e-9:  # two notes keep their order, a little apart
                played = max(played, out[-1] + min(0.05, (t - written[i - 1]) / 2))
            out.append(max(0.0, played))
        return out

    def loudness(self, written: Sequence[Note], rng: random.Random) -> list[float]:
        """Velocity offsets for the ``written`` notes (sorted by onset): each phrase (a rest of over
        a beat ends one) at its own level, drifting from phrase to phrase; loud at its start and
        falling, its last note softest; higher notes louder; accents by place; and a note's own
        spread. All zeros without learned dynamics."""
        if not self.vel_arc:
            return [0.0] * len(written)
        by_beat: dict[int, list[float]] = {}
        for n in written:
            by_beat.setdefault(math.floor(n.onset + 1e-9), []).append(n.onset)
        accents, rho = dict(self.vel_accents), min(0.95, max(0.0, self.vel_phrase_rho))
        phrases, start = [], 0
        for i, n in enumerate(written):
            if i + 1 == len(written) or written[i + 1].onset - (n.onset + n.duration) > 1.0:
                phrases.append(written[start:i + 1])
                start = i + 1
        levels, level = [], 0.0
        for _ in phrases:  # each phrase's level, drifting; centred, as the corpus's against each solo's median
            level = rho * level + math.sqrt(1 - rho * rho) * rng.gauss(0.0, self.vel_phrase_sd)
            levels.append(level)
        centre = sum(levels) / max(1, len(levels))
        out: list[float] = []
        for phrase, level in zip(phrases, levels, strict=True):
            mean = sum(m.pitch for m in phrase) / len(phrase)
            for j, m in enumerate(phrase):
                place = j / (len(phrase) - 1) if len(phrase) > 1 else 0.0
                arc = self.vel_last if place == 1.0 else self.vel_arc[min(int(place * len(self.vel_arc)),
                                                                          len(self.vel_arc) - 1)]
                kind = place_class(m.onset, by_beat[math.floor(m.onset + 1e-9)])
                out.append(level - centre + arc + self.vel_contour * (m.pitch - mean) + accents.get(kind, 0.0)
                           + rng.gauss(0.0, self.vel_note_sd))
        return out

    def length(self, spacing: float, phrase_end: bool, rng: random.Random) -> float:
        """A note's played length in beats, ``spacing`` beats before the next onset."""
        if phrase_end:
            return min(_draw(self.held, rng.random()), max(0.05, spacing - 0.1))
        table = self.short if spacing < 0.8 else self.long
        for lo, hi, quantiles in self.articulation:
            if lo <= spacing < hi:
                table = quantiles
        return max(0.04, spacing * _draw(table, rng.random()))

    def breathe(self, melody: Sequence[Note], rng: random.Random, start: float, stop: float) -> list[Note]:
        """The melody in phrases of the soloists' lengths with their rests between: after a phrase
        of a drawn number of notes, the notes in a drawn rest (over a beat) after it are left out.
        Only between beats ``start`` and ``stop`` (a pickup and the run into the ending stay);
        the melody's own rests start a phrase afresh."""
        if not self.phrase_notes or not self.rest_beats:
            return list(melody)
        out: list[Note] = []
        count, target, rest_until = 0, _draw(self.phrase_notes, rng.random()), -1.0
        for n in sorted(melody, key=lambda n: n.onset):
            editable = start <= n.onset < stop
            if editable and n.onset < rest_until:
                continue
            if out and n.onset - (out[-1].onset + out[-1].duration) > 1.0:
                count = 0  # the line breathed by itself
            out.append(n)
            count += 1
            if editable and count >= target:
                rest_until = n.onset + n.duration + max(1.05, _draw(self.rest_beats, rng.random()))
                count, target = 0, _draw(self.phrase_notes, rng.random())
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> Performance | None:
        """The checkpoint's performance block, or None when it has none.

        Raises:
            ValueError: a block of the wrong shape.
        """
        block = meta.get("performance")
        if not block:
            return None
        known = {f.name for f in fields(cls)}  # a newer trainer's extra keys are left for a newer engine
        block = {k: v for k, v in block.items() if k in known}
        try:
            placement = tuple((str(kind), tuple((float(t), tuple(q)) for t, q in bands))
                              for kind, bands in block.get("placement", ()))
            articulation = tuple((float(lo), float(hi), tuple(q)) for lo, hi, q in block.get("articulation", ()))
            return cls(**{**block, **{k: tuple(block.get(k, ())) for k in ("short", "long", "held", "phrase_notes",
                                                                             "rest_beats")},
                          **{k: tuple(tuple(p) for p in block.get(k, ())) for k in ("swing_points", "swing_by_tempo")},
                          "placement": placement, "articulation": articulation,
                          "placement_rho": float(block.get("placement_rho", 0.0)),
                          "vel_arc": tuple(block.get("vel_arc", ())),
                          "vel_accents": tuple((str(k), float(v)) for k, v in block.get("vel_accents", ()))})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"a checkpoint's performance block is malformed: {exc}") from exc


def _interp(points: Sequence[tuple[float, float]], x: float) -> float:
    """Piecewise-linear through ``points`` (sorted by x), flat beyond the ends."""
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def place_class(onset: float, beat_onsets: Sequence[float]) -> str:
    """The written place of a note as WJazzD names it, "division:tatum" of its beat ("on" for the
    beat itself, "2:2" for an off-beat eighth, "3:2"/"3:3" for triplets, "4:2".."4:4" for
    sixteenths), from the onsets written in its beat; "other" for any other division."""
    k = round((onset - math.floor(onset)) * 12) % 12  # the 12-per-beat grid
    if k == 0:
        return "on"
    inside = {round((o - math.floor(o)) * 12) % 12 for o in beat_onsets} - {0}
    for division, places in ((2, {6}), (3, {4, 8}), (4, {3, 6, 9})):
        if inside <= places:
            return f"{division}:{k * division // 12 + 1}"
    return "other"


def _at_tempo(bands: Sequence[tuple[float, Sequence[float]]], tempo: float) -> list[float]:
    """Quantiles interpolated between the two tempo bands around ``tempo`` (flat beyond the ends)."""
    return [_interp([(t, q[i]) for t, q in bands], tempo) for i in range(QUANTILES)]


def _draw(quantiles: Sequence[float], u: float) -> float:
    """The value at ``u`` (0..1) of a distribution kept as evenly spaced quantiles."""
    x = u * (len(quantiles) - 1)
    i = min(int(x), len(quantiles) - 2)
    return quantiles[i] + (quantiles[i + 1] - quantiles[i]) * (x - i)


def swing_ratio(tempo: float) -> float:
    """The long:short ratio of swung eighths at ``tempo`` quarter-note bpm (2.0 is the triplet)."""
    points = SWING_BY_TEMPO
    if tempo >= points[-1][0]:
        return points[-1][1]
    for (t0, r0), (t1, r1) in zip(points, points[1:], strict=False):
        if t0 <= tempo <= t1:
            return r0 + (r1 - r0) * (tempo - t0) / (t1 - t0)
    return points[0][1]


def swing(beat: float, ratio: float = 2.0) -> float:
    """Move an offbeat eighth (x.5 beats) to the swung position, x + ratio / (1 + ratio).

    Every other position (downbeats, triplets, sixteenths) is already where it is played and
    stays. ``ratio`` is long:short (2.0: the triplet; 1.0: even eighths).
    """
    whole = math.floor(beat)
    if abs(beat - whole - 0.5) < 1e-6:
        return whole + ratio / (1.0 + ratio)
    return beat


class LeadLine:
    """The melody as written, to keep the comping under it (a pianist comps under the soloist):
    the lowest pitch sounding in a span. Written, not played, so the comping does not depend on
    whether the lead part is in the clip."""

    MARGIN = 0.15  # beats either side: the lead is played around its written place

    def __init__(self, melody: Sequence[Note]) -> None:
        self.notes = sorted((n.onset, n.onset + n.duration, n.pitch) for n in melody)
        self.starts = [n[0] for n in self.notes]
        self.longest = max((n[1] - n[0] for n in self.notes), default=0.0)

    def lowest(self, start: float, end: float) -> int | None:
        lo = bisect.bisect_left(self.starts, start - self.longest - self.MARGIN)
        hi = bisect.bisect_right(self.starts, end + self.MARGIN)
        pitches = [p for s, e, p in self.notes[lo:hi] if s < end + self.MARGIN and e > start - self.MARGIN]
        return min(pitches) if pitches else None
