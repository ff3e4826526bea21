"""Learning the feel from WJazzD's performed timing (`training.fit.performance`)."""
from __future__ import annotations

from engine.band.perform import QUANTILES
from tests.helpers import write_wjazzd
from training.fit.performance import learn


def test_the_feel_is_learned_from_performed_onsets_and_lengths(tmp_path) -> None:
    root = write_wjazzd(tmp_path / "w", solos=4)
    solos = [(m, root / "csv_beats" / m.name, 120.0 + 40 * i)
             for i, m in enumerate(sorted((root / "csv_melody").glob("*.csv")))]
    perf = learn(solos)
    for table in (perf.short, perf.long, perf.held):
        assert len(table) == QUANTILES and list(table) == sorted(table)
    assert 1.0 <= perf.swing(160) <= 2.2 and abs(perf.onbeat_mean) < 0.2


def test_placement_is_learned_per_place_and_tempo_with_its_neighbours_alike() -> None:
    import random

    from training.fit.performance import _neighbours, _placement

    rnd = random.Random(3)
    placed, solo, z = [], [], 0.0
    for i in range(4000):  # on-beat notes 0.05 beat late at 130 bpm, 0.01 early at 280; neighbours alike
        z = 0.6 * z + 0.8 * rnd.gauss(0, 1)
        tempo = 130.0 if i < 2000 else 280.0
        placed.append((tempo, "on", (0.05 if tempo < 200 else -0.01) + 0.03 * z))
        solo.append(i // 500)
    (kind, bands), = _placement(placed)
    assert kind == "on" and [t for t, _ in bands] == [130.0, 280.0]
    assert abs(bands[0][1][10] - 0.05) < 0.01 and abs(bands[1][1][10] + 0.01) < 0.01
    assert abs(_neighbours(placed, solo) - 0.6) < 0.08


def _solo_with_velocities(tmp_path, name: str, phrases: int, seed: int, notes_off: int = 0):
    """A WJazzD-shaped melody CSV of ``phrases`` phrases of 8 eighths (2-beat rests between), and a
    MIDI file of its notes whose velocities fall through each phrase and rise 2 a semitone."""
    import csv
    import random

    import mido

    from tests.helpers import MELODY_COLS

    rnd = random.Random(seed)
    rows, vels = [], []
    for p in range(phrases):
        pitches = [rnd.randint(60, 72) for _ in range(8)]
        mean = sum(pitches) / 8
        for j, pitch in enumerate(pitches):
            beat = p * 6 + j / 2
            bar, inbar = divmod(beat, 4)
            rows.append([int(bar) + 1, int(inbar) + 1, 0.4, 4, 2, 0.18, 4, beat * 0.4, 4, pitch, 0, 1 + (j % 2)])
            vels.append(round(100 + (6 if j == 0 else -8 if j == 7 else 0) + 2 * (pitch - mean)))
    melody = tmp_path / f"{name}.csv"
    with melody.open("w", newline="") as fh:
        csv.writer(fh).writerows([MELODY_COLS, *rows])
    track = mido.MidiTrack()
    for r, v in zip(rows[notes_off:], vels[notes_off:], strict=True):
        track += [mido.Message("note_on", note=r[9], velocity=v, time=0), mido.Message("note_off", note=r[9], time=96)]
    midi = tmp_path / f"{name}.mid"
    mido.MidiFile(tracks=[track]).save(midi)
    return melody, midi


def test_dynamics_are_learned_from_the_corpus_velocities(tmp_path) -> None:
    from training.fit.dynamics import learn_dynamics

    solos = [_solo_with_velocities(tmp_path, f"s{i}", 12, i) for i in range(3)]
    got = learn_dynamics(solos)
    assert got["vel_solos"] == 3
    arc = got["vel_arc"]  # loud at a phrase's start, its last note softest
    assert arc[0] > arc[2] + 2 and got["vel_last"] < arc[2] - 6
    assert abs(got["vel_contour"] - 2) < 0.3  # higher notes louder, 2 a semitone
    mismatched = _solo_with_velocities(tmp_path, "odd", 12, 9, notes_off=1)  # the MIDI lacks a note: left out
    assert learn_dynamics([mismatched]) == {}
