"""Spelling: which letter and accidental a pitch is written with, in a key and against a chord.

A MIDI number says nothing of B-flat or A-sharp; a musician reads the one the key and the
harmony imply. The rules, in order:

1. The key signature's tonic is the usual one for its pitch class and mode (`key_tonic`): Bb
   major, not A# major; F# minor, not Gb minor.
2. A chord's root is spelled by its degree in the key (`spell_root`): the diatonic degrees with
   the key's letters, the others as the flat degrees (bII, bIII, bVI, bVII), except a raised
   fourth under a half-diminished or diminished chord (#iv) and, in minor, the raised sixth and
   seventh and the major third (the V of the relative major's V, the dominant's leading tone).
3. A note (`spell_note`) in the key's scale takes the key's letter; a note of the sounding
   chord (tensions included) takes the letter its interval above the root implies (the b7 of
   Bb7 is Ab, the #9 of G7 is A#, the b5 of F#m7b5 is C); any other note is a chromatic
   passing tone, written sharp on the way up and flat on the way down.
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
_SHARP_ELEVEN_FAMILIES = ("7", "maj", "maj7", "6", "7alt")  # a tritone over these is a #11, not a b5
_DIM_FAMILIES = ("dim", "dim7", "m7b5")


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
    if degree == 6 and family in _DIM_FAMILIES:
        return _spelled(t_letter + 3, root)  # #iv half-diminished
    chromatic = _MINOR_CHROMATIC if mode == "minor" else _MAJOR_CHROMATIC
    return _spelled(t_letter + chromatic[degree], root)


def spell_note(pitch: int, tonic: int, mode: str, chord: Chord | None = None, rising: bool = True) -> tuple[str, int, int]:
    """(letter, alter, octave) of a MIDI ``pitch`` in the key over ``chord`` (rule 3 of the module
    docstring); ``rising``: the line goes up from here (a chromatic passing tone is sharp)."""
    pc = pitch % 12
    t_letter = LETTERS.index(key_tonic(tonic, mode)[0])
    scale = MINOR if mode == "minor" else MAJOR
    degree = (pc - tonic) % 12
    if chord is not None and not chord.is_nc and pc in chord.pcs:
        name, alter = _spelled(LETTERS.index(spell_root(chord.root, tonic, mode, chord.family)[0])
                               + _chord_steps((pc - chord.root) % 12, chord.family), pc)
        if abs(alter) <= 1 or (alter == -2 and chord.family == "dim7"):
            return name, alter, _octave(pitch, name, alter)
    if degree in scale:
        name, alter = _spelled(t_letter + scale.index(degree), pc)
        if abs(alter) <= 1:
            return name, alter, _octave(pitch, name, alter)
    if pc in LETTER_PC:
        name, alter = LETTERS[LETTER_PC.index(pc)], 0
    elif rising:  # a chromatic passing tone: the lower letter raised, or the upper one lowered
        name, alter = LETTERS[LETTER_PC.index((pc - 1) % 12)], 1
    else:
        name, alter = LETTERS[LETTER_PC.index((pc + 1) % 12)], -1
    return name, alter, _octave(pitch, name, alter)


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
