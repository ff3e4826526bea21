"""The chorale reader's core on a hand-written four-part fixture (no music21, no corpus file)."""
from __future__ import annotations

import pytest

from engine.band.chorale import check
from engine.music import grammar
from training.corpus.bach import VoiceNote, chorale_from_voices
from training.corpus.base import CorpusError
from training.evaluation.chorale import format_rules

# A two-phrase chorale in G major, 4/4 with a one-beat pickup, written for this test:
# soprano | G | G A B C | D(fermata) D C | B A G(fermata) |, with a half cadence and an authentic one.
V = VoiceNote
SOPRANO = [V(0, 1, 67), V(1, 1, 67), V(2, 1, 69), V(3, 1, 71), V(4, 1, 72), V(5, 2, 74, fermata=True),
           V(7, 1, 74), V(8, 1, 72), V(9, 1, 71), V(10, 1, 69), V(11, 2, 67, fermata=True)]
ALTO = [V(0, 1, 62), V(1, 1, 64), V(2, 1, 66), V(3, 1, 62), V(4, 1, 69), V(5, 2, 66),
        V(7, 1, 67), V(8, 1, 67), V(9, 1, 67), V(10, 1, 60), V(11, 2, 59)]
TENOR = [V(0, 1, 59), V(1, 1, 55), V(2, 1, 62), V(3, 1, 59), V(4, 1, 64), V(5, 2, 62),
         V(7, 1, 59), V(8, 1, 64), V(9, 1, 62), V(10, 1, 54), V(11, 2, 55)]
BASS = [V(0, 1, 55), V(1, 1, 48), V(2, 1, 54), V(3, 1, 55), V(4, 1, 57), V(5, 2, 50),
        V(7, 1, 55), V(8, 1, 48), V(9, 1, 50), V(10, 1, 50), V(11, 2, 43)]


def test_a_four_part_chorale_becomes_a_lead_sheet_and_a_chorale() -> None:
    sheet, chorale = chorale_from_voices([SOPRANO, ALTO, TENOR, BASS], (4, 4), 7, "major", pickup=1.0, title="fixture")
    # the pickup is padded to a whole bar: the soprano's first G falls on beat 3 of bar 1
    assert [len(m.notes) for m in sheet.measures] == [1, 4, 3, 3]
    assert sheet.measures[0].notes[0].onset == 3.0
    assert sheet.meta["fermatas"] == "8,14" and sheet.key == "G major"
    # chords from the lower voices, one per beat: C, D, G, Am, then D (V) at the first fermata
    assert [sheet.measures[1].chord_at(b).token for b in range(4)] == ["C", "D", "G", "Am"]
    assert sheet.measures[2].chord_at(0).token == "D" and sheet.measures[3].chord_at(1).token == "D7"
    beats = chorale.beats
    assert beats[3].pitches == (67, 62, 59, 55) and beats[8].fermata and beats[14].fermata
    assert beats[9].pitches == (74, 66, 62, 50)  # the fermata's half note is held into the next beat
    tokens = grammar.encode(sheet)
    assert tokens[:2] == ["BAR:4/4", "CH:NC"]
    counts = check(chorale)
    assert counts.phrase_ends == 2 and counts.cadences == 2  # I-V (half cadence), V-I
    assert (counts.parallels, counts.crossings, counts.range_violations, counts.spacing) == (0, 0, 0, 0)
    # F# over D moving to G: four times; once (the alto's doubled F# in bar 1) it falls to D
    assert (counts.leading_tones, counts.unresolved_leading_tones) == (4, 1)
    assert any("cadences at phrase ends  2 of 2" in line for line in format_rules("fixture", counts))


def test_a_file_that_is_not_a_four_part_chorale_is_refused_with_the_reason() -> None:
    with pytest.raises(CorpusError, match="3 parts, not the four voices"):
        chorale_from_voices([SOPRANO, ALTO, BASS], (4, 4), 7, "major")
    with pytest.raises(CorpusError, match="a voice has no notes"):
        chorale_from_voices([SOPRANO, ALTO, [], BASS], (4, 4), 7, "major")
    with pytest.raises(CorpusError, match="meter 5/16 is not in the grammar"):
        chorale_from_voices([SOPRANO, ALTO, TENOR, BASS], (5, 16), 7, "major")


def test_the_harmony_chart_has_one_section_per_phrase() -> None:
    from training.corpus.bach import chart_from_chorale
    from training.fit.harmony import encode_chart

    sheet, _ = chorale_from_voices([SOPRANO, ALTO, TENOR, BASS], (4, 4), 7, "major", pickup=1.0, title="fixture")
    chart = chart_from_chorale(sheet)
    assert (chart.tonic, chart.mode) == (7, "major")
    # fermatas on beats 8 and 14 end bars 2 and 3: phrases of bars 0-2 and 3
    assert [len(s.bars) for s in chart.sections] == [3, 1] and [s.label for s in chart.sections] == ["A", "B"]
    assert chart.meta["beats"] == "4"
    assert [c.token for c in chart.sections[0].bars[1]] == ["C", "D", "G", "Am"]  # the chord on each beat
    targets, feats = encode_chart(chart)
    assert len(targets) == len(feats) == 8  # one step per half bar
    targets, feats = encode_chart(chart, slots=4)
    assert len(targets) == len(feats) == 16  # one step per beat
    assert [f[1] for f in feats[4:8]] == [0, 1, 2, 3]  # the slot feature counts the beats
    assert all(t != 0 for t in targets[5:8])  # D, G and Am each arrive on their beat (0 is HOLD)
