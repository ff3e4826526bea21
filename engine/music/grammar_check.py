"""The grammar check: the violations of a token sequence, one rule per method.

Rules: the sequence opens with a bar line (after an optional BOS); a bar line is followed by its
chord; no redundant chord change; a bar is filled exactly (``complete``: the last one too); a hold
follows a note; a note type must exist under its chord; the interval is ``~`` exactly at a phrase
start; notes, holds and rests are in canonical (greedy) form between boundaries. `engine.music.grammar`
documents the tokens and re-exports `check` and `grammar_errors`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.errors import GrammarError
from engine.music.chords import Chord
from engine.music.tokens import PHRASE_GAP, Token, bar_units, parse_token, split_duration, type_pcs

Violation = tuple[int, str]  # (token index, reason)


@dataclass
class _Checker:
    """The state of one pass over a token sequence; each ``_on_*`` method checks one token kind."""

    tokens: list[str]
    errors: list[Violation] = field(default_factory=list)
    bar_len: int | None = None  # units of the current bar; None before the first bar line
    pos: int = 0  # units filled in the current bar
    chord: Chord | None = None
    sounding: bool = False
    silence: int = PHRASE_GAP  # units of silence before the current position
    run: list[int] = field(default_factory=list)  # durations of the note+holds or rests since the last boundary
    run_kind: str = ""
    run_start: int = 0
    started: bool = False

    def close_run(self) -> None:
        """A boundary: the run of durations before it must be in canonical form."""
        if self.run and split_duration(sum(self.run)) != self.run:
            self.errors.append((self.run_start, "duration not in canonical form"))
        self.run, self.run_kind = [], ""

    def token(self, i: int, text: str) -> None:
        try:
            tok = parse_token(text)
        except GrammarError:
            self.errors.append((i, f"unknown token {text!r}"))
            return
        if tok.kind == "special":
            self._on_special(i, text)
            return
        if not self.started and tok.kind != "bar":
            self.errors.append((i, "sequence must open with a bar line"))
        if tok.kind == "bar":
            self._on_bar(i, tok)
            return
        prev = self.tokens[i - 1] if i else ""
        if prev.startswith("BAR:") and tok.kind != "chord":
            self.errors.append((i, "a bar line must be followed by its chord"))
        if tok.kind == "chord":
            self._on_chord(i, tok, after_bar=prev.startswith("BAR:"))
        elif self.bar_len is not None:
            self._on_timed(i, tok)

    def _on_special(self, i: int, text: str) -> None:
        if (text == "BOS" and i == 0) or (text == "EOS" and i == len(self.tokens) - 1):
            return
        self.errors.append((i, f"{text} out of place"))

    def _on_bar(self, i: int, tok: Token) -> None:
        self.close_run()
        if self.bar_len is not None and self.pos != self.bar_len:
            self.errors.append((i, f"bar filled {self.pos} of {self.bar_len} units"))
        assert tok.meter is not None  # a parsed bar token always has its meter
        self.started, self.bar_len, self.pos = True, bar_units(tok.meter), 0

    def _on_chord(self, i: int, tok: Token, after_bar: bool) -> None:
        self.close_run()
        if not after_bar and tok.chord == self.chord:
            self.errors.append((i, "redundant chord change"))
        self.chord = tok.chord

    def _on_timed(self, i: int, tok: Token) -> None:
        """A note, hold or rest: it fits the bar and follows its own rule."""
        assert self.bar_len is not None
        if self.pos + tok.dur > self.bar_len:
            self.errors.append((i, "duration runs past the bar line"))
        {"note": self._on_note, "hold": self._on_hold, "rest": self._on_rest}[tok.kind](i, tok)
        self.run.append(tok.dur)
        self.pos += tok.dur

    def _on_note(self, i: int, tok: Token) -> None:
        self.close_run()
        self.run_kind, self.run_start = "note", i
        if self.chord is not None and not type_pcs(self.chord.root, self.chord.family, tok.ntype):
            self.errors.append((i, f"no {tok.ntype} tone exists under {self.chord.token}"))
        phrase_start = self.silence >= PHRASE_GAP
        if phrase_start != (tok.iv == "~"):
            self.errors.append((i, "interval bucket does not match the phrase position"))
        self.sounding, self.silence = True, 0

    def _on_hold(self, i: int, tok: Token) -> None:
        if not self.sounding:
            self.errors.append((i, "hold without a sounding note"))
            self.silence += tok.dur
        if self.run_kind != "note":
            self.run_kind, self.run_start = "note", i

    def _on_rest(self, i: int, tok: Token) -> None:
        if self.run_kind != "rest":
            self.close_run()
            self.run_kind, self.run_start = "rest", i
        self.sounding = False
        self.silence += tok.dur

    def finish(self, complete: bool) -> list[Violation]:
        self.close_run()
        if complete and self.bar_len is not None and self.pos != self.bar_len:
            self.errors.append((len(self.tokens) - 1, f"last bar filled {self.pos} of {self.bar_len} units"))
        return self.errors


def check(tokens: list[str], complete: bool = True) -> list[Violation]:
    """List the grammar violations of a token sequence as (index, reason), in the rules' order
    (see the module doc); ``complete``: the last bar must be filled too."""
    checker = _Checker(tokens)
    for i, text in enumerate(tokens):
        checker.token(i, text)
    return checker.finish(complete)


def grammar_errors(tokens: list[str], complete: bool = True) -> float:
    """Fraction of tokens that break the grammar (0.0 for a valid sequence)."""
    if not tokens:
        return 0.0
    bad = {i for i, _ in check(tokens, complete)}
    return len(bad) / len(tokens)
