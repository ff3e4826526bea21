"""The grammar's tokens: time grid, vocabulary, token parsing and the note-type and interval rules.

The vocabulary and the canonical form are documented in `engine.music.grammar`, which re-exports
everything here; import from there.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from engine.errors import GrammarError
from engine.music.chords import (
    FAMILIES,
    NO_CHORD,
    Chord,
    chord_tones,
    parse_chord,
    scale_tones,
    token_name,
)

GRID = 12  # units per quarter-note beat
DURATIONS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16, 18, 20, 21, 24, 30, 32, 36, 42, 48)
_DUR_DESC = tuple(sorted(DURATIONS, reverse=True))
METERS: tuple[tuple[int, int], ...] = tuple((n, 4) for n in range(1, 13)) + (
    (2, 2), (3, 2), (4, 2), (3, 8), (5, 8), (6, 8), (7, 8), (9, 8), (12, 8),
)
NOTE_TYPES = ("C", "S", "A", "X")
INTERVALS = ("~", "0", "u1", "u3", "u5", "u8", "u13", "d1", "d3", "d5", "d8", "d13")
BUCKET_RANGE = {  # interval bucket -> (smallest, largest) step in semitones
    "1": (1, 2), "3": (3, 4), "5": (5, 7), "8": (8, 12), "13": (13, 127)}
PHRASE_GAP = 2 * GRID  # silence (units) after which the next note starts a phrase
GAP_ABSORB = 3  # a gap shorter than this (units) between notes is absorbed into the first note
SPECIALS = ("PAD", "BOS", "EOS")


def _chord_token_names() -> list[str]:
    names = [f"CH:{token_name(r, f)}" for r in range(12) for f in FAMILIES]
    return names + [f"CH:{NO_CHORD}"]


def _build_vocab() -> tuple[str, ...]:
    out = list(SPECIALS)
    out += [f"BAR:{n}/{d}" for n, d in METERS]
    out += _chord_token_names()
    out += [f"{t}:{d}:{iv}" for t in NOTE_TYPES for d in DURATIONS for iv in INTERVALS]
    out += [f"R:{d}" for d in DURATIONS] + [f"H:{d}" for d in DURATIONS]
    return tuple(out)


VOCAB: tuple[str, ...] = _build_vocab()
TOKEN_ID: dict[str, int] = {t: i for i, t in enumerate(VOCAB)}


@dataclass(frozen=True)
class Token:
    """A parsed token. ``kind`` is one of special, bar, chord, note, rest, hold."""

    kind: str
    text: str
    meter: tuple[int, int] | None = None
    chord: Chord | None = None
    ntype: str = ""
    dur: int = 0
    iv: str = ""


@cache
def parse_token(text: str) -> Token:
    """Parse a token name. Raises GrammarError for a name outside `VOCAB`."""
    if text not in TOKEN_ID:
        raise GrammarError(f"unknown token {text!r}")
    head, _, rest = text.partition(":")
    if head in SPECIALS:
        return Token("special", text)
    if head == "BAR":
        n, d = rest.split("/")
        return Token("bar", text, meter=(int(n), int(d)))
    if head == "CH":
        return Token("chord", text, chord=parse_chord(rest).reduced)
    if head in ("R", "H"):
        return Token("rest" if head == "R" else "hold", text, dur=int(rest))
    dur, _, iv = rest.partition(":")
    return Token("note", text, ntype=head, dur=int(dur), iv=iv)


def bar_units(meter: tuple[int, int]) -> int:
    num, den = meter
    return num * 4 * GRID // den


def split_duration(units: int) -> list[int]:
    """Greedy decomposition of a span into duration tokens (the canonical form)."""
    out = []
    while units > 0:
        d = next(x for x in _DUR_DESC if x <= units)
        out.append(d)
        units -= d
    return out


@cache
def note_type(pc: int, root: int | None, family: str) -> str:
    """Type of a pitch class against a chord: C, S, A or X (see module doc)."""
    chord = chord_tones(root, family)
    if pc in chord:
        return "C"
    if pc in scale_tones(root, family):
        return "S"
    if (pc + 1) % 12 in chord or (pc - 1) % 12 in chord:
        return "A"
    return "X"


@cache
def type_pcs(root: int | None, family: str, ntype: str) -> frozenset[int]:
    """Pitch classes of one type under a chord (cached: the decoder's hot path)."""
    return frozenset(pc for pc in range(12) if note_type(pc, root, family) == ntype)


def interval_bucket(prev: int | None, pitch: int) -> str:
    if prev is None:
        return "~"
    step = pitch - prev
    if step == 0:
        return "0"
    size = abs(step)
    name = next(k for k, (lo, hi) in BUCKET_RANGE.items() if lo <= size <= hi)
    return ("u" if step > 0 else "d") + name


# ---------------------------------------------------------------------------------------------
