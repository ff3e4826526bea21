"""Spelling: which letter and accidental a pitch is written with, in a key and against a chord.

A MIDI number says nothing of B-flat or A-sharp; a musician reads the one the key and the
harmony imply. The rules, in order:

1. The key signature's tonic is the usual one for its pitch class and mode (`key_tonic`): Bb
   major, not A# major; F# minor, not Gb minor.
2. A chord's root is spelled by its degree in the key (`spell_root`): the diatonic degrees with
   the key's letters, the others as the flat degrees (bII, bIII, bVI, bVII), except a diminished
   chord's root, which leads up a semitone into the next degree's chord (#i, #ii, #iv, #v: D#dim7
   to Em in D), a raised fourth under a half-diminished chord (#iv) and, in minor, the raised
   sixth and seventh and the major third (the V of the relative major's V, the dominant's leading tone).
3. A note (`spell_note`) of the sounding chord (tensions included) or of the chord's scale
   (`engine.music.chords`: mixolydian over a dominant, ionian over a major sixth, ...) takes the
   letter its interval above the root implies (the b7 of Bb7 is Ab, the #9 of G7 is A#, the b5 of
   F#m7b5 is C, the fourth of Db6 is Gb); else a note in the key's scale takes the key's letter
   (Bb in F). Any other note is chromatic: a natural where it is one (B in B-flat major);
   raised when it leads a semitone up into a note of the key or the harmony (C# to D over Bbmaj7),
   lowered when it leads a semitone down to one; otherwise as the key signature leans: flat in a
   flat key (Gb, not F#, over Bb7 in B-flat), sharp in a sharp key, and in C major or A minor
   sharp on the way up and flat on the way down.
"""
from __future__ import annotations

from engine.music.chords import Chord

LETTERS = "CDEFGAB"
LETTER_PC = (0, 2, 4, 5, 7, 9, 11)
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# the tonic of each pitch class's key as written: (letter index, alter)
_MAJOR_TONICS = ((0, 0), (1, -1), (1, 0), (2, -1), (2, 0), (3, 0), (4, -1), (4, 0), (5, -1), (5, 0), (6, -1), (6, 0))
_MINOR_TONICS = ((0, 0), (0, 1), (1, 0), (2, -1), (2, 0), (3, 0), (3, 1), (4, 0), (4, 1), (5, 0), (6, -1), (6, 0))
# chromatic degrees (semitones above the tonic) -> letter steps above the tonic's letter
_MAJOR_CHROMATIC = {1: 1, 3: 2, 6: 4, 8: 5, 10: 6}
_MINOR_CHROMATIC = {1: 1, 4: 2, 6: 4, 9: 5, 11: 6}
# semitones above a chord's root -> letter steps (the usual reading of a chord's tones and tensions)
_INTERVAL_STEPS = {0: 0, 1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 6: 4, 7: 4, 8: 5, 9: 5, 10: 6, 11: 6}
_SHARP_NINE_FAMILIES = ("7", "7alt", "aug7", "maj", "maj7", "6", "aug")  # a minor third over these is a #9
_SHARP_ELEVEN_FAMILIES = ("7", "maj", "maj7", "6", "7alt", "aug", "aug7")  # a tritone over these is a #11, not a b5


def _spelled(letter: int, pc: int) -> tuple[str, int]:
    """(letter, alter) of pitch class ``pc`` written on letter index ``letter``."""
    letter %= 7
    alter = (pc - LETTER_PC[letter] + 6) % 12 - 6
    return LETTERS[letter], alter


def key_tonic(tonic: int, mode: str) -> tuple[str, int]:
    """(letter, alter) of a key's tonic as its signature is usually written (fewest accidentals)."""
    letter, alter = (_MINOR_TONICS if mode == "minor" else _MAJOR_TONICS)[tonic % 12]
    return LETTERS[letter], alter


def key_fifths(tonic: int, mode: str) -> int:
    """The key signature: sharps (positive) or flats (negative)."""
    letter, alter = key_tonic(tonic, mode)
    major_letter = (LETTERS.index(letter) + (2 if mode == "minor" else 0)) % 7
    fifths = {0: 0, 4: 1, 1: 2, 5: 3, 2: 4, 6: 5, 3: -1}[major_letter]  # C G D A E B F
    natural_major = LETTER_PC[major_letter]
    major_pc = (tonic + (3 if mode == "minor" else 0)) % 12
    return fifths + 7 * ((major_pc - natural_major + 6) % 12 - 6)


def spell_root(root: int, tonic: int, mode: str, family: str = "") -> tuple[str, int]:
    """(letter, alter) of a chord root ``root`` in the key (rule 2 of the module docstring)."""
    t_letter = LETTERS.index(key_tonic(tonic, mode)[0])
    degree = (root - tonic) % 12
    scale = MINOR if mode == "minor" else MAJOR
    if degree in scale:
        return _spelled(t_letter + scale.index(degree), root)
    if family in ("dim", "dim7") or (degree == 6 and family == "m7b5"):
        return _spelled(t_letter + scale.index(degree - 1), root)  # a leading-tone chord: #i, #ii, #iv, #v
    chromatic = _MINOR_CHROMATIC if mode == "minor" else _MAJOR_CHROMATIC
    return _spelled(t_letter + chromatic[degree], root)


def spell_note(pitch: int, tonic: int, mode: str, chord: Chord | None = None, next_pitch: int | None = None,
               next_chord: Chord | None = None) -> tuple[str, int, int]:
    """(letter, alter, octave) of a MIDI ``pitch`` in the key over ``chord`` (rule 3 of the module
    docstring); ``next_pitch``: the line's next pitch other than this one (None: none), sounding
    over ``next_chord`` (None: this chord)."""
    pc = pitch % 12
    spelled = _in_harmony(pc, tonic, mode, chord) or _in_key(pc, tonic, mode)
    if spelled is None:
        spelled = _chromatic(pitch, tonic, mode, next_pitch, next_chord or chord)
    return spelled[0], spelled[1], _octave(pitch, *spelled)


def _in_harmony(pc: int, tonic: int, mode: str, chord: Chord | None) -> tuple[str, int] | None:
    """A chord tone or a note of the chord's scale, spelled by its interval above the chord's root."""
    if chord is None or chord.is_nc or pc not in chord.pcs | chord.scale_pcs:
        return None
    root = LETTERS.index(spell_root(chord.root, tonic, mode, chord.family)[0])
    name, alter = _spelled(root + _chord_steps((pc - chord.root) % 12, chord.family), pc)
    return (name, alter) if abs(alter) <= 1 or (alter == -2 and chord.family == "dim7") else None


def _in_key(pc: int, tonic: int, mode: str) -> tuple[str, int] | None:
    """A note of the key's scale on the key's letter."""
    scale = MINOR if mode == "minor" else MAJOR
    degree = (pc - tonic) % 12
    if degree not in scale:
        return None
    name, alter = _spelled(LETTERS.index(key_tonic(tonic, mode)[0]) + scale.index(degree), pc)
    return (name, alter) if abs(alter) <= 1 else None


def _chromatic(pitch: int, tonic: int, mode: str, next_pitch: int | None, next_chord: Chord | None) -> tuple[str, int]:
    """A note outside the key and the harmony: a natural where it is one; else raised when it leads
    a semitone up into a note of the key or the harmony, lowered when it leads a semitone down to
    one, and otherwise as the key signature leans (flat in a flat key, sharp in a sharp key; in C
    major or A minor, sharp on the way up and flat on the way down)."""
    pc = pitch % 12
    if pc in LETTER_PC:
        return LETTERS[LETTER_PC.index(pc)], 0
    raised, lowered = (LETTERS[LETTER_PC.index((pc - 1) % 12)], 1), (LETTERS[LETTER_PC.index((pc + 1) % 12)], -1)
    if next_pitch is not None and abs(next_pitch - pitch) == 1 and _is_home(next_pitch % 12, tonic, mode, next_chord):
        return raised if next_pitch > pitch else lowered
    fifths = key_fifths(tonic, mode)
    if fifths:
        return lowered if fifths < 0 else raised
    return raised if next_pitch is None or next_pitch > pitch else lowered


def _is_home(pc: int, tonic: int, mode: str, chord: Chord | None) -> bool:
    """``pc`` is a note of the key's scale, or of the chord or its scale."""
    scale = MINOR if mode == "minor" else MAJOR
    in_chord = chord is not None and not chord.is_nc and pc in chord.pcs | chord.scale_pcs
    return in_chord or (pc - tonic) % 12 in scale


def _chord_steps(interval: int, family: str) -> int:
    """Letter steps above the root of a chord's tone ``interval`` semitones up (a #9 over a
    dominant, a #11 over a major or dominant chord, a #5 over an augmented one, a dim7's bb7)."""
    if interval == 3 and family in _SHARP_NINE_FAMILIES:
        return 1
    if interval == 6 and family in _SHARP_ELEVEN_FAMILIES:
        return 3
    if interval == 8 and family in ("aug", "aug7"):
        return 4
    if interval == 9 and family == "dim7":
        return 6
    return _INTERVAL_STEPS[interval]


def _octave(pitch: int, letter: str, alter: int) -> int:
    """The written octave (B#3 is MIDI 60, Cb5 is MIDI 71)."""
    return (pitch - alter - LETTER_PC[LETTERS.index(letter)]) // 12 - 1


def chord_text(chord: Chord) -> str:
    """What follows the root in a chord's symbol, the slash bass left out (``m7``, ``7(b9,13)``)."""
    name = chord.name
    base = name.split("/")[0] if chord.bass is not None else name
    root_len = 2 if len(base) > 1 and base[1] in "b#" else 1
    return base[root_len:]
