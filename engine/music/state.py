"""Where a token sequence stands: bar position, sounding chord, and which tokens may come next.

The model reads the state after each token as conditioning (the chord and the place in the bar),
and the sampler masks every token the grammar forbids in that state, so sampled sequences are
always well formed (`engine.music.grammar.check` finds nothing).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np

from engine.music import grammar as g
from engine.music.chords import NO_CHORD, chord_tones

V = len(g.VOCAB)
TOKENS = [g.parse_token(t) for t in g.VOCAB]
CHORD_TOKEN_IDS = np.array([i for i, t in enumerate(TOKENS) if t.kind == "chord"])
N_CHORDS = len(CHORD_TOKEN_IDS)  # chord index = position among the CH tokens
CHORD_INDEX = {int(tid): ci for ci, tid in enumerate(CHORD_TOKEN_IDS)}
NC_INDEX = CHORD_INDEX[g.TOKEN_ID["CH:NC"]]
MAX_POS = 12 * g.GRID  # longest supported bar (12/4), in grid units
_KIND = np.array([t.kind for t in TOKENS])
_DUR = np.array([t.dur for t in TOKENS])
_IS_PHRASE_START = np.array([t.kind == "note" and t.iv == "~" for t in TOKENS])
_IS_NOTE = _KIND == "note"
_IS_HOLD = _KIND == "hold"
_IS_REST = _KIND == "rest"
_IS_CHORD = _KIND == "chord"
_IS_BAR = _KIND == "bar"


def chord_features() -> tuple[np.ndarray, np.ndarray]:
    """Per chord index: root (0-11, 12 = no chord) and the (12,) chord-tone indicator."""
    roots = np.zeros(N_CHORDS, dtype=np.int64)
    pcs = np.zeros((N_CHORDS, 12), dtype=np.float32)
    for ci, tid in enumerate(CHORD_TOKEN_IDS):
        chord = TOKENS[tid].chord
        roots[ci] = 12 if chord.family == NO_CHORD else chord.root
        for pc in chord_tones(chord.root, chord.family):
            pcs[ci, pc] = 1.0
    return roots, pcs


@cache
def transpose_tables() -> tuple[np.ndarray, np.ndarray]:
    """(12, V) token-id and (12, N_CHORDS) chord-index maps for transposing by k semitones."""
    tok = np.tile(np.arange(V), (12, 1))
    chd = np.tile(np.arange(N_CHORDS), (12, 1))
    for k in range(12):
        for ci, tid in enumerate(CHORD_TOKEN_IDS):
            moved = TOKENS[tid].chord.transpose(k)
            new_tid = g.TOKEN_ID[f"CH:{moved.token}"]
            tok[k, tid] = new_tid
            chd[k, ci] = CHORD_INDEX[new_tid]
    return tok, chd


@cache
def _type_mask(chord_index: int) -> np.ndarray:
    """(V,) False for note tokens whose type has no pitch under this chord."""
    chord = TOKENS[CHORD_TOKEN_IDS[chord_index]].chord
    ok = np.ones(V, dtype=bool)
    for ntype in g.NOTE_TYPES:
        if not g.type_pcs(chord.root, chord.family, ntype):
            ok &= ~np.array([t.kind == "note" and t.ntype == ntype for t in TOKENS])
    return ok


@cache
def _run_ok(run: tuple[int, ...]) -> np.ndarray:
    """(max dur + 1,) whether appending each duration to a run keeps it in canonical form."""
    out = np.zeros(max(g.DURATIONS) + 1, dtype=bool)
    total = sum(run)
    for d in g.DURATIONS:
        out[d] = g.split_duration(total + d) == [*run, d]
    return out


@dataclass
class GrammarState:
    """The grammar's view after a prefix of tokens. Update it with `push`."""

    meter: tuple[int, int] | None = None
    pos: int = 0
    chord: int = NC_INDEX
    sounding: bool = False
    silence: int = g.PHRASE_GAP
    run: tuple[int, ...] = ()
    run_kind: str = ""
    last: str = ""
    bars: int = 0
    history: list[int] = field(default_factory=list)

    @property
    def bar_len(self) -> int:
        return g.bar_units(self.meter) if self.meter else 0

    def push(self, token_id: int) -> None:
        tok = TOKENS[token_id]
        kind = tok.kind
        if kind == "bar":
            self.meter, self.pos, self.bars = tok.meter, 0, self.bars + 1
            self.run, self.run_kind = (), ""
        elif kind == "chord":
            self.chord = CHORD_INDEX[token_id]
            self.run, self.run_kind = (), ""
        elif kind == "note":
            self.sounding, self.silence = True, 0
            self.run, self.run_kind = (tok.dur,), "note"
            self.pos += tok.dur
        elif kind == "hold":
            self.run = (*self.run, tok.dur) if self.run_kind == "note" else (tok.dur,)
            self.run_kind = "note"
            self.pos += tok.dur
        elif kind == "rest":
            self.sounding = False
            self.silence += tok.dur
            self.run = (*self.run, tok.dur) if self.run_kind == "rest" else (tok.dur,)
            self.run_kind = "rest"
            self.pos += tok.dur
        self.last = kind
        self.history.append(token_id)

    def features(self) -> tuple[int, int, int]:
        """(chord index, position in bar, units left in the bar) for the model's next step."""
        left = self.bar_len - self.pos if self.meter else 0
        return self.chord, min(self.pos, MAX_POS), min(max(left, 0), MAX_POS)

    def allowed(self, next_change: int | None = None, meter: tuple[int, int] | None = None) -> np.ndarray:
        """(V,) mask of the tokens the grammar allows next.

        Args:
            next_change: a forced chord change at this many units into the bar: durations may not
                run past it (the caller forces the CH token when ``pos`` reaches it).
            meter: the meter the next bar line must have (None: any).
        """
        if self.meter is None or self.pos >= self.bar_len:
            mask = _IS_BAR.copy()
            if meter is not None:
                mask &= np.array([TOKENS[i].meter == meter for i in range(V)])
            return mask
        if self.last == "bar":
            return _IS_CHORD.copy()
        limit = self.bar_len - self.pos
        if next_change is not None and next_change > self.pos:
            limit = min(limit, next_change - self.pos)
        mask = (_IS_NOTE | _IS_HOLD | _IS_REST) & (_DUR <= limit) & _type_mask(self.chord)
        mask &= np.where(_IS_NOTE, _IS_PHRASE_START == (self.silence >= g.PHRASE_GAP), True)
        if not self.sounding:
            mask &= ~_IS_HOLD
        ok = _run_ok(self.run)
        if self.run_kind == "note":
            mask &= np.where(_IS_HOLD, ok[_DUR], True)
        if self.run_kind == "rest":
            mask &= np.where(_IS_REST, ok[_DUR], True)
        if self.last in ("note", "hold", "rest") and next_change is None:
            # a chord may change mid-bar, but not to the chord already sounding
            mask |= _IS_CHORD
            mask[CHORD_TOKEN_IDS[self.chord]] = False
        return mask


def features_of(token_ids: list[int]) -> np.ndarray:
    """(T, 3) int array: the state features after each token (inputs for the next prediction)."""
    state = GrammarState()
    out = np.zeros((len(token_ids), 3), dtype=np.int64)
    for i, tid in enumerate(token_ids):
        state.push(tid)
        out[i] = state.features()
    return out
