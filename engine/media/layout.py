"""Where a piano roll's parts go: the layout of the picture at a size, and its fonts.

`roll_layout` places the header, the chord and bar lines, the roll and the drum lane for a
score; `get_font` and `px` give the text its face and its size at that width. The picture
(`engine.media.picture`) and its chord labels (`engine.media.chord_labels`) both draw on it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from PIL import ImageFont

from engine.band.score import Score
from engine.errors import EngineError

log = logging.getLogger(__name__)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

MIN_PITCH_SPAN = 24  # semitones shown at least, so a narrow clip does not draw fat bricks
PITCH_MARGIN = 2  # semitones above the highest and below the lowest note
FONT_DIR = "/usr/share/fonts/truetype/dejavu/"
FONT_FILES = {  # style -> files to try, by name (FreeType's search path) then by path
    "regular": ("DejaVuSans.ttf",),
    "bold": ("DejaVuSans-Bold.ttf",),
    "condensed-bold": ("DejaVuSansCondensed-Bold.ttf", "DejaVuSans-Bold.ttf"),
}



class PictureError(EngineError, ValueError):
    """The picture cannot be drawn at the size asked for."""


@dataclass(frozen=True)
class RollLayout:
    """Where everything goes, in pixels (y grows downwards).

    Attributes:
        width, height: image size.
        scale: width / 1600, the factor every font and band height is multiplied by.
        left, right: x of the plot's edges (time axis).
        chord_top, bars_top, roll_top, roll_bottom: y of the chord row, the bar-number row and
            the pitch area.
        drum_top, drum_bottom: y of the drum lane, or None when the score has no drum part.
        lo, hi: lowest and highest MIDI pitch shown.
        beats: length of the time axis in beats.
    """

    width: int
    height: int
    scale: float
    left: int
    right: int
    chord_top: int
    bars_top: int
    roll_top: int
    roll_bottom: int
    drum_top: int | None
    drum_bottom: int | None
    lo: int
    hi: int
    beats: float

    @property
    def row_h(self) -> float:
        """Height of one semitone in pixels."""
        return (self.roll_bottom - self.roll_top) / (self.hi - self.lo + 1)

    def x(self, beat: float) -> float:
        """x of a time in beats."""
        return self.left + (self.right - self.left) * beat / self.beats

    def y(self, pitch: float) -> float:
        """y of the top edge of a pitch's row."""
        return self.roll_top + (self.hi - pitch) * self.row_h


def roll_layout(score: Score, width: int = 1600, height: int | None = None) -> RollLayout:
    """Place the bands of the picture for ``score`` at this size (see `RollLayout`).

    Raises:
        PictureError: ``width`` below 320, or a height that leaves no room for the roll.
    """
    if width < 320:
        raise PictureError(f"picture width must be at least 320 px, got {width!r}")
    height = round(width * 9 / 16) if height is None else height
    s = width / 1600
    chord_top = round(60 * s)
    bars_top = chord_top + round(48 * s)
    roll_top = bars_top + round(28 * s)
    has_drums = any(p.is_drums and p.notes for p in score.parts)
    drum_h = round(66 * s) if has_drums else 0
    bottom = height - round(12 * s)
    roll_bottom = bottom - (drum_h + round(10 * s) if has_drums else 0)
    if roll_bottom - roll_top < 60:
        raise PictureError(f"picture height {height!r} leaves no room for the roll at width {width}")
    lo, hi = _pitch_range(score)
    return RollLayout(
        width=width, height=height, scale=s, left=max(round(72 * s), 46), right=width - round(20 * s),
        chord_top=chord_top, bars_top=bars_top, roll_top=roll_top, roll_bottom=roll_bottom,
        drum_top=bottom - drum_h if has_drums else None, drum_bottom=bottom if has_drums else None,
        lo=lo, hi=hi, beats=_total_beats(score))


def _total_beats(score: Score) -> float:
    """The clip's length in beats: to the end of its last bar, note or chord change."""
    ends = [n.start + n.duration for p in score.parts for n in p.notes]
    ends += [beat for beat, _ in score.chords]
    return max([score.beats, 1.0, *ends])


def _pitch_range(score: Score) -> tuple[int, int]:
    """Lowest and highest pitch to show: the pitched notes plus a margin, at least two octaves."""
    pitches = [n.pitch for p in score.parts if not p.is_drums for n in p.notes]
    lo, hi = (min(pitches), max(pitches)) if pitches else (60, 60)
    lo, hi = lo - PITCH_MARGIN, hi + PITCH_MARGIN
    if hi - lo + 1 < MIN_PITCH_SPAN:
        grow = MIN_PITCH_SPAN - (hi - lo + 1)
        lo, hi = lo - grow // 2, hi + grow - grow // 2
    return max(0, lo), min(127, hi)


@lru_cache(maxsize=32)
def get_font(size: int, style: str = "regular") -> Font:
    """DejaVu Sans at ``size`` px if it can be found, else Pillow's own font (never fails)."""
    for name in FONT_FILES[style] + FONT_FILES["regular"]:
        for path in (name, FONT_DIR + name):
            try:
                return ImageFont.truetype(path, size)
            except OSError:
                continue
    log.debug("no DejaVu font found, drawing %s px text in Pillow's default font", size)
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1, or no FreeType: a fixed-size bitmap font
        return ImageFont.load_default()


def px(lay: RollLayout, size: float) -> int:
    """A font size in pixels at this width (never below 10)."""
    return max(10, round(size * lay.scale))
