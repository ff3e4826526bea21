"""A two-minute soak (``bench/soak.py``): the real ``chorus serve`` with the local queue under mixed
traffic from simulated members, a worker killed (-9) after a minute and the bot killed (-9) and
started again half-way. Every accepted job ends as one clip, a failure notice or "cancelled", as a
member sees it: none twice, none lost. Timings are the bench's to print, not this test's."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # real processes end to end: `make test-fast` leaves these out

ROOT = Path(__file__).resolve().parents[2]


def test_a_two_minute_soak_loses_and_repeats_nothing(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", "2", "--worker-kill-every", "1", "--workers", "1",
                          "--every", "2", "--figure", str(tmp_path / "soak.png"), "--json", str(out)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    s = report["summary"]
    assert s["drained"], "the queue did not drain"
    assert s["accepted"] >= 10, s  # traffic reached the workers
    assert s["duplicated"] == 0 and s["lost"] == 0, s["lost_jobs"]
    assert s["accepted"] == s["delivered"] + s["failed_with_notice"] + s["cancelled"], s
    faults = [what for _, what in report["faults"]]
    assert any("worker killed" in f for f in faults) and any("bot killed" in f for f in faults), faults
    assert sum(r["unacked"] for r in report["rows"]) == 0  # every interaction was answered
    assert (tmp_path / "soak.png").stat().st_size > 0
