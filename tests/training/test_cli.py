from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.music import grammar
from tests.helpers import FIXTURES, REPO, combo_midi, corpus_dir, run_chorus, write_wjazzd


def chorus(*args: str) -> subprocess.CompletedProcess:
    """The real ``chorus`` process: this module's smoke test of the corpus subcommands."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)


def test_stats_json_on_fixtures() -> None:
    out = chorus("corpus", "stats", "--source", f"wjazzd={FIXTURES / 'wjazzd'}",
                 "--source", f"midi={FIXTURES / 'midi' / 'combo.mid'}", "--json")
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert stats["pieces_read"] == 3 and stats["pieces_skipped"] == 0
    assert stats["measures"] == 12 and stats["notes"] == 54
    assert stats["tokens"] > 54 and stats["vocab_size"] > 1000
    assert stats["chords"] == ["Dm7 G7", "Cmaj7", "Am7 D7(b9)", "G7alt"]


def test_fixtures_in_the_repo_match_the_builders(tmp_path: Path) -> None:
    assert (FIXTURES / "midi" / "combo.mid").read_bytes() == combo_midi()
    write_wjazzd(tmp_path)
    for path in tmp_path.rglob("*.csv"):
        assert path.read_text() == (FIXTURES / "wjazzd" / path.relative_to(tmp_path)).read_text()


@pytest.mark.parametrize("make, expected", [
    (lambda d: (d / "t.mid").write_bytes(combo_midi()[:80]) and f"midi={d / 't.mid'}", "truncated"),
    (lambda d: (d / "p.mid").write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 50) and f"midi={d / 'p.mid'}", "not a MIDI file"),
    (lambda d: f"midi={d / 'missing.mid'}", "not found"),
    (lambda d: f"nope={d}", "unknown corpus kind"),
])
def test_malformed_input_gives_one_clear_line(tmp_path: Path, make, expected: str) -> None:
    out = run_chorus("corpus", "stats", "--source", make(tmp_path))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert any(expected in line for line in lines), out.stderr
    assert len(lines) <= 2


def test_csv_missing_column_and_unknown_chord_in_the_cli(tmp_path: Path) -> None:
    root = write_wjazzd(tmp_path, solos=1)
    beats = root / "csv_beats" / "Tester_Tune0_Solo.csv"
    beats.write_text(beats.read_text().replace("Cj7", "Cwhat"))
    out = run_chorus("corpus", "stats", "--source", f"wjazzd={root}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "'Cwhat'" in out.stderr
    melody = root / "csv_melody" / "Tester_Tune0_Solo.csv"
    melody.write_text(melody.read_text().replace("pitch", "pitchx"))
    out = run_chorus("corpus", "stats", "--source", f"wjazzd={root}")
    assert "missing column(s) pitch" in out.stderr and "Traceback" not in out.stderr


def test_build_writes_a_split_dataset(tmp_path: Path) -> None:
    out = run_chorus("corpus", "build", "--source", f"wjazzd={write_wjazzd(tmp_path / 'w', solos=5)}",
                 "--out", str(tmp_path / "ds.json.gz"), "--valid-fraction", "0.4")
    assert out.returncode == 0, out.stderr
    assert "train pieces" in out.stdout and (tmp_path / "ds.json.gz").stat().st_size > 100


@pytest.mark.corpus
def test_real_wjazzd_stats_reads_404() -> None:
    out = run_chorus("corpus", "stats", "--source", f"wjazzd={corpus_dir() / 'wjazzd'}", "--json")
    stats = json.loads(out.stdout)
    assert stats["pieces_read"] == 404 and stats["pieces_skipped"] == 0
    assert stats["vocab_size"] == len(grammar.VOCAB)


@pytest.mark.corpus
def test_real_metheny_stats() -> None:
    out = run_chorus("corpus", "stats", "--json", "--source",
                 f"midi={corpus_dir() / 'deepjazz_metheny' / 'original_metheny.mid'}")
    stats = json.loads(out.stdout)
    assert stats["pieces_read"] == 1 and len(stats["chords"]) == 8
