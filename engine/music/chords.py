"""Chord symbols: parse the labels of the corpora into root, family, pitch classes and a name.

Accepted spellings (case of the root letter matters, the rest is forgiving):

* Weimar Jazz Database (Jazzomat): ``Bb7``, ``Ebj7``, ``C-7``, ``C-j7``, ``Dm7b5``, ``F7alt``,
  ``Bbsus7``, ``G79b`` (accidentals *after* the tension number), ``Db7911#``, ``C6``, ``Co7``,
  ``A+7``, ``NC``, slash chords ``C7/E``.
* Lead sheets and iReal: ``Cmaj7``, ``CM7``, ``C^7``, ``CΔ7``, ``Cm7``, ``Cmin7``, ``C°``, ``Cdim7``,
  ``Cø``, ``Ch7``, ``C7b9`` (accidentals *before* the number), ``C7sus4``, ``Cadd9``, ``C9``, ``C13``.
* Nottingham (Jukedeck): ``G``, ``D7``, ``Em``, ``Cd`` (diminished), ``Ca`` (augmented), ``C/e``.

Every chord reduces to one of a small set of *families* (``FAMILIES``): the grammar and the model
see only ``root + family``; the full pitch-class set (with tensions) is kept for voicing.

Chord -> scale table (used by the grammar's ``S`` token type), by family:

========== =========================== =====================
family     chord tones (from the root)  scale
========== =========================== =====================
maj, 6,    1 3 5 (6) (7)                ionian (major)
maj7
min, min7  1 b3 5 (b7)                  dorian
min6       1 b3 5 6                     dorian
minmaj7    1 b3 5 7                     melodic minor
7          1 3 5 b7                     mixolydian
7sus, sus  1 4 5 (b7)                   mixolydian
7alt       1 3 b7                       altered (super-locrian)
m7b5       1 b3 b5 b7                   locrian
dim, dim7  1 b3 b5 (bb7)                whole-half diminished
aug, aug7  1 3 #5 (b7)                  whole tone
NC         (none)                       (none)
========== =========================== =====================
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from engine.errors import ChordError

PITCH_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

IONIAN = (0, 2, 4, 5, 7, 9, 11)
DORIAN = (0, 2, 3, 5, 7, 9, 10)
MELODIC_MINOR = (0, 2, 3, 5, 7, 9, 11)
MIXOLYDIAN = (0, 2, 4, 5, 7, 9, 10)
ALTERED = (0, 1, 3, 4, 6, 8, 10)
LOCRIAN = (0, 1, 3, 5, 6, 8, 10)
DIMINISHED_WH = (0, 2, 3, 5, 6, 8, 9, 11)
WHOLE_TONE = (0, 2, 4, 6, 8, 10)

# family -> (chord tones as intervals from the root, scale, canonical suffix)
FAMILIES: dict[str, tuple[tuple[int, ...], tuple[int, ...], str]] = {
    "maj": ((0, 4, 7), IONIAN, ""),
    "min": ((0, 3, 7), DORIAN, "m"),
    "dim": ((0, 3, 6), DIMINISHED_WH, "dim"),
    "aug": ((0, 4, 8), WHOLE_TONE, "aug"),
    "sus": ((0, 5, 7), MIXOLYDIAN, "sus4"),
    "6": ((0, 4, 7, 9), IONIAN, "6"),
    "maj7": ((0, 4, 7, 11), IONIAN, "maj7"),
    "7": ((0, 4, 7, 10), MIXOLYDIAN, "7"),
    "min6": ((0, 3, 7, 9), DORIAN, "m6"),
    "min7": ((0, 3, 7, 10), DORIAN, "m7"),
    "minmaj7": ((0, 3, 7, 11), MELODIC_MINOR, "m(maj7)"),
    "m7b5": ((0, 3, 6, 10), LOCRIAN, "m7b5"),
    "dim7": ((0, 3, 6, 9), DIMINISHED_WH, "dim7"),
    "aug7": ((0, 4, 8, 10), WHOLE_TONE, "aug7"),
    "7sus": ((0, 5, 7, 10), MIXOLYDIAN, "7sus4"),
    "7alt": ((0, 4, 10), ALTERED, "7alt"),
}
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)
NO_CHORD = "NC"

# Tension number -> interval (natural form); accidentals shift by one semitone.
_TENSION = {2: 2, 4: 5, 6: 9, 9: 2, 11: 5, 13: 9, 5: 7}

_ROOT_RE = re.compile(r"^([A-Ga-g])([#b♯♭]*)")


@dataclass(frozen=True)
class Chord:
    """A parsed chord symbol.

    Attributes:
        root: pitch class of the root (0 = C), or None for no chord.
        family: one of ``FAMILY_NAMES`` or ``"NC"``.
        tensions: extra intervals above the root (pitch classes relative to the root).
        bass: pitch class of a slash bass, or None.
        label: the label as written in the source.
    """

    root: int | None
    family: str
    tensions: frozenset[int] = field(default_factory=frozenset)
    bass: int | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if self.family == NO_CHORD:
            if self.root is not None:
                raise ChordError(f"no-chord must have no root, got {self.root!r}")
        elif self.family not in FAMILIES:
            raise ChordError(f"unknown chord family {self.family!r}")
        elif self.root is None or not 0 <= self.root < 12:
            raise ChordError(f"chord root must be a pitch class 0..11, got {self.root!r}")

    @property
    def is_nc(self) -> bool:
        return self.family == NO_CHORD

    @property
    def token(self) -> str:
        """Name of the reduced chord (root + family), as the grammar sees it: ``Bb7``, ``NC``."""
        return token_name(self.root, self.family)

    @property
    def name(self) -> str:
        """Canonical lead-sheet name with tensions and slash bass, e.g. ``G7(b9,13)/B``."""
        if self.is_nc:
            return NO_CHORD
        text = self.token
        if self.family == "7alt" and self.tensions:
            text = PITCH_NAMES[self.root] + "7"
        if self.tensions:
            text += "(" + ",".join(_tension_name(t) for t in sorted(self.tensions)) + ")"
        if self.bass is not None and self.bass != self.root:
            text += "/" + PITCH_NAMES[self.bass]
        return text

    @property
    def reduced(self) -> Chord:
        """The chord the grammar sees: root and family only."""
        return Chord(self.root, self.family)

    @property
    def chord_pcs(self) -> frozenset[int]:
        """Pitch classes of the family's chord tones (what the grammar calls C)."""
        return chord_tones(self.root, self.family)

    @property
    def scale_pcs(self) -> frozenset[int]:
        return scale_tones(self.root, self.family)

    @property
    def pcs(self) -> frozenset[int]:
        """All pitch classes of the chord, tensions included (for voicings and inference)."""
        if self.is_nc:
            return frozenset()
        return self.chord_pcs | {(self.root + t) % 12 for t in self.tensions}

    def transpose(self, semitones: int) -> Chord:
        if self.is_nc:
            return self
        bass = None if self.bass is None else (self.bass + semitones) % 12
        return Chord((self.root + semitones) % 12, self.family, self.tensions, bass)


def token_name(root: int | None, family: str) -> str:
    if family == NO_CHORD:
        return NO_CHORD
    return PITCH_NAMES[root] + FAMILIES[family][2]


@lru_cache(maxsize=512)
def chord_tones(root: int | None, family: str) -> frozenset[int]:
    if family == NO_CHORD:
        return frozenset()
    return frozenset((root + i) % 12 for i in FAMILIES[family][0])


@lru_cache(maxsize=512)
def scale_tones(root: int | None, family: str) -> frozenset[int]:
    if family == NO_CHORD:
        return frozenset()
    return frozenset((root + i) % 12 for i in FAMILIES[family][1])


def _tension_name(interval: int) -> str:
    return {1: "b9", 2: "9", 3: "#9", 5: "11", 6: "#11", 8: "b13", 9: "13"}.get(interval, str(interval))


def _parse_root(text: str, label: str) -> tuple[int, str]:
    m = _ROOT_RE.match(text)
    if not m:
        raise ChordError(f"unknown chord label {label!r}: no root note")
    letter, accidentals = m.groups()
    pc = _LETTER_PC[letter.upper()]
    for a in accidentals:
        pc += 1 if a in "#♯" else -1
    return pc % 12, text[m.end():]


def _parse_tensions(text: str, label: str) -> set[int]:
    """Parse a run of tension numbers; accidentals may stand before (``b9``) or after (``9b``)."""
    if not text:
        return set()
    if not re.fullmatch(r"(?:[#b+\-]?(?:1[13]|[2-9])[#b+\-]?)+", text):
        raise ChordError(f"unknown chord label {label!r}: cannot read tensions {text!r}")
    postfix = text[0].isdigit()
    parts = re.findall(r"(?:1[13]|[2-9])[#b+\-]?" if postfix else r"[#b+\-]?(?:1[13]|[2-9])", text)
    out: set[int] = set()
    for part in parts:
        acc = part[-1] if postfix and not part[-1].isdigit() else (part[0] if not part[0].isdigit() else "")
        num = int(part.strip("#b+-"))
        if num in (7,):
            continue
        if num not in _TENSION:
            raise ChordError(f"unknown chord label {label!r}: tension {num} is not 2, 4, 5, 6, 9, 11 or 13")
        shift = 1 if acc in "#+" and acc else (-1 if acc in "b-" and acc else 0)
        out.add((_TENSION[num] + shift) % 12)
    return out


# Quality prefixes, longest first: (regex, family-before-seventh, family-with-seventh)
_QUALITIES: tuple[tuple[str, str], ...] = (
    (r"m7b5|min7b5|-7b5|ø7?|h7?|Ø7?", "m7b5"),
    (r"(?:-|m|min|mi)\(?(?:j7|maj7|M7|\^7|Δ7?)\)?", "minmaj7"),
    (r"(?:-|m|min|mi)7", "min7"),
    (r"(?:-|m|min|mi)6", "min6"),
    (r"(?:-|min|mi|m)(?!aj)", "min"),
    (r"o7|°7|dim7", "dim7"),
    (r"o|°|dim|d(?![a-z])", "dim"),
    (r"\+7|aug7|7#5|7\+5", "aug7"),
    (r"\+j7|\+maj7|augmaj7", "aug"),
    (r"\+|aug|a(?![a-z])", "aug"),
    (r"j7|maj7|M7|\^7|Δ7?|\^|j|maj|M(?!7)", "maj7"),
    (r"7sus4?|sus4?7|sus7", "7sus"),
    (r"sus[24]?", "sus"),
    (r"7alt|alt", "7alt"),
    (r"7", "7"),
    (r"6", "6"),
)
_QUALITY_RES = tuple((re.compile(p), fam) for p, fam in _QUALITIES)


def _parse_quality(text: str, label: str) -> tuple[str, set[int]]:
    family = "maj"
    rest = text
    for regex, fam in _QUALITY_RES:
        m = regex.match(text)
        if m:
            family, rest = fam, text[m.end():]
            break
    else:
        # Dominant ninths and thirteenths of lead sheets: C9, C13, C9#11; 69 is a six-nine.
        if re.match(r"69|6/9", text):
            family, rest = "6", text[2:] if text.startswith("69") else text[3:]
            rest = "9" + rest
        elif re.match(r"(9|11|13)", text):
            family = "7"
        elif text.startswith("add"):
            rest = text[3:]
    rest = rest.replace("(", "").replace(")", "").replace(",", "").replace("add", "")
    if family in ("7", "7sus") and "sus" in rest:
        family, rest = "7sus", rest.replace("sus4", "").replace("sus", "")
    if rest.startswith("sus"):
        family = "7sus" if family == "7" else "sus"
        rest = rest[3:].lstrip("4")
        if rest.startswith("7"):
            family, rest = "7sus", rest[1:]
    if rest.startswith("alt"):
        family, rest = "7alt", rest[3:]
    if family in ("maj", "min") and rest.startswith("69"):
        family, rest = ("6" if family == "maj" else "min6"), rest[1:]
    if family == "min" and re.match(r"9|11|13", rest):
        family = "min7"  # Cm9, Cm11: minor sevenths with tensions
    tensions = _parse_tensions(rest, label)
    if family == "7" and tensions & {1, 3, 8}:
        family = "7alt"  # b9, #9 and b13 dominants take the altered scale
    if family == "aug" and 10 in tensions:
        family = "aug7"
    return family, tensions


@lru_cache(maxsize=4096)
def parse_chord(label: str) -> Chord:
    """Parse a chord label into a `Chord`.

    Raises:
        ChordError: the label is not a chord symbol; the message names it.
    """
    if not isinstance(label, str):
        raise ChordError(f"unknown chord label {label!r}: not a string")
    text = label.strip()
    if text.upper() in ("NC", "N.C.", "N.C", "N", "X", ""):
        if text == "":
            raise ChordError("unknown chord label '': empty")
        return Chord(None, NO_CHORD, label=label)
    main, _, bass_text = text.partition("/")
    root, rest = _parse_root(main, label)
    bass = None
    if bass_text:
        if bass_text in ("9",) and rest == "6":  # 6/9
            rest, bass_text = "69", ""
        else:
            b, leftover = _parse_root(bass_text[0].upper() + bass_text[1:], label)
            if leftover:
                raise ChordError(f"unknown chord label {label!r}: bad slash bass {bass_text!r}")
            bass = b
    family, tensions = _parse_quality(rest, label)
    tensions -= {i % 12 for i in FAMILIES[family][0]}
    return Chord(root, family, frozenset(tensions), bass, label)
