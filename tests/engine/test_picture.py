"""The piano-roll picture: a valid PNG of the asked size, the notes where the score puts them."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from engine import picture
from engine.chords import parse_chord
from engine.picture import LEAD, PLOT_BG, PictureError, piano_roll, roll_layout
from engine.score import Part, Score, ScoreNote

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def band_score(bars: int = 4, lead: list[ScoreNote] | None = None, drums: bool = True,
               chords_per_bar: int = 1) -> Score:
    """A 4/4 score of ``bars`` bars: lead, piano, bass and (optionally) drums, ii-V-I changes."""
    names = ["Dm7", "G7(b9)", "Cmaj7", "A7alt"]
    step = 4 / chords_per_bar
    chords = [(i * step, parse_chord(names[i % len(names)])) for i in range(bars * chords_per_bar)]
    if lead is None:
        lead = [ScoreNote(b * 4 + q, 0.9, 72 + (b + q) % 5, 100) for b in range(bars) for q in range(4)]
    piano = [ScoreNote(b * 4 + h, 1.5, p, 70) for b in range(bars) for h in (0, 2) for p in (60, 64, 67)]
    bass = [ScoreNote(b * 4 + q, 0.95, 40 + q, 90) for b in range(bars) for q in range(4)]
    parts = [Part("lead", 66, 0, lead), Part("piano", 0, 1, piano), Part("bass", 32, 2, bass)]
    if drums:
        kit = [ScoreNote(b * 4 + q, 0.1, p, 100) for b in range(bars) for q in range(4) for p in (36, 42)]
        parts.append(Part("drums", 0, 9, kit))
    return Score(tempo=120, meter=(4, 4), key="C", bars=[(b * 4.0, 4.0) for b in range(bars)],
                 chords=chords, parts=parts, title="Test tune")


def pixels(png: bytes) -> np.ndarray:
    """The image as an (H, W, 3) uint8 array."""
    with Image.open(io.BytesIO(png)) as img:
        return np.asarray(img.convert("RGB"))


def test_png_of_the_asked_width() -> None:
    score = band_score()
    png = piano_roll(score)
    assert png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG"
        assert img.size == (1600, 900)
    with Image.open(io.BytesIO(piano_roll(score, width=800))) as img:
        assert img.size == (800, 450)
    with Image.open(io.BytesIO(piano_roll(score, width=1000, height=700))) as img:
        assert img.size == (1000, 700)


def test_same_score_same_bytes() -> None:
    assert piano_roll(band_score(8)) == piano_roll(band_score(8))


def test_long_lead_note_lands_in_lead_colour() -> None:
    # 4 bars = 16 beats; one loud lead note over beats 4..12 (the middle half), the top pitch.
    lead = [ScoreNote(4.0, 8.0, 79, 127)]
    score = band_score(4, lead=lead)
    img = pixels(piano_roll(score))
    lay = roll_layout(score)
    # Where the layout says: the middle of the note is exactly the lead colour.
    cx, cy = round(lay.x(8.0)), round(lay.y(79) + lay.row_h / 2)
    assert tuple(img[cy, cx]) == LEAD
    # And where a reader would look for it: a box of lead colour in the roll spanning about the
    # middle half of the width, in the upper part of the pitch area.
    roll = img[lay.roll_top:lay.roll_bottom]
    ys, xs = np.nonzero(np.all(roll == LEAD, axis=-1))
    assert xs.size > 0
    assert 0.25 * 1600 < xs.min() < 0.35 * 1600
    assert 0.70 * 1600 < xs.max() < 0.78 * 1600
    assert ys.max() < 0.4 * (lay.roll_bottom - lay.roll_top)


def test_lead_drawn_over_comping() -> None:
    score = band_score(4, lead=[ScoreNote(0.0, 4.0, 64, 127)])  # same pitch as a piano chord tone
    img = pixels(piano_roll(score))
    lay = roll_layout(score)
    assert tuple(img[round(lay.y(64) + lay.row_h / 2), round(lay.x(1.0))]) == LEAD


def test_pitch_axis_fitted_to_the_notes() -> None:
    narrow = band_score(2, lead=[ScoreNote(0, 1, 70, 100)])
    lay = roll_layout(narrow)
    assert lay.lo <= 38 and lay.hi >= 72  # bass 40..43, lead 70, plus the margin
    assert lay.hi - lay.lo < 48
    wide = band_score(2, lead=[ScoreNote(0, 1, 100, 100)])
    assert roll_layout(wide).hi == 102


def test_drums_ticks_in_their_own_lane() -> None:
    score = band_score(4)
    img = pixels(piano_roll(score)).astype(int)
    lay = roll_layout(score)
    assert lay.drum_top is not None and lay.drum_top >= lay.roll_bottom
    lane = img[lay.drum_top:lay.drum_bottom, lay.left + 2:lay.right - 2]
    marked = np.abs(lane - np.array(PLOT_BG)).sum(axis=-1) > 120  # clearly brighter than the lane
    cols = np.nonzero(marked.any(axis=0))[0] + lay.left + 2
    for beat in (1.0, 5.0, 14.0):  # a hit on every beat: a tick at each
        assert np.any(np.abs(cols - lay.x(beat)) <= 3)
    # No drum part: no lane, and the pitch area takes the room.
    plain = roll_layout(band_score(4, drums=False))
    assert plain.drum_top is None and plain.roll_bottom > lay.roll_bottom


def test_chord_symbols_written_along_the_top() -> None:
    score = band_score(4)
    img = pixels(piano_roll(score)).astype(int)
    lay = roll_layout(score)
    strip = img[lay.chord_top:lay.bars_top]
    for bar in range(4):  # a symbol (bright text) right after each bar's start
        x = round(lay.x(bar * 4.0))
        assert (strip[:, x + 4:x + 60].min(axis=-1) > 200).any()


def test_dense_chords_do_not_overlap() -> None:
    score = band_score(60, chords_per_bar=4)  # a change every beat for 60 bars
    lay = roll_layout(score)
    img = Image.new("RGB", (lay.width, lay.height))
    draw = ImageDraw.Draw(img)
    font = picture._font(picture._px(lay, 32), "condensed-bold")
    labels = picture._chord_labels(draw, lay, score, font)
    assert 5 < len(labels) < 60
    spans = [(x, x + draw.textlength(text, font=font)) for x, text in labels]
    assert all(a1 < b0 for (_, a1), (b0, _) in zip(spans, spans[1:], strict=False))
    assert all(x1 <= lay.width for _, x1 in spans)
    assert labels[0] == (lay.x(0.0), "Dm7")


def test_empty_score_still_a_picture() -> None:
    empty = Score(tempo=120, meter=(4, 4), key="C", bars=[], chords=[], parts=[])
    silent = Score(tempo=90, meter=(3, 4), key="Am", bars=[(0.0, 3.0), (3.0, 3.0)], chords=[],
                   parts=[Part("lead", 66, 0), Part("drums", 0, 9)])
    for score in (empty, silent):
        png = piano_roll(score)
        with Image.open(io.BytesIO(png)) as img:
            img.load()
            assert img.size == (1600, 900)


def test_long_clip_stays_small() -> None:
    png = piano_roll(band_score(180, chords_per_bar=2))  # 6 minutes at 120 bpm
    assert len(png) < 1_000_000
    with Image.open(io.BytesIO(png)) as img:
        assert img.width == 1600


def test_draws_without_the_dejavu_fonts(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = {style: ("NoSuchFont.ttf",) for style in picture._FONT_FILES}
    picture._font.cache_clear()
    monkeypatch.setattr(picture, "_FONT_FILES", missing)
    try:
        font = picture._font(20)
        assert not isinstance(font, ImageFont.FreeTypeFont) or "DejaVu" not in font.getname()[0]
        with Image.open(io.BytesIO(piano_roll(band_score(4)))) as img:
            assert img.size == (1600, 900)
    finally:
        picture._font.cache_clear()


def test_too_small_a_picture_is_refused() -> None:
    with pytest.raises(PictureError, match="100"):
        piano_roll(band_score(), width=100)
    with pytest.raises(PictureError, match="150"):
        piano_roll(band_score(), width=1600, height=150)
