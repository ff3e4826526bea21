"""Rhythm as it is written: a line's notes cut into the values a reader counts, bar by bar.

Times are in grid units (`engine.music.tokens.GRID` = 12 to a quarter note). The rules:

* every onset stays where it was composed; each beat is written in the coarsest division that
  holds its onsets: quarter, eighths, sixteenths, triplets, sextuplets (compound meters: the
  dotted quarter in eighths or sixteenths; an onset off that grid moves to the nearest sixteenth);
* a note ends at the next onset or at its own end, moved to its beat's division (the lengths
  are written as a reader counts them; the onsets are the melody);
* a note or rest never hides a beat: it is cut at each beat it crosses and tied over (ties
  across bar lines too), except a note or rest that starts on a beat and fills whole beats in a
  value of their own (a half note on beat 1 or 3 of 4/4, a dotted half on 1, a whole bar);
* swung eighths are written as plain eighths (the written notes are straight already).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.music.tokens import GRID

_SIMPLE_STEPS = (12, 6, 3, 4, 2, 1)  # a beat's divisions, coarsest first: 1, 2, 4, 3, 6, 12 to the beat
_COMPOUND_STEPS = (18, 6, 3)


@dataclass(frozen=True)
class Event:
    """A written note or rest inside one bar: ``start`` and ``length`` in grid units from the bar's
    start; ``pitch`` None for a rest; ``tie`` "start", "continue", "stop" or None; ``note`` the index
    of the composed note it writes (-1 for a rest)."""

    start: int
    length: int
    pitch: int | None
    tie: str | None = None
    note: int = -1


def beat_units(meter: tuple[int, int]) -> int:
    """Grid units of the beat a reader counts: a dotted quarter in 6/8, 9/8 and 12/8, else a quarter."""
    num, den = meter
    return GRID * 3 // 2 if den == 8 and num % 3 == 0 else GRID


def bar_units(meter: tuple[int, int]) -> int:
    return meter[0] * GRID * 4 // meter[1]


def snapped(notes: Sequence[tuple[float, float, int]], meter: tuple[int, int], end: int
            ) -> list[tuple[int, int, int]]:
    """(onset, end, pitch) in grid units: onsets on the grid (compound meters: on sixteenths), no
    two at once (the later wins), each end moved to its beat's division and never past the next
    onset or ``end``."""
    beat = beat_units(meter)
    steps = _COMPOUND_STEPS if beat == 18 else _SIMPLE_STEPS
    fine = steps[-1]
    by_onset: dict[int, tuple[int, int]] = {}
    for onset, length, pitch in sorted(notes):
        on = round(onset * GRID / fine) * fine
        if 0 <= on < end:
            by_onset[on] = (max(on + 1, round((onset + length) * GRID)), pitch)
    onsets = sorted(by_onset)
    division = {b: _division(b, beat, steps, onsets) for b in range(0, end, beat)}
    out = []
    for i, on in enumerate(onsets):
        stop, pitch = by_onset[on]
        limit = onsets[i + 1] if i + 1 < len(onsets) else end
        b = (min(stop, limit) - 1) // beat * beat  # the beat the note ends in
        step = division.get(b, fine)
        stop = max(b + max(step, round((min(stop, limit) - b) / step) * step), on + division.get(on // beat * beat, fine))
        out.append((on, min(stop, limit), pitch))
    return out


def _division(b: int, beat: int, steps: Sequence[int], onsets: Sequence[int]) -> int:
    inside = [o - b for o in onsets if b <= o < b + beat]
    return next((s for s in steps if all(o % s == 0 for o in inside)), steps[-1])


def write_bars(notes: Sequence[tuple[float, float, int]], meter: tuple[int, int], bars: int) -> list[list[Event]]:
    """The line's notes as written events, one list per bar (rests fill the gaps)."""
    length = bar_units(meter)
    end = bars * length
    spans: list[tuple[int, int, int | None, int]] = []  # (start, stop, pitch, note index)
    now = 0
    for i, (on, stop, pitch) in enumerate(snapped(notes, meter, end)):
        if on > now:
            spans.append((now, on, None, -1))
        spans.append((on, stop, pitch, i))
        now = stop
    if now < end:
        spans.append((now, end, None, -1))
    out: list[list[Event]] = [[] for _ in range(bars)]
    for start, stop, pitch, index in spans:
        pieces = []
        for bar in range(start // length, (stop - 1) // length + 1):
            lo, hi = max(start, bar * length), min(stop, (bar + 1) * length)
            pieces += [(bar, a, b) for a, b in _pieces(lo - bar * length, hi - bar * length, meter, pitch is None)]
        for k, (bar, a, b) in enumerate(pieces):
            tie = None
            if pitch is not None and len(pieces) > 1:
                tie = "start" if k == 0 else "stop" if k == len(pieces) - 1 else "continue"
            out[bar].append(Event(a, b - a, pitch, tie, index))
    return out


def _pieces(lo: int, hi: int, meter: tuple[int, int], rest: bool) -> list[tuple[int, int]]:
    """[lo, hi) inside one bar cut at the beats it hides (see the module docstring)."""
    beat = beat_units(meter)
    length = bar_units(meter)
    if rest and lo == 0 and hi == length:
        return [(0, length)]  # a whole bar's rest
    out = []
    t = lo
    while t < hi:
        nxt = (t // beat + 1) * beat
        if t % beat == 0 and hi - t >= 2 * beat:
            span = _whole_beats(t // beat, (hi - t) // beat, length // beat, beat)
            nxt = t + span * beat
        out.append((t, min(nxt, hi)))
        t = min(nxt, hi)
    return out


def _whole_beats(at: int, count: int, per_bar: int, beat: int) -> int:
    """How many whole beats from beat ``at`` one value may fill (at most ``count``): a half on 1 or 3
    of 4/4 (on 1 or 2 of 3/4), a dotted half on 1 of 4/4 and 3/4, a whole on 1 of 4/4; compound
    meters join beats only from the bar's start or its middle."""
    for n in (4, 3, 2):
        if n > count or n > per_bar:
            continue
        if beat == 18:
            if n in (2, 4) and at % n == 0:
                return n
            continue
        if n == 4 and at == 0:
            return 4
        if n == 3 and at == 0:
            return 3
        if n == 2 and (at % 2 == 0 or per_bar == 3):
            return 2
    return 1
