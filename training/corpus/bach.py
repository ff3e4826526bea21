"""Reader for Bach's four-part chorales (music21's corpus): soprano melody over the lower voices' chords.

``bach=DIR`` takes music21's own ``corpus/bach`` folder (then the 371 Riemenschneider chorales
that ``music21.corpus.chorales.Iterator`` lists are read) or any folder of four-part MusicXML
(``.mxl``, ``.xml``, ``.musicxml``) or Humdrum (``.krn``) chorales. music21 is needed here only,
at training time (``pip install -e '.[training]'``); it is imported when a file is read.

Each chorale becomes

* a `LeadSheet`: the soprano as the melody, one chord per beat inferred from the four voices'
  notes sounding in that beat (`engine.formats.midiread.infer_chords`, the bass as the root hint; the
  lower voices carry most of the harmony, and the soprano completes a chord whose third the
  lower voices double),
  its key, meter and a tempo of `TEMPO` bpm. A pickup is padded to a whole bar with a rest, and so
  is a short last bar. ``meta["fermatas"]`` lists the beats (from the top) where a soprano
  fermata ends a phrase, comma-separated; ``meta["key"]`` the key as ``"G major"``.
* a `engine.band.chorale.Chorale`: the four voices' pitches at each beat, the same chords and the
  fermatas, which the chorale rules (`engine.band.chorale.check`) measure.

The music21-free core, `chorale_from_voices`, takes the voices as plain note lists; the tests
build their fixtures with it. A file that is not a four-part chorale (another number of parts, a
voice without notes, a meter the grammar has no token for) is skipped with its reason.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine.band.chorale import Chorale, ChoraleBeat
from engine.formats.midiread import infer_chords
from engine.music.chords import PITCH_NAMES, Chord
from engine.music.grammar import METERS
from engine.music.leadsheet import LeadSheet, Measure, Note, spans_from_changes
from training.corpus.base import CorpusError
from training.corpus.charts import Chart, Section

log = logging.getLogger(__name__)

TEMPO = 72.0  # quarter-note bpm given to every chorale (the sources carry none)
SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn")
PROVENANCE = ("J. S. Bach's four-part chorales as encoded in the music21 corpus (music21/corpus/bach); "
              "the chorales are public domain, music21 and its corpus are BSD-licensed")


@dataclass(frozen=True)
class VoiceNote:
    """One note of a voice: ``onset`` and ``duration`` in quarter-note beats from the top of the
    chorale (a pickup starts after 0), its MIDI ``pitch`` and whether a fermata is on it."""

    onset: float
    duration: float
    pitch: int
    fermata: bool = False


Voices = Sequence[Sequence[VoiceNote]]  # soprano, alto, tenor, bass


def chorale_from_voices(voices: Voices, meter: tuple[int, int], tonic: int, mode: str, pickup: float = 0.0,
                        title: str = "chorale", source: str = "") -> tuple[LeadSheet, Chorale]:
    """A lead sheet and a chorale from four voices.

    Args:
        voices: soprano, alto, tenor, bass note lists, onsets in beats from the first downbeat
            minus ``pickup`` (so a pickup of one beat starts at 0 and the first full bar at 1).
        meter: the time signature.
        tonic, mode: the key (pitch class 0-11, ``"major"`` or ``"minor"``).
        pickup: length of the pickup in beats (0 for none).
    Raises:
        CorpusError: not four voices, a silent voice, or a meter the grammar cannot write.
    """
    if len(voices) != 4:
        raise CorpusError(f"{len(voices)} parts, not the four voices of a chorale")
    if any(not v for v in voices):
        raise CorpusError("a voice has no notes")
    if meter not in METERS:
        raise CorpusError(f"meter {meter[0]}/{meter[1]} is not in the grammar")
    bar = meter[0] * 4.0 / meter[1]
    shift = (bar - pickup) % bar  # padding before the pickup so that bars start on downbeats
    vs = [sorted((VoiceNote(n.onset + shift, n.duration, n.pitch, n.fermata) for n in v), key=lambda n: n.onset)
          for v in voices]
    end = max(n.onset + n.duration for v in vs for n in v)
    n_bars = max(1, int(-(-round(end, 6) // bar)))
    n_beats = int(round(n_bars * bar))
    # the harmony of each beat: every voice's notes sounding in it, weighted by how long they sound
    # there (the soprano too: with a doubled third below, its note is often the chord's fifth)
    sounding = [(n.onset, n.onset + n.duration, n.pitch) for v in vs for n in v]
    segments = [(float(b), float(b + 1)) for b in range(n_beats)]
    chords = infer_chords(sounding, segments)
    changes: list[tuple[float, Chord]] = []
    for b, ch in enumerate(chords):
        if not changes or changes[-1][1] != ch:
            changes.append((float(b), ch))
    starts = [i * bar for i in range(n_bars)]
    spans = spans_from_changes(changes, starts, [bar] * n_bars)
    measures = []
    for i, start in enumerate(starts):
        notes = tuple(Note(n.onset - start, n.duration, n.pitch) for n in vs[0] if start - 1e-6 <= n.onset < start + bar - 1e-6)
        measures.append(Measure(meter, notes, spans[i]))
    fermatas = sorted({round(n.onset, 3) for n in vs[0] if n.fermata})
    key = f"{PITCH_NAMES[tonic]} {mode}"
    sheet = LeadSheet(title, TEMPO, measures, source=source, recording=f"bach:{title}", key=key,
                      meta={"fermatas": ",".join(f"{f:g}" for f in fermatas), "key": key})
    beats = []
    fermata_beats = {int(f) for f in fermatas}
    for b in range(n_beats):
        pitches = tuple(_sounding(v, b) for v in vs)
        chord = None if chords[b].is_nc else chords[b]
        beats.append(ChoraleBeat(pitches, chord, fermata=b in fermata_beats))  # type: ignore[arg-type]
    return sheet, Chorale(tuple(beats), tonic, mode, title)


def chart_from_chorale(sheet: LeadSheet) -> Chart:
    """A chorale's chords as a chart for the harmony model: the chord on each beat (a bar's chords
    in the fewest equal parts, `engine.models.harmony.bar_chords`; ``meta["beats"]`` the bar's beats), one section
    per phrase (the bars up to and including the one where a fermata falls), so that "bars left in
    the section" tells the model where the cadence comes. A phrase whose chords equal an earlier
    one's takes its label (the repeated Stollen of a bar form)."""
    from engine.models.harmony import bar_chords
    from engine.music.forms import parse_key_name

    tonic, mode = parse_key_name(sheet.meta.get("key") or sheet.key)
    first = next((span.chord for m in sheet.measures for span in m.chords if not span.chord.is_nc), None)
    if first is None:
        return Chart(sheet.title, tonic, mode, (), sheet.source, {"recording": sheet.recording})
    bars: list[tuple[Chord, ...]] = []
    previous = first.reduced
    for m in sheet.measures:  # the chord on each beat (a pickup bar's silence takes the first chord)
        slots = []
        for beat in range(max(1, int(round(m.beats)))):
            chord = m.chord_at(float(beat))
            previous = chord.reduced if chord is not None and not chord.is_nc else previous
            slots.append(previous)
        bars.append(bar_chords(slots))
    bar_beats = sheet.measures[0].beats if sheet.measures else 4.0
    ends = sorted({int(float(f) // bar_beats) for f in (sheet.meta.get("fermatas") or "").split(",") if f})
    ends = [e for e in ends if e < len(bars) - 1] + [len(bars) - 1]
    sections: list[Section] = []
    seen: dict[tuple, str] = {}
    start = 0
    for end in ends:
        chunk = tuple(bars[start:end + 1])
        if chunk:
            label = seen.get(chunk) or chr(ord("A") + min(len(seen), 25))
            seen.setdefault(chunk, label)
            sections.append(Section(label, chunk))
        start = end + 1
    return Chart(sheet.title, tonic, mode, tuple(sections), sheet.source,
                 {"recording": sheet.recording, "beats": str(int(round(bar_beats)))})


def _sounding(voice: Sequence[VoiceNote], beat: float) -> int | None:
    """The voice's pitch sounding at ``beat`` (the note struck there or held over it)."""
    for n in voice:
        if n.onset - 1e-6 <= beat < n.onset + n.duration - 1e-6:
            return n.pitch
    return None


def _voices_of(score) -> tuple[list[list[VoiceNote]], tuple[int, int], float]:  # noqa: ANN001 - a music21 Score
    """The four voices, the meter and the pickup length of a music21 score."""
    from music21 import expressions
    from music21 import meter as m21meter

    parts = _vocal_parts(list(score.parts))
    sigs = score.flatten().getElementsByClass(m21meter.TimeSignature)
    if not sigs:
        raise CorpusError("no time signature")
    meter = (int(sigs[0].numerator), int(sigs[0].denominator))
    if len({(s.numerator, s.denominator) for s in sigs}) > 1:
        raise CorpusError("the meter changes")
    first = parts[0].getElementsByClass("Measure")
    pickup = 0.0
    if first:
        m0 = first[0]
        bar = meter[0] * 4.0 / meter[1]
        if float(m0.duration.quarterLength) < bar - 1e-6:
            pickup = float(m0.duration.quarterLength)
    voices = []
    for part in parts:
        notes = []
        for n in part.flatten().notes:
            if n.isChord:
                pitch = max(p.midi for p in n.pitches)
            else:
                pitch = n.pitch.midi
            fermata = any(isinstance(e, expressions.Fermata) for e in n.expressions)
            dur = float(n.quarterLength)
            if dur <= 0:
                continue  # grace notes
            notes.append(VoiceNote(float(n.getOffsetInHierarchy(score)), dur, int(pitch), fermata))
        voices.append(notes)
    return voices, meter, pickup


def _vocal_parts(parts: list) -> list:
    """The soprano, alto, tenor and bass of a score: its four parts, or (a chorale whose
    instruments double the voices) the four parts named for the voices."""
    if len(parts) == 4:
        return parts
    named = []
    for voice in ("soprano", "alto", "tenor", "bass"):
        found = [p for p in parts if (p.partName or "").strip().lower().startswith(voice)]
        if len(found) != 1:
            raise CorpusError(f"{len(parts)} parts, and not one named {voice}: not the four voices of a chorale")
        named.append(found[0])
    return named


def load_chorale(path: str | Path) -> tuple[LeadSheet, Chorale]:
    """Read one chorale file with music21 (parsed once per process: ``chorus eval`` reads the
    chorales as lead sheets and again for Bach's rule rates).

    Raises:
        CorpusError: music21 is not installed, or the file is not a four-part chorale.
    """
    voices, meter, pickup, tonic, mode = _parse(str(path))
    return chorale_from_voices(voices, meter, tonic, mode, pickup, title=Path(path).stem, source=str(path))


@lru_cache(maxsize=512)
def _parse(path: str) -> tuple[tuple[tuple[VoiceNote, ...], ...], tuple[int, int], float, int, str]:
    try:
        import music21
    except ImportError as exc:
        raise CorpusError("reading the Bach chorales needs music21: pip install -e '.[training]'") from exc
    try:
        score = music21.converter.parse(path)
    except Exception as exc:  # noqa: BLE001 - music21 raises many kinds; the file is skipped with the reason
        raise CorpusError(f"music21 could not parse it: {exc}") from exc
    voices, meter, pickup = _voices_of(score)
    try:
        k = score.analyze("key")
    except Exception as exc:  # noqa: BLE001 - as above
        raise CorpusError(f"no key found: {exc}") from exc
    return tuple(map(tuple, voices)), meter, pickup, int(k.tonic.pitchClass), "minor" if k.mode == "minor" else "major"


def chorale_files(root: Path) -> list[Path]:
    """The chorale files under ``root`` (see the module doc for music21's own folder)."""
    if root.is_file():
        return [root]
    files: list[Path] = []
    if root.name == "bach" and root.parent.name == "corpus" and (root.parent.parent / "__init__.py").is_file():
        try:
            from music21 import corpus

            files = [_work(corpus, name) for name in corpus.chorales.Iterator(returnType="filename")]
        except ImportError as exc:
            raise CorpusError("listing music21's chorales needs music21: pip install -e '.[training]'") from exc
    if not files:
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES)
    if not files:
        raise CorpusError(f"{root}: no chorale files ({', '.join(SUFFIXES)})")
    return files


def _work(corpus, name: str) -> Path:  # noqa: ANN001 - music21.corpus
    """The file of a corpus work such as ``bach/bwv153.1`` (music21 may list several candidates)."""
    found = corpus.getWork(name)
    if not isinstance(found, list):
        return Path(found)
    stem = name.rsplit("/", 1)[-1]
    return next((Path(f) for f in found if Path(f).name.rsplit(".", 1)[0] == stem), Path(found[0]))


def music21_bach_dir() -> Path:
    """music21's own ``corpus/bach`` folder.

    Raises:
        CorpusError: music21 is not installed.
    """
    try:
        import music21
    except ImportError as exc:
        raise CorpusError("music21 is not installed: pip install -e '.[training]'") from exc
    return Path(music21.__file__).parent / "corpus" / "bach"


def iter_bach(root: Path) -> Iterator[tuple[str, Callable[[], LeadSheet]]]:
    for path in chorale_files(root):
        def load(path: Path = path) -> LeadSheet:
            return load_chorale(path)[0]

        yield str(path), load
