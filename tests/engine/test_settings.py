"""Settings: relative data paths resolve against CHORUS_HOME, never the current folder."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.settings import BotSettings
from engine.settings import REPO_ROOT, Settings
from tests.helpers import REPO, run_chorus


def test_relative_paths_resolve_against_chorus_home(tmp_path: Path) -> None:
    s = BotSettings.from_env({"CHORUS_HOME": str(tmp_path), "CHORUS_DB_PATH": "db/chorus.db",
                              "CHORUS_CHECKPOINTS_DIR": "cks", "CHORUS_SOUNDFONT": "/x/gm.sf2"}, dotenv=None)
    assert s.home == tmp_path.resolve()
    assert s.db_path == tmp_path.resolve() / "db" / "chorus.db"
    assert s.checkpoints_dir == tmp_path.resolve() / "cks"
    assert s.data_dir == tmp_path.resolve() / ".chorus"
    assert s.soundfont == Path("/x/gm.sf2")
    assert s.engine_only().checkpoints_dir == s.checkpoints_dir


def test_the_default_home_is_the_repository_root_and_absolute_paths_stay() -> None:
    s = Settings.from_env({"CHORUS_CORPUS_DIR": "/data/corpus"}, dotenv=None)
    assert REPO_ROOT == REPO.resolve() and s.home == REPO_ROOT
    assert s.checkpoints_dir == REPO_ROOT / "checkpoints"
    assert s.corpus_dir == Path("/data/corpus")


def test_chorus_checkpoints_started_from_another_folder_finds_the_shipped_ones(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "bot.cli", "checkpoints", "--json"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "jazz" in out.stdout


def test_chorus_compose_of_a_missing_style_says_where_it_looked(tmp_path: Path) -> None:
    out = run_chorus("compose", "jazz", "5s", cwd=tmp_path, env={"CHORUS_CHECKPOINTS_DIR": str(tmp_path / "none")})
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"chorus: error: no checkpoint for style 'jazz' in {tmp_path / 'none'} "
                                               "(found: none; set CHORUS_CHECKPOINTS_DIR or CHORUS_HOME, or pass --checkpoint)"]
