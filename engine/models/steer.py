"""Steering the melody model's draws toward how players write (used by `engine.models.sample`).

The model writes a note as one token: its duration, its interval bucket from the previous note
and its relation to the chord (``type:dur:iv``, `engine.music.grammar`). It does not know which
pitch the decoder will give it, so a line sampled at one temperature wanders out of its register
or asks for a chord tone a semitone away where there is none (the decoder then leaps: 12.8% of
the notes of the shipped jazz model's clips). Two steers, each a parameter of the request:

- `temper`: a temperature per level of the note token, in order: its rhythm (the duration,
  against the other durations), its interval given the rhythm, its chord relation given both.
  Rests, holds, bar lines and chords keep their share. Each level is the model's own
  conditional, raised to ``1 / temperature``.
- `Register`: the decoder's own forward pass over pitches (`engine.music.grammar.decode`), kept
  while sampling. Before each note it tells how comfortably each (chord relation, interval)
  would land: the expected weight, under a bell of ``register_sd`` semitones around the clip's
  register (by default the middle of the preferred range), of the pitches that keep both; 0 where none does (that note is left
  out). The note tokens' logits gain ``register * log(comfort)`` and keep their total share
  against rests, so a line high in its range is drawn back down as players' lines are.
"""
from __future__ import annotations

import numpy as np

from engine.music import grammar as g
from engine.music import state as st
from engine.music.chords import Chord

COMBOS = [(ntype, iv) for ntype in g.NOTE_TYPES for iv in g.INTERVALS]  # a note token's (type, interval bucket)
_COMBO_OF = np.array([COMBOS.index((t.ntype, t.iv)) if t.kind == "note" else -1 for t in st.TOKENS])
IS_NOTE = _COMBO_OF >= 0


def _groups(keys: list) -> np.ndarray:
    index: dict = {}
    return np.array([index.setdefault(k, len(index)) for k in keys])


_RHYTHM = _groups([(t.kind, t.dur) if t.kind == "note" else ("other", i) for i, t in enumerate(st.TOKENS)])
_INTERVAL = _groups([(t.kind, t.dur, t.iv) if t.kind == "note" else ("other", i) for i, t in enumerate(st.TOKENS)])


def temper(p: np.ndarray, idx: np.ndarray, rhythm: float, ntype: float) -> np.ndarray:
    """``p`` (probabilities of the tokens ``idx``) with the note tokens' rhythm level at
    temperature ``rhythm`` and their chord relation level at ``ntype``; non-notes keep theirs."""
    if rhythm == 1.0 and ntype == 1.0:
        return p
    note = IS_NOTE[idx]
    if not note.any():
        return p
    rhythm_of, interval_of = _RHYTHM[idx], _INTERVAL[idx]
    by_rhythm = np.bincount(rhythm_of, weights=p)
    by_interval = np.bincount(interval_of, weights=p)
    with np.errstate(divide="ignore", invalid="ignore"):
        level_iv = by_interval[interval_of] / by_rhythm[rhythm_of]  # p(interval | rhythm)
        level_type = np.nan_to_num(p / by_interval[interval_of]) ** (1 / ntype)  # p(type | rhythm, interval)
        level_type = np.nan_to_num(level_type / np.bincount(interval_of, weights=level_type)[interval_of])
        rhythms = np.where(np.bincount(rhythm_of, weights=note) > 0, by_rhythm, 0.0) ** (1 / rhythm)
        q = rhythms[rhythm_of] * level_iv * level_type  # each level its own conditional, tempered
    q = np.where(note, np.nan_to_num(q), p)
    if q[note].sum() > 0:
        q[note] *= p[note].sum() / q[note].sum()
    return q / q.sum()


class Register:
    """The decoder's forward pass while sampling (see the module docstring)."""

    def __init__(self, prange: g.PitchRange, prev_pitch: int | None, sd: float, centre: float | None = None) -> None:
        self.prange = prange
        pitches = np.arange(prange.hard_low, prange.hard_high + 1)
        self.first = prev_pitch is None
        self.alpha = np.full(len(pitches), 1.0 / len(pitches))  # (P,) over hard_low..hard_high
        if prev_pitch is not None:
            self.alpha = np.zeros(len(pitches))
            self.alpha[min(len(pitches) - 1, max(0, prev_pitch - prange.hard_low))] = 1.0
        centre = (prange.low + prange.high) / 2 if centre is None else centre
        self.bell = np.exp(-0.5 * ((pitches - centre) / sd) ** 2)  # (P,), over the hard range
        rows = [g.transitions(prange)[b] for b in g.INTERVALS]
        self.moves = np.stack([m / np.maximum(m.sum(axis=1, keepdims=True), 1e-12) for m in rows])  # (B, P, P)
        self.free = self.moves[list(g.INTERVALS).index("~")]  # (P, P): a phrase's first note
        self.types: dict[tuple, np.ndarray] = {}  # (root, family) -> (T, P) bool

    def _kinds(self, chord: Chord) -> np.ndarray:
        key = (chord.root, chord.family)
        if key not in self.types:
            self.types[key] = np.stack([g.emission(self.prange, chord.root, chord.family, t) > 0
                                        for t in g.NOTE_TYPES])
        return self.types[key]

    def comfort(self, chord: Chord) -> np.ndarray:
        """(len(COMBOS),) how comfortably each (type, interval bucket) lands over ``chord``, 0 where no pitch can."""
        reach = np.broadcast_to(self.alpha @ self.free, (len(g.INTERVALS), len(self.alpha))) if self.first \
            else np.einsum("p,bpq->bq", self.alpha, self.moves)  # (B, P)
        mass = reach[None, :, :] * self._kinds(chord)[:, None, :]  # (T, B, P)
        total = mass.sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(total > 0, (mass * self.bell).sum(axis=2) / total, 0.0)  # (T, B), as COMBOS orders them
        return out.reshape(-1)

    def steer(self, logits: np.ndarray, mask: np.ndarray, chord: Chord, strength: float) -> tuple[np.ndarray, np.ndarray]:
        """``logits`` with the note tokens weighed by their comfort to the power ``strength`` (their
        share against rests kept), and ``mask`` without the notes no pitch could keep."""
        comfort = self.comfort(chord)[_COMBO_OF]
        note = IS_NOTE & mask
        playable = mask & (~IS_NOTE | (comfort > 0))
        if not (note & playable).any():
            return logits, mask
        out = logits.astype(np.float64)
        keep = note & playable
        before = np.logaddexp.reduce(out[note])  # the notes' share, the unplayable ones' included
        out[keep] += strength * np.log(comfort[keep])
        out[keep] += before - np.logaddexp.reduce(out[keep])
        return out, playable

    def push(self, token_id: int, chord: Chord) -> None:
        """A note token was written (as `engine.music.grammar.decode` steps through it)."""
        tok = st.TOKENS[token_id]
        move = g.transitions(self.prange)["~" if self.first else tok.iv]
        emit = g.emission(self.prange, chord.root, chord.family, tok.ntype)
        nxt = (self.alpha @ move) * emit
        if nxt.sum() <= 0:
            nxt = (self.alpha @ g.transitions(self.prange)["~"]) * emit
        if nxt.sum() <= 0:
            nxt = self.alpha @ move
        self.alpha = nxt / nxt.sum()
        self.first = False
