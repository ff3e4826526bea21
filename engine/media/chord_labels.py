"""Chord symbols on the piano roll: every change labelled at its own start.

Each change tries its full name, then the reduced one (``G7(b9,13)`` -> ``G7alt``), then a short
form (``Fmaj7`` -> ``FΔ7``), at a smaller size, and staggered on up to three rows, before a label
that would overlap is left out (only when changes come every few pixels). `chord_labels` returns
what is placed, so tests can check the labels without reading the picture.
"""
from __future__ import annotations

from dataclasses import dataclass

from PIL import ImageFont

from engine.band.score import Score
from engine.media.layout import RollLayout, get_font, px, roll_layout
from engine.music.chords import Chord


def score_changes(score: Score) -> list[tuple[float, Chord]]:
    """The chord changes in time order, a chord equal to the one before dropped."""
    ordered = sorted(score.chords, key=lambda c: c[0])
    return [c for i, c in enumerate(ordered) if i == 0 or c[1].name != ordered[i - 1][1].name]


@dataclass(frozen=True)
class ChordLabel:
    """One chord symbol as drawn: at its change's beat, on one of the rows of the chord band.

    Attributes:
        beat: the change's start in beats; x: its x in pixels (the label starts there).
        name: the chord's full name; text: what is written (the name, its reduced form or the
            short form of that).
        x1: x where the text (and its padding) ends.
        row: 0 the top row, 1 and 2 the rows under it when the labels are staggered.
        rows: how many rows the chord band has in this picture (1-3).
        size: font size in pixels; y: the text's vertical centre.
    """

    beat: float
    x: float
    name: str
    text: str
    x1: float
    row: int
    rows: int
    size: int
    y: float


# Tried in order until every change gets a label: (rows, font size at width 1600). One row at
# the full size first, then smaller, then staggered on two and three rows at smaller sizes.
_LABEL_PLANS = ((1, 32), (1, 27), (2, 22), (2, 18), (3, 14), (3, 11))


def chord_labels(score: Score, width: int = 1600, height: int | None = None) -> list[ChordLabel]:
    """The chord symbols the picture of ``score`` at this size writes, in time order.

    Every change gets a label at its own start: each takes the first of its full name, its reduced
    name (root and family, ``G7(b9)`` -> ``G7``) and the short form of that (``Fmaj7`` -> ``FΔ7``)
    that ends before the next label on its row. The first plan of `_LABEL_PLANS` (rows, size) where
    all fit is used; labels on several rows take the rows in turn. Only when even three rows of the
    smallest size cannot hold them all (a change every ~4 px) are the ones that would overlap left out.

    Raises:
        PictureError: the size is too small to draw on.
    """
    return place_labels(roll_layout(score, width, height), score)


def place_labels(lay: RollLayout, score: Score) -> list[ChordLabel]:
    changes = score_changes(score)
    if not changes:
        return []
    for rows, size in _LABEL_PLANS:
        placed = _try_plan(lay, changes, rows, px(lay, size), strict=True)
        if placed is not None:
            return placed
    rows, size = _LABEL_PLANS[-1]
    return _try_plan(lay, changes, rows, px(lay, size), strict=False) or []


def _try_plan(lay: RollLayout, changes: list[tuple[float, Chord]], rows: int, size: int,
              strict: bool) -> list[ChordLabel] | None:
    """Labels on ``rows`` rows (taken in turn) at ``size`` px, or None if one does not fit
    (``strict``); not strict, a label that fits in no form is left out."""
    font = get_font(size, "condensed-bold")
    fancy = isinstance(font, ImageFont.FreeTypeFont) and "DejaVu" in (font.getname()[0] or "")
    pad = max(2.0, 6 * lay.scale * size / px(lay, 32))
    xs = [lay.x(beat) for beat, _ in changes]
    row_end = [float("-inf")] * rows
    labels: list[ChordLabel] = []
    for i, (beat, chord) in enumerate(changes):
        texts = dict.fromkeys((chord.name, chord.token, _short_name(chord.token, fancy)))
        ends = {t: xs[i] + 2 * pad + font.getlength(t) for t in texts}
        if strict:  # the rows in turn; the first form that ends before the next change on this row
            row = i % rows
            limit = min(xs[i + rows] if i + rows < len(xs) else lay.width, lay.width)
            text = next((t for t in texts if ends[t] <= limit), None)
            if text is None:
                return None
        else:  # the shortest form, on the first row that is free here, if any
            text = min(ends, key=ends.__getitem__)
            free = [r for r in range(rows) if row_end[r] <= xs[i]]
            if not free or ends[text] > lay.width:
                continue
            row = free[0]
        row_end[row] = ends[text]
        labels.append(ChordLabel(beat, xs[i], chord.name, text, ends[text], row, rows, size, _row_y(lay, row, rows)))
    return labels


def _row_y(lay: RollLayout, row: int, rows: int) -> float:
    """Vertical centre of a row of chord symbols: one row at the full size, or ``rows`` rows
    sharing the band between the chord row's top and the change marks."""
    s = lay.scale
    if rows == 1:
        return lay.chord_top + 22 * s
    top, bottom = lay.chord_top + 2 * s, lay.bars_top - 8 * s
    pitch = (bottom - top) / rows
    return top + pitch * (row + 0.5)


# Short forms of the family suffixes, longest first: with DejaVu's symbols, and in plain ASCII.
_SHORT_FANCY = (("m(maj7)", "-Δ7"), ("maj7", "Δ7"), ("m7b5", "ø7"), ("dim7", "°7"), ("dim", "°"),
                ("aug7", "+7"), ("aug", "+"), ("7sus4", "7sus"), ("sus4", "sus"))
_SHORT_PLAIN = (("m(maj7)", "mM7"), ("maj7", "M7"), ("dim7", "o7"), ("dim", "o"), ("aug7", "+7"),
                ("aug", "+"), ("7sus4", "7sus"), ("sus4", "sus"))


def _short_name(token: str, fancy: bool) -> str:
    """The shortest usual spelling of a reduced chord name: ``Fmaj7`` -> ``FΔ7`` (or ``FM7``)."""
    for long, short in _SHORT_FANCY if fancy else _SHORT_PLAIN:
        if token.endswith(long):
            return token[: -len(long)] + short
    return token
