"""The piano-roll picture: a valid PNG of the asked size, the notes where the score puts them."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFont

from engine.band.score import Part, Score, ScoreNote
from engine.media import chord_labels, layout
from engine.media.layout import PictureError, roll_layout
from engine.media.picture import LEAD, PLOT_BG, piano_roll
from engine.music.chords import parse_chord

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
    score = band_score(60, chords_per_bar=4)  # a change every beat for 60 bars: ~6 px a change
    labels = chord_labels.chord_labels(score)
    assert 60 < len(labels) < 240
    for row in range(labels[0].rows):  # on each row, each label ends before the next one starts
        spans = [(lb.x, lb.x1) for lb in labels if lb.row == row]
        assert all(a1 <= b0 for (_, a1), (b0, _) in zip(spans, spans[1:], strict=False))
    assert all(lb.x1 <= roll_layout(score).width for lb in labels)
    assert (labels[0].beat, labels[0].text) == (0.0, "Dm7")


def chart_score(chart: str) -> Score:
    """A 4/4 band score over ``chart`` ("Dm7 | G7 | Cmaj7 Am7 | ..."), one bar per ``|``."""
    bars = [bar.split() for bar in chart.split("|")]
    chords = [(b * 4.0 + i * 4.0 / len(bar), parse_chord(name)) for b, bar in enumerate(bars)
              for i, name in enumerate(bar)]
    base = band_score(len(bars))
    return Score(tempo=120, meter=(4, 4), key="C", bars=base.bars, chords=chords, parts=base.parts, title="Chart")


def test_ii_v_i_labels_each_chord_at_its_own_bar() -> None:
    score = chart_score("Dm7 | G7 | Cmaj7 | Cmaj7")
    labels = chord_labels.chord_labels(score)
    assert [(lb.beat, lb.name) for lb in labels] == [(0.0, "Dm7"), (4.0, "G7"), (8.0, "Cmaj7")]
    assert [lb.text for lb in labels] == ["Dm7", "G7", "Cmaj7"]  # room enough: the full names
    lay = roll_layout(score)
    for lb in labels:  # each starts at its bar and ends before the next change
        assert lb.x == pytest.approx(lay.x(lb.beat))
    assert labels[0].x1 <= lay.x(4.0) and labels[1].x1 <= lay.x(8.0)
    # and the picture writes them there: bright text right after bars 1, 2 and 3, none after bar 4's start
    img = pixels(piano_roll(score)).astype(int)
    strip = img[lay.chord_top:lay.bars_top]
    for bar in range(3):
        x = round(lay.x(bar * 4.0))
        assert (strip[:, x + 4:x + 60].min(axis=-1) > 200).any()
    x = round(lay.x(12.0))
    assert not (strip[:, x + 4:x + 60].min(axis=-1) > 200).any()


BUSY_CHART = " | ".join(["Cmaj7 A7(b9) | Dm7 G7(b9,13) | Em7b5 A7alt | Dm(maj7) Db7(#11)",
                         "Cmaj7 C7 | Fmaj7 Bb7(9) | Em7 Ebdim7 | Dm7 G7sus4 G7"] * 4)


def test_every_change_of_a_busy_32_bar_chart_gets_a_label() -> None:
    score = chart_score(BUSY_CHART)
    assert len(score.bars) == 32
    changes = chord_labels.score_changes(score)
    assert len(changes) > 60
    for width in (1600, 1200, 800):
        labels = chord_labels.chord_labels(score, width=width)
        if width >= 1200:  # every change, at its start
            assert [lb.beat for lb in labels] == [beat for beat, _ in changes]
        else:  # at half size three chords in a bar are ~8 px apart: a few of those may be left out
            assert len(labels) >= 0.9 * len(changes)
        for row in range(labels[0].rows):  # staggered or not, none overlaps the next on its row
            spans = [(lb.x, lb.x1) for lb in labels if lb.row == row]
            assert all(a1 <= b0 for (_, a1), (b0, _) in zip(spans, spans[1:], strict=False))
        assert labels[0].rows > 1  # too dense for one row: staggered
        assert all(lb.text in (lb.name, parse_chord(lb.name).token, chord_labels._short_name(parse_chord(lb.name).token, True),
                               chord_labels._short_name(parse_chord(lb.name).token, False)) for lb in labels)


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
    missing = {style: ("NoSuchFont.ttf",) for style in layout.FONT_FILES}
    layout.get_font.cache_clear()
    monkeypatch.setattr(layout, "FONT_FILES", missing)
    try:
        font = layout.get_font(20)
        assert not isinstance(font, ImageFont.FreeTypeFont) or "DejaVu" not in font.getname()[0]
        with Image.open(io.BytesIO(piano_roll(band_score(4)))) as img:
            assert img.size == (1600, 900)
    finally:
        layout.get_font.cache_clear()


def test_too_small_a_picture_is_refused() -> None:
    with pytest.raises(PictureError, match="100"):
        piano_roll(band_score(), width=100)
    with pytest.raises(PictureError, match="150"):
        piano_roll(band_score(), width=1600, height=150)
