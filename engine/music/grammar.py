"""The measure/chord grammar: melody over chords as a sequence of tokens, and back.

deepjazz's idea (one token per note, recording its relation to the sounding chord, its duration
and its interval from the previous note), made exact and self-delimiting.

Time grid
    ``GRID`` = 12 units per quarter-note beat: holds sixteenths (3), eighth triplets (4),
    sixteenth triplets (2) and every swing ratio of 2:1. Onsets and durations are rounded to it.

Vocabulary (``VOCAB``; all names are plain strings)
    ``PAD``, ``BOS``, ``EOS``
        padding, start and end of a piece.
    ``BAR:n/d``
        a bar line opening a bar of time signature n/d (``METERS``). Every bar opens with one.
    ``CH:<chord>``
        the sounding chord (root + family, ``engine.music.chords``), e.g. ``CH:Bb7``, ``CH:NC``.
        Every bar restates its downbeat chord right after the bar line; a change inside the bar
        stands at its exact time position.
    ``<type>:<dur>:<iv>``
        a melody note. ``type`` against the sounding chord, checked in this order:
        ``C`` chord tone, ``S`` scale tone (the chord's scale, ``engine.music.chords`` table),
        ``A`` approach tone (a semitone from a chord tone), ``X`` anything else.
        ``dur`` in grid units from ``DURATIONS``. ``iv`` the interval bucket from the previous
        note (``INTERVALS``): ``0`` unison, ``u1`` up 1-2 semitones, ``u3`` up 3-4, ``u5`` up 5-7,
        ``u8`` up 8-12, ``u13`` up 13 or more, ``d1`` .. ``d13`` likewise down, ``~`` none (the
        first note of a phrase: the piece's first note or one after ``PHRASE_GAP`` of silence).
    ``R:<dur>``
        a rest.
    ``H:<dur>``
        hold: the previous note goes on (across a bar line or chord change, or past the longest
        duration token).

Canonical form
    A note or rest is cut at bar lines and chord changes; each piece between those boundaries is
    written greedily with the largest duration token that fits, then holds (or rests).
    `grammar_errors` flags anything else, so encode(decode(tokens)) == tokens for every valid
    sequence whose intervals stay within the decoder's pitch range.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from engine.errors import GrammarError
from engine.music.chords import NO_CHORD, PITCH_NAMES, Chord
from engine.music.grammar_check import check, grammar_errors
from engine.music.leadsheet import LeadSheet
from engine.music.tokens import (
    BUCKET_RANGE,
    DURATIONS,
    GAP_ABSORB,
    GRID,
    INTERVALS,
    METERS,
    NOTE_TYPES,
    PHRASE_GAP,
    SPECIALS,
    TOKEN_ID,
    VOCAB,
    Token,
    bar_units,
    interval_bucket,
    note_type,
    parse_token,
    split_duration,
    type_pcs,
)

# Quantised pieces: the exact content of a token sequence, in absolute grid units.


@dataclass
class QNote:
    onset: int  # absolute units
    dur: int  # units
    pitch: int
    ntype: str = ""
    velocity: int = 90


@dataclass
class QPiece:
    """A piece on the grid: bars (start, meter), chord changes (time, chord), notes."""

    bars: list[tuple[int, tuple[int, int]]] = field(default_factory=list)
    changes: list[tuple[int, Chord]] = field(default_factory=list)
    notes: list[QNote] = field(default_factory=list)
    fallbacks: int = 0  # decoder only: notes whose type or interval bucket could not be met

    @property
    def end(self) -> int:
        if not self.bars:
            return 0
        start, meter = self.bars[-1]
        return start + bar_units(meter)


def quantize(sheet: LeadSheet) -> QPiece:
    """Put a lead sheet on the grid: one melody line (top voice), chords reduced to families.

    Raises:
        GrammarError: a bar's time signature is not in `METERS`.
    """
    piece = QPiece()
    start = 0
    raw: list[tuple[int, int, int, int]] = []
    for measure in sheet.measures:
        meter = tuple(measure.time_signature)
        if meter not in METERS:
            raise GrammarError(f"time signature {meter[0]}/{meter[1]} is not supported")
        length = bar_units(meter)
        piece.bars.append((start, meter))
        for span in measure.chords:
            t = start + min(length - 1, max(0, round(span.onset * GRID)))
            chord = span.chord.reduced
            if piece.changes and piece.changes[-1][0] == t:
                piece.changes[-1] = (t, chord)
            elif not piece.changes or piece.changes[-1][1] != chord:
                piece.changes.append((t, chord))
        for n in measure.notes:
            onset = start + min(length - 1, max(0, round(n.onset * GRID)))
            raw.append((onset, -n.pitch, max(1, round(n.duration * GRID)), n.velocity))
        start += length
    if not piece.changes or piece.changes[0][0] != 0:
        piece.changes.insert(0, (0, Chord(None, NO_CHORD)))
    raw.sort()
    kept = [r for i, r in enumerate(raw) if i == 0 or r[0] != raw[i - 1][0]]
    for i, (onset, neg_pitch, dur, vel) in enumerate(kept):
        nxt = kept[i + 1][0] if i + 1 < len(kept) else start
        end = min(onset + dur, nxt)
        if nxt - end < GAP_ABSORB:
            end = nxt
        piece.notes.append(QNote(onset, end - onset, -neg_pitch, velocity=vel))
    _assign_types(piece)
    return piece


def _assign_types(piece: QPiece) -> None:
    ci = 0
    for note in piece.notes:
        while ci + 1 < len(piece.changes) and piece.changes[ci + 1][0] <= note.onset:
            ci += 1
        chord = piece.changes[ci][1]
        note.ntype = note_type(note.pitch % 12, chord.root, chord.family)


# ---------------------------------------------------------------------------------------------
# Encoding


def encode(sheet: LeadSheet | QPiece) -> list[str]:
    """Encode a lead sheet (or a quantised piece) as grammar tokens, without BOS/EOS."""
    piece = sheet if isinstance(sheet, QPiece) else quantize(sheet)
    if not piece.bars:
        return []
    # Boundaries where the running note or rest is cut: bar lines and chord changes.
    bar_at = {s: m for s, m in piece.bars}
    change_at = {t: c for t, c in piece.changes}
    note_at = {n.onset: n for n in piece.notes}
    times = sorted(set(bar_at) | set(change_at) | set(note_at) | {n.onset + n.dur for n in piece.notes})
    end = piece.end
    times = [t for t in times if t < end] + [end]
    out: list[str] = []
    chord = Chord(None, NO_CHORD)
    current: QNote | None = None  # sounding note
    prev_pitch: int | None = None
    silence = PHRASE_GAP  # units of silence since the last note ended
    for i, t in enumerate(times[:-1]):
        span = times[i + 1] - t
        if t in bar_at:
            out.append(f"BAR:{bar_at[t][0]}/{bar_at[t][1]}")
        if t in change_at:
            chord = change_at[t]
        if t in bar_at or t in change_at:
            out.append(f"CH:{chord.token}")
        if current is not None and t >= current.onset + current.dur:
            current = None
        if t in note_at:
            current = note_at[t]
            pitch = current.pitch
            bucket = "~" if silence >= PHRASE_GAP else interval_bucket(prev_pitch, pitch)
            ntype = note_type(pitch % 12, chord.root, chord.family)
            pieces = split_duration(span)
            out.append(f"{ntype}:{pieces[0]}:{bucket}")
            out += [f"H:{d}" for d in pieces[1:]]
            prev_pitch, silence = pitch, 0
        elif current is not None:
            out += [f"H:{d}" for d in split_duration(span)]
        else:
            out += [f"R:{d}" for d in split_duration(span)]
            silence += span
    return out


# ---------------------------------------------------------------------------------------------
# Decoding


@dataclass(frozen=True)
class PitchRange:
    """Preferred range of the decoded line (MIDI numbers) and the hard limits it may stretch to."""

    low: int = 52
    high: int = 86
    hard_low: int = 28
    hard_high: int = 108




@lru_cache(maxsize=8)
def transitions(prange: PitchRange) -> dict[str, np.ndarray]:
    """Per interval bucket, a (P, P) matrix of weights from previous pitch to next pitch."""
    pitches = np.arange(prange.hard_low, prange.hard_high + 1)
    step = pitches[None, :] - pitches[:, None]  # (P, P): next - previous
    out = {}
    for bucket in INTERVALS:
        if bucket == "~":
            out[bucket] = np.exp(-np.abs(step) / 4.0)
            continue
        if bucket == "0":
            inside = step == 0
        else:
            lo, hi = BUCKET_RANGE[bucket[1:]]
            signed = step if bucket[0] == "u" else -step
            inside = (signed >= lo) & (signed <= hi)
        out[bucket] = np.where(inside, 1.0 / (1.0 + np.abs(step)), 0.0)
    return out


@lru_cache(maxsize=4096)
def emission(prange: PitchRange, root: int | None, family: str, ntype: str) -> np.ndarray:
    """(P,) weights of each pitch for a note of this type: type, preferred range, centre pull."""
    pitches = np.arange(prange.hard_low, prange.hard_high + 1)
    pcs = type_pcs(root, family, ntype)
    ok = np.isin(pitches % 12, list(pcs)) if pcs else np.zeros(len(pitches), bool)
    w = np.where(ok, 1.0, 0.0) if pcs else np.ones(len(pitches))
    w = w * np.where((pitches >= prange.low) & (pitches <= prange.high), 1.0, 0.02)
    center = (prange.low + prange.high) / 2
    return w * np.exp(-(((pitches - center) / 18.0) ** 2))


def _realise(
    events: list[tuple[str, str, Chord]], rng: np.random.Generator, prange: PitchRange, prev_pitch: int | None
) -> list[int]:
    """Pick one pitch per note event so that every type and interval bucket holds where possible.

    Forward filtering, backward sampling over the pitch range: an exact search for a line that
    keeps every constraint, drawn at random (seeded) among such lines, favouring small motion.
    """
    if not events:
        return []
    lo = prange.hard_low
    size = prange.hard_high - lo + 1
    trans = transitions(prange)
    alphas = np.empty((len(events), size))
    used: list[np.ndarray] = []  # the transition actually used into each step
    alpha = np.ones(size)
    if prev_pitch is not None:
        alpha = np.zeros(size)
        alpha[min(size - 1, max(0, prev_pitch - lo))] = 1.0
    for i, (ntype, bucket, chord) in enumerate(events):
        emit = emission(prange, chord.root, chord.family, ntype)
        move = trans["~"] if i == 0 and prev_pitch is None else trans[bucket]
        nxt = (alpha @ move) * emit
        if nxt.sum() <= 0:  # no pitch keeps the bucket: keep the type, move freely
            move = trans["~"]
            nxt = (alpha @ move) * emit
        if nxt.sum() <= 0:  # not even the type: anything near
            nxt = alpha @ move
        alpha = nxt / nxt.sum()
        alphas[i] = alpha
        used.append(move)
    out = [0] * len(events)
    idx = int(rng.choice(size, p=alphas[-1]))
    out[-1] = idx
    for i in range(len(events) - 1, 0, -1):
        w = alphas[i - 1] * used[i][:, idx]
        idx = int(rng.choice(size, p=w / w.sum()))
        out[i - 1] = idx
    return [lo + i for i in out]


def decode(
    tokens: list[str],
    seed: int = 0,
    prange: PitchRange | None = None,
    prev_pitch: int | None = None,
) -> QPiece:
    """Turn tokens back into notes on the grid. Deterministic for a given seed.

    Args:
        tokens: grammar tokens (BOS/EOS/PAD are ignored).
        seed: seeds the choice among the pitches that meet each token's constraints.
        prange: the pitch range; the default suits a jazz guitar lead.
        prev_pitch: the pitch that sounded before these tokens (when continuing a line).
    Returns:
        the piece: bars, chord changes and notes (with their types); ``fallbacks`` counts notes
        whose type or interval bucket could not be realised.
    """
    prange = prange or PitchRange()
    piece = QPiece()
    t = 0
    chord = Chord(None, NO_CHORD)
    current: QNote | None = None
    events: list[tuple[str, str, Chord]] = []
    for text in tokens:
        tok = parse_token(text)
        if tok.kind == "bar":
            piece.bars.append((t, tok.meter))
        elif tok.kind == "chord":
            if not piece.changes or piece.changes[-1][1] != tok.chord:
                piece.changes.append((t, tok.chord))
            chord = tok.chord
        elif tok.kind == "note":
            current = QNote(t, tok.dur, 0, tok.ntype)
            piece.notes.append(current)
            events.append((tok.ntype, tok.iv, chord))
            t += tok.dur
        elif tok.kind == "hold":
            if current is not None and current.onset + current.dur == t:
                current.dur += tok.dur
            t += tok.dur
        elif tok.kind == "rest":
            current = None
            t += tok.dur
    if not piece.changes:
        piece.changes.append((0, Chord(None, NO_CHORD)))
    pitches = _realise(events, np.random.default_rng(seed), prange, prev_pitch)
    prev = prev_pitch
    for note, pitch, (ntype, bucket, ch) in zip(piece.notes, pitches, events, strict=True):
        note.pitch = pitch
        met = note_type(pitch % 12, ch.root, ch.family) == ntype
        met = met and (bucket == "~" or interval_bucket(prev, pitch) == bucket)
        piece.fallbacks += not met
        prev = pitch
    return piece


__all__ = [
    "GRID", "DURATIONS", "METERS", "NOTE_TYPES", "INTERVALS", "VOCAB", "TOKEN_ID", "PITCH_NAMES", "SPECIALS",
    "PHRASE_GAP", "GAP_ABSORB", "PitchRange", "QNote", "emission", "transitions", "QPiece", "Token", "bar_units", "check", "decode", "encode",
    "grammar_errors", "interval_bucket", "note_type", "parse_token", "quantize", "split_duration", "type_pcs",
]
