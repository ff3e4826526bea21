"""A chorale band: the melody as the soprano, alto, tenor and bass by the voice-leading search.

`engine.band.arrange.Arranger` hands a band whose comping is ``"chorale"`` (`engine.band.styles.Band.chorale`)
to `chorale_parts`. Each beat's soprano is the melody note sounding at its onset and its chord the
one sounding there; `engine.band.voicelead.voice_chorale` writes the lower voices beat by beat, and a
voice that keeps its pitch over successive beats holds one note. The phrase ends (`phrase_ends`)
are the cadences of each phrase of ``band.phrase_bars`` bars, and a phrase whose chords make no
cadence gets one where its soprano allows (`cadence_plan`); every one is held under a fermata
(`hold_fermatas`: ``band.fermata_beats`` more beats there, everything after it later by as much).
The final chord is held by all four voices.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from engine.band.chorale import is_cadence
from engine.band.score import Part, ScoreNote, chord_at
from engine.band.styles import Band
from engine.band.voicelead import voice_chorale
from engine.music.chords import Chord, chord_tones
from engine.music.leadsheet import Note

VOICE_PARTS = ("lead", "alto", "tenor", "bass")  # part names of soprano, alto, tenor, bass
REQUEST_PART = {"lead": "lead", "alto": "comping", "tenor": "comping", "bass": "bass"}  # what --parts calls them
CHANNELS = (0, 1, 3, 2)
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


@dataclass
class ChoraleParts:
    """The chorale's parts (soprano first; those asked for), its bars and chords after the
    fermatas, and the fermata beats (where each held phrase end starts)."""

    parts: list[Part]
    bars: list[tuple[float, float]]
    chords: list[tuple[float, Chord]]
    fermatas: list[float]


def tonic_of(midi_key: str) -> int:
    """The tonic pitch class of a key as mido spells it (``"Bb"``, ``"F#m"``)."""
    pc = _LETTERS[midi_key[0]]
    if len(midi_key) > 1 and midi_key[1] in "#b":
        pc += 1 if midi_key[1] == "#" else -1
    return pc % 12


def _chord_at(changes: Sequence[tuple[float, Chord]], beat: float) -> Chord | None:
    return chord_at(changes, beat, tolerance=1e-6)  # beats are whole here; the arranger's lookup, looser


def soprano_beats(melody: Sequence[Note], beats: int) -> list[int | None]:
    """The melody's pitch at each beat's onset (the note struck there or held over it; None in a rest)."""
    notes = sorted(melody, key=lambda n: n.onset)
    out: list[int | None] = []
    for b in range(beats):
        here = [n for n in notes if n.onset - 1e-6 <= b < n.onset + n.duration - 1e-6]
        out.append(max(here, key=lambda n: n.onset).pitch if here else None)
    return out


def phrase_ends(chords: Sequence[Chord | None], struck: Sequence[bool], bar_beats: float, bars: int,
                phrase_bars: int, tonic: int) -> list[int]:
    """The beat of each phrase's end: in the last bar of every ``phrase_bars`` bars (not counting
    the final bar), the latest beat but the bar's last where a new chord arrives as a cadence
    (`engine.band.chorale.is_cadence`) with the soprano struck; else the latest beat but the last where
    the soprano is struck; the final bar's downbeat ends the piece."""
    per = int(round(bar_beats))
    out = []
    for end_bar in range(phrase_bars - 1, bars - 1, phrase_bars):
        start = end_bar * per
        window = list(range(start, start + max(1, per - 1)))

        def cadence(b: int) -> bool:
            prev = next((chords[k] for k in range(b - 1, -1, -1) if chords[k] != chords[b]), None)
            return chords[b] != chords[b - 1] and is_cadence(prev, chords[b], tonic)

        pick = next((b for b in reversed(window) if struck[b] and cadence(b)), None)
        if pick is None:
            pick = next((b for b in reversed(window) if struck[b]), window[-1])
        out.append(pick)
    if bars:
        out.append((bars - 1) * per)
    return out


def cadence_pairs(tonic: int, minor: bool) -> list[tuple[Chord, Chord]]:
    """The cadences a phrase end may be rewritten to, in order of preference: V-I, IV-I, I-V,
    IV-V, vii°-I and (major) ii-V."""
    i_ = Chord(tonic, "min" if minor else "maj")
    v_ = Chord((tonic + 7) % 12, "maj")
    iv = Chord((tonic + 5) % 12, "min" if minor else "maj")
    pairs = [(v_, i_), (iv, i_), (i_, v_), (iv, v_), (Chord((tonic + 11) % 12, "dim"), i_)]
    return pairs if minor else [*pairs, (Chord((tonic + 2) % 12, "min"), v_)]


def _fits(pitch: int | None, chord: Chord) -> bool:
    return pitch is None or pitch % 12 in chord_tones(chord.root, chord.family)


def cadence_plan(chords: list[Chord], soprano: Sequence[int | None], struck: Sequence[bool], bar_beats: float,
                 bars: int, phrase_bars: int, tonic: int, minor: bool) -> tuple[list[int], list[Chord]]:
    """The phrase ends (`phrase_ends`) and the chords per beat with every phrase end a cadence.

    Where the chords give a phrase no cadence, its last bar's latest struck beat but the last
    whose soprano fits one of `cadence_pairs` (its note and the beat before's chord tones), or
    fits V after the chord it had (a half cadence), gets that cadence; where none fits, the
    phrase ends as it was. The final chord is approached by
    V (or IV) where the soprano lets it.
    """
    chords = list(chords)
    ends = phrase_ends(chords, struck, bar_beats, bars, phrase_bars, tonic)
    per = int(round(bar_beats))
    pairs = cadence_pairs(tonic, minor)
    for k, e in enumerate(ends):
        if e == 0:
            continue
        prev = next((chords[j] for j in range(e - 1, -1, -1) if chords[j] != chords[e]), None)
        if is_cadence(prev, chords[e], tonic) and chords[e] != chords[e - 1]:
            continue
        final = k == len(ends) - 1
        start = (e // per) * per
        window = [e] if final else [b for b in range(start + max(1, per - 1) - 1, start - 1, -1) if struck[b]]
        for b in window:
            if final:
                options = [(p, chords[e]) for p, q in pairs if q.root == chords[e].root]
            else:  # a half cadence may keep the chord before it: V ends the phrase however approached
                options = [*pairs, (chords[b - 1], pairs[2][1])] if b >= 1 else pairs
            fit = next(((p, q) for p, q in options
                        if b >= 1 and _fits(soprano[b - 1], p) and _fits(soprano[b], q) and p != q), None)
            if fit:
                chords[b - 1], chords[b] = fit
                ends[k] = b
                break
    return ends, chords


def _changes_of(beat_chords: Sequence[Chord], original: Sequence[tuple[float, Chord]]) -> list[tuple[float, Chord]]:
    """The original changes where the beat's chord is unchanged; the rewritten beats' own."""
    out: list[tuple[float, Chord]] = []
    for t, c in original:
        b = int(t)
        if b < len(beat_chords) and _chord_at(original, float(b)) != beat_chords[b]:
            continue  # a rewritten beat: its chord is written below
        out.append((t, c))
    for b, c in enumerate(beat_chords):
        if _chord_at(original, float(b)) != c:
            out.append((float(b), c))
            if b + 1 < len(beat_chords) and beat_chords[b + 1] == _chord_at(original, float(b + 1)):
                if not any(abs(t - (b + 1)) < 1e-6 for t, _ in original):
                    out.append((float(b + 1), beat_chords[b + 1]))
    out.sort(key=lambda x: x[0])
    merged: list[tuple[float, Chord]] = []
    for t, c in out:
        if merged and abs(merged[-1][0] - t) < 1e-6:
            merged[-1] = (t, c)
        elif not merged or merged[-1][1] != c:
            merged.append((t, c))
    return merged


def chorale_parts(band: Band, seed: int, melody: list[Note], changes: list[tuple[float, Chord]],
                  bars: list[tuple[float, float]], key: str, hold: float, wanted: frozenset[str]) -> ChoraleParts:
    """Write the four voices (see the module doc).

    Args:
        melody: the soprano, absolute beats.
        changes: (beat, chord) changes.
        bars: (start, length) of every bar in beats, the final (held) bar last.
        key: the key as mido spells it (its tonic is the leading tone's target).
        hold: beats the final chord is held.
        wanted: request part names (``lead``, ``comping``, ``bass``) to return.
    """
    tonic = tonic_of(key)
    rng = random.Random(f"{seed}:chorale")
    end = bars[-1][0] + bars[-1][1]
    n_beats = int(round(end))
    sop = soprano_beats(melody, n_beats)
    if all(p is None for p in sop):
        sop = [67] * n_beats
    struck = [any(abs(n.onset - b) < 1e-6 for n in melody) for b in range(n_beats)]
    fermatas, beat_chords = cadence_plan(_filled([_chord_at(changes, b) for b in range(n_beats)], tonic), sop, struck,
                                         bars[0][1], len(bars), band.phrase_bars, tonic, key.endswith("m"))
    changes = _changes_of(beat_chords, changes)
    voiced = voice_chorale(sop, beat_chords, tonic)
    final = bars[-1][0]
    parts = []
    programs = band.voice_programs or (band.lead_program, band.comp_program, band.comp_program, band.bass_program)
    for v, name in enumerate(VOICE_PARTS):
        if REQUEST_PART[name] not in wanted:
            continue
        mix = band.part_mix(name)
        part = Part(name, programs[v], CHANNELS[v], volume=mix.volume, pan=mix.pan, reverb=mix.reverb, chorus=mix.chorus)
        if v == 0:
            part.notes = _soprano(melody, final, hold, rng)
        else:
            part.notes = _voice([row[v] for row in voiced], final, hold, rng)
        parts.append(part)
    return hold_fermatas(parts, bars, changes, fermatas[:-1], band.fermata_beats, fermatas[-1:])


def _filled(chords: Sequence[Chord | None], tonic: int) -> list[Chord]:
    out: list[Chord] = []
    for c in chords:
        out.append(c if c is not None and not c.is_nc else (out[-1] if out else Chord(tonic, "maj")))
    return out


def _soprano(melody: list[Note], final: float, hold: float, rng: random.Random) -> list[ScoreNote]:
    out = []
    notes = sorted(melody, key=lambda n: n.onset)
    for i, n in enumerate(notes):
        stop = n.onset + n.duration
        if n.onset >= final - 1e-6:
            stop = max(stop, final + hold)
        elif i + 1 < len(notes) and notes[i + 1].onset - stop <= 0.5:
            stop = notes[i + 1].onset  # legato over a short gap
        out.append(ScoreNote(max(0.0, n.onset + rng.uniform(-0.005, 0.005)), max(0.05, stop - n.onset - 0.03),
                             n.pitch, 80))
    return out


def _voice(pitches: list[int], final: float, hold: float, rng: random.Random) -> list[ScoreNote]:
    """One lower voice from its pitch per beat: repeated pitches held as one note, the final chord
    held ``hold`` beats from ``final``."""
    out: list[ScoreNote] = []
    b = 0
    n = len(pitches)
    while b < n:
        e = b + 1
        while e < n and pitches[e] == pitches[b] and not (e >= final - 1e-6 > b):
            e += 1
        stop = float(e)
        if e >= n:
            stop = max(stop, final + hold)
        out.append(ScoreNote(max(0.0, b + rng.uniform(-0.005, 0.005)), max(0.05, stop - b - 0.03), pitches[b], 76))
        b = e
    return out


def hold_fermatas(parts: list[Part], bars: list[tuple[float, float]], chords: list[tuple[float, Chord]],
                  fermatas: list[int], extra: float, ending: list[int]) -> ChoraleParts:
    """Hold each fermata beat ``extra`` beats longer: notes sounding in it last longer, everything
    after it comes later, its bar is longer. ``ending`` (the final bar's downbeat) is marked but
    not lengthened (the final chord has its own hold)."""
    if extra <= 0 or not fermatas:
        return ChoraleParts(parts, bars, chords, [float(f) for f in [*fermatas, *ending]])
    marks = sorted(float(f) for f in fermatas)

    def shift(t: float) -> float:
        return t + extra * sum(1 for f in marks if t >= f + 1 - 1e-6)

    for part in parts:
        moved = []
        for n in part.notes:
            start, stop = shift(n.onset), shift(n.onset + n.duration)
            if any(n.onset < f + 1 - 1e-6 and n.onset + n.duration > f + 1 - 0.1 for f in marks) and stop - start <= n.duration:
                stop = start + n.duration + extra  # sounding at the end of a fermata beat: held over it
            moved.append(ScoreNote(start, max(0.05, stop - start), n.pitch, n.velocity))
        part.notes = moved
    new_bars = []
    for start, length in bars:
        inside = sum(1 for f in marks if start - 1e-6 <= f < start + length - 1e-6)
        new_bars.append((shift(start), length + extra * inside))
    new_chords = [(shift(t), c) for t, c in chords]
    marked = [shift(f) for f in marks]
    return ChoraleParts(parts, new_bars, new_chords, [*marked, *(shift(float(e)) for e in ending)])
