"""The voice-leading search writes alto, tenor and bass that obey the chorale rules, and the
chorale band plays them (organ, or the string quartet with --band strings), holding the fermatas."""
from __future__ import annotations

import pytest

from engine.band.arrange import Arranger
from engine.band.arrange_chorale import phrase_ends, soprano_beats, tonic_of
from engine.band.chorale import RANGES, Chorale, ChoraleBeat, check, chorale_of_score
from engine.band.styles import StyleError, get_style
from engine.band.voicelead import voice_chorale
from engine.compose.request import ComposeRequest, RequestError
from engine.music.chords import chord_tones, parse_chord
from engine.music.leadsheet import Note
from engine.settings import Settings

# A hand-written 16-beat tune in C with a half cadence after 8 beats and V7-I at the end.
SOPRANO = [72, 71, 72, 74, 76, 74, 72, 71, 72, 72, 69, 71, 72, 74, 71, 72]
CHORDS = [parse_chord(x) for x in "C G C G C G Am G C F F G C G7 G7 C".split()]
# The same in A minor: the leading tone G# must rise to A over E-Am.
SOPRANO_MINOR = [69, 71, 72, 71, 69, 68, 69, 72, 71, 69, 68, 69]
CHORDS_MINOR = [parse_chord(x) for x in "Am E Am E Am E Am Am Dm Am E Am".split()]


def _check(soprano, chords, tonic, fermatas=()) -> tuple[list[tuple[int, int, int, int]], dict]:
    voiced = voice_chorale(soprano, chords, tonic)
    beats = tuple(ChoraleBeat(v, c, fermata=i in fermatas) for i, (v, c) in enumerate(zip(voiced, chords, strict=True)))
    return voiced, check(Chorale(beats, tonic)).to_dict()


@pytest.mark.parametrize(("soprano", "chords", "tonic"), [(SOPRANO, CHORDS, 0), (SOPRANO_MINOR, CHORDS_MINOR, 9)])
def test_the_lower_voices_obey_every_rule(soprano, chords, tonic) -> None:
    voiced, counts = _check(soprano, chords, tonic)
    assert [v[0] for v in voiced] == soprano  # the soprano is kept as given
    for key in ("parallels", "crossings", "range_violations", "spacing", "unresolved_leading_tones"):
        assert counts[key] == 0, (key, voiced)
    assert counts["leading_tones"] > 0
    for (s, a, t, b), chord in zip(voiced, chords, strict=True):
        tones = chord_tones(chord.root, chord.family)
        assert {a % 12, t % 12, b % 12} <= tones  # alto, tenor and bass sing chord tones
        assert chord.root in {a % 12, t % 12, b % 12, s % 12}
        for name, p in zip(("alto", "tenor", "bass"), (a, t, b), strict=True):
            assert RANGES[name][0] <= p <= RANGES[name][1]


def test_the_search_is_deterministic_and_fills_rests() -> None:
    soprano = [72, None, 71, 72]
    chords = [parse_chord("C"), None, parse_chord("G"), parse_chord("C")]
    first = voice_chorale(soprano, chords, 0)
    assert first == voice_chorale(soprano, chords, 0)
    assert first[1][0] == 72 and first[1][1:] == first[0][1:]  # the rest keeps the C chord, held


def test_a_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="4 soprano beats but 3 chords"):
        voice_chorale([72, 71, 72, 74], CHORDS[:3], 0)


def test_phrase_ends_land_on_cadences() -> None:
    chords = CHORDS + [parse_chord("C")] * 4  # a final bar
    struck = [True] * 20
    ends = phrase_ends(chords, struck, 4.0, 5, 2, 0)
    # in each phrase's last bar, the latest cadence before its last beat (left for the next pickup):
    # I-V on beat 2 of bar 2 (a half cadence; Am after it is not one), V7-I on beat 1 of bar 4;
    # then the final bar's downbeat
    assert ends == [5, 12, 16]
    assert tonic_of("Bbm") == 10 and tonic_of("F#") == 6


def _bach_arrangement(band: str | None = None):
    melody = [Note(float(b), 1.0, p) for b, p in enumerate(SOPRANO)] + [Note(16.0, 3.6, 72)]
    changes = [(float(b), c) for b, c in enumerate(CHORDS)] + [(16.0, parse_chord("C"))]
    bars = [(float(s), 4.0) for s in range(0, 20, 4)]
    req = ComposeRequest.build("bach", "30s", Settings.from_env(environ={}, dotenv=None), ["bach"], band=band)
    return Arranger(get_style("bach"), seed=3, request=req).arrange(melody, changes, bars, 72.0, (4, 4), "C")


def test_the_organ_plays_four_voices_and_holds_the_fermatas() -> None:
    score = _bach_arrangement()
    assert [p.name for p in score.parts] == ["lead", "alto", "tenor", "bass"]
    assert {p.program for p in score.parts} == {19}  # church organ
    assert not any(p.is_drums for p in score.parts)
    # two phrase-end fermatas inside the piece, one beat each: the bars they are in get longer
    assert score.fermatas[:2] == [5.0, 13.0]  # the second comes a beat later, after the first's hold
    assert [length for _, length in score.bars] == [4.0, 5.0, 4.0, 5.0, 4.0]
    assert score.beats == 22.0
    # what the band plays, read back at the beats, keeps the rules
    counts = check(chorale_of_score(score, 0, "major", frozenset(score.fermatas)))
    assert (counts.parallels, counts.crossings, counts.range_violations) == (0, 0, 0)
    assert counts.cadences == counts.phrase_ends == 3


def test_the_string_quartet_and_a_band_the_style_lacks() -> None:
    score = _bach_arrangement("strings")
    assert [p.program for p in score.parts] == [40, 41, 42, 43]  # violin, viola, cello, contrabass
    with pytest.raises(RequestError, match="band 'brass' is not offered; choose from organ, strings"):
        ComposeRequest.build("bach", "30s", Settings.from_env(environ={}, dotenv=None), ["bach"], band="brass")
    with pytest.raises(StyleError, match="style jazz has no band 'strings'"):
        get_style("jazz").band_named("strings")


def test_a_stored_request_without_a_band_still_loads() -> None:
    req = ComposeRequest.build("bach", "30s", Settings.from_env(environ={}, dotenv=None), ["bach"], band="strings")
    payload = req.to_payload()
    assert ComposeRequest.from_payload(payload).band == "strings"
    del payload["band"]  # a job stored by a bot from before the band option
    assert ComposeRequest.from_payload(payload).band is None


def test_soprano_beats_reads_the_note_at_each_onset() -> None:
    melody = [Note(0.0, 1.5, 72), Note(1.5, 0.5, 74), Note(3.0, 1.0, 71)]
    assert soprano_beats(melody, 4) == [72, 72, None, 71]


def test_a_phrase_without_a_cadence_gets_one_where_the_soprano_fits() -> None:
    from engine.band.arrange_chorale import cadence_plan

    am, f, c = parse_chord("Am"), parse_chord("F"), parse_chord("C")
    chords = [c, am, f, am, f, am, f, am, c, c, c, c]  # no cadence in bar 2 (roots a third apart)
    soprano = [72, 72, 72, 72, 72, 71, 72, 74, 72, 72, 72, 72]  # B then C on beats 5-6 fit V-I
    ends, planned = cadence_plan(chords, soprano, [True] * 12, 4.0, 3, 2, 0, False)
    assert ends == [6, 8]
    assert (planned[5].token, planned[6].token) == ("G", "C")  # V-I where B and C are chord tones
    assert planned[:5] == chords[:5]
    assert (planned[7].token, planned[8].token) == ("G", "C")  # the final chord approached by V


def test_random_progressions_in_every_key_break_no_rule() -> None:
    import random

    from engine.band.chorale import check_all
    from engine.music.chords import Chord

    rnd = random.Random(0)
    degrees = [(0, "maj"), (2, "min"), (4, "min"), (5, "maj"), (7, "maj"), (9, "min"), (7, "7"), (11, "dim")]
    chorales = []
    for _ in range(60):
        tonic = rnd.randrange(12)
        chords = [Chord((tonic + d) % 12, f) for d, f in (rnd.choice(degrees) for _ in range(16))]
        soprano: list[int] = []
        for c in chords:  # a singable soprano on chord tones, mostly by step
            tones = [p for p in range(62, 80) if p % 12 in chord_tones(c.root, c.family)]
            soprano.append(min(tones, key=lambda p: abs(p - (soprano[-1] if soprano else 70)) + rnd.random() * 3))
        voiced = voice_chorale(soprano, chords, tonic)
        chorales.append(Chorale(tuple(ChoraleBeat(v, c) for v, c in zip(voiced, chords, strict=True)), tonic))
    counts = check_all(chorales)
    assert counts.beats == 960 and counts.leading_tones > 20
    assert (counts.parallels, counts.contrary, counts.crossings, counts.range_violations, counts.spacing,
            counts.unresolved_leading_tones) == (0, 0, 0, 0, 0, 0)
