"""A written clip (`engine.music.written.Written`) as MusicXML 4.0, with music21.

The lead on one staff (bach: soprano and alto on the upper staff, tenor and bass on the lower,
two voices each), chord symbols as ``<harmony>`` (roots spelled in the key, the rest of the symbol
as the clip's embed writes it), key and time signatures, the tempo (and "Swing" where the eighths
swing), the form's sections as rehearsal marks and, where a section is played again note for
note, a repeat (with first and second endings where only its last bars differ). Four bars to a
system, at most 16 to a page. Rhythm: `engine.formats.rhythm`; spelling: `engine.music.spelling`.

music21 is imported on the first call (about 0.2 s), never by ``import engine``.
"""
from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from engine.formats.rhythm import Event, bar_units, snapped, write_bars
from engine.music.chords import Chord
from engine.music.spelling import chord_text, key_tonic, spell_note, spell_root
from engine.music.tokens import GRID
from engine.music.written import Voice, Written

BARS_PER_LINE = 4
BARS_PER_PAGE = 16
# our chord families -> MusicXML's <kind> values (the displayed text is the embed's own)
KINDS = {"maj": "major", "min": "minor", "dim": "diminished", "aug": "augmented", "sus": "suspended-fourth",
         "6": "major-sixth", "maj7": "major-seventh", "min7": "minor-seventh", "min6": "minor-sixth",
         "minmaj7": "major-minor", "7": "dominant", "7sus": "suspended-fourth", "7alt": "dominant",
         "m7b5": "half-diminished", "dim7": "diminished-seventh", "aug7": "augmented-seventh"}
CLEFS = ("treble", "bass")
COMPOSER = "Chorus"
# the header's credits: (credit-type, justify, default-x, default-y), in tenths (40 to 7 mm: an A4
# page is 1200 wide, 1697 high, y from the bottom)
CREDITS = (("title", "center", 600, 1620), ("subtitle", "center", 600, 1555), ("composer", "right", 1130, 1505))


def write_musicxml(w: Written) -> bytes:
    """The clip as MusicXML bytes (UTF-8; see the module docstring).

    Raises:
        EngineError: the clip cannot be written (music21 refused it), with the reason.
    """
    from music21 import musicxml

    from engine.errors import EngineError

    score = build_score(w)
    try:
        exporter = musicxml.m21ToXml.GeneralObjectExporter(score)
        exporter.makeNotation = False  # done in build_score, before the chord symbols go in
        return _typed_credits(exporter.parse())
    except Exception as exc:  # music21 raises many kinds; the clip's job fails with one line
        raise EngineError(f"the lead sheet could not be written: {exc}") from exc


def build_score(w: Written) -> Any:
    """The music21 `Score` of the clip: one part per staff, the header in its metadata."""
    from music21 import layout, metadata, spanner, stream

    score = stream.Score()
    score.metadata = metadata.Metadata(movementName=w.title, composer=COMPOSER)
    _header(score, w)
    repeats = find_repeats(w)
    kept = kept_bars(w.bars, repeats)
    staves = sorted({v.staff for v in w.voices})
    parts = []
    for staff in staves:
        voices = [v for v in w.voices if v.staff == staff]
        part = stream.PartStaff() if len(staves) > 1 else stream.Part()
        part.partName = "Lead" if len(w.voices) == 1 else "Choir"  # one part on two staves: one name, by the brace
        measures = _measures(w, voices, staff, staff == staves[0], repeats, kept)
        for m in measures.values():
            part.append(m)
        _notation(part)
        if staff == staves[0]:
            for i, m in measures.items():
                for offset, chord in _bar_changes(w, i):
                    m.insert(offset, _symbol(chord, w))
        for start, stop, ending in repeats:
            if ending:
                n = stop - start
                part.insert(0, spanner.RepeatBracket([measures[b] for b in range(stop - ending, stop)], number=1))
                part.insert(0, spanner.RepeatBracket([measures[b] for b in range(stop + n - ending, stop + n)], number=2))
        parts.append(part)
        score.insert(0, part)
    if len(parts) > 1:
        score.insert(0, layout.StaffGroup(parts, name="Choir", symbol="brace", barTogether=True))
    return score


def _header(score: Any, w: Written) -> None:
    """The page's header as credits (`CREDITS`, in order): the title, the subtitle with the style,
    key and tempo, the composer."""
    from music21 import text

    for (_kind, justify, x, y), content in zip(CREDITS, (w.title, subtitle(w), COMPOSER), strict=True):
        box = text.TextBox(content, x, y)
        box.style.justify = box.style.alignHorizontal = justify
        box.style.alignVertical = "top"
        score.insert(0, box)


def subtitle(w: Written) -> str:
    """The header's second line: ``Jazz, swing · B♭ major · ♩ = 196`` (a dotted quarter in 6/8)."""
    letter, alter = key_tonic(w.tonic, w.mode)
    key = letter + {-1: "\u266d", 1: "\u266f"}.get(alter, "")
    mark = _tempo(w)
    beat = "\u2669." if mark.referent.quarterLength == 1.5 else "\u2669"
    feel = ", swing" if w.swing else ""
    return f"{w.style.title()}{feel} \u00b7 {key} {w.mode} \u00b7 {beat} = {mark.number}"


def _typed_credits(xml: bytes) -> bytes:
    """Each ``<credit>`` with its ``<credit-type>`` (title, subtitle, composer: music21 writes none),
    so a notation program files them as the score's header."""
    kinds = iter(kind for kind, *_ in CREDITS)
    return re.sub(rb"<credit page=\"1\">",
                  lambda m: m.group(0) + b"\n    <credit-type>" + next(kinds, "rights").encode() + b"</credit-type>", xml)


def _measures(w: Written, voices: list[Voice], staff: int, first: bool, repeats: list[tuple[int, int, int]],
              kept: list[int]) -> dict[int, Any]:
    """The written bars of one staff (bar index -> measure): its voices' notes, and on the top
    staff the header's marks, the chord symbols and the rehearsal marks; every staff gets the
    repeats and the line breaks (counted in written bars)."""
    from music21 import bar, clef, expressions, key, layout, meter, stream

    written = [write_bars(v.notes, w.meter, w.bars) for v in voices]
    lines = [snapped(v.notes, w.meter, w.bars * bar_units(w.meter)) for v in voices]
    starts = {s.first_bar: s.label for s in w.sections}
    out = {}
    for j, i in enumerate(kept):
        m = stream.Measure(number=j + 1)
        if j == 0:
            m.insert(0, clef.TrebleClef() if CLEFS[min(staff, 1)] == "treble" else clef.BassClef())
            m.insert(0, key.KeySignature(_fifths(w)))
            m.insert(0, meter.TimeSignature(f"{w.meter[0]}/{w.meter[1]}"))
            if first:
                m.insert(0, _tempo(w))
                if w.swing:
                    m.insert(0, _swing())
        if j % BARS_PER_PAGE == 0 and j:
            m.insert(0, layout.PageLayout(isNew=True))
        elif j % BARS_PER_LINE == 0 and j:
            m.insert(0, layout.SystemLayout(isNew=True))
        if first and i in starts:
            m.insert(0, expressions.RehearsalMark(starts[i]))
        if len(voices) == 1:
            for el in _events(w, lines[0], written[0][i], i, stem=None):
                m.insert(el.offset, el)
        else:
            for k, (line, bars) in enumerate(zip(lines, written, strict=True)):
                v = stream.Voice(id=str(k + 1))
                for el in _events(w, line, bars[i], i, stem="up" if k == 0 else "down"):
                    v.insert(el.offset, el)
                m.insert(0, v)
        for start, stop, _ending in repeats:
            if i == start:
                m.leftBarline = bar.Repeat(direction="start")
            if i == stop - 1:
                m.rightBarline = bar.Repeat(direction="end")
        if i == w.bars - 1:
            m.rightBarline = bar.Barline("final")
        out[i] = m
    return out


def _notation(part: Any) -> None:
    """Beams, tuplet brackets and accidentals, as music21 makes them, from the notes alone (the
    chord symbols' pitches would otherwise count as accidentals in the bar)."""
    from music21.stream import makeNotation

    for m in part.getElementsByClass("Measure"):
        for holder in list(m.voices) or [m]:
            makeNotation.makeTupletBrackets(holder, inPlace=True)
        m.makeBeams(inPlace=True)
    part.makeAccidentals(inPlace=True, cautionaryPitchClass=False)


def _fifths(w: Written) -> int:
    from engine.music.spelling import key_fifths

    return key_fifths(w.tonic, w.mode)


def _tempo(w: Written) -> Any:
    from music21 import duration, tempo

    compound = w.meter[1] == 8 and w.meter[0] % 3 == 0
    referent = duration.Duration(1.5 if compound else 1.0)
    number = round(w.tempo / (1.5 if compound else 1.0))
    return tempo.MetronomeMark(number=number, referent=referent)


def _swing() -> Any:
    """"Swing" over the first bar, beside the tempo (the eighths are written straight)."""
    from music21 import expressions

    words = expressions.TextExpression("Swing")
    words.placement = "above"
    words.style.fontWeight = "bold"
    return words


def _events(w: Written, line: list[tuple[int, int, int]], events: list[Event], bar_index: int,
            stem: str | None) -> list[Any]:
    """One bar of one voice as music21 notes and rests, spelled and tied, with their fermatas;
    ``line``: the voice's notes as `engine.formats.rhythm.snapped` writes them (an event's ``note``
    indexes it)."""
    from music21 import duration, expressions, note, pitch, tie

    out = []
    base = bar_index * bar_units(w.meter)
    fermatas = {round(f * GRID) for f in w.fermatas}
    for ev in events:
        ql = duration.Duration(Fraction(ev.length, GRID))
        if ev.pitch is None:
            el = note.Rest(duration=ql)
            if ev.length == bar_units(w.meter):
                el.fullMeasure = True
        else:
            letter, alter, octave = _spell(w, line, ev.note)
            el = note.Note(duration=ql)
            el.pitch = pitch.Pitch(step=letter, octave=octave, accidental=alter if alter else None)
            if ev.tie is not None:
                el.tie = tie.Tie(ev.tie)
            if stem is not None:
                el.stemDirection = stem
            if base + ev.start in fermatas and ev.tie in (None, "start"):
                fermata = expressions.Fermata()
                fermata.type = "inverted" if stem == "down" else "upright"  # over the upper voice, under the lower
                el.expressions.append(fermata)
        el.offset = Fraction(ev.start, GRID)
        out.append(el)
    return out


def _spell(w: Written, line: list[tuple[int, int, int]], index: int) -> tuple[str, int, int]:
    """The spelling of the line's note ``index`` (every piece of a tied note alike): over the chord
    sounding where it starts, and towards the next note of another pitch."""
    onset, _, midi = line[index]
    after = next(((on, p) for on, _, p in line[index + 1:] if p != midi), None)
    return spell_note(midi, w.tonic, w.mode, _chord_at(w.changes, onset / GRID),
                      None if after is None else after[1], None if after is None else _chord_at(w.changes, after[0] / GRID))


def _chord_at(changes: tuple[tuple[float, Chord], ...], beat: float) -> Chord | None:
    current = None
    for t, c in changes:
        if t <= beat + 1e-6:
            current = c
        else:
            break
    return current


def _bar_changes(w: Written, i: int) -> list[tuple[Fraction, Chord]]:
    """The chord symbols written in bar ``i``: each change at its place, and the chord sounding at
    the top of the bar where no change stands there; a chord the same as the one before is left out."""
    start, length = i * w.bar_beats, w.bar_beats
    out: list[tuple[Fraction, Chord]] = []
    before = _chord_at(w.changes, start - 1e-3) if i else None
    at_top = _chord_at(w.changes, start)
    if at_top is not None and (i == 0 or at_top.name != (before.name if before else None)):
        out.append((Fraction(0), at_top))
    last = at_top
    for t, c in w.changes:
        if start + 1e-6 < t < start + length - 1e-6 and (last is None or c.name != last.name):
            out.append((Fraction(round((t - start) * GRID), GRID), c))
            last = c
    return out


def _symbol(chord: Chord, w: Written) -> Any:
    """A chord symbol: the root spelled in the key, the kind, and the embed's text for the rest."""
    from music21 import harmony, pitch

    if chord.is_nc:
        return harmony.NoChord()
    letter, alter = spell_root(chord.root, w.tonic, w.mode, chord.family)
    bass = None
    if chord.bass is not None and chord.bass != chord.root:
        b_letter, b_alter, _ = spell_note(60 + chord.bass, w.tonic, w.mode, chord)
        bass = pitch.Pitch(step=b_letter, accidental=b_alter if b_alter else None)
    cs = harmony.ChordSymbol(root=pitch.Pitch(step=letter, accidental=alter if alter else None),
                             kind=KINDS[chord.family], kindStr=chord_text(chord), bass=bass)
    cs.writeAsChord = False
    return cs


# -- repeats -------------------------------------------------------------------------------------

def bar_content(w: Written, i: int) -> tuple:
    """What bar ``i`` holds, to compare bars: each voice's notes in it (relative onset, length,
    pitch) and the chords changing in it, and whether a note runs into it from before."""
    start, end = i * w.bar_beats, (i + 1) * w.bar_beats
    notes = tuple(tuple((round((a - start) * GRID), round(d * GRID), p) for a, d, p in v.notes if start - 1e-6 <= a < end - 1e-6)
                  for v in w.voices)
    tied_in = any(a < start - 1e-6 < start + 1e-6 < a + d - 1e-6 for v in w.voices for a, d, _ in v.notes)
    top = _chord_at(w.changes, start)
    chords = ((0, top.name if top else ""),) + tuple(
        (round((t - start) * GRID), c.name) for t, c in w.changes if start + 1e-6 < t < end - 1e-6)
    return notes, chords, tied_in


def find_repeats(w: Written, max_ending: int = 2) -> list[tuple[int, int, int]]:
    """(first bar, bar after the last, ending bars) of every repeat: a run of sections followed
    at once by the same labels, note for note and chord for chord but for its last ``ending``
    bars (first and second endings; 0: a plain repeat). Repeats never nest or overlap, and no
    note may be tied into or out of one."""
    secs = list(w.sections)
    out: list[tuple[int, int, int]] = []
    i = 0
    while i < len(secs):
        found = None
        for g in (1, 2):
            a, b = secs[i:i + g], secs[i + g:i + 2 * g]
            if len(b) < g or [s.label for s in a] != [s.label for s in b] or [s.bars for s in a] != [s.bars for s in b]:
                continue
            first, n = a[0].first_bar, sum(s.bars for s in a)
            if b[0].first_bar != first + n:
                continue
            same = [bar_content(w, first + k) == bar_content(w, first + n + k) for k in range(n)]
            body = next((k for k, ok in enumerate(same) if not ok), n)
            ending = n - body
            if ending <= max_ending and body >= max(1, n // 2) and all(same[:body]) and _closed(w, first, first + 2 * n, ending, n):
                found = (first, first + n, ending, g)
                break
        if found:
            out.append(found[:3])
            i += 2 * found[3]
        else:
            i += 1
    return out


def _closed(w: Written, first: int, stop: int, ending: int, n: int) -> bool:
    """No note is tied across the repeat's ends or into its endings."""
    bars = [first, stop] + ([first + n - ending, first + n, stop - ending] if ending else [first + n])
    return not any(i < w.bars and bar_content(w, i)[2] for i in bars)


def kept_bars(bars: int, repeats: list[tuple[int, int, int]]) -> list[int]:
    """The bars written out, in order: a repeat's second time through is left out but for its
    second ending (whose bars follow the first ending's)."""
    dropped: set[int] = set()
    for start, stop, ending in repeats:
        dropped.update(range(stop, stop + (stop - start) - ending))
    return [i for i in range(bars) if i not in dropped]

