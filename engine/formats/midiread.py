"""Read any MIDI file as a lead sheet: one melody line over inferred (or given) chords.

Used by the ``midi`` and ``nottingham`` corpus readers and by seed-MIDI continuation.

Parts
    A *part* is the notes of one (track, channel) pair, so type 0 files (one track, many
    channels) split into parts as type 1 files do. Channel 10 (index 9) is drums and is ignored.

Melody part (documented heuristic, first rule that matches wins)
    1. the part asked for (track name, case-insensitive, or track index);
    2. a part whose track name holds a melody word (``MELODY_WORDS``: melody, lead, solo, ...);
    3. a part whose track name holds a lead-instrument word (``LEAD_INSTRUMENT_WORDS``: guitar,
       sax, trumpet, flute, ...); among several, the one with the most notes;
    4. otherwise the part with the highest mean pitch among those that are mostly one note at a
       time; a single-part file is its own melody.
    The melody is reduced to one line: at each onset the top note is kept, and a note is cut
    where the next one starts.

Chords
    ``infer`` (default): the other non-drum parts (or, without any, the melody itself) are cut into
    two segments per 4/4 bar (one per bar for 2/4, 3/4 and 6/8); each segment's duration-weighted
    pitch-class profile, with the lowest note weighted up as a root hint, is scored against chord
    templates, and a Viterbi pass with a cost per change smooths the sequence (as note-seq's chord
    inference does). ``blocks``: a part of block chords (Nottingham's chord track) is read chord
    by chord, each onset matched against the templates.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import mido
import numpy as np

from engine.errors import ChordError, MidiReadError
from engine.music.chords import FAMILIES, NO_CHORD, Chord, parse_chord
from engine.music.leadsheet import LeadSheet, Measure, Note, spans_from_changes

MELODY_WORDS = ("melody", "melodie", "lead", "solo", "vocal", "voice", "tune", "theme", "singer")
LEAD_INSTRUMENT_WORDS = (
    "guitar", "sax", "trumpet", "flute", "clarinet", "violin", "fiddle", "whistle", "trombone",
    "vibe", "horn", "oboe", "recorder", "harmonica",
)
TEMPLATE_FAMILIES = ("maj", "min", "7", "maj7", "min7", "m7b5", "dim7", "dim", "aug", "7sus")
DRUM_CHANNEL = 9
MAX_MARKERS = 4096  # chord markers read from one file (a 3-minute clip has a few hundred)


@dataclass
class Part:
    """The notes of one (track, channel): (start_tick, end_tick, pitch, velocity)."""

    track: int
    channel: int
    name: str
    notes: list[tuple[int, int, int, int]]

    @property
    def mean_pitch(self) -> float:
        return sum(n[2] for n in self.notes) / len(self.notes)

    def monophony(self) -> float:
        """Share of notes that do not overlap the next one."""
        s = sorted(self.notes)
        if len(s) < 2:
            return 1.0
        clear = sum(1 for a, b in zip(s, s[1:], strict=False) if a[1] <= b[0] or a[0] == b[0])
        return clear / (len(s) - 1)


@dataclass
class MidiContent:
    """What `parse_midi` extracts: parts, ticks per beat, tempo and meter events."""

    ticks_per_beat: int
    parts: list[Part]
    tempos: list[tuple[int, int]]  # (tick, microseconds per beat)
    meters: list[tuple[int, tuple[int, int]]]  # (tick, (num, den))
    key: str
    end_tick: int
    title: str = ""
    markers: list[tuple[int, str]] = field(default_factory=list)  # (tick, text): Chorus writes its chords so


def _load(data: bytes | mido.MidiFile) -> mido.MidiFile:
    """The file as mido reads it, checked for a time division and tracks.

    Raises:
        MidiReadError: not a MIDI file, truncated, or structurally nonsense.
    """
    if isinstance(data, mido.MidiFile):
        mid = data
    else:
        if not data.startswith(b"MThd"):
            raise MidiReadError("this is not a MIDI file")
        try:
            mid = mido.MidiFile(file=io.BytesIO(data), clip=True)
        except (OSError, EOFError, ValueError, IndexError, KeyError, TypeError) as exc:
            raise MidiReadError(f"this MIDI file is damaged or truncated ({type(exc).__name__})") from exc
    if not isinstance(mid.ticks_per_beat, int) or mid.ticks_per_beat <= 0:
        raise MidiReadError("this MIDI file uses a time division Chorus cannot read")
    if not mid.tracks:
        raise MidiReadError("this MIDI file has no tracks")
    return mid


def parse_midi(data: bytes | mido.MidiFile) -> MidiContent:
    """Parse MIDI bytes (or a loaded file) into parts and meta events.

    Raises:
        MidiReadError: not a MIDI file, truncated, or structurally nonsense.
    """
    mid = _load(data)
    tempos: list[tuple[int, int]] = []
    meters: list[tuple[int, tuple[int, int]]] = []
    key = ""
    title = ""
    markers: list[tuple[int, str]] = []
    parts: dict[tuple[int, int], Part] = {}
    end_tick = 0
    for ti, track in enumerate(mid.tracks):
        tick = 0
        name = ""
        open_notes: dict[tuple[int, int], tuple[int, int]] = {}
        for msg in track:
            tick += msg.time
            if msg.is_meta:
                if msg.type == "track_name" and not name:
                    name = str(msg.name).strip()
                    if ti == 0 and not title:
                        title = name
                elif msg.type == "set_tempo":
                    tempos.append((tick, msg.tempo))
                elif msg.type == "time_signature":
                    meters.append((tick, (msg.numerator, msg.denominator)))
                elif msg.type == "key_signature" and not key:
                    key = msg.key
                elif msg.type == "marker" and len(markers) < MAX_MARKERS:
                    markers.append((tick, str(msg.text)[:40]))
                continue
            if msg.type not in ("note_on", "note_off"):
                continue
            k = (msg.channel, msg.note)
            if msg.type == "note_on" and msg.velocity > 0:
                if k in open_notes:  # re-struck without a note-off: close the old one
                    _close(parts, ti, name, k, open_notes.pop(k), tick)
                open_notes[k] = (tick, msg.velocity)
            elif k in open_notes:
                _close(parts, ti, name, k, open_notes.pop(k), tick)
        for k, start in open_notes.items():
            _close(parts, ti, name, k, start, tick)
        end_tick = max(end_tick, tick)
        for part in parts.values():
            if part.track == ti and not part.name:
                part.name = name
    return MidiContent(mid.ticks_per_beat, [p for p in parts.values() if p.notes], sorted(tempos),
                       sorted(meters), key, end_tick, title, sorted(markers))


def _close(parts: dict, ti: int, name: str, k: tuple[int, int], start: tuple[int, int], tick: int) -> None:
    channel, pitch = k
    part = parts.setdefault((ti, channel), Part(ti, channel, name, []))
    if tick > start[0]:
        part.notes.append((start[0], tick, pitch, start[1]))


def pick_melody(parts: list[Part], melody: str | int | None = None) -> Part:
    """Choose the melody part (see the module doc for the rules).

    Raises:
        MidiReadError: no melody notes, or the asked-for part does not exist.
    """
    tonal = [p for p in parts if p.channel != DRUM_CHANNEL]
    if not tonal:
        raise MidiReadError("this file has no melody notes" if not parts else "this file has only drums")
    if melody is not None:
        for p in tonal:
            if (isinstance(melody, int) and p.track == melody) or (
                isinstance(melody, str) and p.name.lower() == melody.lower()
            ):
                return p
        raise MidiReadError(f"no melody track {melody!r} in this file")
    for words in (MELODY_WORDS, LEAD_INSTRUMENT_WORDS):
        named = [p for p in tonal if any(w in p.name.lower() for w in words)]
        if named:
            return max(named, key=lambda p: len(p.notes))
    if len(tonal) == 1:
        return tonal[0]
    mono = [p for p in tonal if p.monophony() >= 0.8 and len(p.notes) >= 8] or tonal
    return max(mono, key=lambda p: p.mean_pitch)


def _top_line(notes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """One note at a time: the top note at each onset, cut where the next one starts."""
    by_onset: dict[int, tuple[int, int, int, int]] = {}
    for n in notes:
        if n[0] not in by_onset or n[2] > by_onset[n[0]][2]:
            by_onset[n[0]] = n
    line = [by_onset[t] for t in sorted(by_onset)]
    return [(s, min(e, line[i + 1][0]) if i + 1 < len(line) else e, p, v)
            for i, (s, e, p, v) in enumerate(line)]


@dataclass(frozen=True)
class _Templates:
    chords: tuple[Chord, ...]
    matrix: np.ndarray  # (K, 12), rows L2-normalised
    roots: np.ndarray  # (K,)


def _templates() -> _Templates:
    chords, rows, roots = [], [], []
    for family in TEMPLATE_FAMILIES:
        tones = FAMILIES[family][0]
        for root in range(12):
            v = np.zeros(12)
            for i in tones:
                v[(root + i) % 12] = 1.0
            chords.append(Chord(root, family))
            rows.append(v / np.linalg.norm(v))
            roots.append(root)
    return _Templates(tuple(chords), np.array(rows), np.array(roots))


_TEMPLATES = _templates()
# Simpler chords win ties: a small prior against sevenths, sus and altered forms.
_PRIOR = np.array([{"maj": 0.0, "min": 0.0, "7": -0.02, "maj7": -0.03, "min7": -0.02}.get(c.family, -0.06)
                   for c in _TEMPLATES.chords])


def _scores(profile: np.ndarray, bass: int | None) -> np.ndarray:
    """Cosine score of a pitch-class profile against every template, plus a root hint."""
    norm = np.linalg.norm(profile)
    if norm == 0:
        return np.full(len(_TEMPLATES.chords), -1.0)
    s = _TEMPLATES.matrix @ (profile / norm) + _PRIOR
    if bass is not None:
        s = s + 0.1 * (_TEMPLATES.roots == bass)
    return s


def infer_chords(
    notes: list[tuple[float, float, int]], segments: list[tuple[float, float]], change_cost: float = 0.25
) -> list[Chord]:
    """Infer one chord per segment from (onset, end, pitch) notes in beats, Viterbi-smoothed.

    A silent segment gets no chord (NC).
    """
    n_seg = len(segments)
    k = len(_TEMPLATES.chords)
    emit = np.zeros((n_seg, k + 1))  # last column: no chord
    arr = np.array(notes, dtype=float).reshape(-1, 3)
    onsets, ends, pitches = arr[:, 0], arr[:, 1], arr[:, 2].astype(int)
    for i, (s0, s1) in enumerate(segments):
        overlap = np.minimum(ends, s1) - np.maximum(onsets, s0)
        hit = overlap > 0
        profile = np.bincount(pitches[hit] % 12, weights=overlap[hit], minlength=12)
        if not hit.any():
            emit[i, :k] = -1.0
            emit[i, k] = 1.0
            continue
        low = int(pitches[hit].min()) % 12
        profile[low] += 0.5 * profile.sum() / np.count_nonzero(profile)
        emit[i, :k] = _scores(profile, low)
        emit[i, k] = -1.0
    # Viterbi: maximise total score minus change_cost per change.
    best = emit[0].copy()
    back = np.zeros((n_seg, k + 1), dtype=np.int64)
    for i in range(1, n_seg):
        top = int(np.argmax(best))
        stay = best
        move = best[top] - change_cost
        back[i] = np.where(stay >= move, np.arange(k + 1), top)
        best = np.maximum(stay, move) + emit[i]
    path = [int(np.argmax(best))]
    for i in range(n_seg - 1, 0, -1):
        path.append(int(back[i, path[-1]]))
    path.reverse()
    nc = Chord(None, NO_CHORD)
    return [nc if p == k else _TEMPLATES.chords[p] for p in path]


def chords_from_blocks(notes: list[tuple[float, float, int]]) -> list[tuple[float, Chord]]:
    """Read a block-chord part: each onset's notes matched against the templates."""
    groups: dict[float, list[int]] = {}
    for onset, _, pitch in notes:
        groups.setdefault(round(onset, 3), []).append(pitch)
    out: list[tuple[float, Chord]] = []
    for onset in sorted(groups):
        pitches = groups[onset]
        profile = np.zeros(12)
        for p in pitches:
            profile[p % 12] = 1.0
        scores = _scores(profile, min(pitches) % 12)
        chord = _TEMPLATES.chords[int(np.argmax(scores))]
        if not out or out[-1][1] != chord:
            out.append((onset, chord))
    return out


def _bar_grid(content: MidiContent, end_beats: float) -> list[tuple[float, tuple[int, int]]]:
    """Bar starts (beats) and meters from the time-signature events (4/4 when there are none)."""
    tpb = content.ticks_per_beat
    events = [(t / tpb, m) for t, m in content.meters if m[0] > 0 and m[1] in (1, 2, 4, 8, 16, 32)]
    if not events or events[0][0] > 0:
        events.insert(0, (0.0, events[0][1] if events else (4, 4)))
    bars: list[tuple[float, tuple[int, int]]] = []
    t = 0.0
    ei = 0
    meter = events[0][1]
    while t < end_beats - 1e-6:
        while ei + 1 < len(events) and events[ei + 1][0] <= t + 1e-6:
            ei += 1
            meter = events[ei][1]
        bars.append((t, meter))
        t += meter[0] * 4.0 / meter[1]
    return bars


def _inferred_changes(notes: list, tpb: int, bar_starts: list[float], bar_beats: list[float]) -> list[tuple[float, Chord]]:
    """Chord changes (beat, chord) inferred from accompaniment notes (start_ticks, end_ticks, pitch, velocity),
    one chord per bar, or per half bar in bars of 4 or more even beats."""
    segments = []
    for start, length in zip(bar_starts, bar_beats, strict=True):
        halves = 2 if length >= 4 and math.isclose(length % 2, 0) else 1
        segments += [(start + i * length / halves, start + (i + 1) * length / halves) for i in range(halves)]
    seg_chords = infer_chords(sorted((s / tpb, e / tpb, p) for s, e, p, _ in notes), segments)
    changes: list[tuple[float, Chord]] = []
    for (s0, _), chord in zip(segments, seg_chords, strict=True):
        if not changes or changes[-1][1] != chord:
            changes.append((s0, chord))
    return changes


def _marked_changes(markers: list[tuple[int, str]], tpb: int) -> list[tuple[float, Chord]]:
    """(beat, chord) of the chord markers, when every marker names a chord; else none."""
    changes = []
    for tick, text in markers:
        try:
            changes.append((tick / tpb, parse_chord(text)))
        except ChordError:
            return []
    return changes


def read_midi(
    data: bytes | mido.MidiFile,
    title: str = "",
    melody: str | int | None = None,
    chord_part: str | int | None = None,
    chords: str = "infer",
    max_bars: int | None = None,
) -> LeadSheet:
    """Read MIDI bytes as a lead sheet.

    Args:
        data: the file's bytes (or a loaded `mido.MidiFile`).
        title: a title for the sheet (default: the first track's name).
        melody: the melody part's track name or index (default: the heuristic).
        chord_part: with ``chords="blocks"``, the block-chord part's track name or index.
        chords: ``infer`` (the file's chord markers where every marker names a chord, as Chorus's
            own clips carry them; else inferred from the accompaniment) or ``blocks`` (read a
            chord part).
        max_bars: keep at most this many bars from the start.
    Raises:
        MidiReadError: with a short human reason.
    """
    content = parse_midi(data)
    tpb = content.ticks_per_beat
    lead = pick_melody(content.parts, melody)
    line = _top_line(lead.notes)
    others = [p for p in content.parts if p is not lead and p.channel != DRUM_CHANNEL]
    end_beats = max(e for _, e, _, _ in line) / tpb
    bars = _bar_grid(content, end_beats)
    if max_bars is not None:
        bars = bars[:max_bars]
    bar_starts = [s for s, _ in bars]
    bar_beats = [m[0] * 4.0 / m[1] for _, m in bars]
    marked = _marked_changes(content.markers, tpb)
    if marked and chords == "infer":  # the file's own chord markers (a Chorus clip's): no guessing
        changes = marked
    elif chords == "blocks":
        source = pick_melody(others, chord_part) if others else lead
        changes = chords_from_blocks([(s / tpb, e / tpb, p) for s, e, p, _ in source.notes])
    else:
        changes = _inferred_changes([n for p in others for n in p.notes] or lead.notes, tpb, bar_starts, bar_beats)
    spans = spans_from_changes(changes, bar_starts, bar_beats)
    measures = []
    ni = 0
    line.sort()
    for bi, (start, meter) in enumerate(bars):
        end = start + bar_beats[bi]
        notes = []
        while ni < len(line) and line[ni][0] / tpb < end - 1e-9:
            s, e, p, v = line[ni]
            notes.append(Note(s / tpb - start, (e - s) / tpb, p, max(1, min(127, v))))
            ni += 1
        measures.append(Measure(meter, tuple(notes), spans[bi]))
    tempo = 60_000_000 / content.tempos[0][1] if content.tempos else 120.0
    return LeadSheet(title=title or content.title or "untitled", tempo=round(tempo, 2), measures=measures,
                     key=content.key, meta={"melody_track": lead.name or f"track {lead.track}",
                                           "melody_channel": str(lead.channel + 1),
                                           "chords": "markers" if marked and chords == "infer" else chords})


def read_midi_file(path: Path, **kwargs: object) -> LeadSheet:
    """`read_midi` on a file path (the title defaults to the file's stem)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise MidiReadError(f"cannot read {path}: {exc.strerror or exc}") from exc
    kwargs.setdefault("title", Path(path).stem)
    return read_midi(data, **kwargs)  # type: ignore[arg-type]
