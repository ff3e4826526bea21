"""Harmony and form metrics and the reference chart readers, on charts written here (no corpus data)."""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from engine.errors import ChordError
from engine.music.chords import FAMILY_NAMES, Chord, parse_chord
from training.corpus import reference_charts as rc
from training.evaluation import harmony_metrics as hm


def bars_of(text: str) -> list[tuple[Chord, ...]]:
    return [tuple(parse_chord(s) for s in cell.split()) for cell in text.split("|")]


# ii-V-I in C, two bars per chord pair, four times: 32 bars
II_V_I = bars_of(" | ".join(["Dm7 | G7 | Cmaj7 | Cmaj7"] * 8))


def test_ii_v_i_loop_counts_cadences() -> None:
    ii_v, v_i = hm.cadences_per_8(II_V_I)
    # each 4-bar loop has one ii-V and one V-I: 2 per 8 bars
    assert (ii_v, v_i) == (2.0, 2.0)
    assert hm.cadences_per_8(bars_of("Cmaj7 | Fmaj7 | Bb7 | Eb7")) == (0.0, 0.0)


def test_consecutive_equal_chords_count_once_and_nc_is_dropped() -> None:
    seq = hm.chord_sequence(bars_of("C6 Cmaj7 | NC | C | G7alt G13"))
    assert seq == [(0, "M"), (7, "7")]


def test_every_engine_family_has_a_class() -> None:
    assert set(FAMILY_NAMES) == set(hm.CLASS_OF)
    assert set(hm.CLASS_OF.values()) == set(hm.CLASSES)


def test_random_roots_score_lower_than_the_progression_the_bigram_knows() -> None:
    bigram = hm.ChordBigram.fit([hm.chord_sequence(II_V_I)] * 5)
    rnd = random.Random(3)
    families = ("min7", "7", "maj7")
    noise = [[(Chord(rnd.randrange(12), families[i % 3]),) for i in range(32)] for _ in range(5)]
    real = bigram.loglik([hm.chord_sequence(II_V_I)])
    random_ll = bigram.loglik(hm.chord_sequence(b) for b in noise)
    assert real > -0.5  # nearly certain, but smoothed
    assert random_ll < real - 1.0
    # a smoothed distribution over 84 outcomes
    total = sum(math.exp(bigram.logprob((i, "m", c))) for i in range(12) for c in hm.CLASSES)
    assert total == pytest.approx(1.0)


def test_diatonic_changes_fit_one_key_without_changes() -> None:
    changes, fit = hm.key_changes_and_fit(bars_of(" | ".join(["Cmaj7 | Am7 | Dm7 | G7 | Em7 | Fmaj7 | Bm7b5 | C6"] * 4)))
    assert fit == 1.0
    assert changes == 0.0


def test_key_changes_are_counted_between_collections() -> None:
    # 8 bars in C, then 8 bars in Eb (a change of collection, once)
    bars = bars_of(" | ".join(["Cmaj7 | Dm7 | G7 | Cmaj7"] * 2 + ["Ebmaj7 | Fm7 | Bb7 | Ebmaj7"] * 2))
    windows = hm.key_windows(bars)
    assert windows[0][0] == 0 and windows[-1][0] == 3
    assert hm.key_changes_and_fit(bars)[0] == pytest.approx(1 * 32 / 16)
    # a minor key and its relative major are one collection
    assert hm.key_windows(bars_of("Am | Dm | E7 | Am"))[0][0] == 0


def test_repeated_melody_recurs_and_a_non_repeating_one_does_not() -> None:
    phrase = [(0.0, 60), (1.0, 62), (1.5, 64), (2.0, 67), (3.0, 65), (4.0, 64), (5.0, 62), (6.0, 60)]
    repeated = [(t + 8.0 * k, p) for k in range(4) for t, p in phrase]
    assert hm.rep5(repeated) == 1.0
    rising = [(i * 0.5, 30 + i * (i + 1) // 2) for i in range(12)]  # intervals 1, 2, 3... all differ
    assert hm.rep5(rising) == 0.0
    assert hm.rep5(repeated[:4]) == 0.0


def test_rep5_keeps_one_note_per_onset_and_caps_long_gaps() -> None:
    chords_under = [(0.0, 48), (0.0, 60), (1.0, 62), (2.0, 64), (3.0, 65), (4.0, 67)]
    assert hm.rep5(chords_under) == 0.0  # one window only
    a = [(0.0, 60), (1.0, 62), (2.0, 64), (3.0, 65), (10.0, 67)]
    b = [(20.0, 60), (21.0, 62), (22.0, 64), (23.0, 65), (40.0, 67)]  # 17-beat gap capped like the 7-beat one
    assert hm.rep5(a + b) == pytest.approx(2 / 6)


def test_div4_is_near_zero_for_one_looped_progression() -> None:
    looped = hm.div4([II_V_I] * 30)
    assert looped < 0.01
    rnd = random.Random(1)
    varied = [[(Chord(rnd.randrange(12), rnd.choice(FAMILY_NAMES)),) for _ in range(32)] for _ in range(5)]
    assert hm.div4(varied) > 0.9


def test_parse_changes_reads_the_summary_format() -> None:
    bars = hm.parse_changes("Dm7 G7(b9,13)/B | Cmaj7 | % | Am7b5 D7alt | Cm(maj7) | NC")
    assert [len(b) for b in bars] == [2, 1, 1, 2, 1, 1]
    assert bars[2] == bars[1]
    assert [hm.reduce_chord(c) for c in bars[0] + bars[3]] == [(2, "m"), (7, "7"), (9, "h"), (2, "7")]
    with pytest.raises(ChordError):
        hm.parse_changes("% | C")


def test_every_chord_name_parses_back_to_its_family() -> None:
    for family in FAMILY_NAMES:
        for tensions in (frozenset(), frozenset({2})):
            chord = Chord(5, family, tensions, bass=9)
            back = hm.parse_changes(chord.name)[0][0]
            assert hm.reduce_chord(back) == hm.reduce_chord(chord), chord.name


def test_harmony_report_gives_every_metric() -> None:
    bigram = hm.ChordBigram.fit([hm.chord_sequence(II_V_I)])
    report = hm.harmony_report([II_V_I, II_V_I[:8]], [[(i * 1.0, 60 + i % 5) for i in range(40)]] * 2, bigram)
    assert set(report) == {"pieces", "bigram_ll", "ii_v", "v_i", "key_changes", "key_fit", "div4", "rep5"}
    assert report["ii_v"] == 2.0 and report["key_fit"] == 1.0 and report["rep5"] == 1.0


def test_title_split_is_by_normalised_title() -> None:
    assert rc.normalise_title("The Days of Wine & Roses") == "daysofwineroses"
    assert rc.normalise_title("Theme, The") == "theme"
    assert rc.is_train("All The Things You Are") == rc.is_train("all things you are!")
    titles = [f"Tune {i}" for i in range(500)]
    share = sum(rc.is_train(t) for t in titles) / len(titles)
    assert 0.74 < share < 0.86


def test_ireal_reader(tmp_path: Path) -> None:
    tunes = [
        {"Title": "Test Blues", "Key": "F", "TimeSignature": "4/4",
         "Sections": [{"Label": "A", "MainSegment": {"Chords": "F7|Bb7(Bdim7)|F7|Cm7,F7"},
                       "Endings": [{"Chords": "Bb7|Bo7"}, {"Chords": "C7|F7"}]}]},
        {"Title": "Minor Thing", "Key": "Cmin", "Sections": [{"Label": "A", "MainSegment": {"Chords": "Cm7||Dm7b5,G7|Cm6"}}]},
        {"Title": "No Key", "Sections": [{"Label": "A", "MainSegment": {"Chords": "Dm7,G7|Cmaj7|Am7|Dm7,G7|C6"}}]},
        {"Title": "Broken", "Key": "C", "Sections": [{"Label": "A", "MainSegment": {"Chords": "Xyz7|C"}}]},
    ]
    path = tmp_path / "standards.json"
    path.write_text(json.dumps(tunes))
    charts, skipped = rc.read_ireal_charts(path)
    assert [c.title for c in charts] == ["Test Blues", "Minor Thing", "No Key"]
    assert len(skipped) == 1 and "Broken" in skipped[0] and "Xyz7" in skipped[0]
    blues = charts[0]
    assert (blues.tonic, blues.mode) == (5, "major")
    assert [tuple(c.token for c in b) for b in blues.bars] == [
        ("F7",), ("Bb7",), ("F7",), ("Cm7", "F7"), ("Bb7",), ("Bdim7",)]  # alternate dropped, first ending
    assert (charts[1].tonic, charts[1].mode) == (0, "minor")
    assert charts[1].bars[1] == charts[1].bars[0]  # an empty bar repeats the chord
    assert (charts[2].tonic, charts[2].mode) == (0, "major")


LS = """(title Test Tune)
(composer Nobody)
(meter 4 4)
(key -1)
(part
    (type chords)
    (title )
    (key -1)
    (roadmap (blocks (brick (name On) (blocks (chord F 480)))))
)
(section (style swing))
Fmaj7 D7 | Gm7 C7 | Am7 / D7+ / | E7/B | Fmaj7 |
(part
    (type melody)
    (key -1)
)
f4 g4 a2 | c+1 |
"""


def test_improvisor_reader(tmp_path: Path) -> None:
    (tmp_path / "tune.ls").write_text(LS)
    (tmp_path / "dup.ls").write_text(LS.replace("Test Tune", "The Test Tune"))
    (tmp_path / "bad.ls").write_text(LS.replace("Test Tune", "Bad").replace("Fmaj7 D7", "Fmaj7 Q7"))
    chart = rc.read_ls_chart(tmp_path / "tune.ls")
    assert chart.title == "Test Tune" and (chart.tonic, chart.mode) == (5, "major")
    assert [tuple(c.token for c in b) for b in chart.bars] == [
        ("Fmaj7", "D7"), ("Gm7", "C7"), ("Am7", "Am7", "Daug7", "Daug7"), ("E7",), ("Fmaj7",)]
    assert chart.bars[3][0].bass == 11
    charts, skipped = rc.read_improvisor_charts(tmp_path, exclude_titles={"othertune"})
    assert [c.title for c in charts] == ["The Test Tune", "Test Tune"]
    assert len(skipped) == 1 and "bad.ls" in skipped[0]
    charts, skipped = rc.read_improvisor_charts(tmp_path, exclude_titles={"testtune"})
    assert charts == [] and len(skipped) == 3


def test_reference_charts_merge_without_duplicate_titles(tmp_path: Path) -> None:
    (tmp_path / rc.IREAL_FILE).parent.mkdir(parents=True)
    (tmp_path / rc.IREAL_FILE).write_text(json.dumps([
        {"Title": "Test Tune", "Key": "F", "Sections": [{"Label": "A", "MainSegment": {"Chords": "F|C7"}}]}]))
    (tmp_path / rc.IMPROVISOR_DIR).mkdir(parents=True)
    (tmp_path / rc.IMPROVISOR_DIR / "tune.ls").write_text(LS)
    (tmp_path / rc.IMPROVISOR_DIR / "other.ls").write_text(LS.replace("Test Tune", "Other Tune"))
    charts, skipped = rc.read_reference_charts(tmp_path)
    assert sorted(c.title for c in charts) == ["Other Tune", "Test Tune"]
    assert len(skipped) == 1
    bigram = hm.reference_bigram(tmp_path)
    assert bigram is hm.reference_bigram(tmp_path)  # cached
