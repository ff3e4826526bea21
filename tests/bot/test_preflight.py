"""What ``chorus serve`` checks before it connects, and ``chorus serve --check``."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.preflight import check, problems
from bot.settings import BotSettings
from tests.helpers import REPO


def settings(tmp: Path, **env: str) -> BotSettings:
    return BotSettings.from_env({"CHORUS_HOME": str(tmp), "CHORUS_CHECKPOINTS_DIR": str(REPO / "checkpoints"), **env},
                                dotenv=None)


def test_a_ready_machine_has_no_problems(tmp_path: Path) -> None:
    assert check(settings(tmp_path, DISCORD_TOKEN="t")) == []


def test_each_missing_part_is_one_line(tmp_path: Path) -> None:
    cks = tmp_path / "cks"
    (cks / "broken").mkdir(parents=True)
    (cks / "broken" / "meta.json").write_text("{not json")
    found = problems(settings(tmp_path, CHORUS_SOUNDFONT=str(tmp_path / "no.sf2"), CHORUS_CHECKPOINTS_DIR=str(cks)))
    assert found[0] == f"SoundFont not found: {tmp_path / 'no.sf2'} (install fluid-soundfont-gm or set CHORUS_SOUNDFONT)"
    assert found[1].startswith(f"checkpoint broken in {cks} is not usable: ")
    assert found[2] == f"no checkpoint is installed in {cks} (set CHORUS_CHECKPOINTS_DIR or CHORUS_HOME)"
    assert len(found) == 3


def test_the_token_and_a_read_only_database_folder_are_named(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        found = check(settings(tmp_path, CHORUS_DB_PATH=str(ro / "db" / "chorus.db")))
    finally:
        ro.chmod(0o755)
    assert found[0].startswith("DISCORD_TOKEN is not set")
    if os.geteuid() != 0:  # root writes anywhere
        assert found[1] == f"the database folder {ro / 'db'} is not writable (CHORUS_DB_PATH)"


def run_check(tmp: Path, **env: str) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp), "PYTHONPATH": str(REPO),
            "CHORUS_HOME": str(tmp), "CHORUS_CHECKPOINTS_DIR": str(REPO / "checkpoints")}
    return subprocess.run([sys.executable, "-m", "bot.cli", "serve", "--check"], cwd=tmp, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_serve_check_exits_0_when_ready_and_2_with_one_line_per_problem(tmp_path: Path) -> None:
    ok = run_check(tmp_path, DISCORD_TOKEN="t")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("chorus: ready")
    cks = tmp_path / "cks"
    (cks / "broken").mkdir(parents=True)
    (cks / "broken" / "meta.json").write_text("{not json")
    (cks / "broken" / "model.safetensors").write_bytes(b"")
    (cks / "jazz").symlink_to(REPO / "checkpoints" / "jazz")
    bad = run_check(tmp_path, CHORUS_SOUNDFONT=str(tmp_path / "no.sf2"), CHORUS_CHECKPOINTS_DIR=str(cks))
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "chorus: DISCORD_TOKEN is not set (put it in .env or the environment; see .env.example)",
        f"chorus: SoundFont not found: {tmp_path / 'no.sf2'} (install fluid-soundfont-gm or set CHORUS_SOUNDFONT)",
        f"chorus: checkpoint broken in {cks} is not usable: meta.json is not valid JSON",
        "chorus: not ready"]
    assert not (tmp_path / "chorus.db").exists()  # a check writes nothing


def test_with_celery_workers_rendering_only_the_checkpoints_count_on_the_bot(tmp_path: Path) -> None:
    found = problems(settings(tmp_path, CHORUS_QUEUE="celery", CHORUS_SOUNDFONT=str(tmp_path / "no.sf2"),
                              CHORUS_CHECKPOINTS_DIR=str(tmp_path / "none")))
    assert found == [f"no checkpoint is installed in {tmp_path / 'none'} (set CHORUS_CHECKPOINTS_DIR or CHORUS_HOME)"]
