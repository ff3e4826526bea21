"""The chorale rules count what they should on small hand-written four-part examples."""
from __future__ import annotations

import pytest

from engine.band.chorale import Chorale, ChoraleBeat, ChoraleError, check, is_cadence
from engine.music.chords import parse_chord

C, G, F, AM, DM = (parse_chord(x) for x in ("C", "G", "F", "Am", "Dm"))


def chorale(*rows: tuple, tonic: int = 0) -> Chorale:
    """Rows of (soprano, alto, tenor, bass, chord[, fermata])."""
    return Chorale(tuple(ChoraleBeat(tuple(r[:4]), r[4], fermata=len(r) > 5 and r[5]) for r in rows), tonic)


def test_a_clean_progression_breaks_no_rule() -> None:
    counts = check(chorale((72, 67, 64, 48, C), (71, 67, 62, 43, G), (72, 67, 64, 48, C, True)))
    assert (counts.parallels, counts.crossings, counts.range_violations, counts.spacing) == (0, 0, 0, 0)
    assert (counts.beats, counts.transitions, counts.chord_changes) == (3, 2, 2)
    assert (counts.leading_tones, counts.unresolved_leading_tones) == (1, 0)
    assert (counts.phrase_ends, counts.cadences) == (1, 1)


def test_parallel_fifths_between_tenor_and_bass_are_counted() -> None:
    # C3-G3 up to D3-A3: tenor and bass a fifth apart, both moving the same way
    counts = check(chorale((72, 64, 55, 48, C), (77, 65, 57, 50, DM)))
    assert (counts.parallels, counts.parallel_fifths, counts.parallel_octaves) == (1, 1, 0)
    assert counts.rates()["parallels_per_100_changes"] == 100.0


def test_parallel_octaves_and_a_held_fifth() -> None:
    # soprano and bass in octaves C-D; alto holds G over the bass moving C-D (oblique: no parallel)
    counts = check(chorale((72, 67, 64, 48, C), (74, 67, 65, 50, DM)))
    assert (counts.parallel_octaves, counts.parallel_fifths) == (1, 0)


def test_a_crossing_a_voice_out_of_range_and_wide_spacing() -> None:
    counts = check(chorale((67, 69, 60, 48, F), (84, 60, 55, 48, C), (72, 67, 64, 30, C)))
    assert counts.crossings == 1  # the alto above the soprano on beat 1
    assert counts.range_violations == 2  # the soprano's C6 on beat 2, the bass's F#1 on beat 3
    assert counts.spacing == 1  # 24 semitones between soprano and alto on beat 2
    assert counts.rates()["crossings_per_100_beats"] == pytest.approx(33.333, abs=1e-3)


def test_a_leading_tone_that_falls_is_unresolved() -> None:
    counts = check(chorale((74, 71, 67, 43, G), (72, 67, 64, 48, C)))  # the alto's B falls to G
    assert (counts.leading_tones, counts.unresolved_leading_tones) == (1, 1)


def test_phrase_ends_on_cadences_and_elsewhere() -> None:
    counts = check(chorale((72, 67, 64, 48, C), (72, 65, 60, 53, F), (72, 67, 64, 48, C, True),
                           (74, 69, 65, 50, DM), (76, 72, 67, 45, AM, True), (74, 71, 67, 43, G, True)))
    # IV-I is a cadence, Dm-Am (a fifth apart) counts as one, I-...-V is a half cadence
    assert (counts.phrase_ends, counts.cadences) == (3, 3)
    assert not is_cadence(C, DM, 0)
    assert not is_cadence(G, parse_chord("G7"), 0)  # a seventh chord does not end a phrase
    assert is_cadence(parse_chord("Bdim"), C, 0)


def test_a_resting_voice_is_left_out_of_the_counts() -> None:
    counts = check(chorale((72, 67, 64, 48, C), (74, None, 65, 50, DM), (76, 67, 67, 48, C)))
    assert counts.beats == 2 and counts.transitions == 0


def test_a_bad_beat_names_the_bad_value() -> None:
    with pytest.raises(ChoraleError, match="4 voices, got 3"):
        ChoraleBeat((72, 67, 60))
    with pytest.raises(ChoraleError, match="0..127, got 130"):
        ChoraleBeat((130, 67, 60, 48))


def test_fifths_by_contrary_motion_are_counted_apart() -> None:
    # tenor G3 -> C4 up, bass C3 -> F2 down: a fifth, then a twelfth (a fifth again), contrary
    counts = check(chorale((72, 67, 55, 48, C), (72, 69, 60, 41, F)))
    assert (counts.parallels, counts.contrary) == (0, 1)
