from __future__ import annotations

import csv

import pytest

from engine.errors import ChordError
from engine.music.chords import FAMILIES, PITCH_NAMES, Chord, parse_chord
from tests.helpers import corpus_dir

EXAMPLES = {
    "Bb7": ("Bb7", {10, 2, 5, 8}),
    "Ebj7": ("Ebmaj7", {3, 7, 10, 2}),
    "C-7": ("Cm7", {0, 3, 7, 10}),
    "C-j7": ("Cm(maj7)", {0, 3, 7, 11}),
    "Dm7b5": ("Dm7b5", {2, 5, 8, 0}),
    "F7alt": ("F7alt", {5, 9, 3}),
    "Bbsus7": ("Bb7sus4", {10, 3, 5, 8}),
    "G79b": ("G7alt", {7, 11, 5, 8}),
    "Db7#11": ("Db7", {1, 5, 8, 11, 7}),
    "Db7911#": ("Db7", {1, 5, 8, 11, 3, 7}),
    "C6": ("C6", {0, 4, 7, 9}),
    "Co7": ("Cdim7", {0, 3, 6, 9}),
    "C7/E": ("C7", {0, 4, 7, 10}),
    "Cmaj7": ("Cmaj7", {0, 4, 7, 11}),
    "Cm7": ("Cm7", {0, 3, 7, 10}),
    "C°": ("Cdim", {0, 3, 6}),
    "Cø": ("Cm7b5", {0, 3, 6, 10}),
    "Cd": ("Cdim", {0, 3, 6}),
    "Ca": ("Caug", {0, 4, 8}),
    "Em": ("Em", {4, 7, 11}),
    "A7b9": ("A7alt", {9, 1, 7, 10}),
    "Fmaj7": ("Fmaj7", {5, 9, 0, 4}),
    "C^7": ("Cmaj7", {0, 4, 7, 11}),
}


@pytest.mark.parametrize("label", sorted(EXAMPLES))
def test_examples_parse_to_family_and_pitch_classes(label: str) -> None:
    token, pcs = EXAMPLES[label]
    chord = parse_chord(label)
    assert chord.token == token
    assert chord.pcs == frozenset(pcs)


def test_slash_bass_and_no_chord() -> None:
    assert parse_chord("C7/E").bass == 4
    assert parse_chord("C/e").bass == 4
    assert parse_chord("C7/E").name == "C7/E"
    nc = parse_chord("NC")
    assert nc.is_nc and nc.pcs == frozenset() and nc.name == "NC"


@pytest.mark.parametrize("label", ["H7", "Cxyz", "", "C7/Q", "C7b15", "7"])
def test_unknown_label_names_itself(label: str) -> None:
    with pytest.raises(ChordError) as err:
        parse_chord(label)
    assert repr(label) in str(err.value)


def test_every_canonical_name_parses_back() -> None:
    for root in range(12):
        for family in FAMILIES:
            chord = Chord(root, family)
            assert parse_chord(chord.name).reduced == chord, chord.name
            assert chord.name.startswith(PITCH_NAMES[root])


def test_transpose_moves_root_and_bass() -> None:
    c = parse_chord("C7/E").transpose(2)
    assert (c.root, c.bass, c.family) == (2, 6, "7")


@pytest.mark.corpus
def test_every_wjazzd_chord_label_parses() -> None:
    root = corpus_dir() / "wjazzd"
    labels = set()
    for path in (root / "csv_beats").glob("*.csv"):
        with path.open(newline="") as fh:
            labels |= {row["chord"] for row in csv.DictReader(fh) if row["chord"]}
    assert len(labels) >= 380
    bad = []
    for label in sorted(labels):
        try:
            parse_chord(label)
        except ChordError as exc:
            bad.append(str(exc))
    assert not bad
