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
