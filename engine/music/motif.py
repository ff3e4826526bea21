"""Melodic form: tunes that come back, solos that restate their ideas.

The melody model writes every bar afresh; this pass gives the line the shape of the song plan's
sections (`engine.compose.song.SongPlan.sections`), unrolled over the clip's choruses:

* ``strains`` (folk): a section that repeats an earlier one replays its notes, bar for bar, except
  its last ``ending_bars`` (the second ending, as the model wrote it); a later chorus replays the
  first chorus whole. English tunes play AABB this way.
* ``motifs`` (jazz): a repeated section opens by restating the first few notes of the section it
  repeats (``motif_notes`` of them, at most ``motif_bars`` long), as improvisers restate and
  develop their ideas; the rest stays improvised.

Copies stay on the grid of the original, so the same notes land on the same chords.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from engine.music.leadsheet import Note


@dataclass(frozen=True)
class MelodicForm:
    kind: str = "motifs"  # "motifs", "strains" or "none"
    ending_bars: int = 1
    motif_notes: tuple[int, int] = (6, 8)
    motif_bars: float = 1.5
    restate_share: float = 0.8


def _unrolled(sections, chorus_bars: int, total_bars: int):
    """(source bar, destination bar, bars, is a later chorus) for each repeated section."""
    first: dict[str, int] = {}
    for label, _occ, start, _bars in sections:
        first.setdefault(label, start)
    out = []
    for k in range(0, max(1, -(-total_bars // max(chorus_bars, 1)))):
        for label, occ, start, bars in sections:
            dst = k * chorus_bars + start
            if dst >= total_bars:
                break
            if k > 0:
                out.append((start, dst, bars, True))
            elif occ > 0:
                out.append((first[label], dst, bars, False))
    return out


def _splice(melody: list[Note], copied: list[Note], lo: float, hi: float) -> list[Note]:
    """Replace the notes struck in [lo, hi) beats by ``copied``; a note running into the span is cut."""
    kept = []
    for n in melody:
        if lo <= n.onset < hi:
            continue
        if n.onset < lo < n.onset + n.duration:
            n = Note(n.onset, max(lo - n.onset, 1 / 12), n.pitch, n.velocity)
        kept.append(n)
    clipped = [Note(n.onset, min(n.duration, hi - n.onset), n.pitch, n.velocity) for n in copied if n.onset < hi]
    return sorted(kept + clipped, key=lambda n: n.onset)


def shape_melody(melody: list[Note], sections, chorus_bars: int, total_bars: int, bar_beats: float,
                 form: MelodicForm, seed: int) -> list[Note]:
    """The melody with the sections' repeats applied (see the module docstring).

    Args:
        melody: notes in beats from the clip's first bar.
        sections: (label, occurrence, first bar, bars) per section of one chorus.
        chorus_bars: bars in a chorus; total_bars: bars of new music in the clip.
        bar_beats: beats per bar.
    """
    if form.kind == "none" or not sections:
        return melody
    rnd = random.Random(seed)
    for src, dst, bars, later in _unrolled(sections, chorus_bars, total_bars):
        shift = (dst - src) * bar_beats
        if form.kind == "strains":
            length = bars if later else bars - form.ending_bars
            lo, hi = src * bar_beats, (src + length) * bar_beats
        else:
            if rnd.random() >= form.restate_share:
                continue
            lo = src * bar_beats
            notes = sorted((n for n in melody if n.onset >= lo), key=lambda n: n.onset)
            count = rnd.randint(*form.motif_notes)
            if len(notes) <= count:
                continue
            hi = min(notes[count].onset, lo + form.motif_bars * bar_beats)
        copied = [Note(n.onset + shift, n.duration, n.pitch, n.velocity) for n in melody if lo <= n.onset < hi]
        if copied:
            melody = _splice(melody, copied, lo + shift, hi + shift)
    return melody
