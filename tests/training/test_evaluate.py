from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, write_wjazzd


def test_eval_json_reports_nll_metrics_and_overlaps(tiny_checkpoint: Path, tmp_path: Path) -> None:
    # other recordings than the fixture dataset's, so nothing is left out as seen
    root = write_wjazzd(tmp_path / "held", solos=3)
    index = root / "index.csv"
    index.write_text(index.read_text().replace(",1,Tester", ",101,Tester").replace(",2,Tester", ",102,Tester")
                     .replace(",3,Tester", ",103,Tester"))
    out = subprocess.run([sys.executable, "-m", "bot.cli", "eval", "--checkpoint", str(tiny_checkpoint), "--source",
                          f"wjazzd={root}", "--samples", "3", "--json"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["nll"] > 0 and r["ngram_nll"] > 0 and r["samples"] == 3 and r["grammar_errors"] == 0.0
    for name in ("H1", "H4", "GS", "CPI", "chord_tone_ratio"):
        assert set(r["metrics"][name]) >= {"generated", "reference"}
    assert {"pitch_class_histogram", "note_length_histogram", "pitch_range", "avg_ioi"} <= set(r["oa"])
