"""The lead sheet of a clip: what was written (built with every clip, cheaply) and, on demand,
its MusicXML, PNG and PDF.

`written_clip` is called by `engine.compose.composer.Composer.realise`: the melody as composed
(before the band's feel: swing, placement, articulation), the changes the embed lists, the bars,
the form's sections and the key; for a chorale also the alto, tenor and bass, taken from the
arrangement with its fermata holds taken out again. `make_sheet` sets it: MusicXML
(`engine.formats.musicxml`, music21), engraved by Verovio and drawn by cairo (`engine.media.sheet`).
A worker makes the sheet when a member asks for it (the Sheet button), never on a clip's own path.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from engine.band.score import Score
from engine.music.chords import Chord
from engine.music.leadsheet import Note
from engine.music.tokens import GRID
from engine.music.written import Voice, Written, unrolled_sections

LOWER_VOICES = (("alto", 0), ("tenor", 1), ("bass", 1))


@dataclass
class Sheet:
    """A set lead sheet: MusicXML, the PNG (every page, one under the other), the PDF when asked
    for, and how long each step took (seconds)."""

    musicxml: bytes
    png: bytes
    pdf: bytes | None = None
    pages: int = 1
    timings: dict[str, float] = field(default_factory=dict)


def make_sheet(written: Written, pdf: bool = False) -> Sheet:
    """Write, engrave and draw the clip's lead sheet.

    Raises:
        EngineError: music21, Verovio or cairo failed, with one line.
    """
    from engine.formats.musicxml import write_musicxml
    from engine.media.sheet import engrave, to_pdf, to_png

    timings: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        timings[name] = round(now - t, 4)
        t = now

    xml = write_musicxml(written)
    lap("musicxml")
    pages = engrave(xml)
    lap("engrave")
    png = to_png(pages)
    lap("png")
    document = None
    if pdf:
        document = to_pdf(engrave(xml, last_page_fits=False))
        lap("pdf")
    return Sheet(xml, png, document, len(pages), timings)


def written_clip(plan: Any, melody: list[Note], changes: list[tuple[float, Chord]], bars: list[tuple[float, float]],
                 tonic: int, mode: str, score: Score, continued: bool) -> Written:
    """The clip as written (see the module docstring).

    Args:
        plan: the clip's `engine.compose.plan.Plan` (style, tempo, meter, song, seed).
        melody: the composed melody, beats from the top (the final note included).
        changes: the changes as the embed lists them; bars: (start, beats) of every bar, the final one last.
        score: the arrangement (a chorale's lower voices are read from it).
        continued: the clip continues a seed (no form's sections are marked).
    """
    end = bars[-1][0] + bars[-1][1]
    lead = tuple((round(n.onset * GRID) / GRID, min(n.duration, end - n.onset), n.pitch)
                 for n in sorted(melody, key=lambda n: n.onset) if n.onset < end)
    band = plan.style.band_named(plan.req.band)
    voices = [Voice("soprano" if band.chorale else "lead", lead, 0)]
    fermatas: tuple[float, ...] = ()
    if band.chorale:
        voices += _lower_voices(score, band.fermata_beats, end)
        fermatas = tuple(_unshifted_marks(score.fermatas, band.fermata_beats))
    song = plan.song
    sections = ()
    if song is not None and song.form and not continued:
        sections = unrolled_sections(tuple(song.sections), len(song.chorus), len(bars) - 1)
    return Written(title=f"Chorus {plan.req.style} #{plan.seed}", style=plan.req.style, tempo=plan.tempo,
                   meter=tuple(plan.meter), tonic=tonic, mode=mode, bars=len(bars),
                   changes=tuple(sorted(changes, key=lambda c: c[0])), voices=tuple(voices), sections=sections,
                   swing=bool(band.swing), fermatas=fermatas)


def _unshifted_marks(marks: list[float], extra: float) -> list[float]:
    """A chorale's fermata beats as written: each mark was moved later by the holds before it."""
    return [m - extra * k for k, m in enumerate(sorted(marks))]


def _lower_voices(score: Score, extra: float, end: float) -> list[Voice]:
    """Alto, tenor and bass on the written grid: the fermata holds taken out, the players'
    few milliseconds of placement and release rounded away, the final chord cut at the last bar."""
    held = sorted(score.fermatas)[:-1]
    ends = [m + 1 + extra for m in held]  # where each held beat ends, in the arrangement's time

    def written(t: float) -> float:
        return t - extra * sum(1 for e in ends if t >= e - 1e-3)

    out = []
    for name, staff in LOWER_VOICES:
        part = score.part(name)
        if part is None:
            continue
        notes = []
        for n in part.notes:
            on = round(written(n.start) * GRID) / GRID
            off = min(round(written(n.start + n.duration + 0.03) * GRID) / GRID, end)
            if on < end:
                notes.append((on, max(1 / GRID, off - on), n.pitch))
        out.append(Voice(name, tuple(notes), staff))
    return out
