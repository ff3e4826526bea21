"""A picture of the notes: a piano roll of the whole band as a PNG, readable at chat size.

Time runs left to right over the whole clip, pitch bottom to top (fitted to the notes), one
colour per part with the lead brightest and on top; drums are ticks in their own lane at the
bottom. Chord symbols run along the top, bar numbers under them, a title line and a legend head
the picture. Sizes scale with the width; at the default 1600 px the chord symbols are ~32 px so
they still read when Discord shrinks the image to ~550 px. Dark theme (Discord's default).

Only Pillow is used (no matplotlib, whose import alone costs more): a 120 s, 4-part clip
(~1,800 notes) draws and encodes in about 0.1 s.
"""
from __future__ import annotations

import io
import logging

from PIL import Image, ImageDraw

from engine.band.score import Part, Score
from engine.media.layout import RollLayout, get_font, px, roll_layout

log = logging.getLogger(__name__)

Colour = tuple[int, int, int]

BG: Colour = (24, 25, 30)  # header, margins
PLOT_BG: Colour = (34, 36, 44)  # the roll and the drum lane
BLACK_KEY_BG: Colour = (29, 31, 38)  # rows of the black keys, a shade darker
C_GUIDE: Colour = (78, 83, 100)
BAR_LINE: Colour = (50, 53, 64)
BAR_LINE_STRONG: Colour = (96, 102, 122)  # every 4 bars
TEXT: Colour = (238, 240, 245)
MUTED: Colour = (150, 155, 172)
LEAD: Colour = (255, 190, 40)  # amber: the lead at full velocity is exactly this colour
BASS: Colour = (64, 196, 156)
COMPING: tuple[Colour, ...] = ((104, 150, 255), (196, 124, 255), (255, 122, 150), (150, 204, 84))
DRUMS: Colour = (214, 216, 228)

LEAD_ALPHA, COMP_ALPHA, BASS_ALPHA = 255, 150, 190  # base opacity by role (0-255)
BLACK_KEYS = frozenset({1, 3, 6, 8, 10})
def piano_roll(score: Score, width: int = 1600, height: int | None = None) -> bytes:
    """Draw ``score`` as a piano roll.

    Args:
        score: the clip; an empty one (no notes, no bars) still draws an empty frame.
        width: image width in pixels (at least 320).
        height: image height in pixels; ``None`` gives 9/16 of the width.

    Returns:
        PNG bytes, the same bytes for the same score and size.

    Raises:
        PictureError: the size is too small to draw on.
    """
    lay = roll_layout(score, width, height)
    img = Image.new("RGB", (lay.width, lay.height), BG)
    draw = ImageDraw.Draw(img, "RGBA")
    _draw_grid(draw, lay)
    _draw_bars(draw, lay, score)
    _draw_notes(draw, lay, score)
    _draw_drums(draw, lay, score)
    _draw_chords(draw, lay, score)
    _draw_header(draw, lay, score)
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=6)
    return out.getvalue()


def _draw_grid(draw: ImageDraw.ImageDraw, lay: RollLayout) -> None:
    """Plot background, black-key rows, a guide and a label at every C."""
    draw.rectangle((lay.left, lay.roll_top, lay.right, lay.roll_bottom - 1), fill=PLOT_BG)
    if lay.drum_top is not None:
        draw.rectangle((lay.left, lay.drum_top, lay.right, lay.drum_bottom - 1), fill=PLOT_BG)
        font = get_font(px(lay, 18))
        draw.text((lay.left - round(8 * lay.scale), (lay.drum_top + lay.drum_bottom) / 2), "drums",
                  font=font, fill=MUTED, anchor="rm")
    row_h = lay.row_h
    for pitch in range(lay.lo, lay.hi + 1):
        if pitch % 12 in BLACK_KEYS and row_h >= 3:
            y = lay.y(pitch)
            draw.rectangle((lay.left, round(y), lay.right, round(y + row_h) - 1), fill=BLACK_KEY_BG)
    font = get_font(px(lay, 20))
    for pitch in range(lay.lo, lay.hi + 1):
        if pitch % 12 == 0:
            y = round(lay.y(pitch) + row_h) - 1  # the C row's bottom edge
            draw.line((lay.left, y, lay.right, y), fill=C_GUIDE, width=1)
            draw.text((lay.left - round(8 * lay.scale), y - row_h / 2), f"C{pitch // 12 - 1}",
                      font=font, fill=MUTED, anchor="rm")


def _bar_step(lay: RollLayout, score: Score, label_w: float) -> int:
    """Number bars every 1, 2, 4, 8... bars so that the numbers do not collide."""
    if not score.bars:
        return 1
    bar_px = min(lay.x(length) - lay.x(0) for _, length in score.bars)
    step = 1
    while step * bar_px < label_w and step < len(score.bars):
        step *= 2
    return step


def _draw_bars(draw: ImageDraw.ImageDraw, lay: RollLayout, score: Score) -> None:
    """Bar lines through the roll and the drum lane (strong every 4 bars) and bar numbers."""
    font = get_font(px(lay, 20))
    bottom = lay.drum_bottom if lay.drum_bottom is not None else lay.roll_bottom
    step = _bar_step(lay, score, draw.textlength(str(len(score.bars)), font=font) + 14 * lay.scale)
    xs = [round(lay.x(start)) for start, _ in score.bars]
    for i, x in enumerate(xs):
        strong = i % 4 == 0
        if not strong and x - xs[i - 1] < 12 * lay.scale:
            continue  # bars this narrow would turn into a haze: only every 4th line is drawn
        wide = i < 4 or x - xs[i - 4] >= 60 * lay.scale
        top = lay.bars_top if i % step == 0 else lay.roll_top
        draw.line((x, top, x, bottom - 1), fill=BAR_LINE_STRONG if strong else BAR_LINE,
                  width=2 if strong and wide else 1)
        if i % step == 0:
            draw.text((x + 4 * lay.scale, lay.bars_top + 2 * lay.scale), str(i + 1),
                      font=font, fill=MUTED, anchor="lt")


def _part_styles(parts: list[Part]) -> list[tuple[Part, Colour, int]]:
    """(part, colour, base alpha) for the pitched parts, in drawing order: the lead last."""
    pitched = [p for p in parts if not p.is_drums]
    styles: list[tuple[Part, Colour, int]] = []
    comp = 0
    for i, part in enumerate(pitched):
        if i == 0:
            continue  # the lead: appended last so it is drawn on top
        if "bass" in part.name.lower() or 32 <= part.program <= 39:  # GM basses
            styles.append((part, BASS, BASS_ALPHA))
        else:
            styles.append((part, COMPING[comp % len(COMPING)], COMP_ALPHA))
            comp += 1
    if pitched:
        styles.append((pitched[0], LEAD, LEAD_ALPHA))
    return styles


def _draw_notes(draw: ImageDraw.ImageDraw, lay: RollLayout, score: Score) -> None:
    """Every pitched note as a bar; velocity sets opacity (comping, bass) or brightness (lead)."""
    row_h = lay.row_h
    gap = 1 if row_h >= 5 else 0
    for part, colour, alpha in _part_styles(score.parts):
        lead = alpha == LEAD_ALPHA
        outline = PLOT_BG if lead and row_h >= 6 else None
        for n in part.notes:
            if not lay.lo <= n.pitch <= lay.hi:
                continue
            v = min(max(n.velocity, 1), 127) / 127
            x0 = lay.x(n.start)
            x1 = max(x0 + 2, lay.x(n.start + n.duration) - 1)
            y0 = lay.y(n.pitch)
            box = (round(x0), round(y0), round(x1) - 1, round(y0 + row_h) - 1 - gap)
            if lead:
                fill = _mix(PLOT_BG, colour, 0.55 + 0.45 * v) + (255,)
            else:
                fill = colour + (round(alpha * (0.5 + 0.5 * v)),)
            draw.rectangle(box, fill=fill, outline=outline if box[2] - box[0] >= 4 else None)


def _mix(a: Colour, b: Colour, t: float) -> Colour:
    """``a`` blended towards ``b`` by ``t`` (0..1)."""
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t),
            round(a[2] + (b[2] - a[2]) * t))


def _drum_row(pitch: int) -> int:
    """Sub-row of the drum lane: 0 cymbals and hi-hats, 1 snare, toms and the rest, 2 kick."""
    if pitch in (35, 36):
        return 2
    if pitch in (42, 44, 46, 49, 51, 52, 53, 55, 57, 59):
        return 0
    return 1


def _draw_drums(draw: ImageDraw.ImageDraw, lay: RollLayout, score: Score) -> None:
    """Drum hits as ticks in the drum lane, one sub-row per kind; taller for louder hits."""
    if lay.drum_top is None or lay.drum_bottom is None:
        return
    sub_h = (lay.drum_bottom - lay.drum_top) / 3
    w = max(2, round(2 * lay.scale))
    for part in score.parts:
        if not part.is_drums:
            continue
        for n in part.notes:
            v = min(max(n.velocity, 1), 127) / 127
            x = round(lay.x(n.start))
            base = lay.drum_top + (_drum_row(n.pitch) + 1) * sub_h - 2
            top = base - (sub_h - 4) * (0.35 + 0.65 * v)
            draw.rectangle((x, round(top), x + w - 1, round(base)), fill=_mix(PLOT_BG, DRUMS, 0.5 + 0.5 * v))


def _draw_chords(draw: ImageDraw.ImageDraw, lay: RollLayout, score: Score) -> None:
    """Chord symbols along the top at their beats (see `chord_labels`), a mark at every change."""
    s = lay.scale
    line_w = max(1, round(2 * s))
    last = -1e9
    from engine.media.chord_labels import place_labels, score_changes

    for beat, _ in score_changes(score):  # a short mark at every change, labelled or not
        x = round(lay.x(beat))
        if x - last >= 6 * s:
            draw.line((x, lay.bars_top - 7 * s, x, lay.bars_top - 1), fill=BAR_LINE_STRONG, width=line_w)
            last = x
    for label in place_labels(lay, score):
        x = round(label.x)
        if label.rows == 1:  # down to the change mark
            draw.line((x, lay.chord_top + 4 * s, x, lay.bars_top - 1), fill=BAR_LINE_STRONG, width=line_w)
        else:  # staggered: beside its own text only, so it never crosses a label on the rows under it
            draw.line((x, label.y - label.size / 2, x, label.y + label.size / 2), fill=BAR_LINE_STRONG, width=line_w)
        pad = 6 * s * label.size / px(lay, 32)
        draw.text((label.x + max(2.0, pad), label.y), label.text, font=get_font(label.size, "condensed-bold"),
                  fill=TEXT, anchor="lm")


def _key_text(key: str) -> str:
    """``"Bbm"`` -> ``"Bb minor"``, ``"C"`` -> ``"C major"``."""
    return f"{key[:-1]} minor" if key.endswith("m") else f"{key} major" if key else ""


def _draw_header(draw: ImageDraw.ImageDraw, lay: RollLayout, score: Score) -> None:
    """The legend on the right, the title line (title, tempo, meter, key, length) left of it.

    A long title is cut short and facts that do not fit are left out, so nothing overlaps.
    """
    s = lay.scale
    mid = lay.chord_top / 2 + 2 * s
    room = _draw_legend(draw, lay, score, mid) - 24 * s
    title_font, info_font = get_font(px(lay, 34), "bold"), get_font(px(lay, 26))
    secs = round(score.seconds) if score.tempo > 0 else 0
    info = [f"{score.tempo:g} bpm", f"{score.meter[0]}/{score.meter[1]}", _key_text(score.key),
            f"{secs // 60}:{secs % 60:02d}"]
    facts = [(f, draw.textlength(f, font=info_font)) for f in info if f]
    title_room = max(room - sum(w + 24 * s for _, w in facts), lay.left + 0.4 * (room - lay.left))
    title = score.title
    while title and lay.left + draw.textlength(title, font=title_font) > title_room:
        title = title[:-2] + "…" if len(title) > 2 else ""
    draw.text((lay.left, mid), title, font=title_font, fill=TEXT, anchor="lm")
    x = lay.left + draw.textlength(title, font=title_font) + 18 * s
    for fact, w in facts:
        if x + w > room:
            break
        draw.text((x, mid), fact, font=info_font, fill=MUTED, anchor="lm")
        x += w + 24 * s


def _draw_legend(draw: ImageDraw.ImageDraw, lay: RollLayout, score: Score, mid: float) -> float:
    """A swatch and the name of each part, right-aligned; returns the legend's left x."""
    s = lay.scale
    font = get_font(px(lay, 24))
    sw = round(20 * s)  # swatch size
    items = [(p.name, c) for p, c in _legend(score.parts)]
    x = lay.right - sum(sw + 30 * s + draw.textlength(n, font=font) for n, _ in items) + 22 * s
    left = x
    for name, colour in items:
        draw.rounded_rectangle((round(x), round(mid - sw / 2), round(x) + sw, round(mid + sw / 2)),
                               radius=max(1, round(4 * s)), fill=colour)
        x += sw + 8 * s
        draw.text((x, mid), name, font=font, fill=TEXT, anchor="lm")
        x += draw.textlength(name, font=font) + 22 * s
    return left


def _legend(parts: list[Part]) -> list[tuple[Part, Colour]]:
    """Parts with notes, in score order, with the colour they are drawn in."""
    colours = {id(p): c for p, c, _ in _part_styles(parts)}
    return [(p, colours.get(id(p), DRUMS)) for p in parts if p.notes]
