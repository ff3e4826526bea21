"""Continuing a seed: its chords, its key, and where in a form it stops.

A continuation goes on from the seed's own harmony. `seed_bars` reads the seed's chords per bar
(its chord markers, as Chorus's own clips carry them, else the chords inferred when it was read),
`seed_key` estimates its key from those chords and its melody. `plan_continuation` then decides the
changes the continuation plays: the changes a clip was made over when they are given (the Continue
button), lined up with where the seed stops in them (`align`), so the next chorus comes round at
the right bar; otherwise one chorus that the style's harmony model writes in the seed's key,
primed with the seed's last bars.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from engine.compose.song import Bars, SongPlan, plan_song
from engine.music.chords import Chord
from engine.music.keys import estimate_key
from engine.music.leadsheet import LeadSheet, Note

# The seed's last bars the harmony model hears before it writes: its chord markers (exact) up to 8;
# chords inferred from the notes only in its last bar (measured on 6 held-out solos, a longer
# guess made the model copy the guesses' long dominant blocks: ii-V per 8 bars 2.5 with 1 bar,
# 0.46 with 2, 0.63 with 8)
PRIME_BARS, PRIME_INFERRED_BARS = 8, 1
MIN_MATCH = 0.75  # share of the seed's last bars that must match given changes to place it in them
# A seed whose changes come round again after this many bars is played in that form: the length,
# the form's name (None: a tune of that length), and how alike its choruses must be
CHORUS_LENGTHS = ((12, "blues"), (16, None), (32, None))
MIN_REPEAT = 0.7


@dataclass(frozen=True)
class Continuation:
    """The changes a continuation plays, from its first new bar (the chorus turned to start there)."""

    song: SongPlan
    bar: int  # the bar of the chorus (0-based) the continuation starts at
    changes: Bars  # ``song.chorus`` from ``bar`` on, then round to its start


def seed_bars(sheet: LeadSheet) -> Bars:
    """The seed's chords per bar (a bar with no change keeps the chord sounding before it)."""
    out: list[tuple[Chord, ...]] = []
    for m in sheet.measures:
        chords = tuple(span.chord for span in m.chords if not span.chord.is_nc)
        out.append(chords or (out[-1][-1:] if out else ()))
    return tuple(out)


def seed_key(sheet: LeadSheet) -> tuple[int, str]:
    """(tonic pitch class, mode) of the whole seed: the key its file declares (a MIDI key
    signature), else estimated from its chords and melody. A declared C major is taken for the
    default many programs write and estimated too, as is a signature that does not read as a key."""
    declared = _declared_key(sheet.key)
    if declared is not None and declared != (0, "major"):
        return declared
    melody, changes, t = [], [], 0.0
    for m in sheet.measures:
        melody += [Note(t + n.onset, n.duration, n.pitch) for n in m.notes]
        changes += [(t + span.onset, span.chord) for span in m.chords]
        t += m.beats
    return estimate_key(melody, changes, t)


def _declared_key(text: str | None) -> tuple[int, str] | None:
    from engine.music.forms import FormError, parse_key_name

    try:
        return parse_key_name(text) if text else None
    except FormError:
        return None


def _same(a: tuple[Chord, ...], b: tuple[Chord, ...]) -> float:
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    return 0.5 if a[0].root == b[0].root else 0.0


def align(seed: Bars, chorus: Bars) -> tuple[int, float]:
    """(bar of ``chorus`` that follows the seed's last bar, share of the seed's last bars that
    match the chorus there). A clip's last bar or two may be its closing tonic chord, held, not a
    bar of the form; each reading is tried, the fewest bars left out winning a tie."""
    n = len(chorus)
    if not n or not seed:
        return 0, 0.0
    best = (0, 0.0)
    for drop in (0, 1, 2):  # the last bars left out as a closing chord
        heard = seed[:len(seed) - drop] if drop < len(seed) else ()
        window = heard[-n:]
        if not window:
            continue
        for offset in range(n):
            score = sum(_same(window[-1 - j], chorus[(offset - 1 - j) % n]) for j in range(len(window))) / len(window)
            if score > best[1] + 1e-9:
                best = (offset, score)
    return best


def plan_continuation(harmony, harmony_meta: dict, rnd: random.Random, seed: int, meter: tuple[int, int],
                      forms: tuple[str, ...], sheet: LeadSheet, given: Bars | None = None,
                      form: str | None = None, key: tuple[int, str] | None = None,
                      era: str = "") -> Continuation:
    """The changes of a continuation of ``sheet`` (see the module docstring).

    Args:
        harmony: the style's harmony model.
        given: one chorus of the changes the seed was played over (a clip's), if known.
        form: that chorus's form's name, or the form to write.
        key: the key of those changes, else the seed's estimated key.
    """
    heard = seed_bars(sheet)
    tonic, mode = key or seed_key(sheet)
    found = None if given else repeating_chorus(heard)
    if found is not None:  # the seed's own changes come round: play them again from where it stops
        given, form = found
    if given:
        offset, score = align(heard, given)
        song = SongPlan(tonic, mode, form, tuple(given), fixed_key=True)
        bar = offset if score >= MIN_MATCH else 0
    else:
        song = plan_song(harmony, harmony_meta, rnd, seed, meter, forms, form=form, key=(tonic, mode), era=era,
                         prefix=_last(heard, PRIME_BARS if sheet.meta.get("chords") == "markers" else PRIME_INFERRED_BARS))
        bar = 0
    return Continuation(song, bar, tuple(song.chorus[bar:]) + tuple(song.chorus[:bar]))


def repeating_chorus(heard: Bars) -> tuple[Bars, str | None] | None:
    """(one chorus of the seed's changes, its form's name) when they come round again after one of
    `CHORUS_LENGTHS` bars (the shortest that does), taken from the seed's last whole chorus
    counted from its first bar; None when they do not (or the seed is under a chorus and a half)."""
    heard = tuple(b for b in heard)
    while heard and not heard[-1]:
        heard = heard[:-1]
    for length, name in CHORUS_LENGTHS:
        if len(heard) < length * 3 // 2:
            continue
        alike = sum(_same(heard[i], heard[i - length]) for i in range(length, len(heard))) / (len(heard) - length)
        if alike >= MIN_REPEAT:
            top = (len(heard) // length - 1) * length
            return heard[top:top + length], name
    return None


def _last(bars: Sequence[tuple[Chord, ...]], n: int) -> Bars:
    return tuple(b for b in bars if b)[-n:]
