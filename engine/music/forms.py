"""Song forms: the sections a chorus is made of, and the skeleton each form keeps.

A `Form` lists its sections (label, bars). A section whose label came before repeats it: its bars
are the earlier section's, except the last ``ending_bars`` (a second ending, written afresh);
with ``close_with_first`` the last section repeats its first occurrence whole instead. The last
section's last half bar is anchored on a chord that leads back to the top (a turnaround).

Anchors are the form's skeleton: at a (bar, half-bar slot) of a section, the chord's root must be
one of the given degrees (semitones above the key's tonic). The harmony model writes every chord;
anchors only rule out roots that would break the form (a blues has IV in bar 5). Named
progressions (``blues``, ``minor blues``, ``rhythm``, ``ii-V-I``) are plain chord text for the
``changes`` option.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.errors import EngineError

Anchors = dict[tuple[int, int], frozenset[int]]  # (bar in section, slot 0|1) -> allowed degrees


class FormError(EngineError, ValueError):
    """An unknown form or progression name; the message lists the allowed ones."""


@dataclass(frozen=True)
class SectionSpec:
    label: str
    bars: int
    anchors: Anchors = field(default_factory=dict)


@dataclass(frozen=True)
class Form:
    """A chorus: sections in order. See the module docstring."""

    name: str
    sections: tuple[SectionSpec, ...]
    ending_bars: int = 2
    close_with_first: bool = False

    @property
    def bars(self) -> int:
        return sum(s.bars for s in self.sections)

    def layout(self) -> list[tuple[str, int, int, int]]:
        """Per section: (label, occurrence number from 0, first bar in the chorus, bars)."""
        out, seen, start = [], {}, 0
        for s in self.sections:
            out.append((s.label, seen.get(s.label, 0), start, s.bars))
            seen[s.label] = seen.get(s.label, 0) + 1
            start += s.bars
        return out


def _a(*pairs: tuple[tuple[int, int], tuple[int, ...]]) -> Anchors:
    return {pos: frozenset(degrees) for pos, degrees in pairs}


_TO_TOP = (7, 1, 2)  # a V, its tritone substitute or a ii leads back to I
_BLUES = SectionSpec("A", 12, _a(((0, 0), (0,)), ((4, 0), (5,)), ((6, 0), (0,)), ((8, 0), (2, 7)),
                                 ((9, 0), (7,)), ((10, 0), (0,)), ((11, 1), _TO_TOP)))
_MINOR_BLUES = SectionSpec("A", 12, _a(((0, 0), (0,)), ((4, 0), (5,)), ((6, 0), (0,)), ((8, 0), (8, 2, 7)),
                                       ((9, 0), (7,)), ((10, 0), (0,)), ((11, 1), (*_TO_TOP, 8))))

FORMS: dict[str, Form] = {
    "blues": Form("blues", (_BLUES,)),
    "minor blues": Form("minor blues", (_MINOR_BLUES,)),
    "aaba": Form("aaba", (
        SectionSpec("A", 8, _a(((0, 0), (0,)), ((7, 1), _TO_TOP))),
        SectionSpec("A", 8, _a(((0, 0), (0,)), ((7, 0), (0,)),)),
        SectionSpec("B", 8, _a(((7, 1), _TO_TOP))),
        SectionSpec("A", 8, _a(((7, 1), _TO_TOP))))),
    "abac": Form("abac", (
        SectionSpec("A", 8, _a(((0, 0), (0,)),)),
        SectionSpec("B", 8, _a(((7, 1), _TO_TOP),)),
        SectionSpec("A", 8, _a(((0, 0), (0,)),)),
        SectionSpec("C", 8, _a(((6, 0), (0,)), ((7, 1), _TO_TOP))))),
    "16": Form("16", (
        SectionSpec("A", 8, _a(((0, 0), (0,)), ((7, 0), (7, 2)))),
        SectionSpec("B", 8, _a(((6, 0), (0,)), ((7, 1), _TO_TOP))))),
    "aabb": Form("aabb", (
        SectionSpec("A", 8, _a(((0, 0), (0,)), ((7, 0), (0, 7)))),
        SectionSpec("A", 8, _a(((7, 0), (0,)),)),
        SectionSpec("B", 8, _a(((7, 0), (0, 7)),)),
        SectionSpec("B", 8, _a(((7, 0), (0,)),))), ending_bars=1, close_with_first=False),
    "free": Form("free", (SectionSpec("A", 16, _a(((0, 0), (0,)),)),), close_with_first=False),
    # A chorale in bar form: two phrases sung twice (the Stollen), four more (the Abgesang), each
    # of two bars whose second half ends on a cadence's goal: I or V, in the middle also vi or iii;
    # the last phrase on I.
    "chorale": Form("chorale", (
        SectionSpec("A", 2, _a(((0, 0), (0,)), ((1, 1), (0, 7)))), SectionSpec("B", 2, _a(((1, 1), (0, 7)),)),
        SectionSpec("A", 2, _a(((1, 1), (0, 7)),)), SectionSpec("B", 2, _a(((1, 1), (0, 7)),)),
        SectionSpec("C", 2, _a(((1, 1), (0, 7, 9, 4)),)), SectionSpec("D", 2, _a(((1, 1), (0, 7, 9, 4)),)),
        SectionSpec("E", 2, _a(((1, 1), (0, 7)),)), SectionSpec("F", 2, _a(((1, 1), (0,)),))),
        ending_bars=1, close_with_first=False),
}
FORM_CHOICES: tuple[str, ...] = ("blues", "aaba", "abac", "16", "aabb", "free", "chorale")

# Named generic progressions for the ``changes`` option, written in C and transposed to the key.
PROGRESSIONS: dict[str, tuple[str, str]] = {
    "blues": ("major", "C7 | F7 | C7 | C7 | F7 | F7 | C7 | Am7 D7 | Dm7 | G7 | C7 A7 | Dm7 G7"),
    "minor blues": ("minor", "Cm7 | Fm7 | Cm7 | Cm7 | Fm7 | Fm7 | Cm7 | Cm7 | Ab7 | G7 | Cm7 | Dm7b5 G7"),
    "rhythm": ("major", "C6 A7 | Dm7 G7 | C6 A7 | Dm7 G7 | Gm7 C7 | F6 F#dim7 | C6 G7 | C6 | "
                        "C6 A7 | Dm7 G7 | C6 A7 | Dm7 G7 | Gm7 C7 | F6 F#dim7 | C6 G7 | C6 | "
                        "E7 | E7 | A7 | A7 | D7 | D7 | G7 | G7 | "
                        "C6 A7 | Dm7 G7 | C6 A7 | Dm7 G7 | Gm7 C7 | F6 F#dim7 | C6 G7 | C6"),
    "ii-v-i": ("major", "Dm7 | G7 | Cmaj7 | Cmaj7"),
}


def get_form(name: str, mode: str = "major") -> Form:
    """The form called ``name`` (``blues`` in a minor key is the minor blues).

    Raises:
        FormError: an unknown name, listing the choices.
    """
    key = (name or "").strip().lower()
    if key == "blues" and mode == "minor":
        key = "minor blues"
    if key not in FORMS:
        raise FormError(f"unknown form {name!r}: choose from {', '.join(FORM_CHOICES)}")
    return FORMS[key]


def progression(name: str) -> tuple[str, str] | None:
    """(mode, chord text in C) of a named progression, or None when ``name`` is not one."""
    return PROGRESSIONS.get(" ".join((name or "").strip().lower().replace("–", "-").split()))


_KEY_NAME_RE = re.compile(r"^([a-g])([#b]?)\s*(m|min|minor|maj|major)?$")
_LETTER = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


def parse_key_name(text: str) -> tuple[int, str]:
    """``Bb`` -> (10, "major"); ``F minor``, ``Fm``, ``f# min`` -> minor keys.

    Raises:
        FormError: not a key, with examples.
    """
    m = _KEY_NAME_RE.match(" ".join((text or "").strip().lower().split()))
    if not m:
        raise FormError(f"key {text!r} is not a key like C, Bb, F# minor or Ebm")
    pc = (_LETTER[m.group(1)] + {"#": 1, "b": -1, "": 0}[m.group(2)]) % 12
    return pc, "minor" if m.group(3) in ("m", "min", "minor") else "major"
