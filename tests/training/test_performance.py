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
