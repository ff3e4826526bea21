"""The band's feel, checked as a listener would: swing that fits the tempo, long eighths held,
triplets and sixteenths where they are written, bass approaches, a crash at each chorus, pushes in
the comping, a final chord that rings, and parts that do not depend on one another."""
from __future__ import annotations

import io

import mido
import pytest

from engine.band.arrange import CRASH, FINAL_ROLL_S, RIDE, Arranger, swing_ratio
from engine.band.styles import get_style
from engine.formats.midi import write_midi
from engine.music.chords import parse_chord
from engine.music.leadsheet import Note

JAZZ = get_style("jazz")
BARS = [(4.0 * k, 4.0) for k in range(17)]  # 16 bars and the ending bar
CHANGES = [(8.0 * k + 4.0 * j, parse_chord(name)) for k in range(8) for j, name in enumerate(("Dm7", "G7"))]
CHANGES = [(t, c) for t, c in CHANGES if t < 64] + [(64.0, parse_chord("Cmaj7"))]


def melody() -> list[Note]:
    """Bars alternate: swung eighths; a triplet and sixteenths; then the final note."""
    notes: list[Note] = []
    for bar in range(16):
        t = bar * 4.0
        if bar % 2 == 0:
            notes += [Note(t + 0.5 * k, 0.45, 67 + k % 3) for k in range(8)]
        else:
            notes += [Note(t + k / 3, 0.3, 64 + k) for k in range(3)]
            notes += [Note(t + 1 + 0.25 * k, 0.2, 60 + k) for k in range(4)]
            notes += [Note(t + 2.0, 1.9, 65)]
    return notes + [Note(64.0, 3.6, 60)]


def arrange(tempo: float = 160.0, parts: frozenset[str] | None = None, seed: int = 3):
    arranger = Arranger(JAZZ, seed, parts) if parts else Arranger(JAZZ, seed)
    return arranger.arrange(melody(), CHANGES, BARS, tempo, (4, 4), "C")


def lead(score) -> list:
    return sorted(score.part("lead").notes, key=lambda n: n.start)


def test_long_eighths_are_held_through_their_spacing() -> None:
    notes = lead(arrange())
    ratios = [a.duration / (b.start - a.start) for a, b in zip(notes, notes[1:], strict=False)
              if abs(a.start - round(a.start)) < 0.02 and 0.55 < b.start - a.start < 0.8]
    assert len(ratios) >= 30 and min(ratios) >= 0.9


@pytest.mark.parametrize("tempo", [120.0, 180.0, 260.0])
def test_triplets_and_sixteenths_stay_on_their_grid(tempo: float) -> None:
    written = sorted(melody(), key=lambda n: n.onset)
    ms_per_beat = 60_000 / tempo
    for n, played in zip(written, lead(arrange(tempo)), strict=True):
        frac = n.onset % 1
        if min(abs(frac - g) for g in (1 / 3, 2 / 3, 0.25, 0.75)) < 1e-6 or (frac == 0.5 and n.duration < 0.25):
            assert abs(played.start - n.onset) * ms_per_beat <= 10.0


@pytest.mark.parametrize(("tempo", "low", "high"), [(100, 2.0, 2.4), (140, 2.0, 2.4), (160, 1.6, 2.0),
                                                    (200, 1.6, 2.0), (240, 1.2, 1.5), (300, 1.2, 1.5)])
def test_swing_relaxes_as_the_tempo_rises(tempo: float, low: float, high: float) -> None:
    assert low <= swing_ratio(tempo) <= high
    score = arrange(tempo)
    skip = [n.start % 1 for n in score.part("drums").notes  # the ride pattern, before the final roll
            if n.pitch == RIDE and 0.3 < n.start % 1 < 0.9 and n.start < 64]
    swung = [n.start % 1 for n in lead(score) if 0.5 < n.start % 1 < 0.8 and int(n.start // 4) % 2 == 0 and n.start < 64]
    ride = sum(skip) / len(skip)
    assert abs(ride / (1 - ride) - swing_ratio(tempo)) < 0.15
    assert sum(swung) / len(swung) <= ride  # the lead is never more swung than the ride


def test_the_lead_accents_its_offbeats() -> None:
    notes = [n for n in lead(arrange()) if n.start < 64 and n.duration < 0.8]
    on = [n.velocity for n in notes if abs(n.start - round(n.start)) < 0.02]
    off = [n.velocity for n in notes if 0.55 < n.start % 1 < 0.8]
    assert sum(off) / len(off) > sum(on) / len(on) + 4


def test_leaving_out_the_drums_leaves_the_other_tracks_byte_identical() -> None:
    full = mido.MidiFile(file=io.BytesIO(write_midi(arrange())))
    no_drums = mido.MidiFile(file=io.BytesIO(write_midi(arrange(parts=frozenset({"lead", "comping", "bass"})))))
    assert [t.name for t in no_drums.tracks[1:]] == ["Lead", "Comping", "Bass"]
    for track in no_drums.tracks[1:]:  # the bytes of every message, delta times included
        same = next(t for t in full.tracks if t.name == track.name)
        assert b"".join(m.bin() for m in track) == b"".join(m.bin() for m in same)


@pytest.mark.parametrize("tempo", [120.0, 200.0, 300.0])
def test_the_final_chord_is_held_at_least_two_and_a_half_seconds(tempo: float) -> None:
    """Every part that sounds the final chord holds it >= 2.5 s, none lets go before the comping's
    hold, and each has its sustain pedal down, so all ring out together on their own decay."""
    score = arrange(tempo)
    comp_end = max(n.start + n.duration for n in score.part("comping").notes if n.start >= 64.0 - 0.02)
    for name in ("comping", "bass", "lead"):
        part = score.part(name)
        last = [n for n in part.notes if n.start >= 64.0 - 0.02]
        assert last and min(n.duration for n in last) * 60 / tempo >= 2.5
        assert min(n.start + n.duration for n in last) >= comp_end - 0.05
        assert part.sustain_from is not None and 64.0 <= part.sustain_from < 65.0


@pytest.mark.parametrize("tempo", [120.0, 240.0])
def test_the_drums_swell_a_soft_roll_under_the_final_chord(tempo: float) -> None:
    """A mallet roll on the ride for FINAL_ROLL_S, getting louder, its strokes closer than a
    sixteenth at any tempo, and a final crash softer than the chorus crashes."""
    score = arrange(tempo)
    drums = score.part("drums").notes
    roll = sorted((n for n in drums if n.pitch == RIDE and n.start >= 64.0 - 1e-6), key=lambda n: n.start)
    span_s = (roll[-1].start - roll[0].start) * 60 / tempo
    assert FINAL_ROLL_S - 0.2 <= span_s <= FINAL_ROLL_S
    assert roll[-1].velocity > roll[0].velocity and all(a.velocity <= b.velocity for a, b in zip(roll, roll[1:], strict=False))
    assert max(b.start - a.start for a, b in zip(roll, roll[1:], strict=False)) * 60 / tempo < 0.1
    final_crash = [n.velocity for n in drums if n.pitch == CRASH and n.start >= 64.0 - 1e-6]
    chorus_crashes = [n.velocity for n in drums if n.pitch == CRASH and n.start < 64.0 - 1e-6]
    assert final_crash and max(final_crash) < min(chorus_crashes, default=128)


def test_the_drums_crash_into_each_chorus() -> None:
    score = Arranger(JAZZ, 3).arrange(melody(), CHANGES, BARS, 160.0, (4, 4), "C", chorus_bars=4)
    crashes = {round(n.start / 4) for n in score.part("drums").notes if n.pitch == CRASH}
    assert {4, 8, 12, 16} <= crashes


def test_bass_approaches_some_changes_and_walks_rather_than_zigzags() -> None:
    approached = changes = zigzags = held = 0
    for seed in range(8):
        notes = sorted(arrange(seed=seed).part("bass").notes, key=lambda n: n.start)
        pitches = {round(n.start): n.pitch for n in notes}
        for t, chord in CHANGES[1:-1]:
            before = pitches.get(round(t) - 1)
            changes += 1
            approached += before is not None and (before - chord.root) % 12 in (1, 11, 2)
        for beat in range(0, 64, 4):  # each bar holds one chord: beats 1-3 after the downbeat
            line = [pitches[beat + k] for k in range(4) if beat + k in pitches]
            held += 1
            zigzags += any(a == c and abs(a - b) <= 2 for a, b, c in zip(line, line[1:], line[2:], strict=False))
    assert 0.4 <= approached / changes <= 0.7
    assert zigzags / held <= 0.1


def test_the_comping_pushes_some_bars() -> None:
    score = arrange()
    pushes = [n for n in score.part("comping").notes if n.start % 4 > 3.5 and n.start < 64]
    assert pushes


@pytest.mark.parametrize("asked, offbeat", [(1.0, 0.5), (3.0, 0.75)])
def test_the_swing_option_of_the_request_reaches_the_ride(asked: float, offbeat: float) -> None:
    from engine.compose.request import ComposeRequest
    from engine.settings import Settings

    req = ComposeRequest.build("jazz", "30s", Settings(), ["jazz"], swing=asked)
    assert ComposeRequest.from_payload(req.to_payload()).swing == asked
    score = Arranger(JAZZ, 3, request=req).arrange(melody(), CHANGES, BARS, 160.0, (4, 4), "C")
    offbeats = [n.start % 1 for n in score.part("drums").notes  # the ride pattern, before the final roll
                if n.pitch == RIDE and 0.2 < n.start % 1 < 0.9 and n.start < 64]
    assert offbeats and all(abs(o - offbeat) < 0.03 for o in offbeats)  # 1:1 straight; 3:1 puts it at 3/4


def test_a_swing_out_of_range_is_refused_with_the_range() -> None:
    from engine.compose.request import ComposeRequest, RequestError
    from engine.settings import Settings

    with pytest.raises(RequestError, match=r"swing 4 is out of range; allowed 1.0 \(straight\) to 3.0"):
        ComposeRequest.build("jazz", "30s", Settings(), ["jazz"], swing=4.0)


def test_a_sustaining_lead_tapers_its_final_note_and_a_plucked_one_does_not() -> None:
    """A recorder (GM 74) stops at full strength unless the player tapers it: expression (CC11)
    falls over the final note's last second, ending quieter, and only there."""
    from engine.band.arrange import FINAL_FADE_DB, FINAL_FADE_S, taper

    steps = taper(10.0, 2.0)
    assert [b for b, _, _ in steps] == sorted(b for b, _, _ in steps) and steps[-1][0] == 10.0 and steps[0][0] > 8.0
    assert {cc for _, cc, _ in steps} == {11} and steps[-1][2] == round(127 * 10 ** (-FINAL_FADE_DB / 40))
    values = [v for _, _, v in steps]
    assert values == sorted(values, reverse=True) and values[0] < 127

    folk = Arranger(get_style("folk"), 3).arrange(melody(), CHANGES, BARS, 100.0, (4, 4), "C")
    last = lead(folk)[-1]
    controls = [c for c in folk.part("lead").controls if c[1] == 11]
    assert controls and controls[-1][0] == last.start + last.duration  # ends with the note
    assert 0 < last.start + last.duration - controls[0][0] <= FINAL_FADE_S * 100 / 60  # its last second, at 100 bpm
    assert any(m.type == "control_change" and m.control == 11 for m in mido.MidiFile(file=io.BytesIO(write_midi(folk))))
    jazz = arrange().part("lead")  # the jazz guitar rings out under the pedal instead
    assert [number for _, number, _ in jazz.controls] == [64] and jazz.sustain_from is not None
